// createDagRun — records a run request; the scheduler starts it (creates its task
// instances) once its DAG is unpaused and under maxActiveRuns.
// locks: the new dag_run row, and the pinned dag_version row in share mode (ux_dag_version) for
//   the INSERT: deleteDag locks a DAG's versions before its last look for runs, so a run either
//   commits first and is deleted with the DAG or finds its version gone. Not the dag row: the
//   scheduler (startRuns, for maxActiveRuns) and every claim (maxActiveTasks) hold that one
//   exclusively, and a trigger queued behind a startRuns of many runs waited ≈ 40 ms.
//   Relies on ux_dag_run (dag_id, run_id) to refuse duplicates, and on ux_dag_run_idempotency
//   (dag_id, idempotency_key) for a repeated Idempotency-Key: after either, the run holding the
//   key, if any, answers.
// outcomes: the run's row id (existing: the run an Idempotency-Key was first used for),
//   BATON_DAG_NOT_FOUND, BATON_DAG_INACTIVE, BATON_DAG_RUN_EXISTS, BATON_IDEMPOTENCY_CONFLICT,
//   BATON_VALIDATION_FAILED (a run id another run type's ids start with).
import { BatonError } from "../../core/errors.ts";
import { RunState, RunType } from "../../core/states.ts";
import { manualDataInterval, parseTimetable, type DataInterval, type Timetable } from "../../scheduler/timetable.ts";
import type { Db, ResultSetHeader, RowDataPacket } from "../db.ts";
import { isDuplicateKey } from "../rows.ts";

export interface NewDagRun {
  dagId: string;
  runId?: string;
  runType: RunType;
  logicalDate: Date;
  dataIntervalStart?: Date | null;
  dataIntervalEnd?: Date | null;
  conf: Record<string, unknown>;
  note?: string | null;
  /**
   * Idempotency-Key: a repeat with the same requestHash (stored with the run) returns the first
   * run, as does one whose stored hash is among alsoMatches (the same request as an earlier
   * version hashed it); another hash is a 409.
   */
  idempotency?: { key: string; requestHash: string; alsoMatches?: string[] };
}

export async function createDagRun(db: Db, now: Date, run: NewDagRun): Promise<{ id: number; runId: string; existing?: boolean }> {
  // The scheduler and backfills name their runs `<type>__<date>…` and take a clash on that id
  // for "created already": a manual run under such an id would silently cancel that interval.
  const reserved = [RunType.Scheduled, RunType.Backfill].find((type) => type !== run.runType && run.runId?.startsWith(`${type}__`));
  if (reserved) {
    throw new BatonError("BATON_VALIDATION_FAILED", `body.dag_run_id "${run.runId}" starts with "${reserved}__", which names ${reserved} runs: choose another run id`);
  }
  const [dags] = await db.pool.query<RowDataPacket[]>("SELECT latest_version_hash, is_active, schedule, timezone FROM dag WHERE dag_id = ?", [run.dagId]);
  const dag = dags[0];
  if (!dag || !dag.latest_version_hash) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${run.dagId}" not found`);
  if (!dag.is_active) throw new BatonError("BATON_DAG_INACTIVE", `DAG "${run.dagId}" is not active: its file was removed or no longer defines it`);
  const interval = run.dataIntervalStart && run.dataIntervalEnd ? { start: run.dataIntervalStart, end: run.dataIntervalEnd } : dataIntervalOf(run, dag);

  const defaultRunId = `${run.runType}__${run.logicalDate.toISOString()}`;
  for (let attempt = 0; ; attempt++) {
    const runId = run.runId ?? (attempt === 0 ? defaultRunId : `${defaultRunId}_${Math.random().toString(36).slice(2, 8)}`);
    try {
      // The pinned version's row is read under a shared lock by the INSERT itself: a DELETE of
      // the DAG (which locks its versions) either waits for this run and deletes it too, or has
      // committed and this inserts nothing — never a run left behind without its DAG.
      const [result] = await db.pool.query<ResultSetHeader>(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end,
                              conf, note, external_trigger, queued_at, idempotency_key, request_hash)
         SELECT v.dag_id, ?, v.version_hash, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
           FROM dag_version v WHERE v.dag_id = ? AND v.version_hash = ?
            AND EXISTS (SELECT 1 FROM dag d WHERE d.dag_id = v.dag_id AND d.is_active = 1) LOCK IN SHARE MODE`,
        [
          runId,
          run.runType,
          RunState.Queued,
          run.logicalDate,
          interval.start,
          interval.end,
          JSON.stringify(run.conf),
          run.note ?? null,
          run.runType === "scheduled" ? 0 : 1,
          now,
          run.idempotency?.key ?? null,
          run.idempotency?.requestHash ?? null,
          run.dagId,
          dag.latest_version_hash,
        ],
      );
      if (result.affectedRows === 0) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${run.dagId}" not found (deleted or deactivated just now)`);
      return { id: result.insertId, runId };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      // Whichever unique key the server names: a retry with a dag_run_id clashes on both
      // ux_dag_run and ux_dag_run_idempotency, and MariaDB reports ux_dag_run.
      if (run.idempotency) {
        const [prior] = await db.pool.query<RowDataPacket[]>(
          "SELECT id, run_id, request_hash FROM dag_run WHERE dag_id = ? AND idempotency_key = ?",
          [run.dagId, run.idempotency.key],
        );
        if (prior[0]) {
          const same = [run.idempotency.requestHash, ...(run.idempotency.alsoMatches ?? [])];
          if (same.includes(prior[0].request_hash)) return { id: Number(prior[0].id), runId: prior[0].run_id, existing: true };
          throw new BatonError(
            "BATON_IDEMPOTENCY_CONFLICT",
            `Idempotency-Key "${run.idempotency.key}" was already used for DAG "${run.dagId}" with a different request (run "${prior[0].run_id}")`,
          );
        }
      }
      if (run.runId !== undefined || attempt >= 3) {
        throw new BatonError("BATON_DAG_RUN_EXISTS", `DAG run "${runId}" already exists for DAG "${run.dagId}"`);
      }
    }
  }
}

/** A manual run of a scheduled DAG covers its schedule's latest complete interval, as in Airflow. */
function dataIntervalOf(run: NewDagRun, dag: RowDataPacket): DataInterval {
  if (run.runType !== "manual") return { start: run.logicalDate, end: run.logicalDate };
  let timetable: Timetable;
  try {
    timetable = parseTimetable(dag.schedule, dag.timezone);
  } catch {
    return { start: run.logicalDate, end: run.logicalDate }; // stored by the parser, so valid; a zero-width interval if not
  }
  return manualDataInterval(timetable, run.logicalDate);
}
