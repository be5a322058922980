// createScheduledRuns — creates the scheduled runs that are due (queued; startRuns starts
// them), oldest interval first, and moves each DAG's next_dagrun* on.
// locks: due dag rows via ix_dag_due (is_active, is_paused, next_dagrun_create_after):
//   equality on the first two columns, a range on the third, ORDER BY matching the index,
//   LIMIT a batch, FOR UPDATE SKIP LOCKED — two schedulers split the due DAGs instead of
//   waiting on each other (EXPLAIN, MariaDB 10.11: range on ix_dag_due, no filesort). Then
//   the new dag_run rows. Active runs are counted without locks on a (dag_id, …) index.
// decides: planDueRuns (scheduler/dueRuns.ts) — catchup, endDate, and maxActiveRuns for
//   creation (no scheduled run while queued + running runs, backfills aside, reach it).
// guards: ux_dag_run_scheduled (dag_id, scheduled_logical_date) and ux_dag_run (dag_id,
//   run_id): a run that exists already is skipped and counted as a duplicate, never created
//   twice, whatever the dag row said.
// outcomes: the runs created, duplicates skipped, and DAGs whose schedule could not be read
//   (their next_dagrun* cleared so they stop being due; the parser rejects such schedules).
import { RunState, RunType } from "../../core/states.ts";
import { planDueRuns, type DueRunsPlan } from "../../scheduler/dueRuns.ts";
import { nextDagRunInfo, parseTimetable, type DagRunInfo } from "../../scheduler/timetable.ts";
import { inList, type Db, type ResultSetHeader, type RowDataPacket, type Tx } from "../db.ts";
import { isDuplicateKey } from "../rows.ts";
import { latestScheduledInterval, setNextDagRun } from "../dagSchedule.ts";

export interface CreateScheduledRunsOptions {
  /** Due DAGs locked per transaction. */
  limit?: number;
  /** Runs created per DAG per transaction (a DAG catching up on a year of intervals). */
  maxPerDag?: number;
  /** How long a DAG held back by maxActiveRuns waits before it is looked at again. */
  recheckMs?: number;
}

export interface CreatedScheduledRuns {
  /** Due DAGs this call locked and handled. */
  dags: number;
  /**
   * Whether another call may find due DAGs: this one locked as many as its limit, or left a DAG
   * still due (catching up by maxPerDag runs at a time). DAGs another scheduler held are its own.
   */
  mayHaveMore: boolean;
  created: { id: number; dagId: string; runId: string; logicalDate: Date }[];
  duplicates: { dagId: string; runId: string }[];
  unschedulable: { dagId: string; reason: string }[];
}

export function scheduledRunId(logicalDate: Date): string {
  return `${RunType.Scheduled}__${logicalDate.toISOString()}`;
}

export async function createScheduledRuns(db: Db, now: Date, options: CreateScheduledRunsOptions = {}): Promise<CreatedScheduledRuns> {
  const limit = Math.max(1, Math.floor(options.limit ?? 50));
  const planOptions = { maxPerDag: options.maxPerDag ?? 16, recheckMs: options.recheckMs ?? 5000 };
  return db.tx(async (tx) => {
    const result: CreatedScheduledRuns = { dags: 0, mayHaveMore: false, created: [], duplicates: [], unschedulable: [] };
    const [dags] = await tx.query<RowDataPacket[]>(
      `SELECT dag_id, latest_version_hash, schedule, timezone, start_date, end_date, catchup, max_active_runs,
              next_dagrun_data_interval_start, next_dagrun_data_interval_end
         FROM dag
        WHERE is_active = 1 AND is_paused = 0 AND next_dagrun_create_after <= ? AND latest_version_hash IS NOT NULL
        ORDER BY next_dagrun_create_after
        LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
      [now],
    );
    result.dags = dags.length;
    result.mayHaveMore = dags.length >= limit;
    if (dags.length === 0) return result;
    const ids = dags.map((d) => d.dag_id as string);
    const [active] = await tx.query<RowDataPacket[]>(
      `SELECT dag_id, COUNT(*) AS n FROM dag_run
        WHERE dag_id IN (${inList(ids)}) AND state IN ('queued', 'running') AND run_type <> 'backfill'
        GROUP BY dag_id`,
      ids,
    );
    const activeOf = new Map(active.map((a) => [a.dag_id as string, Number(a.n)]));

    for (const dag of dags) {
      const dagId = dag.dag_id as string;
      const bounds = { startDate: dag.start_date as Date | null, endDate: dag.end_date as Date | null, catchup: !!dag.catchup };
      let plan: DueRunsPlan;
      try {
        const timetable = parseTimetable(dag.schedule, dag.timezone);
        let stored = dag.next_dagrun_data_interval_start
          ? { start: dag.next_dagrun_data_interval_start as Date, end: dag.next_dagrun_data_interval_end as Date }
          : null;
        if (!stored) {
          // create_after without an interval (set by hand?): derive the interval from the runs.
          const last = await latestScheduledInterval(tx, dagId);
          const next = nextDagRunInfo(timetable, { ...bounds, lastDataInterval: last, now });
          stored = next ? { start: next.dataIntervalStart, end: next.dataIntervalEnd } : null;
        }
        plan = stored
          ? planDueRuns({ ...bounds, timetable, stored, maxActiveRuns: Number(dag.max_active_runs), activeRuns: activeOf.get(dagId) ?? 0 }, now, planOptions)
          : { create: [], next: null, createAfter: null };
      } catch (err) {
        if ((err as Error).name !== "TimetableError") throw err;
        result.unschedulable.push({ dagId, reason: (err as Error).message });
        await setNextDagRun(tx, dagId, null, null);
        continue;
      }
      for (const info of plan.create) {
        const created = await insertScheduledRun(tx, now, dagId, dag.latest_version_hash as string, info);
        if (created) result.created.push({ id: created, dagId, runId: scheduledRunId(info.logicalDate), logicalDate: info.logicalDate });
        else result.duplicates.push({ dagId, runId: scheduledRunId(info.logicalDate) });
      }
      await setNextDagRun(tx, dagId, plan.next, plan.createAfter);
      if (plan.createAfter && plan.createAfter.getTime() <= now.getTime()) result.mayHaveMore = true;
    }
    return result;
  });
}

/** Inserts one queued scheduled run; returns its id, or 0 when it exists already. */
async function insertScheduledRun(tx: Tx, now: Date, dagId: string, versionHash: string, info: DagRunInfo): Promise<number> {
  try {
    const [res] = await tx.query<ResultSetHeader>(
      `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end,
                            conf, external_trigger, queued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 0, ?)`,
      [dagId, scheduledRunId(info.logicalDate), versionHash, RunType.Scheduled, RunState.Queued, info.logicalDate, info.dataIntervalStart, info.dataIntervalEnd, now],
    );
    return res.insertId;
  } catch (err) {
    // InnoDB undoes only the failed statement; the transaction carries on.
    if (isDuplicateKey(err)) return 0;
    throw err;
  }
}
