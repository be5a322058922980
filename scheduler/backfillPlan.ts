/**
 * Backfill planning: which logical dates a backfill covers, and what happens to each date given
 * the runs that already exist for it. Pure: the store transitions (createBackfill,
 * advanceBackfills) read the rows and apply the decisions; the dry run shows them.
 *
 * Dates follow Airflow's backfill: every logical date of the DAG's schedule with
 * from <= logical date <= to (both inclusive) whose data interval has ended by now, ignoring the
 * DAG's startDate/endDate/catchup (an interval schedule stays on the grid anchored at its
 * startDate). The data intervals come from scheduler/timetable.ts, so a backfill run covers
 * exactly the interval a scheduled run of that date would. A date whose interval is still open
 * is left out: its run would hold the date's automated-run key (ux_dag_run_automated), so the
 * scheduler would never create the scheduled run that is due when the interval ends.
 *
 * Per date (Airflow's reprocess_behavior):
 * - a run of any type for the date is queued or running → skip, `in_flight` (never doubled);
 * - no run → create;
 * - `none` → skip, `exists`;
 * - `failed` → reprocess when the latest run failed, else skip, `succeeded`;
 * - `completed` → reprocess.
 * Reprocessing creates a new backfill run and marks the finished runs of the date replaced (they
 * stay as history).
 */
import { dagRunInfosBetween, type DagRunInfo, type Timetable } from "./timetable.ts";

export const REPROCESS_BEHAVIORS = ["none", "failed", "completed"] as const;
export type ReprocessBehavior = (typeof REPROCESS_BEHAVIORS)[number];

export interface BackfillRange {
  from: Date;
  to: Date;
  /** The DAG's startDate: anchors an interval schedule's grid and is the date of `@once`. */
  dagStartDate: Date | null;
  /** Only dates whose data interval has ended by now are planned. */
  now: Date;
}

export interface PlannedDates {
  /** In processing order (oldest first, or newest first when backwards). */
  dates: DagRunInfo[];
  /** More than `limit` dates: `dates` then holds only some of the first ones. */
  truncated: boolean;
  /** The first date in [from, to] whose data interval has not ended by now (left out), if any. */
  firstOpen: DagRunInfo | null;
}

/** Later than any date: dagRunInfosBetween's `endedBy` when open intervals count too. */
const END_OF_TIME = new Date(8.64e15);

/**
 * The logical dates of a backfill, at most `limit + 1` of them (so the caller can tell "over
 * the limit" without enumerating a million dates). Empty for a manual schedule.
 */
/** Past this many runs even `force` is refused: listing the dates alone would stall the API. */
export const BACKFILL_HARD_LIMIT = 1_000_000;
const SAMPLE_DATES = 64;

export function planBackfillDates(tt: Timetable, range: BackfillRange, options: { limit: number; backwards: boolean }): PlannedDates {
  // An ended interval starts before now: past now the range holds no date to plan (and must not
  // inflate the estimate below: "to 9999-12-31" asks for the dates up to today).
  const to = new Date(Math.min(range.to.getTime(), range.now.getTime()));
  // Walking a schedule costs tens of microseconds a date: a range of millennia must be refused
  // from a sample, not enumerated. Twice the largest sampled gap keeps the estimate a lower bound
  // for any schedule whose gaps vary by less than 2× (daily, weekday, monthly, …).
  const sample = dagRunInfosBetween(tt, range.from, to, range.dagStartDate, SAMPLE_DATES + 1, range.now);
  if (sample.length > SAMPLE_DATES) {
    let maxGap = 1;
    for (let i = 1; i < sample.length; i++) maxGap = Math.max(maxGap, sample[i]!.logicalDate.getTime() - sample[i - 1]!.logicalDate.getTime());
    const last = sample[sample.length - 1]!.logicalDate.getTime();
    const atLeast = sample.length + Math.floor((to.getTime() - last) / (2 * maxGap));
    if (atLeast > options.limit) return { dates: options.backwards ? sample.reverse() : sample, truncated: true, firstOpen: null };
  }
  const limit = Math.min(options.limit, Number.MAX_SAFE_INTEGER - 1) + 1;
  const dates = dagRunInfosBetween(tt, range.from, to, range.dagStartDate, limit, range.now);
  const truncated = dates.length > options.limit;
  const after = dates.length > 0 ? new Date(dates[dates.length - 1]!.logicalDate.getTime() + 1) : range.from;
  const firstOpen = truncated ? null : (dagRunInfosBetween(tt, after, range.to, range.dagStartDate, 1, END_OF_TIME)[0] ?? null);
  if (options.backwards) dates.reverse();
  return { dates, truncated, firstOpen };
}

/** A run that exists for a date, as the decision needs it. */
export interface ExistingRun {
  id: number;
  state: string;
  /** Already replaced by an earlier backfill's run (out of the automated-date key). */
  replaced: boolean;
}

export type SkipReason = "exists" | "succeeded" | "in_flight" | "cancelled";

export type DateDecision =
  | { action: "create" }
  | { action: "reprocess"; replace: number[] }
  | { action: "skip"; reason: SkipReason };

const ACTIVE_RUN_STATES = new Set(["queued", "running"]);

export function decideBackfillDate(reprocess: ReprocessBehavior, runs: readonly ExistingRun[]): DateDecision {
  if (runs.some((r) => ACTIVE_RUN_STATES.has(r.state))) return { action: "skip", reason: "in_flight" };
  const current = runs.filter((r) => !r.replaced);
  if (current.length === 0) return { action: "create" };
  const replace = current.map((r) => r.id).sort((a, b) => a - b);
  if (reprocess === "none") return { action: "skip", reason: "exists" };
  if (reprocess === "failed") {
    const latest = current.reduce((a, b) => (b.id > a.id ? b : a));
    return latest.state === "failed" ? { action: "reprocess", replace } : { action: "skip", reason: "succeeded" };
  }
  return { action: "reprocess", replace };
}

/** How many runs a backfill may create now: never more than maxActiveRuns queued + running. */
export function backfillRoom(maxActiveRuns: number, activeRuns: number, maxPerCall: number): number {
  return Math.max(0, Math.min(maxActiveRuns - activeRuns, maxPerCall));
}

/** The backfill's run id for a date: unique per backfill, so a date can be backfilled again later. */
export function backfillRunId(backfillId: number, logicalDate: Date): string {
  return `backfill__${logicalDate.toISOString()}__${backfillId}`;
}
