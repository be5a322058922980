/**
 * What the scheduler does for one due DAG: which scheduled runs to create now and what its
 * next_dagrun* columns become. Pure: the store transition (createScheduledRuns) applies it.
 *
 * maxActiveRuns limits creation as in Airflow: no scheduled run is created while the DAG has
 * maxActiveRuns queued or running runs. A DAG blocked that way keeps its next interval and is
 * looked at again `recheckMs` later (Airflow parks it until a run finishes; rechecking keeps
 * the finishing transaction free of scheduling work), so it never crowds others out of a batch.
 */
import { dueDagRunInfo, nextDagRunInfo, type DagRunInfo, type DataInterval, type ScheduleBounds, type Timetable } from "./timetable.ts";

export interface DueDag extends ScheduleBounds {
  timetable: Timetable;
  /** The stored next interval (next_dagrun_data_interval_start/end). */
  stored: DataInterval;
  maxActiveRuns: number;
  /** Queued + running runs that count against maxActiveRuns (all but backfills). */
  activeRuns: number;
}

export interface DueRunsPlan {
  /** Runs to create, oldest first. */
  create: DagRunInfo[];
  /** The DAG's next run after those, or null when its schedule has no more. */
  next: DagRunInfo | null;
  /** next_dagrun_create_after: when to look at the DAG again (null with `next`). */
  createAfter: Date | null;
}

export interface PlanOptions {
  /** At most this many runs per DAG per call, so one catching-up DAG cannot hog a transaction. */
  maxPerDag: number;
  recheckMs: number;
}

export function planDueRuns(dag: DueDag, now: Date, options: PlanOptions): DueRunsPlan {
  const bounds = { startDate: dag.startDate, endDate: dag.endDate, catchup: dag.catchup };
  let room = Math.max(0, dag.maxActiveRuns - dag.activeRuns);
  const create: DagRunInfo[] = [];
  let next = dueDagRunInfo(dag.timetable, dag.stored, { ...bounds, now });
  while (next && next.runAfter.getTime() <= now.getTime() && room > 0 && create.length < options.maxPerDag) {
    create.push(next);
    room--;
    next = nextDagRunInfo(dag.timetable, {
      ...bounds,
      now,
      lastDataInterval: { start: next.dataIntervalStart, end: next.dataIntervalEnd },
    });
  }
  if (!next) return { create, next: null, createAfter: null };
  const due = next.runAfter.getTime() <= now.getTime();
  // Due but no room: look again later. Due with room (maxPerDag reached): at once.
  const createAfter = due && room === 0 ? new Date(now.getTime() + options.recheckMs) : next.runAfter;
  return { create, next, createAfter };
}
