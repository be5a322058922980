/**
 * How long work the database refused on its own (a value of that one row, not the database's
 * state) is set aside before it is tried again: a worker's result refused even as
 * BATON_RESULT_UNRECORDABLE, a zombie whose reaping is refused, a queued try whose claim is refused.
 * Also the longest a claimed try whose inputs could not be read alone is set aside (parkLonger).
 */
export const PARKED_RETRY_MS = 60_000;

/**
 * Rows (by id) set aside after the database refused them alone: left out of the batches that
 * would read them again, so one row cannot fail every batch, and tried again PARKED_RETRY_MS later.
 * In memory only: a restarted process tries them at once, then sets them aside again.
 */
export class ParkedIds {
  /** By id: until when it is set aside, and for how long it was. Kept PARKED_RETRY_MS past `until`, for parkLonger. */
  private readonly until = new Map<number, { until: number; ms: number }>();

  /** Sets `id` aside from `now` (ms) for PARKED_RETRY_MS. */
  park(id: number, now: number): void {
    this.until.set(id, { until: now + PARKED_RETRY_MS, ms: PARKED_RETRY_MS });
  }

  /**
   * Sets `id` aside from `now` (ms) for firstMs, or, when it was set aside before and came back
   * less than PARKED_RETRY_MS ago, for twice as long as then, up to PARKED_RETRY_MS: work that may
   * fail for a passing reason is tried again soon, and work that keeps failing ever less often.
   * Returns how long it is set aside.
   */
  parkLonger(id: number, now: number, firstMs: number): number {
    const last = this.until.get(id);
    const ms = last && now < last.until + PARKED_RETRY_MS ? Math.min(PARKED_RETRY_MS, last.ms * 2) : Math.min(PARKED_RETRY_MS, firstMs);
    this.until.set(id, { until: now + ms, ms });
    return ms;
  }

  /** The ids still set aside at `now` (ms); those due are tried again, and forgotten PARKED_RETRY_MS later. */
  current(now: number): number[] {
    if (this.until.size === 0) return [];
    const ids: number[] = [];
    for (const [id, { until }] of this.until) {
      if (until > now) ids.push(id);
      else if (until + PARKED_RETRY_MS <= now) this.until.delete(id);
    }
    return ids;
  }
}
