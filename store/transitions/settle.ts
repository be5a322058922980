// settle — applies the consequences of task instances reaching terminal states in one run.
// locks: task_instance rows of the direct downstream tasks (ux_task_instance), then the
//   dag_run row (PK). Callers lock the settled rows themselves, before calling.
// decides: each downstream task's trigger rule over its up_* counters (pure function), so
//   readiness costs O(edges), never a rescan of the run.
// outcomes: downstream tasks queued, skipped or upstream_failed (which settle in turn);
//   the run finished when its last unfinished task settles.
// finishTries uses the same building blocks, batched into fewer round trips.
import type { DagShape } from "../../core/dagStructure.ts";
import { TaskState } from "../../core/states.ts";
import { evaluateTriggerRule, type UpstreamCounts } from "../../scheduler/triggerRules.ts";
import { compensationOutcome, runOutcome } from "../../scheduler/runOutcome.ts";
import type { TriggerRule } from "../../sdk/types.ts";
import { groupByValue, inList, type RowDataPacket, type Statement, type Tx } from "../db.ts";
import { endAt } from "../endDate.ts";
import { readyToQueue, runsWithAbandonedTries } from "./abandonedTries.ts";
import { specColumnNames, specPlaceholders, specValues } from "./startRuns.ts";

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

type Counter = keyof Omit<UpstreamCounts, "total">;

/** The counts a task with a single upstream sees once that upstream ended in `state`. */
export function countsOfSingleUpstream(state: string): UpstreamCounts {
  const counts: UpstreamCounts = { total: 1, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 };
  const counter = ({ success: "success", skipped: "skipped", failed: "failed", upstream_failed: "upstreamFailed", removed: "removed" } as const)[
    state as "success"
  ];
  if (!counter) throw new Error(`settle: state ${state} is not terminal`);
  counts[counter] = 1;
  return counts;
}
const COLUMN_OF_STATE: Record<string, string> = {
  [TaskState.Success]: "up_success",
  [TaskState.Skipped]: "up_skipped",
  [TaskState.Failed]: "up_failed",
  [TaskState.UpstreamFailed]: "up_upstream_failed",
  [TaskState.Removed]: "up_removed",
};

/** The up_* column counting upstream tasks that ended in `state`. */
export function counterColumn(state: string): string {
  const column = COLUMN_OF_STATE[state];
  if (!column) throw new Error(`settle: state ${state} is not terminal`);
  return column;
}

/**
 * Statements adding each settled task to its downstream tasks' counters. Tasks receiving
 * the same increments share one UPDATE, so a fan-in of 10,000 is one statement.
 */
export function upstreamIncrements(
  dagRunId: number,
  shape: DagShape,
  settled: SettledTask[],
  include: (downstreamTaskId: string) => boolean = () => true,
): { statements: Statement[]; downstream: string[] } {
  const increments = new Map<string, Record<string, number>>();
  for (const s of settled) {
    const column = counterColumn(s.state);
    for (const down of shape.byId.get(s.taskId)?.downstream ?? []) {
      if (!include(down)) continue;
      const inc = increments.get(down) ?? {};
      inc[column] = (inc[column] ?? 0) + 1;
      increments.set(down, inc);
    }
  }
  const statements = groupByValue(increments, ([, inc]) => Object.entries(inc).sort()).map(({ value: entries, items }): Statement => {
    const taskIds = items.map(([taskId]) => taskId).sort();
    return {
      sql: `UPDATE task_instance SET ${entries.map(([col]) => `${col} = ${col} + ?`).join(", ")}
             WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)})`,
      params: [...entries.map(([, n]) => n), dagRunId, ...taskIds],
      prepare: true,
    };
  });
  return { statements, downstream: [...increments.keys()] };
}

export function selectDownstream(dagRunId: number, taskIds: string[]): Statement {
  return {
    sql: `SELECT id, task_id, state, queue, pool, pool_slots, priority_weight, try_number, max_tries, key_epoch, first_poke_at, poke_count, trigger_rule, upstream_total,
                 max_active_tis_per_dag, up_success, up_skipped, up_failed, up_upstream_failed, up_removed
            FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)})`,
    params: [dagRunId, ...taskIds],
    prepare: true,
  };
}

export interface DownstreamDecisions {
  ready: RowDataPacket[];
  ended: { row: RowDataPacket; state: "skipped" | "upstream_failed" }[];
}

/** Applies each not-yet-scheduled downstream task's trigger rule to its counters. */
export function decideDownstream(rows: RowDataPacket[]): DownstreamDecisions {
  const decisions: DownstreamDecisions = { ready: [], ended: [] };
  for (const row of rows) {
    if (row.state !== TaskState.None && row.state !== TaskState.Scheduled) continue;
    const counts: UpstreamCounts = { total: row.upstream_total, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 };
    const columns: [Counter, string][] = [
      ["success", "up_success"],
      ["skipped", "up_skipped"],
      ["failed", "up_failed"],
      ["upstreamFailed", "up_upstream_failed"],
      ["removed", "up_removed"],
    ];
    for (const [counter, column] of columns) counts[counter] = Number(row[column]);
    const decision = evaluateTriggerRule(row.trigger_rule as TriggerRule, counts);
    if (decision === "ready") decisions.ready.push(row);
    else if (decision === "skipped" || decision === "upstream_failed") decisions.ended.push({ row, state: decision });
  }
  return decisions;
}

export function queueStatement(now: Date, ids: number[]): Statement {
  return { sql: `UPDATE task_instance SET state = 'queued', queued_at = ? WHERE id IN (${inList(ids)})`, params: [now, ...ids] };
}

/**
 * Ready tasks that also depend on the previous run, and compensations while a try of their run
 * winds down (abandonedTries.ts), wait in `scheduled` for the scheduler (releaseScheduled).
 */
export function holdStatement(ids: number[]): Statement {
  return { sql: `UPDATE task_instance SET state = 'scheduled' WHERE id IN (${inList(ids)})`, params: ids };
}

export function endStatements(now: Date, ended: DownstreamDecisions["ended"]): Statement[] {
  const end = endAt(now);
  return groupByValue(ended, ({ state }) => state).map(({ value: state, items }) => {
    const ids = items.map(({ row }) => Number(row.id));
    return {
      sql: `UPDATE task_instance SET state = ?, start_date = COALESCE(start_date, ?), end_date = ${end.sql} WHERE id IN (${inList(ids)})`,
      params: [state, now, ...end.params, ...ids],
    };
  });
}

async function exec(tx: Tx, statements: Statement[]): Promise<void> {
  for (const s of statements) await tx.query(s.sql, s.params);
}

/** The general (cascading) path: settles tasks, then whatever they end in turn. */
export async function settle(tx: Tx, now: Date, dagRunId: number, shape: DagShape, settled: SettledTask[]): Promise<SettleResult> {
  const queued: number[] = [];
  let settledCount = settled.length;
  let frontier = settled;
  while (frontier.length > 0) {
    const { statements, downstream } = upstreamIncrements(dagRunId, shape, frontier);
    if (downstream.length === 0) break;
    await exec(tx, statements);
    const decided = await applyDecisions(tx, now, dagRunId, shape, downstream);
    queued.push(...decided.queued);
    frontier = decided.ended;
    settledCount += frontier.length;
  }
  const runState = await countDownRun(tx, now, dagRunId, shape, settledCount);
  return { queued, runState };
}

/**
 * Decides the given tasks of the run from their up_* counters (decideDownstream) and applies it:
 * the ready ones queued (or held in `scheduled`: readyToQueue), those whose rule can no longer hold
 * skipped or upstream_failed. Returns the ids queued and the tasks it ended, for settle to settle.
 */
export async function applyDecisions(
  tx: Tx,
  now: Date,
  dagRunId: number,
  shape: DagShape,
  taskIds: string[],
): Promise<{ queued: number[]; ended: SettledTask[] }> {
  const select = selectDownstream(dagRunId, taskIds);
  const [rows] = await tx.query<RowDataPacket[]>(select.sql, select.params);
  const { ready, ended } = decideDownstream(rows);
  const { queue: ids, hold: held } = await readyToQueue(tx, dagRunId, shape, ready);
  if (held.length > 0) await exec(tx, [holdStatement(held)]);
  if (ids.length > 0) await exec(tx, [queueStatement(now, ids)]);
  await exec(tx, endStatements(now, ended));
  return { queued: ids, ended: ended.map(({ row, state }) => ({ taskId: row.task_id as string, state })) };
}

/**
 * Skips tasks a branch or short-circuit task chose not to follow (those not started yet),
 * then settles them like any other skip.
 */
export async function skipTasks(tx: Tx, now: Date, dagRunId: number, shape: DagShape, taskIds: string[]): Promise<SettleResult> {
  if (taskIds.length === 0) return { queued: [] };
  const [rows] = await tx.query<RowDataPacket[]>(
    `SELECT id, task_id FROM task_instance
      WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)}) AND state IN ('none', 'scheduled') FOR UPDATE`,
    [dagRunId, ...taskIds],
  );
  if (rows.length === 0) return { queued: [] };
  await exec(tx, endStatements(now, rows.map((row) => ({ row, state: "skipped" as const }))));
  return settle(tx, now, dagRunId, shape, rows.map((r) => ({ taskId: r.task_id as string, state: TaskState.Skipped })));
}

/** Decrements the run's unfinished counter; the transaction that reaches zero finishes the run. */
async function countDownRun(tx: Tx, now: Date, dagRunId: number, shape: DagShape, settledCount: number) {
  if (settledCount === 0) return undefined;
  await tx.query("UPDATE dag_run SET unfinished_tasks = unfinished_tasks - ? WHERE id = ?", [settledCount, dagRunId]);
  const [[run]] = await tx.query<RowDataPacket[]>("SELECT unfinished_tasks, state FROM dag_run WHERE id = ?", [dagRunId]);
  if (!run || run.unfinished_tasks > 0 || run.state !== "running") return undefined;
  return finishRun(tx, now, dagRunId, shape);
}

/**
 * Decides and records the state of a run whose every task has settled. A run that fails with
 * succeeded tasks that declare `compensate` first runs their compensations (saga): it stays
 * running (undefined is returned) and ends failed, compensated or not, when they are done. A run
 * whose saga already ended (re-decided after an operator marked a task) stays failed, and its
 * compensation is decided again from the states now: a failed compensation marked success (undone
 * by hand) makes it "compensated" once nothing else is owed; a compensation marked failed,
 * "compensation_failed" (scheduler/runOutcome.ts compensationOutcome).
 */
export async function finishRun(tx: Tx, now: Date, dagRunId: number, shape: DagShape): Promise<"success" | "failed" | undefined> {
  const [[run]] = await tx.query<RowDataPacket[]>("SELECT compensation FROM dag_run WHERE id = ?", [dagRunId]);
  const compensation = (run?.compensation ?? null) as string | null;
  let state: "success" | "failed" = "failed";
  if (compensation !== "running") {
    const [leafRows] = await tx.query<RowDataPacket[]>(
      `SELECT state FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(shape.leaves)})`,
      [dagRunId, ...shape.leaves],
    );
    state = runOutcome(leafRows.map((r) => r.state as string));
  }
  // Compensating: the run ends failed when its compensations are done. Ended saga: a failed run stays failed.
  if (state === "failed" && compensation !== null) {
    const outcome = await sagaOutcome(tx, dagRunId, shape);
    const end = endAt(now);
    await tx.query(`UPDATE dag_run SET state = 'failed', end_date = ${end.sql}, compensation = ? WHERE id = ?`, [...end.params, outcome, dagRunId]);
    return "failed";
  }
  if (state === "failed" && (await startCompensation(tx, now, dagRunId, shape))) return undefined;
  // Not before its start, which may be its queued_at, written with another process's clock (startRuns).
  const end = endAt(now);
  await tx.query(`UPDATE dag_run SET state = ?, end_date = ${end.sql} WHERE id = ?`, [state, ...end.params, dagRunId]);
  return state;
}

/** How the run's saga ended, from the states of its compensations and of the tasks they undo. */
async function sagaOutcome(tx: Tx, dagRunId: number, shape: DagShape): Promise<"compensated" | "compensation_failed"> {
  const ids = [...shape.compensations.map((c) => c.taskId), ...shape.compensations.map((c) => c.compensates!)];
  if (ids.length === 0) return "compensated";
  const [rows] = await tx.query<RowDataPacket[]>(
    `SELECT task_id, state FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(ids)})`,
    [dagRunId, ...ids],
  );
  const states = new Map(rows.map((r) => [r.task_id as string, r.state as string]));
  return compensationOutcome(shape.compensations, (id) => states.get(id));
}

/**
 * Creates the run's compensation task instances: those undoing a task that succeeded wait in
 * their chain (the first is queued, or held in `scheduled` while a try of the run winds down),
 * the others are skipped at once. False if nothing to undo.
 */
export async function startCompensation(tx: Tx, now: Date, dagRunId: number, shape: DagShape): Promise<boolean> {
  if (shape.compensations.length === 0) return false;
  const originals = shape.compensations.map((c) => c.compensates!);
  const [rows] = await tx.query<RowDataPacket[]>(
    `SELECT task_id, key_epoch FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND state = 'success' AND task_id IN (${inList(originals)})`,
    [dagRunId, ...originals],
  );
  // A compensation's idempotency key names the undo of its task's effect: it takes the task's key_epoch.
  const succeeded = new Map(rows.map((r) => [r.task_id as string, Number(r.key_epoch)]));
  if (succeeded.size === 0) return false;
  const [[run]] = await tx.query<RowDataPacket[]>("SELECT dag_id, run_id, run_type FROM dag_run WHERE id = ? FOR UPDATE", [dagRunId]);
  await tx.query("UPDATE dag_run SET compensation = 'running', unfinished_tasks = unfinished_tasks + ? WHERE id = ?", [
    shape.compensations.length,
    dagRunId,
  ]);
  // A try of the run ended from outside (the cancel that started this saga, a mark) may still be
  // winding down in its kill grace: the first compensations wait in `scheduled` until it ended.
  const ready = (await runsWithAbandonedTries(tx, [dagRunId])).has(dagRunId) ? TaskState.Scheduled : TaskState.Queued;
  const skipped: SettledTask[] = [];
  const values: unknown[] = [];
  for (const c of shape.compensations) {
    const undo = succeeded.has(c.compensates!);
    const state = !undo ? TaskState.Skipped : c.upstream.length === 0 ? ready : TaskState.None;
    if (!undo) skipped.push({ taskId: c.taskId, state: TaskState.Skipped });
    // At the run's priority, as its other tasks: a backfill run's compensations yield too (and run while its DAG is paused).
    values.push(dagRunId, run!.dag_id, run!.run_id, c.taskId, state, c.retries, ...specValues(c, run!.run_type), c.triggerRule, c.upstream.length);
    values.push(succeeded.get(c.compensates!) ?? 0);
    values.push(state === TaskState.Queued ? now : null, state === TaskState.Skipped ? now : null, state === TaskState.Skipped ? now : null);
  }
  await tx.query(
    `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, try_number, max_tries,
                                ${specColumnNames.join(", ")}, trigger_rule, upstream_total, key_epoch, queued_at, start_date, end_date)
     VALUES ${shape.compensations.map(() => `(?, ?, ?, ?, -1, ?, 0, ?, ${specPlaceholders}, ?, ?, ?, ?, ?, ?)`).join(", ")}`,
    values,
  );
  if (skipped.length > 0) await settle(tx, now, dagRunId, shape, skipped);
  return true;
}
