// settle — applies the consequences of task instances reaching terminal states in one run.
// locks: task_instance rows of the direct downstream tasks (ux_task_instance), then the
//   dag_run row (PK). Callers lock the settled rows themselves, before calling.
// decides: each downstream task's trigger rule over its up_* counters (pure function), so
//   readiness costs O(edges), never a rescan of the run.
// outcomes: downstream tasks queued, skipped or upstream_failed (which settle in turn);
//   the run finished when its last unfinished task settles.
import type { DagShape } from "../../core/dagStructure.ts";
import { TaskState } from "../../core/states.ts";
import { evaluateTriggerRule, type UpstreamCounts } from "../../scheduler/triggerRules.ts";
import { runOutcome } from "../../scheduler/runOutcome.ts";
import type { TriggerRule } from "../../sdk/types.ts";
import { inList, type RowDataPacket, type Tx } from "../db.ts";

export interface SettledTask {
  taskId: string;
  state: string;
}

export interface SettleResult {
  /** task_instance ids moved to queued. */
  queued: number[];
  /** Set when this settle finished the run. */
  runState?: "success" | "failed";
}

const COUNTER_OF: Record<string, keyof Omit<UpstreamCounts, "total">> = {
  [TaskState.Success]: "success",
  [TaskState.Skipped]: "skipped",
  [TaskState.Failed]: "failed",
  [TaskState.UpstreamFailed]: "upstreamFailed",
  [TaskState.Removed]: "removed",
};
const COLUMN_OF: Record<keyof Omit<UpstreamCounts, "total">, string> = {
  success: "up_success",
  skipped: "up_skipped",
  failed: "up_failed",
  upstreamFailed: "up_upstream_failed",
  removed: "up_removed",
};

export async function settle(tx: Tx, now: Date, dagRunId: number, shape: DagShape, settled: SettledTask[]): Promise<SettleResult> {
  const queued: number[] = [];
  let settledCount = settled.length;
  let frontier = settled;

  while (frontier.length > 0) {
    // Sum the increments each downstream task receives from this frontier.
    const increments = new Map<string, Record<string, number>>();
    for (const s of frontier) {
      const counter = COUNTER_OF[s.state];
      if (!counter) throw new Error(`settle: ${s.taskId} is not terminal (${s.state})`);
      for (const down of shape.byId.get(s.taskId)?.downstream ?? []) {
        const inc = increments.get(down) ?? {};
        inc[COLUMN_OF[counter]] = (inc[COLUMN_OF[counter]] ?? 0) + 1;
        increments.set(down, inc);
      }
    }
    if (increments.size === 0) break;

    // Tasks receiving the same increments share one UPDATE (a fan-in of 10,000 is one statement).
    const groups = new Map<string, string[]>();
    for (const [taskId, inc] of increments) {
      const key = JSON.stringify(Object.entries(inc).sort());
      groups.set(key, [...(groups.get(key) ?? []), taskId]);
    }
    for (const [key, taskIds] of groups) {
      const entries = JSON.parse(key) as [string, number][];
      const sets = entries.map(([col]) => `${col} = ${col} + ?`).join(", ");
      taskIds.sort();
      await tx.query(`UPDATE task_instance SET ${sets} WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)})`, [
        ...entries.map(([, n]) => n),
        dagRunId,
        ...taskIds,
      ]);
    }

    const downIds = [...increments.keys()];
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT id, task_id, state, trigger_rule, upstream_total, up_success, up_skipped, up_failed, up_upstream_failed, up_removed
         FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(downIds)})`,
      [dagRunId, ...downIds],
    );

    const toQueue: number[] = [];
    const toEnd: Record<string, number[]> = { [TaskState.Skipped]: [], [TaskState.UpstreamFailed]: [] };
    const next: SettledTask[] = [];
    for (const row of rows) {
      if (row.state !== TaskState.None && row.state !== TaskState.Scheduled) continue;
      const decision = evaluateTriggerRule(row.trigger_rule as TriggerRule, {
        total: row.upstream_total,
        success: row.up_success,
        skipped: row.up_skipped,
        failed: row.up_failed,
        upstreamFailed: row.up_upstream_failed,
        removed: row.up_removed,
      });
      if (decision === "ready") toQueue.push(Number(row.id));
      else if (decision === "skipped" || decision === "upstream_failed") {
        toEnd[decision]!.push(Number(row.id));
        next.push({ taskId: row.task_id, state: decision });
      }
    }
    if (toQueue.length > 0) {
      await tx.query(`UPDATE task_instance SET state = 'queued', queued_at = ? WHERE id IN (${inList(toQueue)})`, [now, ...toQueue]);
      queued.push(...toQueue);
    }
    for (const [state, ids] of Object.entries(toEnd)) {
      if (ids.length === 0) continue;
      await tx.query(`UPDATE task_instance SET state = ?, start_date = COALESCE(start_date, ?), end_date = ? WHERE id IN (${inList(ids)})`, [
        state,
        now,
        now,
        ...ids,
      ]);
    }
    settledCount += next.length;
    frontier = next;
  }

  const runState = await countDownRun(tx, now, dagRunId, shape, settledCount);
  return { queued, runState };
}

/** Decrements the run's unfinished counter; the transaction that reaches zero finishes the run. */
async function countDownRun(tx: Tx, now: Date, dagRunId: number, shape: DagShape, settledCount: number) {
  if (settledCount === 0) return undefined;
  await tx.query("UPDATE dag_run SET unfinished_tasks = unfinished_tasks - ? WHERE id = ?", [settledCount, dagRunId]);
  const [[run]] = await tx.query<RowDataPacket[]>("SELECT unfinished_tasks, state FROM dag_run WHERE id = ?", [dagRunId]);
  if (!run || run.unfinished_tasks > 0 || run.state !== "running") return undefined;
  const [leafRows] = await tx.query<RowDataPacket[]>(
    `SELECT state FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(shape.leaves)})`,
    [dagRunId, ...shape.leaves],
  );
  const state = runOutcome(leafRows.map((r) => r.state as string));
  await tx.query("UPDATE dag_run SET state = ?, end_date = ? WHERE id = ?", [state, now, dagRunId]);
  return state;
}
