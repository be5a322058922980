// The worker's hand-off: a finishing try gives its worker slot and pool slots straight to a
// downstream task of its run that it made ready (store/transitions/finishTries.ts), skipping the
// queue. That is a claim of one task, so it must not take what a claim would not: a slot freed
// in a pool goes to the pool's highest-priority queued try that a claim could take (Airflow's
// priority_weight; a backfill try's is lowered below every other try's; a paused DAG's try, or
// one needing more slots than the pool has in all, is not one), and nothing starts in a pool
// whose running tries already fill it (its slots were lowered) or in a pool that no longer
// exists. When the hand-off is refused the task is queued, and the claim that follows picks by
// priority within pool slots.

/** What a finish read of a pool before handing its freed slots to a downstream task. */
export interface HandoffPool {
  /** Slots free once the finishing tries released theirs (slots − occupied + released); null: no such pool. */
  room: number | null;
  /**
   * The highest priority_weight of the pool's queued tries on the worker's queues that a claim could
   * take (not a paused DAG's, but for backfill tries; not one needing more slots than the pool has),
   * among the first few in priority order; null: none.
   */
  topQueued: number | null;
}

/**
 * Whether a task needing `poolSlots` slots, of priority `priorityWeight`, may be handed slots of
 * `pool` (undefined: not read, so no). Ties go to the hand-off: only a queued try of higher
 * priority is ahead of the task (a claim would break the tie by id; the hand-off keeps a chain going).
 * finishTries' first round trip checks the same in SQL (handoffCondition), on the same reads.
 */
export function mayHandOff(pool: HandoffPool | undefined, poolSlots: number, priorityWeight: number): boolean {
  if (!pool || pool.room === null || pool.room < poolSlots) return false;
  return pool.topQueued === null || priorityWeight >= pool.topQueued;
}
