/**
 * Keys already warned about, so a condition a loop meets on every turn is logged once, not once
 * per turn. Bounded: past maxKeys it forgets them all (a repeated warning, never unbounded memory).
 */
export class WarnOnce {
  private readonly seen = new Set<string>();

  constructor(private readonly maxKeys = 10_000) {}

  /** Whether `key` was given to first() (since the last reset): to skip the work of a warning already made. */
  has(key: string): boolean {
    return this.seen.has(key);
  }

  /** True the first time `key` is given (since the last reset); marks it. Call it when the warning is made, not before. */
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.maxKeys) this.seen.clear();
    this.seen.add(key);
    return true;
  }
}
