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

/**
 * Whether the gate's read of `pool` refused a hand-off of a task needing `poolSlots`, of priority
 * `priorityWeight`, for a queued try ahead of it alone (the pool had room): the try its shallow
 * read saw may be one no claim takes, so the worker reads that pool's queue deep for a while
 * (GateDepths). A refusal for room would be one however deep the read.
 */
export function blockedByQueued(pool: HandoffPool | undefined, poolSlots: number, priorityWeight: number): boolean {
  if (!pool || pool.room === null || pool.room < poolSlots) return false;
  return pool.topQueued !== null && priorityWeight < pool.topQueued;
}

/** How long a pool's gate reads deep after its shallow read refused a hand-off. */
export const DEEP_GATE_HOLD_MS = 30_000;

/**
 * Per pool, how the worker's hand-off gate reads the queue (finishTries' claimReads). Shallow by
 * default: the first queued try on the pool's index, whatever it is, one index entry. It refuses
 * a hand-off behind a try no claim takes (a paused DAG's, one larger than its pool), which may
 * wait there for hours and would send every hop of a chain in that pool through a full claim; so
 * after a refusal the pool's gate reads deep (a prefix of its queue, skipping such tries) for
 * DEEP_GATE_HOLD_MS, and shallow again after that. The deep read costs ≈ 0.1 ms more per finish
 * (bench/gate.ts). A refused task is queued, and the next claim picks by priority (claims read
 * past such tries too: claimTasks); the shallow read refuses more hand-offs than the deep one,
 * never fewer. Held on the worker's clock: a clock set back holds the deep read longer, no worse.
 */
export class GateDepths {
  private readonly deepUntil = new Map<string, number>();

  constructor(private readonly holdMs = DEEP_GATE_HOLD_MS) {}

  /** The pools whose gate reads deep at `nowMs`. */
  deepPools(nowMs: number): ReadonlySet<string> {
    for (const [pool, until] of this.deepUntil) if (until <= nowMs) this.deepUntil.delete(pool);
    return new Set(this.deepUntil.keys());
  }

  /** Pools whose shallow read refused a hand-off (FinishResult.gateBlocked) read deep from `nowMs` on. */
  noteBlocked(pools: readonly string[], nowMs: number): void {
    for (const pool of pools) this.deepUntil.set(pool, nowMs + this.holdMs);
  }
}
