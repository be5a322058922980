// claimAhead — how many tries a worker holds beyond its slots (pure; the worker measures the inputs).
// Little's law: to keep every slot busy, the tries waiting in the worker must cover what the
// slots run until the next claim lands, i.e. while the worker's loop makes a finish call and a
// claim call. Short tries (no-ops) are then claimed in large batches, which is what makes a wide
// fan-out cheap per task; long tries are never claimed ahead, so they do not wait in one worker
// while another idles.

/** Tries shorter than this on average are claimed ahead (their claim would cost as much as running them). */
export const CLAIM_AHEAD_BELOW_MS = 100;
/** Default cap on tries claimed ahead, per slot. */
export const CLAIM_AHEAD_PER_SLOT = 64;
/** Database calls of the loop the waiting tries cover: a finish and a claim, twice (absorbs a slow call). */
export const CLAIM_AHEAD_DB_CALLS = 4;

export interface ClaimAheadInputs {
  concurrency: number;
  /** Cap (the worker's `claimAhead` option); default CLAIM_AHEAD_PER_SLOT per slot. */
  cap?: number;
  /** Moving average of recent tries' durations; undefined before the first try ended. */
  tryMs: number | undefined;
  /** Moving average of the loop's database calls (a finish or a claim); undefined before the first. */
  dbMs: number | undefined;
  /** A try waiting longer than this is handed back; claims stay within a quarter of it. */
  maxWaitMs: number;
}

/**
 * Tries to claim beyond the slots: at least one per slot while tries are short, enough to cover
 * CLAIM_AHEAD_DB_CALLS database calls, at most the cap, and no more than the slots start within
 * a quarter of the wait limit. 0 while tries are long or unknown.
 */
export function claimAheadAllowance({ concurrency, cap, tryMs, dbMs, maxWaitMs }: ClaimAheadInputs): number {
  if (tryMs === undefined || !Number.isFinite(tryMs) || tryMs >= CLAIM_AHEAD_BELOW_MS || concurrency <= 0) return 0;
  const triesPerMs = concurrency / Math.max(tryMs, 0.1);
  const cover = Math.ceil(triesPerMs * CLAIM_AHEAD_DB_CALLS * (dbMs !== undefined && Number.isFinite(dbMs) ? dbMs : 0));
  const withinWait = Math.floor((triesPerMs * maxWaitMs) / 4);
  return Math.max(0, Math.min(cap ?? concurrency * CLAIM_AHEAD_PER_SLOT, withinWait, Math.max(concurrency, cover)));
}

/** The moving average the worker keeps of try and database-call durations: recent samples weigh 20 %. */
export function movingAverage(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous * 0.8 + sample * 0.2;
}
