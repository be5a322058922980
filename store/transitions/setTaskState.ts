// setTaskState — Airflow's "mark success / failed / skipped" (DAG.set_task_instance_state):
// chosen task instances take a terminal state a user picks, then the run carries on as if they
// had ended that way, in one transaction for every run touched.
//   1. Each chosen task instance (the task, with include_upstream / include_downstream its
//      relatives; with include_past / include_future the same tasks in the DAG's earlier / later
//      runs) not already in the new state takes it.
//   2. As Airflow does, tasks downstream of the requested ones that are failed or
//      upstream_failed (and not themselves marked) are cleared — back to `none` with a fresh retry
//      budget, their XComs and durable steps forgotten, a wait taking only signals sent from now
//      on (as clearTasks) — so they can run once their upstream allows.
//      Not compensations (`<task>__compensate`): each failed at its own work (all_done).
//   3. Counters and the run's unfinished_tasks are recomputed from states (as clearTasks does),
//      then settle's own decision runs on the tasks that changed and their direct downstream:
//      ready → queued (or held in `scheduled` when it depends on the past); no longer satisfiable
//      → skipped / upstream_failed, cascading through settle(), which may finish the run. A run
//      left with nothing unfinished is decided at once (finishRun): marking the last running task
//      finishes its run; marking a task of a finished run re-decides the run. In a failed run whose
//      saga ended, that re-decides its compensation: marking the failed compensations success
//      (undone by hand) makes it "compensated", marking one failed "compensation_failed".
// saga: in a run whose saga started (compensating, or its compensation ended) only compensations
//   may be marked. Its own tasks belong to the attempt that failed and is being (or was) undone:
//   marking one success would call a run successful whose work was refunded, and would run the
//   failed tasks after it on top of undone work. BATON_DAG_RUN_COMPENSATING, nothing marked (in any
//   run, a dry run included); clearing such a task starts a new attempt instead (clearTasks).
// replaced: a run a backfill replaced (replaced_by_backfill_id, read under the run's lock) is
//   history beside the run that re-did its date, and every mark naming it is refused
//   (BATON_DAG_RUN_REPLACED, nothing marked in any run, a dry run included), whatever the new
//   state: a mark re-decides its run — failed downstream tasks are cleared and run again on a date
//   already re-run, the finished run reopens, a failure may start its compensation, its outcome
//   (and the DAG callback it owes) changes — and the few marks that would run nothing are not
//   worth a rule that depends on the run's states (the clear refuses every clear of it alike).
//   An execution_date names its date's current run (a replaced run only when every run of the
//   date was replaced); include_past / include_future take each other date's current runs only,
//   as a clear over a date range does (one replaced after they were listed is left as it is).
// locks: per run in id order, every task_instance row of the run (ux_task_instance, index
//   order), then the dag_run row (PK); pool rows of marked running tries last, in name order —
//   the order clearTasks, settle, finishTries and timeoutRuns lock in. A dry run locks nothing.
// fence: a marked `running` try leaves `running` and loses its claim token, so the worker's
//   late result matches nothing in finishTries (discarded as fenced) and its next heartbeat
//   (beatTries) tells it the try is no longer its own, so it aborts the try's ctx.signal. Its
//   pool slots are released here.
// outcomes: BATON_DAG_NOT_FOUND, BATON_DAG_RUN_NOT_FOUND, BATON_TASK_NOT_FOUND (naming the ids;
//   also for a run not started yet, which has no task instances); BATON_DAG_RUN_COMPENSATING; BATON_DAG_RUN_REPLACED; otherwise the task instances
//   marked (state before and after), those cleared in step 2, the ids queued and each run's state.
import { runTimeoutAt, type DagShape } from "../../core/dagStructure.ts";
import { BatonError } from "../../core/errors.ts";
import { RunState, TaskState, isTerminalTaskState } from "../../core/states.ts";
import { clearClosure, sagaEnded } from "../../scheduler/clearSelection.ts";
import { inList, type Db, type Queryable, type RowDataPacket, type Statement, type Tx } from "../db.ts";
import { durationTo, endAt } from "../endDate.ts";
import { occupancyStatements } from "../pools.ts";
import { requireTasksInRun, runNotFoundError, runReplacedError } from "../queries/read.ts";
import { abandonStatement } from "./abandonedTries.ts";
import { applyDecisions, finishRun, settle } from "./settle.ts";
import { counterStatements, resetStatements } from "./clearTasks.ts";
import { forgetSignalsStatement } from "./signals.ts";

/** The states a user may set (Airflow's set_task_instance_state). */
export const MARKABLE_STATES = [TaskState.Success, TaskState.Failed, TaskState.Skipped] as const;
export type MarkableState = (typeof MARKABLE_STATES)[number];

export interface SetStateRequest {
  dagId: string;
  /** The run, by run_id; or by logicalDate (which must name exactly one run of the DAG). */
  runId?: string;
  logicalDate?: Date;
  /** The requested tasks; each must exist in the run's pinned version. */
  taskIds: string[];
  newState: MarkableState;
  includeUpstream?: boolean;
  includeDownstream?: boolean;
  /** The same tasks in the DAG's runs with an earlier logical date. */
  includePast?: boolean;
  /** The same tasks in the DAG's runs with a later logical date. */
  includeFuture?: boolean;
  /** Report what would be marked; change nothing. */
  dryRun?: boolean;
}

export interface ChangedTask {
  id: number;
  dagRunId: number;
  dagId: string;
  runId: string;
  logicalDate: Date | null;
  taskId: string;
  mapIndex: number;
  previousState: string;
  /** Its state once the change committed; previousState on a dry run. */
  state: string;
}

export interface SetStateResult {
  dryRun: boolean;
  /** Task instances that took the new state (on a dry run: that would), in run then task order. */
  marked: ChangedTask[];
  /** Downstream failed / upstream_failed task instances cleared so they can run again (never on a dry run). */
  cleared: ChangedTask[];
  /** task_instance ids queued by the change. */
  queued: number[];
  /** Each touched run's state afterwards. */
  runs: { dagRunId: number; runId: string; state: string }[];
}

interface TiRow {
  id: number;
  task_id: string;
  map_index: number;
  state: string;
}
type Row = RowDataPacket & TiRow;

/**
 * Pure: which of a run's task instances a mark changes. `marked`: the chosen tasks not already
 * in `newState`; `cleared`: failed / upstream_failed tasks downstream (transitively) of the
 * requested tasks that are not chosen, only when something is marked. Never a compensation: it
 * runs with all_done, so a failed one failed at its own work, not for its upstream; marking the
 * compensation before it (refunded by hand) must not run it again unasked (clear it to resume).
 */
export function planMarks<R extends TiRow>(
  shape: DagShape,
  rows: readonly R[],
  chosen: ReadonlySet<string>,
  requested: readonly string[],
  newState: MarkableState,
): { marked: R[]; cleared: R[] } {
  const marked = rows.filter((r) => r.map_index === -1 && chosen.has(r.task_id) && r.state !== newState);
  if (marked.length === 0) return { marked, cleared: [] };
  const downstream = new Set(clearClosure(shape, requested, { includeDownstream: true }));
  const cleared = rows.filter(
    (r) =>
      r.map_index === -1 &&
      downstream.has(r.task_id) &&
      !chosen.has(r.task_id) &&
      shape.byId.get(r.task_id)?.kind !== "compensate" &&
      (r.state === TaskState.Failed || r.state === TaskState.UpstreamFailed),
  );
  return { marked, cleared };
}

/**
 * Pure: the refusal for marks that would change tasks of a run whose saga started, other than
 * its compensations; undefined when the marks may go ahead.
 */
export function sagaMarkRefusal(
  shape: DagShape,
  run: { runId: string; state: string; compensation: string | null },
  marked: readonly { task_id: string }[],
): BatonError | undefined {
  if (run.compensation == null) return undefined;
  const own = [...new Set(marked.map((r) => r.task_id).filter((id) => shape.byId.get(id)?.kind !== "compensate"))];
  if (own.length === 0) return undefined;
  const why = sagaEnded(run)
    ? `has compensated (compensation ${run.compensation === "running" ? "compensation_failed" : run.compensation}): its tasks' work was undone`
    : "is compensating: its tasks' work is being undone";
  return new BatonError(
    "BATON_DAG_RUN_COMPENSATING",
    `DAG run "${run.runId}" ${why}, so ${own.map((id) => `"${id}"`).join(", ")} cannot be marked; mark its compensations (<task>__compensate) ` +
      "to close the saga by hand, or, once the saga ended, clear the tasks to start a new attempt",
  );
}

interface RunPlan {
  id: number;
  runId: string;
  logicalDate: Date | null;
  shape: DagShape;
  requested: string[];
  chosen: Set<string>;
  /** The run the request names (not one of include_past / include_future's). */
  named: boolean;
}

export async function setTaskState(db: Db, now: Date, req: SetStateRequest, shapeOf: (versionHash: string) => Promise<DagShape>): Promise<SetStateResult> {
  const taskIds = [...new Set(req.taskIds)];
  if (taskIds.length === 0) throw new BatonError("BATON_VALIDATION_FAILED", "task_id is required");
  if (!(MARKABLE_STATES as readonly string[]).includes(req.newState)) {
    throw new BatonError("BATON_VALIDATION_FAILED", `new_state must be one of ${MARKABLE_STATES.join(", ")}`);
  }
  const byDate = req.runId === undefined;
  if (byDate && !req.logicalDate) throw new BatonError("BATON_VALIDATION_FAILED", "dag_run_id or execution_date is required");
  // A date names its current run: runs a backfill replaced (history beside it) come last, so
  // they are picked only when every run of the date was replaced (and the mark is refused).
  const [found] = await db.pool.query<RowDataPacket[]>(
    `SELECT id, run_id, state, version_hash, logical_date, replaced_by_backfill_id FROM dag_run WHERE dag_id = ? AND ${byDate ? "logical_date = ?" : "run_id = ?"}
      ORDER BY replaced_by_backfill_id IS NOT NULL, id LIMIT 2`,
    [req.dagId, byDate ? req.logicalDate : req.runId],
  );
  const what = byDate ? `with execution_date ${req.logicalDate!.toISOString()}` : `"${req.runId}"`;
  if (found.length > 1 && found[1]!.replaced_by_backfill_id == null) {
    throw new BatonError("BATON_VALIDATION_FAILED", `several runs of DAG "${req.dagId}" have execution_date ${req.logicalDate!.toISOString()}; give dag_run_id`);
  }
  const run = found[0];
  if (!run) throw await runNotFoundError(db.pool, req.dagId, req.runId ?? "", what);
  if (run.state === RunState.Queued) {
    throw new BatonError("BATON_TASK_NOT_FOUND", `DAG run "${run.run_id}" of DAG "${req.dagId}" has not started: its task instances do not exist yet`);
  }
  const shape = await shapeOf(run.version_hash);
  requireTasksInRun(shape, taskIds, req.dagId, run.run_id);

  // The runs touched: this one, and with past / future the DAG's started runs before / after it.
  const candidates: RowDataPacket[] = [run];
  if ((req.includePast || req.includeFuture) && run.logical_date) {
    const sides: string[] = [];
    if (req.includePast) sides.push("logical_date < ?");
    if (req.includeFuture) sides.push("logical_date > ?");
    const [others] = await db.pool.query<RowDataPacket[]>(
      `SELECT id, state, version_hash, logical_date, run_id FROM dag_run
        WHERE dag_id = ? AND state <> 'queued' AND replaced_by_backfill_id IS NULL AND id <> ? AND (${sides.join(" OR ")}) ORDER BY id`,
      [req.dagId, run.id, ...sides.map(() => run.logical_date)],
    );
    candidates.push(...others);
  }
  const plans: RunPlan[] = [];
  for (const c of candidates) {
    const s = Number(c.id) === Number(run.id) ? shape : await shapeOf(c.version_hash);
    const requested = taskIds.filter((id) => s.byId.has(id));
    if (requested.length === 0) continue;
    const chosen = new Set(clearClosure(s, requested, { includeUpstream: req.includeUpstream, includeDownstream: req.includeDownstream }));
    plans.push({ id: Number(c.id), runId: c.run_id, logicalDate: c.logical_date ?? null, shape: s, requested, chosen, named: Number(c.id) === Number(run.id) });
  }
  plans.sort((a, b) => a.id - b.id);
  const dryRun = !!req.dryRun;
  const changed = (p: RunPlan, r: RowDataPacket): ChangedTask => ({
    id: Number(r.id),
    dagRunId: p.id,
    dagId: req.dagId,
    runId: p.runId,
    logicalDate: p.logicalDate,
    taskId: r.task_id,
    mapIndex: r.map_index,
    previousState: r.state,
    state: r.state,
  });

  if (dryRun) {
    const result: SetStateResult = { dryRun, marked: [], cleared: [], queued: [], runs: [] };
    for (const p of plans) {
      const [rows] = await db.pool.query<RowDataPacket[]>(
        "SELECT id, task_id, map_index, state FROM task_instance WHERE dag_run_id = ? ORDER BY task_id, map_index",
        [p.id],
      );
      const [[r]] = await db.pool.query<RowDataPacket[]>("SELECT state, compensation, replaced_by_backfill_id FROM dag_run WHERE id = ?", [p.id]);
      if (r!.replaced_by_backfill_id != null) {
        if (p.named) throw await replacedError(db.pool, req.dagId, p, r!);
        continue;
      }
      const { marked } = planMarks(p.shape, rows as Row[], p.chosen, p.requested, req.newState);
      const refusal = sagaMarkRefusal(p.shape, { runId: p.runId, state: r!.state, compensation: r!.compensation ?? null }, marked);
      if (refusal) throw refusal;
      result.marked.push(...marked.map((row) => changed(p, row)));
      result.runs.push({ dagRunId: p.id, runId: p.runId, state: r!.state });
    }
    return result;
  }

  // Every event the mark causes (the marks, the downstream tasks cleared, the runs) says who marked.
  return db.withEventDetail(`marked ${req.newState} by ${db.actor}`).tx(async (tx) => {
    const result: SetStateResult = { dryRun, marked: [], cleared: [], queued: [], runs: [] };
    const freed = new Map<string, number>();
    for (const p of plans) {
      const [rows] = await tx.query<RowDataPacket[]>(
        "SELECT id, task_id, map_index, state, pool, pool_slots FROM task_instance WHERE dag_run_id = ? ORDER BY task_id, map_index FOR UPDATE",
        [p.id],
      );
      const [[runRow]] = await tx.query<RowDataPacket[]>("SELECT state, compensation, replaced_by_backfill_id FROM dag_run WHERE id = ? FOR UPDATE", [p.id]);
      // Read under the lock: advanceBackfills replaces only a finished run, re-checked under its
      // lock, so a mark that commits first (reopening it) keeps the run current.
      if (runRow!.replaced_by_backfill_id != null) {
        if (p.named) throw await replacedError(tx, req.dagId, p, runRow!);
        continue;
      }
      const { marked, cleared } = planMarks(p.shape, rows as Row[], p.chosen, p.requested, req.newState);
      // Thrown inside the transaction: runs marked before this one roll back too.
      const refusal = sagaMarkRefusal(p.shape, { runId: p.runId, state: runRow!.state, compensation: runRow!.compensation ?? null }, marked);
      if (refusal) throw refusal;
      if (marked.length > 0) {
        for (const r of marked) if (r.state === TaskState.Running) freed.set(r.pool, (freed.get(r.pool) ?? 0) - Number(r.pool_slots));
        const queued = await applyToRun(tx, now, p, rows, marked, cleared, runRow!.state, req.newState);
        result.queued.push(...queued);
        result.marked.push(...marked.map((r) => changed(p, r)));
        result.cleared.push(...cleared.map((r) => changed(p, r)));
      }
      const [[after]] = await tx.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE id = ?", [p.id]);
      result.runs.push({ dagRunId: p.id, runId: p.runId, state: after!.state });
    }
    // Marked running tries no longer hold their pool slots (pool rows last).
    for (const s of occupancyStatements(freed)) await tx.query(s.sql, s.params);
    const ids = [...result.marked, ...result.cleared].map((c) => c.id);
    if (ids.length > 0) {
      const [after] = await tx.query<RowDataPacket[]>(`SELECT id, state FROM task_instance WHERE id IN (${inList(ids)})`, ids);
      const stateById = new Map(after.map((r) => [Number(r.id), r.state as string]));
      for (const c of [...result.marked, ...result.cleared]) c.state = stateById.get(c.id) ?? c.state;
    }
    return result;
  });
}

/** BATON_DAG_RUN_REPLACED for the named run, which a backfill replaced. */
function replacedError(db: Queryable, dagId: string, p: RunPlan, run: RowDataPacket): Promise<BatonError> {
  return runReplacedError(
    db,
    { dagId, runId: p.runId, backfillId: Number(run.replaced_by_backfill_id), logicalDate: p.logicalDate },
    "marking its tasks would re-decide it beside the run that re-did its date (its failed downstream tasks run again, it reopens, its outcome changes)",
  );
}

/** Steps 1–3 for one run whose rows are locked; returns the task_instance ids queued. */
async function applyToRun(
  tx: Tx,
  now: Date,
  p: RunPlan,
  rows: RowDataPacket[],
  marked: RowDataPacket[],
  cleared: RowDataPacket[],
  runState: string,
  newState: MarkableState,
): Promise<number[]> {
  const error =
    newState === TaskState.Failed
      ? JSON.stringify({ name: "TaskMarkedFailed", message: "marked failed by a user through the API", nonRetryable: true })
      : null;
  const running = marked.filter((r) => r.state === TaskState.Running).map((r) => Number(r.id));
  const others = marked.filter((r) => r.state !== TaskState.Running).map((r) => Number(r.id));
  const statements: Statement[] = [];
  const [end, duration] = [endAt(now), durationTo(now)];
  if (running.length > 0) {
    // Their workers still run them until the kill grace ends: listed first (with the claim token
    // the next statement clears), so no compensation starts beside them (abandonedTries.ts).
    statements.push(abandonStatement(now, running));
    // The fence: no longer `running`, no claim token.
    statements.push({
      sql: `UPDATE task_instance SET state = ?, end_date = ${end.sql}, duration = COALESCE(${duration.sql}, 0), error = ?,
                   claim_token = NULL, heartbeat_at = NULL, next_retry_at = NULL, next_check_at = NULL, deferred_on = NULL
             WHERE id IN (${inList(running)})`,
      params: [newState, ...end.params, ...duration.params, error, ...running],
    });
  }
  if (others.length > 0) {
    // Airflow's TaskInstance.set_state: start and end default to now, an existing duration stays.
    statements.push({
      sql: `UPDATE task_instance SET state = ?, start_date = COALESCE(start_date, ?), end_date = COALESCE(end_date, ${end.sql}),
                   duration = COALESCE(duration, TIMESTAMPDIFF(MICROSECOND, COALESCE(start_date, ?), COALESCE(end_date, ${end.sql})) / 1e6),
                   error = ?, next_retry_at = NULL, next_check_at = NULL, deferred_on = NULL
             WHERE id IN (${inList(others)})`,
      params: [newState, now, ...end.params, now, ...end.params, error, ...others],
    });
  }
  if (cleared.length > 0) {
    statements.push(...resetStatements(p.shape, cleared));
    const clearedTaskIds = [...new Set(cleared.map((r) => r.task_id as string))];
    const clearedIds = cleared.map((r) => Number(r.id));
    statements.push({ sql: `DELETE FROM xcom WHERE dag_run_id = ? AND task_id IN (${inList(clearedTaskIds)})`, params: [p.id, ...clearedTaskIds] });
    statements.push({ sql: `DELETE FROM task_step WHERE task_instance_id IN (${inList(clearedIds)})`, params: clearedIds });
    // As a clear: a cleared wait takes only signals sent from now on.
    const waits = cleared.filter((r) => p.shape.byId.get(r.task_id)?.signal).map((r) => Number(r.id));
    if (waits.length > 0) statements.push(forgetSignalsStatement(p.id, waits));
  }

  // Counters of the changed tasks' direct downstream tasks (and of cleared ones), from states as they are now.
  const markedIds = new Set(marked.map((r) => Number(r.id)));
  const clearedIds = new Set(cleared.map((r) => Number(r.id)));
  const stateAfter = (r: RowDataPacket) => (markedIds.has(Number(r.id)) ? newState : clearedIds.has(Number(r.id)) ? TaskState.None : (r.state as string));
  const stateOf = new Map<string, string>();
  for (const r of rows) if (r.map_index === -1) stateOf.set(r.task_id, stateAfter(r));
  const affected = new Set<string>(cleared.map((r) => r.task_id as string));
  for (const r of marked) for (const down of p.shape.byId.get(r.task_id)?.downstream ?? []) affected.add(down);
  for (const r of cleared) for (const down of p.shape.byId.get(r.task_id)?.downstream ?? []) affected.add(down);
  statements.push(...counterStatements(p.id, p.shape, [...affected], (id) => stateOf.get(id)));
  for (const s of statements) await tx.query(s.sql, s.params);

  const unfinished = rows.filter((r) => !isTerminalTaskState(stateAfter(r))).length;
  const finished = runState === RunState.Success || runState === RunState.Failed;
  if (finished && unfinished === 0) {
    // Still ended: its outcome is decided again without reopening it, so a run that ends as it
    // was changes nothing (no event, no second DAG callback). A failure that starts compensation
    // reopens it.
    if ((await finishRun(tx, now, p.id, p.shape)) === undefined) {
      // Compensating restarts its clock, as a clear does (an old timeout_at would fail it at once).
      await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL, start_date = ?, timeout_at = ? WHERE id = ?", [now, runTimeoutAt(p.shape.dag, now), p.id]);
    }
    return [];
  }
  if (finished && unfinished > 0) {
    // A finished run that has work again restarts its clock, as a clear does.
    await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL, unfinished_tasks = ?, start_date = ?, timeout_at = ? WHERE id = ?", [
      unfinished,
      now,
      runTimeoutAt(p.shape.dag, now),
      p.id,
    ]);
  } else {
    await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL, unfinished_tasks = ? WHERE id = ?", [unfinished, p.id]);
  }
  if (unfinished === 0) {
    await finishRun(tx, now, p.id, p.shape);
    return [];
  }

  // Re-evaluate with settle's own decision: one answer to "is this task ready?".
  if (affected.size === 0) return [];
  const decided = await applyDecisions(tx, now, p.id, p.shape, [...affected].sort());
  if (decided.ended.length === 0) return decided.queued;
  return [...decided.queued, ...(await settle(tx, now, p.id, p.shape, decided.ended)).queued];
}

