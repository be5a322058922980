// finishTries — records the outcome of tries a worker ran, batch-first: one transaction for
// everything that finished since the last flush, so results group-commit.
// locks: the finished task_instance rows (PK), then what settle() locks per run.
// fence: a result only counts if its row is still `running` with the same try_number and
//   claim token; anything else (a zombie waking late, a try handed back) is `fenced`.
// outcomes: success / skipped / failed settle downstream tasks in this same transaction
//   (the fast path: no scheduler tick between tasks); failures with tries left go
//   up_for_retry with next_retry_at from the retry policy.
import type { DagShape } from "../../core/dagStructure.ts";
import { TaskState } from "../../core/states.ts";
import { retryDelayMs, shouldRetry } from "../../scheduler/retryPolicy.ts";
import { inList, type RowDataPacket, type Tx } from "../db.ts";
import { settle, type SettledTask } from "./settle.ts";

export interface TryError {
  name: string;
  code?: string;
  message: string;
  stack?: string;
  nonRetryable?: boolean;
}

export interface FinishedTry {
  id: number;
  tryNumber: number;
  token: string;
  outcome: "success" | "failed" | "skipped";
  /** JSON-serializable return value; undefined stores no XCom. */
  output?: unknown;
  error?: TryError;
  endedAt: Date;
}

export interface FinishResult {
  finished: number[];
  fenced: number[];
  retrying: number[];
  queued: number[];
  runsFinished: { dagRunId: number; state: "success" | "failed" }[];
}

export async function finishTries(
  tx: Tx,
  now: Date,
  tries: FinishedTry[],
  shapeOf: (versionHash: string) => Promise<DagShape>,
): Promise<FinishResult> {
  const result: FinishResult = { finished: [], fenced: [], retrying: [], queued: [], runsFinished: [] };
  if (tries.length === 0) return result;
  const ids = tries.map((t) => t.id).sort((a, b) => a - b);
  const [rows] = await tx.query<RowDataPacket[]>(
    `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.max_tries, ti.claim_token,
            ti.start_date, r.version_hash, r.logical_date
       FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
      WHERE ti.id IN (${inList(ids)}) FOR UPDATE`,
    ids,
  );
  const current = new Map(rows.map((r) => [Number(r.id), r]));
  const settledByRun = new Map<number, { versionHash: string; tasks: SettledTask[] }>();
  type Entry = { versionHash: string; tasks: SettledTask[] };
  const xcomRows: unknown[][] = [];

  for (const t of tries) {
    const row = current.get(t.id);
    if (!row || row.state !== TaskState.Running || row.try_number !== t.tryNumber || row.claim_token !== t.token) {
      result.fenced.push(t.id);
      continue;
    }
    const shape = await shapeOf(row.version_hash);
    const task = shape.byId.get(row.task_id);
    let state: string = t.outcome;
    let nextRetryAt: Date | null = null;
    if (t.outcome === "failed" && task && shouldRetry(t.tryNumber, row.max_tries, !!t.error?.nonRetryable)) {
      state = TaskState.UpForRetry;
      const key = `${row.dag_id}#${row.task_id}#${row.logical_date?.toISOString?.() ?? ""}`;
      nextRetryAt = new Date(now.getTime() + retryDelayMs(task, t.tryNumber, key));
      result.retrying.push(t.id);
    }
    const duration = row.start_date ? (t.endedAt.getTime() - new Date(row.start_date).getTime()) / 1000 : null;
    await tx.query(
      `UPDATE task_instance SET state = ?, end_date = ?, duration = ?, next_retry_at = ?, error = ?, heartbeat_at = NULL
        WHERE id = ?`,
      [state, t.endedAt, duration, nextRetryAt, t.error ? JSON.stringify(t.error).slice(0, 60_000) : null, t.id],
    );
    result.finished.push(t.id);
    if (t.outcome === "success" && t.output !== undefined) {
      xcomRows.push([row.dag_run_id, row.task_id, row.map_index, "return_value", JSON.stringify(t.output), now]);
    }
    if (state !== TaskState.UpForRetry) {
      const entry: Entry = settledByRun.get(Number(row.dag_run_id)) ?? { versionHash: row.version_hash, tasks: [] };
      entry.tasks.push({ taskId: row.task_id, state });
      settledByRun.set(Number(row.dag_run_id), entry);
    }
  }

  if (xcomRows.length > 0) {
    await tx.query(
      `INSERT INTO xcom (dag_run_id, task_id, map_index, xcom_key, value, created_at) VALUES ${xcomRows.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}
       ON DUPLICATE KEY UPDATE value = VALUES(value), created_at = VALUES(created_at)`,
      xcomRows.flat(),
    );
  }
  for (const dagRunId of [...settledByRun.keys()].sort((a, b) => a - b)) {
    const { versionHash, tasks } = settledByRun.get(dagRunId)!;
    const outcome = await settle(tx, now, dagRunId, await shapeOf(versionHash), tasks);
    result.queued.push(...outcome.queued);
    if (outcome.runState) result.runsFinished.push({ dagRunId, state: outcome.runState });
  }
  return result;
}
