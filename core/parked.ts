/**
 * How long work the database refused on its own (a value of that one row, not the database's
 * state) is set aside before it is tried again: a worker's result refused even as
 * BATON_RESULT_UNRECORDABLE, a zombie whose reaping is refused, a queued try whose claim is refused.
 */
export const PARKED_RETRY_MS = 60_000;

/**
 * Rows (by id) set aside after the database refused them alone: left out of the batches that
 * would read them again, so one row cannot fail every batch, and tried again PARKED_RETRY_MS later.
 * In memory only: a restarted process tries them at once, then sets them aside again.
 */
export class ParkedIds {
  private readonly until = new Map<number, number>();

  /** Sets `id` aside from `now` (ms) for PARKED_RETRY_MS. */
  park(id: number, now: number): void {
    this.until.set(id, now + PARKED_RETRY_MS);
  }

  /** The ids still set aside at `now` (ms); those due are forgotten, to be tried again. */
  current(now: number): number[] {
    if (this.until.size === 0) return [];
    for (const [id, until] of this.until) if (until <= now) this.until.delete(id);
    return [...this.until.keys()];
  }
}
