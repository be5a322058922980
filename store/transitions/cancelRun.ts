// cancelRun — a user ends a queued or running run as failed (PATCH …/dagRuns/{id} state=failed).
// Uses endRuns: running task instances fail with BATON_DAG_RUN_CANCELLED (their workers abort
// ctx.signal at the next heartbeat and kill the process after the grace), the rest are skipped.
// locks: as endRuns (task rows, the run row, pool rows); the run is re-checked under its lock.
// saga: a run cancelled while compensating ends compensation_failed (endRuns): what was cut off is
//   resumed by clearing it. With compensate, a run whose saga already started (compensating, or
//   compensated before an operator reopened it) is refused with BATON_DAG_RUN_COMPENSATING and
//   nothing changes: its compensation task instances exist already, and undoing twice is never right.
// replaced: a run a backfill replaced is finished (only a finished run is replaced, and nothing
//   reopens it: clear, re-queue and marks are refused), so its cancel is BATON_DAG_RUN_FINISHED.
// outcomes: the run's state before (read under its lock) and its row as the transaction left it (not
//   read again after the commit, by when workers and the scheduler may have moved it on); BATON_DAG_RUN_NOT_FOUND (BATON_DAG_NOT_FOUND without the DAG);
//   BATON_DAG_RUN_FINISHED; BATON_DAG_RUN_COMPENSATING.
import { BatonError } from "../../core/errors.ts";
import type { Db, RowDataPacket } from "../db.ts";
import { endAt } from "../endDate.ts";
import { getDagRunById, runNotFoundError } from "../queries/read.ts";
import type { DagShape } from "../../core/dagStructure.ts";
import { startCompensation } from "./settle.ts";
import { endRuns } from "./timeoutRuns.ts";

export async function cancelRun(
  db: Db,
  now: Date,
  dagId: string,
  runId: string,
  options: { compensate?: boolean; shapeOf?: (versionHash: string) => Promise<DagShape> } = {},
  attempt = 1,
): Promise<{ tasksFailed: number; tasksSkipped: number; compensating: boolean; previousState: string; run: RowDataPacket }> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT id, state, version_hash, compensation FROM dag_run WHERE dag_id = ? AND run_id = ?", [
    dagId,
    runId,
  ]);
  const run = rows[0];
  if (!run) throw await runNotFoundError(db.pool, dagId, runId);
  if (run.state !== "queued" && run.state !== "running") {
    throw new BatonError("BATON_DAG_RUN_FINISHED", `DAG run "${runId}" has already finished (state ${run.state})`, { state: run.state });
  }
  if (options.compensate && run.compensation != null) throw compensatingError(runId, run.compensation);
  const shape = options.compensate && options.shapeOf ? await options.shapeOf(run.version_hash) : undefined;
  let compensating = false;
  let left: RowDataPacket | undefined;
  // Every event it causes says who cancelled the run.
  const ended = await db.withEventDetail(`run cancelled (marked failed) by ${db.actor}`).tx(async (tx) => {
    const result = await endRuns(tx, now, [Number(run.id)], {
      recheck: { sql: "state IN ('queued', 'running')", params: [] },
      // The shape was read for this version: a run switched to another meanwhile (a clear with
      // use_latest_version) is looked up again, so its compensations are its version's.
      versions: shape ? new Map([[Number(run.id), run.version_hash as string]]) : undefined,
      errorFor: (r) => ({
        name: "DagRunCancelledError",
        code: "BATON_DAG_RUN_CANCELLED",
        message: `dag run "${r.run_id}" of "${r.dag_id}" was cancelled`,
        nonRetryable: true,
      }),
    });
    // With compensate: the run stays running while the succeeded tasks are undone (saga). Re-checked
    // under the lock: its compensation may have started meanwhile (the rollback undoes the cancel).
    const locked = result.runs[0];
    if (options.compensate && locked && locked.compensation != null) throw compensatingError(runId, locked.compensation);
    if (shape && result.runs.length > 0) {
      await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL WHERE id = ?", [run.id]);
      compensating = await startCompensation(tx, now, Number(run.id), shape);
      const end = endAt(now);
      if (!compensating) await tx.query(`UPDATE dag_run SET state = 'failed', end_date = ${end.sql} WHERE id = ?`, [...end.params, run.id]);
    }
    if (result.runs.length > 0) left = await getDagRunById(tx, Number(run.id));
    return result;
  });
  if (ended.runs.length === 0 && shape && attempt < 3) return cancelRun(db, now, dagId, runId, options, attempt + 1);
  if (ended.runs.length === 0) throw new BatonError("BATON_DAG_RUN_FINISHED", `DAG run "${runId}" finished meanwhile`);
  return { tasksFailed: ended.tasksFailed, tasksSkipped: ended.tasksSkipped, compensating, previousState: ended.runs[0]!.previousState, run: left! };
}

function compensatingError(runId: string, compensation: string): BatonError {
  const now = compensation === "running" ? "is already compensating (undoing its succeeded tasks)" : `has compensated already (compensation ${compensation})`;
  return new BatonError(
    "BATON_DAG_RUN_COMPENSATING",
    `DAG run "${runId}" ${now}: cancel it without compensate to stop its compensation, or wait for it to end`,
  );
}
