/**
 * Caps refused (401/403) requests per client address in a sliding window. Refusals happen before
 * the rate limit (which needs a known token), and each one costs a token lookup and an event-log
 * row; past the cap a client gets 429 and nothing is written (api/auth.ts still lets a live token in).
 */
export class RefusalThrottle {
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly maxRefusals: number,
    private readonly windowMs: number,
    private readonly maxClients = 10_000,
  ) {}

  /** True when `client` has been refused `maxRefusals` times within the window ending at `now`. */
  isBlocked(client: string, now: number): boolean {
    const times = this.recent.get(client);
    if (!times) return false;
    const live = times.filter((t) => now - t < this.windowMs);
    if (live.length === 0) this.recent.delete(client);
    else this.recent.set(client, live);
    return live.length >= this.maxRefusals;
  }

  /** Records one refusal of `client` at `now`. */
  refused(client: string, now: number): void {
    if (!this.recent.has(client) && this.recent.size >= this.maxClients) this.recent.clear();
    const times = this.recent.get(client) ?? [];
    times.push(now);
    if (times.length > this.maxRefusals) times.splice(0, times.length - this.maxRefusals);
    this.recent.set(client, times);
  }

  /** Seconds until `client` may be refused again (for retry-after). */
  retryAfterSeconds(client: string, now: number): number {
    const oldest = this.recent.get(client)?.[0];
    return oldest === undefined ? 0 : Math.max(1, Math.ceil((oldest + this.windowMs - now) / 1000));
  }
}
