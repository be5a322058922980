// createDagRun — records a run request; the scheduler starts it (creates its task
// instances) once its DAG is unpaused and under maxActiveRuns.
// locks: the new dag_run row; relies on ux_dag_run (dag_id, run_id) to refuse duplicates.
// outcomes: the run's row id, BATON_DAG_NOT_FOUND, BATON_DAG_INACTIVE, BATON_DAG_RUN_EXISTS.
import { BatonError } from "../../core/errors.ts";
import { RunState, type RunType } from "../../core/states.ts";
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
}

export async function createDagRun(db: Db, now: Date, run: NewDagRun): Promise<{ id: number; runId: string }> {
  const [dags] = await db.pool.query<RowDataPacket[]>("SELECT latest_version_hash, is_active FROM dag WHERE dag_id = ?", [run.dagId]);
  const dag = dags[0];
  if (!dag || !dag.latest_version_hash) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${run.dagId}" not found`);
  if (!dag.is_active) throw new BatonError("BATON_DAG_INACTIVE", `DAG "${run.dagId}" is not active: its file was removed or no longer defines it`);

  const defaultRunId = `${run.runType}__${run.logicalDate.toISOString()}`;
  for (let attempt = 0; ; attempt++) {
    const runId = run.runId ?? (attempt === 0 ? defaultRunId : `${defaultRunId}_${Math.random().toString(36).slice(2, 8)}`);
    try {
      const [result] = await db.pool.query<ResultSetHeader>(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end,
                              conf, note, external_trigger, queued_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          run.dagId,
          runId,
          dag.latest_version_hash,
          run.runType,
          RunState.Queued,
          run.logicalDate,
          run.dataIntervalStart ?? run.logicalDate,
          run.dataIntervalEnd ?? run.logicalDate,
          JSON.stringify(run.conf),
          run.note ?? null,
          run.runType === "scheduled" ? 0 : 1,
          now,
        ],
      );
      return { id: result.insertId, runId };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      if (run.runId !== undefined || attempt >= 3) {
        throw new BatonError("BATON_DAG_RUN_EXISTS", `DAG run "${runId}" already exists for DAG "${run.dagId}"`);
      }
    }
  }
}
