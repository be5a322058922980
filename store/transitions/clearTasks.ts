// clearTasks — Airflow's clear: chosen task instances of one run go back to `none` and run
// again, and their run goes back to `running`, in one transaction. A cleared task keeps its
// try_number (its next try is try_number + 1) and gets max_tries = try_number + its retries,
// so it has its full retry budget again. It runs the run's pinned DAG version, like every try.
// locks: every task_instance row of the run (ux_task_instance: range on dag_run_id, read in
//   index order; checked with EXPLAIN), then the dag_run row (PK), then the pool rows of
//   cleared running tries (name order): the order settle, finishTries and timeoutRuns lock in.
//   Holding the whole run lets the up_* counters and unfinished_tasks be recomputed from
//   states instead of patched; a clear is rare and operator-driven, so the wider lock is cheap.
//   A dry run locks nothing.
// fence: a cleared `running` try goes to `none` with its claim token removed, so the worker's
//   result no longer matches finishTries' UPDATE (state = 'running' + try_number + token) and is
//   discarded as fenced; its pool slots are released here. The worker's child keeps running
//   until it ends (the worker notices the lost claim at its next heartbeat and aborts the try), so the re-queued try may
//   overlap it — as in Airflow until the heartbeat of a cleared running task kills it.
// decides: up_* counters of the cleared tasks and of their direct downstream tasks from their
//   upstream tasks' states (scheduler/clearSelection.ts); then settle's applyDecisions (decideDownstream) over
//   those rows: ready → queued (or held in `scheduled` when it depends on the past, as settle
//   does); rule no longer satisfiable → skipped / upstream_failed, cascading through settle(),
//   which counts the run down and may finish it.
// selects: the given tasks (every task of the run's version when none are given) with their
//   upstream / downstream closure, in the states the only_* filters pick (every state without one).
// skips: a task that a succeeded, not cleared branch or short-circuit skipped stays skipped
//   (scheduler/clearSelection.ts skipsToKeep, from the decider's recorded output).
// saga: in a run whose compensation ended (scheduler/clearSelection.ts sagaEnded), a clear naming
//   only compensation tasks resumes the compensation: the owed ones chosen (their task succeeded,
//   they did not) go back to `none` as any cleared task (next try, history kept), the run goes
//   back to running with compensation "running", and finishRun decides it again when they end.
//   Any other clear starts a new attempt: the compensation task instances are deleted and the
//   tasks whose compensation succeeded are cleared with the chosen ones (a new attempt redoes
//   what was undone), their key_epoch raised: redone, an undone effect is a new one, with a new
//   ctx.idempotencyKey (the only place it changes; settle's startCompensation gives a
//   compensation its task's). A compensation that succeeded, or had nothing to undo, is never cleared.
//   While the run compensates (its saga not ended), its own tasks cannot be cleared
//   (BATON_DAG_RUN_COMPENSATING, nothing cleared, a dry run included): the cleared task would run
//   again beside the compensations undoing its upstream (ship after the refund), and finishRun
//   would then decide a saga and an attempt at once. Cancel the run (its saga ends) or wait.
//   A re-drive (req.redrive) never clears a saga run's own tasks, ended saga or not: it decides
//   from the run's compensation read under the lock, not from the dead letters it listed before.
// replaced: a run a backfill replaced (replaced_by_backfill_id, read under the run's lock) is
//   history beside the run that re-did its date: nothing of it is cleared (BATON_DAG_RUN_REPLACED,
//   a dry run included; a re-drive by dag_id, req.redrive "skip", leaves it as it is).
// outcomes: BATON_DAG_NOT_FOUND, BATON_DAG_RUN_NOT_FOUND, BATON_TASK_NOT_FOUND (naming the ids);
//   BATON_CLEAR_MIXES_COMPENSATION when the named tasks mix compensations and other tasks
//   (unless preferCompensation); BATON_DAG_RUN_COMPENSATING, BATON_DAG_RUN_REPLACED (above); otherwise the cleared task
//   instances (state before and after), the ids queued, and the run's state afterwards (a run
//   whose cleared tasks all end at once, e.g. behind a failed upstream that was not cleared,
//   finishes again in the same transaction). Every event the clear causes has the detail "cleared
//   by <actor>" (the API token, or the process), unless the caller's Db carries one (a re-drive,
//   a re-run: Db.withEventDetail). XCom entries of cleared tasks are deleted, and
//   so are their durable steps unless keepSteps; a cleared wait takes only signals sent after the
//   clear unless keepSignals (signals.ts forgetSignalsStatement). A
//   finished run restarts its clock: start_date = now, timeout_at = now + dagrunTimeout.
import { runTimeoutAt, type DagShape } from "../../core/dagStructure.ts";
import { BatonError } from "../../core/errors.ts";
import { RunState, TaskState, isTerminalTaskState } from "../../core/states.ts";
import {
  clearClosure,
  clearStateFilter,
  clearableCompensations,
  sagaClearMode,
  sagaEnded,
  skipsToKeep,
  upstreamCountsOf,
} from "../../scheduler/clearSelection.ts";
import { groupByValue, inList, type Db, type RowDataPacket, type Statement, type Tx } from "../db.ts";
import { occupancyStatements } from "../pools.ts";
import { requireTasksInRun, runNotFoundError, runReplacedError } from "../queries/read.ts";
import { abandonStatement } from "./abandonedTries.ts";
import { applyDecisions, settle } from "./settle.ts";
import { forgetSignalsStatement } from "./signals.ts";
import { specColumnNames, specValues } from "./startRuns.ts";

export interface ClearRequest {
  dagId: string;
  runId: string;
  /** Tasks to clear; every task of the run when empty (as Airflow: narrowed by onlyFailed / onlyRunning if set). */
  taskIds?: string[];
  /** Also clear every task upstream of them (transitively). */
  includeUpstream?: boolean;
  /** Also clear every task downstream of them (transitively). */
  includeDownstream?: boolean;
  /** Only task instances that are failed or upstream_failed. */
  onlyFailed?: boolean;
  /** Only task instances that are running (with onlyFailed: either). */
  onlyRunning?: boolean;
  /** Report what would be cleared; change nothing. */
  dryRun?: boolean;
  /**
   * Re-run with the DAG's latest version instead of the run's own (e.g. to pick up a fix in a
   * task's code): allowed when the latest version has the same tasks, edges and trigger rules,
   * so the run's other task instances stay consistent; otherwise BATON_VERSION_INCOMPATIBLE.
   */
  useLatestVersion?: boolean;
  /**
   * When the named tasks mix compensations (`<task>__compensate`) and other tasks, clear only the
   * compensations (resuming a saga's compensation comes first; the other tasks stay as they are)
   * instead of refusing with BATON_CLEAR_MIXES_COMPENSATION. A re-drive of dead letters sets it.
   */
  preferCompensation?: boolean;
  /**
   * Keep the cleared tasks' recorded durable steps (ctx.step), as a retry does, instead of
   * running them from scratch. A re-drive of dead letters sets it: it gives a failed task more
   * tries, so a charge it recorded before failing is not made again.
   */
  keepSteps?: boolean;
  /**
   * Let the cleared waits (waitForSignal) take signals their run received before the clear, as a
   * retry would, instead of only those sent after it. A re-drive of dead letters sets it, with
   * keepSteps: a wait that timed out and is re-driven takes the signal that came too late.
   */
  keepSignals?: boolean;
  /**
   * Set by a re-drive of dead letters: in a run whose saga started (compensation not null, read
   * under the run's lock), only compensations are re-driven, never the run's own tasks (they are
   * no dead letters: the saga undoes or undid their attempt, and re-driving them would redo it,
   * charging a refunded order again). "skip" leaves them as they are (a re-drive by dag_id, which
   * read its dead letters before the saga started); "refuse" is BATON_DAG_RUN_COMPENSATING,
   * nothing cleared (a re-drive naming them by id). A run a backfill replaced meanwhile is skipped
   * or refused (BATON_DAG_RUN_REPLACED) the same way.
   */
  redrive?: "skip" | "refuse";
}

export interface ClearedTask {
  id: number;
  taskId: string;
  mapIndex: number;
  /** The state it was cleared from. */
  previousState: string;
  /** Its state once the clear committed (none, queued, skipped, upstream_failed); previousState on a dry run. */
  state: string;
}

export interface ClearResult {
  dagRunId: number;
  dagId: string;
  runId: string;
  logicalDate: Date | null;
  dryRun: boolean;
  cleared: ClearedTask[];
  /** task_instance ids queued by the clear (cleared tasks whose trigger rule holds at once). */
  queued: number[];
  /** The run's state afterwards. */
  runState: string;
  /** The run's state before, read under its lock. */
  previousRunState: string;
  /** The run's row as the clear's transaction left it (under its lock; not read again after the commit). */
  run: RowDataPacket;
}

export async function clearTasks(
  db: Db,
  now: Date,
  req: ClearRequest,
  shapeOf: (versionHash: string) => Promise<DagShape>,
): Promise<ClearResult> {
  let taskIds = [...new Set(req.taskIds ?? [])];
  const [runs] = await db.pool.query<RowDataPacket[]>("SELECT id, version_hash, logical_date FROM dag_run WHERE dag_id = ? AND run_id = ?", [
    req.dagId,
    req.runId,
  ]);
  const run = runs[0];
  if (!run) throw await runNotFoundError(db.pool, req.dagId, req.runId);
  const dagRunId = Number(run.id);
  // The run's pinned version decides which tasks exist, their edges and their retries.
  let shape = await shapeOf(run.version_hash);
  let switchTo: string | null = null;
  if (req.useLatestVersion) {
    const [dags] = await db.pool.query<RowDataPacket[]>("SELECT latest_version_hash FROM dag WHERE dag_id = ?", [req.dagId]);
    const latest = dags[0]?.latest_version_hash as string | undefined;
    if (latest && latest !== run.version_hash) {
      const next = await shapeOf(latest);
      const outline = (sh: DagShape, compensations: boolean) =>
        JSON.stringify(sh.dag.tasks.filter((t) => compensations || t.kind !== "compensate").map((t) => [t.taskId, t.upstream, t.triggerRule]).sort());
      if (outline(next, false) !== outline(shape, false)) {
        throw new BatonError(
          "BATON_VERSION_INCOMPATIBLE",
          `the latest version of DAG "${req.dagId}" changes its tasks, edges or trigger rules; clear without use_latest_version, or trigger a new run`,
        );
      }
      // A resumed compensation keeps the run's other compensation task instances: a version with
      // other compensations would leave one the run owes (failed, or cut off) outside its saga,
      // and the run would end compensated with it never undone.
      const resumes = taskIds.some((id) => shape.byId.get(id)?.kind === "compensate");
      if (resumes && outline(next, true) !== outline(shape, true)) {
        throw new BatonError(
          "BATON_VERSION_INCOMPATIBLE",
          `the latest version of DAG "${req.dagId}" changes which tasks have a compensation, and this clear resumes run "${req.runId}"'s ` +
            "compensation, whose compensation tasks are its version's; clear without use_latest_version (only the code of the same compensations may change)",
        );
      }
      shape = next;
      switchTo = latest;
    }
  }
  requireTasksInRun(shape, taskIds, req.dagId, req.runId);
  // Resuming a saga's compensation and starting a new attempt exclude each other: a new attempt
  // deletes the compensation task instances a resume would run.
  let mode = sagaClearMode(shape, taskIds);
  if (mode === "mixed") {
    if (!req.preferCompensation) {
      throw new BatonError(
        "BATON_CLEAR_MIXES_COMPENSATION",
        `the clear names compensation tasks (${taskIds.filter((id) => shape.byId.get(id)!.kind === "compensate").map((id) => `"${id}"`).join(", ")}) ` +
          `and other tasks of run "${req.runId}" of DAG "${req.dagId}": clear the compensations alone to resume the saga's compensation, ` +
          "or the other tasks alone to start a new attempt",
      );
    }
    taskIds = taskIds.filter((id) => shape.byId.get(id)!.kind === "compensate");
    mode = "compensations";
  }
  const chosen = new Set(clearClosure(shape, taskIds.length > 0 ? taskIds : shape.byId.keys(), req));
  const selects = clearStateFilter(!!req.onlyFailed, !!req.onlyRunning);
  const dryRun = !!req.dryRun;

  // A dry run changes nothing: no detail to set.
  const annotated = dryRun || db.eventDetail !== null ? db : db.withEventDetail(`cleared by ${db.actor}`);
  return annotated.tx(async (tx) => {
    const lock = dryRun ? "" : " FOR UPDATE";
    const [allRows] = await tx.query<RowDataPacket[]>(
      `SELECT id, task_id, map_index, state, pool, pool_slots FROM task_instance WHERE dag_run_id = ? ORDER BY task_id, map_index${lock}`,
      [dagRunId],
    );
    const [[runRow]] = await tx.query<RowDataPacket[]>(`SELECT * FROM dag_run WHERE id = ?${lock}`, [dagRunId]);
    // A run a backfill replaced is history: its date's current run is the backfill's. Clearing it
    // would run the date twice. Read under the lock: advanceBackfills replaces only a finished
    // run, so a clear that commits first keeps the run current (the backfill skips the date).
    if (runRow!.replaced_by_backfill_id != null) {
      if (req.redrive === "skip") {
        return { dagRunId, dagId: req.dagId, runId: req.runId, logicalDate: run.logical_date ?? null, dryRun, cleared: [], queued: [], runState: runRow!.state, previousRunState: runRow!.state, run: runRow! };
      }
      const what = `${req.redrive ? "re-driving" : "clearing"} its tasks would run its date twice`;
      throw await runReplacedError(tx, { dagId: req.dagId, runId: req.runId, backfillId: Number(runRow!.replaced_by_backfill_id), logicalDate: run.logical_date ?? null }, what);
    }
    // A finished saga's compensation belongs to the attempt that failed: clearing its tasks starts
    // a new attempt, so its compensation task instances go and a new failure compensates again. A
    // task whose compensation succeeded was undone: the new attempt does it again (cleared with
    // the chosen ones), or its downstream tasks would run on an effect that no longer exists (ship
    // after the refund) and a second failure would undo it twice. Clearing its compensations
    // instead resumes them: compensations must eventually succeed (the refund service was down).
    const compensationIds = new Set(shape.compensations.map((c) => c.taskId));
    const endedSaga = sagaEnded({ state: runRow!.state, compensation: runRow!.compensation ?? null });
    const resume = endedSaga && mode === "compensations";
    // A re-drive checked for a saga before this lock; one may have started (or ended) since, and
    // a re-drive must never be what starts a new attempt of a saga run.
    const redriveHeld = !!req.redrive && runRow!.compensation != null;
    const newAttempt = endedSaga && !resume && !redriveHeld;
    const dropped = newAttempt ? allRows.filter((r) => compensationIds.has(r.task_id)) : [];
    const undone = new Set(
      dropped.filter((r) => r.state === TaskState.Success).map((r) => shape.byId.get(r.task_id)?.compensates).filter((id): id is string => !!id),
    );
    const rows = newAttempt ? allRows.filter((r) => !compensationIds.has(r.task_id)) : allRows;
    const compensable = clearableCompensations(shape, stateOf(rows), selects);
    let hits = rows.filter((r) => chosen.has(r.task_id) && (compensationIds.has(r.task_id) ? compensable.has(r.task_id) : selects(r.state)));
    if (hits.length > 0) for (const r of rows) if (undone.has(r.task_id) && !hits.includes(r)) hits.push(r);
    // The run's own tasks among those to clear (not its compensations), quoted for a refusal.
    const ownIn = (some: RowDataPacket[]) => [...new Set(some.filter((r) => !compensationIds.has(r.task_id)).map((r) => `"${r.task_id}"`))];
    if (redriveHeld) {
      const own = ownIn(hits);
      if (own.length > 0 && req.redrive === "refuse") {
        throw new BatonError(
          "BATON_DAG_RUN_COMPENSATING",
          `the saga of DAG run "${req.runId}" of DAG "${req.dagId}" started, so ${own.join(", ")} ` +
            `${own.length === 1 ? "is no dead letter" : "are no dead letters"}: the saga undoes or undid the attempt that failed; ` +
            "re-drive the failed compensations (<task>__compensate) to finish undoing it, or clear the task once the saga ended to start a new attempt",
        );
      }
      // Only a resume re-drives anything here: a clear of the run's own tasks would be a new attempt.
      hits = mode === "compensations" ? hits.filter((r) => compensationIds.has(r.task_id)) : [];
    }
    if (runRow!.compensation != null && !endedSaga) {
      const own = ownIn(hits);
      if (own.length > 0) {
        throw new BatonError(
          "BATON_DAG_RUN_COMPENSATING",
          `DAG run "${req.runId}" is compensating (undoing its succeeded tasks), so ${own.join(", ")} cannot be cleared: ` +
            "cancel the run (its saga ends) or wait for its compensation to end, then clear them to start a new attempt",
        );
      }
    }
    const kept = skipsToKeep(shape, new Set(hits.map((r) => r.task_id as string)), stateOf(rows), await deciderOutputs(tx, dagRunId, shape, rows));
    if (kept.size > 0) hits = hits.filter((r) => !kept.has(r.task_id));
    const result: ClearResult = {
      dagRunId,
      dagId: req.dagId,
      runId: req.runId,
      logicalDate: run.logical_date ?? null,
      dryRun,
      cleared: hits.map((r) => ({ id: Number(r.id), taskId: r.task_id, mapIndex: r.map_index, previousState: r.state, state: r.state })),
      queued: [],
      runState: runRow!.state,
      previousRunState: runRow!.state,
      run: runRow!,
    };
    if (dryRun || hits.length === 0) return result;
    if (switchTo) await tx.query("UPDATE dag_run SET version_hash = ? WHERE id = ?", [switchTo, dagRunId]);

    const clearedIds = new Set(hits.map((r) => Number(r.id)));
    const clearedTaskIds = [...new Set(hits.map((r) => r.task_id as string))];
    if (dropped.length > 0) {
      const ids = dropped.map((r) => Number(r.id));
      await tx.query(`DELETE FROM task_step WHERE task_instance_id IN (${inList(ids)})`, ids);
      // Their stored logs and pokes would outlive them: keyed by task_instance_id, no foreign key.
      await tx.query(`DELETE FROM task_log WHERE task_instance_id IN (${inList(ids)})`, ids);
      await tx.query(`DELETE FROM task_callback WHERE task_instance_id IN (${inList(ids)})`, ids);
      await tx.query(`DELETE FROM task_reschedule WHERE task_instance_id IN (${inList(ids)})`, ids);
      await tx.query(`DELETE FROM xcom WHERE dag_run_id = ? AND task_id IN (${inList(dropped.map((r) => r.task_id))})`, [dagRunId, ...dropped.map((r) => r.task_id)]);
      await tx.query(`DELETE FROM task_instance WHERE id IN (${inList(ids)})`, ids);
    }
    // A cleared running try's worker still runs it until its kill grace ends: listed, so no compensation starts beside it.
    const cut = hits.filter((r) => r.state === TaskState.Running).map((r) => Number(r.id));
    if (cut.length > 0) await exec(tx, [abandonStatement(now, cut)]);
    await exec(tx, resetStatements(shape, hits));
    // Moved to the latest version: the cleared instances run as it defines them (Airflow's
    // refresh_from_task at the next try), not with the pool, queue or priority copied from the old one.
    if (switchTo) await exec(tx, specStatements(shape, String(runRow!.run_type), hits));
    // What a succeeded compensation undid is a new effect when done again: a new idempotency key
    // (key_epoch, migration 0032), or a provider deduplicating on it would hand back the refunded
    // charge, and deduplicate the next refund against the first. Retries and other clears keep it.
    const redone = hits.filter((r) => undone.has(r.task_id)).map((r) => Number(r.id));
    if (redone.length > 0) await tx.query(`UPDATE task_instance SET key_epoch = key_epoch + 1 WHERE id IN (${inList(redone)})`, redone);
    await tx.query(`DELETE FROM xcom WHERE dag_run_id = ? AND task_id IN (${inList(clearedTaskIds)})`, [dagRunId, ...clearedTaskIds]);
    // A cleared task runs from scratch: its durable steps are forgotten too. Not a compensation's,
    // nor a re-driven one's (keepSteps): it goes on as a retry would, so a refund or a charge
    // that went through is not made again.
    const forgotten = req.keepSteps ? [] : hits.filter((r) => !compensationIds.has(r.task_id)).map((r) => Number(r.id));
    if (forgotten.length > 0) await tx.query(`DELETE FROM task_step WHERE task_instance_id IN (${inList(forgotten)})`, forgotten);
    // A cleared wait starts afresh too: the signals its run received so far answered the earlier
    // attempt (one that came too late, a copy it never took); it takes only those sent from now on.
    const waits = req.keepSignals ? [] : hits.filter((r) => shape.byId.get(r.task_id)?.signal).map((r) => Number(r.id));
    if (waits.length > 0) await exec(tx, [forgetSignalsStatement(dagRunId, waits)]);

    // Counters of the cleared tasks and of their direct downstream tasks, from states as they are now.
    const stateAfter = new Map<string, string>();
    for (const r of rows) if (r.map_index === -1) stateAfter.set(r.task_id, clearedIds.has(Number(r.id)) ? TaskState.None : r.state);
    const affected = new Set(clearedTaskIds);
    for (const id of clearedTaskIds) for (const down of shape.byId.get(id)?.downstream ?? []) affected.add(down);
    await exec(tx, counterStatements(dagRunId, shape, [...affected], (id) => stateAfter.get(id)));

    const unfinished = rows.filter((r) => clearedIds.has(Number(r.id)) || !isTerminalTaskState(r.state)).length;
    const finished = runRow!.state === RunState.Success || runRow!.state === RunState.Failed;
    if (finished) {
      // A finished run restarts its clock (Airflow sets start_date on clear): its dagrunTimeout counts from now.
      // Resumed, it is compensating again (running, as when its compensation first started); a new attempt has no saga yet.
      await tx.query("UPDATE dag_run SET state = 'running', end_date = NULL, compensation = ?, unfinished_tasks = ?, start_date = ?, timeout_at = ? WHERE id = ?", [
        resume ? "running" : null,
        unfinished,
        now,
        runTimeoutAt(shape.dag, now),
        dagRunId,
      ]);
    } else {
      await tx.query(`UPDATE dag_run SET state = 'running', end_date = NULL, unfinished_tasks = ?${resume ? ", compensation = 'running'" : ""} WHERE id = ?`, [
        unfinished,
        dagRunId,
      ]);
    }

    // Re-evaluate with settle's own decision: one answer to "is this task ready?".
    const decided = await applyDecisions(tx, now, dagRunId, shape, [...affected].sort());
    result.queued.push(...decided.queued);
    if (decided.ended.length > 0) result.queued.push(...(await settle(tx, now, dagRunId, shape, decided.ended)).queued);

    // Cleared running tries no longer hold their pool slots (pool rows last).
    const freed = new Map<string, number>();
    for (const r of hits) if (r.state === TaskState.Running) freed.set(r.pool, (freed.get(r.pool) ?? 0) - Number(r.pool_slots));
    await exec(tx, occupancyStatements(freed));

    const [after] = await tx.query<RowDataPacket[]>(`SELECT id, state FROM task_instance WHERE id IN (${inList([...clearedIds])})`, [...clearedIds]);
    const stateById = new Map(after.map((r) => [Number(r.id), r.state as string]));
    for (const c of result.cleared) c.state = stateById.get(c.id) ?? c.state;
    const [[runAfter]] = await tx.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE id = ?", [dagRunId]);
    result.runState = runAfter!.state;
    result.run = runAfter!;
    return result;
  });
}

/** The state of each task of the run (its unmapped instance). */
function stateOf(rows: RowDataPacket[]): (taskId: string) => string | undefined {
  const states = new Map<string, string>();
  for (const r of rows) if (r.map_index === -1) states.set(r.task_id, r.state);
  return (taskId) => states.get(taskId);
}

/** The recorded outputs of the run's branch and short-circuit tasks that succeeded (what they decided). */
async function deciderOutputs(tx: Tx, dagRunId: number, shape: DagShape, rows: RowDataPacket[]): Promise<Map<string, unknown>> {
  const deciders = rows
    .filter((r) => r.map_index === -1 && r.state === TaskState.Success && ["branch", "short_circuit"].includes(shape.byId.get(r.task_id)?.kind ?? ""))
    .map((r) => r.task_id as string);
  if (deciders.length === 0) return new Map();
  const [xcoms] = await tx.query<RowDataPacket[]>(
    `SELECT task_id, value FROM xcom WHERE dag_run_id = ? AND map_index = -1 AND xcom_key = 'return_value' AND task_id IN (${inList(deciders)})`,
    [dagRunId, ...deciders],
  );
  return new Map(xcoms.map((x) => [x.task_id as string, x.value === null ? null : JSON.parse(x.value)]));
}

/**
 * Back to `none` with a fresh retry budget; one statement per distinct retries value. Retry and
 * deferral times go too: ix_ti_retry and ix_ti_deferred are keyed on them alone (migration 0019).
 * So does a sensor's first poke and poke count, as in Airflow: a cleared sensor's timeout counts
 * from its next poke (retries keep them: the timeout spans a sensor's tries).
 */
export function resetStatements(shape: DagShape, hits: RowDataPacket[]): Statement[] {
  return groupByValue(hits, (r) => shape.byId.get(r.task_id)?.retries ?? 0).map(({ value: retries, items }) => {
    const ids = items.map((r) => Number(r.id));
    return {
      sql: `UPDATE task_instance SET state = 'none', max_tries = try_number + ?, claim_token = NULL, hostname = NULL, pid = NULL,
                 heartbeat_at = NULL, queued_at = NULL, start_date = NULL, end_date = NULL, duration = NULL, next_retry_at = NULL,
                 next_check_at = NULL, deferred_on = NULL, error = NULL, first_poke_at = NULL, poke_count = 0
           WHERE id IN (${inList(ids)})`,
      params: [retries, ...ids],
    };
  });
}

/**
 * The columns a task instance copies from its task's definition when its run starts (startRuns
 * specColumnNames), set again from `shape` for the cleared rows (equal values share one UPDATE).
 * Its trigger rule and upstream count are the same in any version a clear may move a run to (it
 * has the same tasks, edges and rules).
 */
export function specStatements(shape: DagShape, runType: string, hits: RowDataPacket[]): Statement[] {
  const bySpec = groupByValue(hits, (r) => {
    const spec = shape.byId.get(r.task_id);
    return spec && specValues(spec, runType);
  });
  return bySpec.map(({ value, items }) => {
    const ids = items.map((r) => Number(r.id));
    return { sql: `UPDATE task_instance SET ${specColumnNames.map((column) => `${column} = ?`).join(", ")} WHERE id IN (${inList(ids)})`, params: [...value, ...ids] };
  });
}

/** Sets the up_* counters of the given tasks (ignoring ids the shape lacks); tasks with equal counts share one UPDATE. */
export function counterStatements(dagRunId: number, shape: DagShape, taskIds: string[], stateOf: (taskId: string) => string | undefined): Statement[] {
  const byCounts = groupByValue(taskIds, (taskId) => {
    if (!shape.byId.has(taskId)) return undefined;
    const c = upstreamCountsOf(shape, taskId, stateOf);
    return [c.success, c.skipped, c.failed, c.upstreamFailed, c.removed];
  });
  return byCounts.map(({ value: counts, items: ids }) => {
    ids.sort();
    return {
      sql: `UPDATE task_instance SET up_success = ?, up_skipped = ?, up_failed = ?, up_upstream_failed = ?, up_removed = ?
             WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(ids)})`,
      params: [...counts, dagRunId, ...ids],
    };
  });
}

async function exec(tx: Tx, statements: Statement[]): Promise<void> {
  for (const s of statements) await tx.query(s.sql, s.params);
}
