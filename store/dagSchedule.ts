// The dag row's next_dagrun* columns: where the scheduler finds due DAGs (ix_dag_due on
// next_dagrun_create_after). Written when the parser records a DAG whose timetable changed
// (recomputeNextDagRun) and when the scheduler creates runs (createScheduledRuns).
import { nextDagRunInfo, parseTimetable, type DagRunInfo, type DataInterval } from "../scheduler/timetable.ts";
import type { Queryable, RowDataPacket, Tx } from "./db.ts";

/** What a DAG's schedule is computed from: the dag row's timetable columns. */
export interface DagTimetableInputs {
  dagId: string;
  schedule: string | null;
  timezone: string;
  startDate: Date | null;
  endDate: Date | null;
  catchup: boolean;
}

/**
 * The data interval of the DAG's latest scheduled run (by logical date), or null.
 * index: ux_dag_run_scheduled (dag_id, scheduled_logical_date), read backwards, one row.
 */
export async function latestScheduledInterval(db: Queryable, dagId: string): Promise<DataInterval | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT data_interval_start, data_interval_end FROM dag_run
      WHERE dag_id = ? AND scheduled_logical_date IS NOT NULL ORDER BY scheduled_logical_date DESC LIMIT 1`,
    [dagId],
  );
  const row = rows[0];
  if (!row || !row.data_interval_start || !row.data_interval_end) return null;
  return { start: row.data_interval_start as Date, end: row.data_interval_end as Date };
}

/** Sets next_dagrun* to `next` (all NULL when null: nothing more to schedule). */
export async function setNextDagRun(tx: Tx, dagId: string, next: DagRunInfo | null, createAfter: Date | null): Promise<void> {
  await tx.query(
    `UPDATE dag SET next_dagrun = ?, next_dagrun_data_interval_start = ?, next_dagrun_data_interval_end = ?, next_dagrun_create_after = ?
      WHERE dag_id = ?`,
    [next?.logicalDate ?? null, next?.dataIntervalStart ?? null, next?.dataIntervalEnd ?? null, next ? createAfter : null, dagId],
  );
}

/**
 * Recomputes a DAG's next run from its timetable and its latest scheduled run, so a new or
 * rescheduled DAG starts where it should and a restart never re-creates runs. A schedule that
 * cannot be read (the parser rejects those, so only an old row) schedules nothing.
 * locks: the dag row (PK), which the caller already holds.
 */
export async function recomputeNextDagRun(tx: Tx, now: Date, dag: DagTimetableInputs): Promise<DagRunInfo | null> {
  let next: DagRunInfo | null = null;
  if (dag.schedule !== null) {
    try {
      const timetable = parseTimetable(dag.schedule, dag.timezone);
      const last = await latestScheduledInterval(tx, dag.dagId);
      next = nextDagRunInfo(timetable, { ...dag, lastDataInterval: last, now });
    } catch (err) {
      if ((err as Error).name !== "TimetableError") throw err;
      next = null;
    }
  }
  await setNextDagRun(tx, dag.dagId, next, next?.runAfter ?? null);
  return next;
}
