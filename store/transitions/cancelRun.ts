// cancelRun — a user ends a queued or running run as failed (PATCH …/dagRuns/{id} state=failed).
// Uses endRuns: running task instances fail with BATON_DAG_RUN_CANCELLED (their workers abort
// ctx.signal at the next heartbeat and kill the process after the grace), the rest are skipped.
// locks: as endRuns (task rows, the run row, pool rows); the run is re-checked under its lock.
// saga: a run cancelled while compensating ends compensation_failed (endRuns): what was cut off is
//   resumed by clearing it.
// outcomes: the run's state before; BATON_DAG_RUN_NOT_FOUND (BATON_DAG_NOT_FOUND without the DAG); BATON_DAG_RUN_FINISHED.
import { BatonError } from "../../core/errors.ts";
import type { Db, RowDataPacket } from "../db.ts";
import { runNotFoundError } from "../queries/read.ts";
import type { DagShape } from "../../core/dagStructure.ts";
import { startCompensation } from "./settle.ts";
import { endRuns } from "./timeoutRuns.ts";

export async function cancelRun(
  db: Db,
  now: Date,
  dagId: string,
  runId: string,
  options: { compensate?: boolean; shapeOf?: (versionHash: string) => Promise<DagShape> } = {},
): Promise<{ tasksFailed: number; tasksSkipped: number; compensating: boolean }> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT id, state, version_hash FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  const run = rows[0];
  if (!run) throw await runNotFoundError(db.pool, dagId, runId);
  if (run.state !== "queued" && run.state !== "running") {
    throw new BatonError("BATON_DAG_RUN_FINISHED", `DAG run "${runId}" has already finished (state ${run.state})`);
  }
  const shape = options.compensate && options.shapeOf ? await options.shapeOf(run.version_hash) : undefined;
  let compensating = false;
  const ended = await db.tx(async (tx) => {
    const result = await endRuns(tx, now, [Number(run.id)], {
      recheck: { sql: "state IN ('queued', 'running')", params: [] },
      errorFor: (r) => ({
        name: "DagRunCancelledError",
        code: "BATON_DAG_RUN_CANCELLED",
        message: `dag run "${r.run_id}" of "${r.dag_id}" was cancelled`,
        nonRetryable: true,
      }),
    });
    // With compensate: the run stays running while the succeeded tasks are undone (saga).
    if (shape && result.runs.length > 0) {
      await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL WHERE id = ?", [run.id]);
      compensating = await startCompensation(tx, now, Number(run.id), shape);
      if (!compensating) await tx.query("UPDATE dag_run SET state = 'failed', end_date = ? WHERE id = ?", [now, run.id]);
    }
    return result;
  });
  if (ended.runs.length === 0) throw new BatonError("BATON_DAG_RUN_FINISHED", `DAG run "${runId}" finished meanwhile`);
  return { tasksFailed: ended.tasksFailed, tasksSkipped: ended.tasksSkipped, compensating };
}
