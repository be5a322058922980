// signals — durable external events that resume tasks waiting in `deferred`.
// sendSignal: stores the signal (idempotent on signal_id, ux_signal_id) and, in the same
//   transaction, completes the task of that run waiting for it (ix_ti_waiting), if any.
//   A signal_id the run already holds answers that signal (duplicate) if name and payload are
//   the same, else BATON_IDEMPOTENCY_CONFLICT; a finished run is checked for the id first, so a
//   retry of the signal that finished it is a duplicate too, not BATON_DAG_RUN_FINISHED.
// deliverPendingSignal: a task that just deferred takes a signal that arrived before it
//   waited (ix_signal_pending), so no signal is ever lost.
// forgetSignalsStatement: a cleared wait starts afresh. It records the run's last signal id
//   (task_instance.signals_after) and takes only later signals: one the earlier attempt got too
//   late, or a copy it never took, is not delivered to the new attempt, while another task that
//   waits for the same name still gets it. Run under the dag_run row's lock, which sendSignal
//   takes before it inserts, so no signal is in flight; READ COMMITTED sees every one committed.
// timeoutDeferred: deferred tasks whose next_check_at passed (ix_ti_deferred, SKIP LOCKED)
//   fail (or, with tries left, go up_for_retry), skip or succeed as their onTimeout says; a page at a time, oldest due first, leaving
//   out those an earlier page of the same pass could not end (their run's version unreadable):
//   else they would fill every page while they stay due, and the waits after them never end.
// locks: the waiting task_instance row, then the signal row, then what settle() locks.
// events: a wait ended by sendSignal, and what that causes, has the detail `signal "<name>"
//   (signal_id "<id>")` (the signal it took, which may be one kept from before it waited); one
//   ended by timeoutDeferred `no "<name>" signal within its timeout (onTimeout: <fail|skip|succeed>)`.
//   Set in the round trip of the wait's UPDATE (eventDetailStatement). A kept signal a task takes as
//   it defers (deliverPendingSignal, inside finishTries) sets none: that path adds no statement.
// outcomes: the completed task settles like any other, in the same transaction.
import type { DagShape, SerializedTask } from "../../core/dagStructure.ts";
import { nextRetryAt, shouldRetry } from "../../scheduler/retryPolicy.ts";
import { BatonError } from "../../core/errors.ts";
import { sameJson } from "../../core/json.ts";
import { TaskState } from "../../core/states.ts";
import { eventDetailStatement, inList, runAll, type Db, type ResultSetHeader, type RowDataPacket, type Statement, type Tx } from "../db.ts";
import { durationTo, endAt } from "../endDate.ts";
import { runNotFoundError } from "../queries/read.ts";
import { isDuplicateKey } from "../rows.ts";
import { isUnusableVersion, unusableVersionNote } from "../versions.ts";
import type { UnusableRun } from "./failUnusableRuns.ts";
import { settle, type SettleResult } from "./settle.ts";
import { epilogueStatement, owedCallbackStatement } from "./tryCallbacks.ts";
import type { TryError } from "./finishTries.ts";
import { owedCallback } from "../../scheduler/owedCallbacks.ts";

export const SIGNAL_PAYLOAD_CAP_BYTES = 64 * 1024;

/**
 * Ends a deferred try as `state` (up_for_retry with `retryAt`), whether it still waits; `detail`:
 * the events' detail from here to the end of the transaction, set in the UPDATE's round trip.
 * next_retry_at is NULL while a try waits (its claim cleared it).
 */
async function endWait(
  tx: Tx,
  now: Date,
  ti: RowDataPacket,
  state: "success" | "failed" | "skipped" | "up_for_retry",
  error: Record<string, unknown> | null,
  detail: string | undefined,
  retryAt: Date | null = null,
): Promise<boolean> {
  const [end, duration] = [endAt(now), durationTo(now)];
  const update: Statement = {
    sql: `UPDATE task_instance SET state = ?, end_date = ${end.sql}, duration = ${duration.sql}, next_retry_at = ?, error = ?,
            deferred_on = NULL, next_check_at = NULL
      WHERE id = ? AND state = 'deferred'`,
    params: [state, ...end.params, ...duration.params, retryAt, error ? JSON.stringify(error) : null, ti.id],
  };
  const results = await runAll(tx, detail === undefined ? [update] : [eventDetailStatement(tx, detail), update]);
  return (results[results.length - 1] as ResultSetHeader).affectedRows === 1;
}

/** Ends a deferred task: success with the payload as its output, or as its timeout says. */
async function endDeferred(
  tx: Tx,
  now: Date,
  ti: RowDataPacket,
  shape: DagShape,
  state: "success" | "failed" | "skipped",
  output: { payloadText: string | null } | null,
  error: Record<string, unknown> | null,
  detail?: string,
): Promise<SettleResult | null> {
  if (!(await endWait(tx, now, ti, state, error, detail))) return null;
  if (output) {
    await tx.query(
      `INSERT INTO xcom (dag_run_id, task_id, map_index, xcom_key, value, created_at) VALUES (?, ?, ?, 'return_value', ?, ?)
       ON DUPLICATE KEY UPDATE value = VALUES(value), created_at = VALUES(created_at)`,
      [ti.dag_run_id, ti.task_id, ti.map_index, output.payloadText ?? "null", now],
    );
  }
  return settle(tx, now, Number(ti.dag_run_id), shape, [{ taskId: ti.task_id, state }]);
}

/**
 * Ends a deferred try that timed out as failed with tries left: up_for_retry at its retry delay
 * (queueRetries queues it then), settling nothing downstream.
 */
async function retryDeferred(tx: Tx, now: Date, ti: RowDataPacket, spec: SerializedTask, error: Record<string, unknown>, detail: string): Promise<boolean> {
  const retryAt = nextRetryAt(now, spec, { dagId: ti.dag_id, taskId: ti.task_id, logicalDate: ti.logical_date }, Number(ti.try_number));
  return endWait(tx, now, ti, TaskState.UpForRetry, error, detail, retryAt);
}

/**
 * A try the scheduler ended as failed owes the task's onRetry (retried) or onFailure callback, as
 * its own process would have run it (the try is over; a worker of its queue runs it: see
 * executor/tryCallbacks.ts), with a line at the end of its log saying why it ended, as a reaped
 * zombie's does.
 */
async function oweFailureCallback(
  tx: Tx,
  now: Date,
  ti: RowDataPacket,
  spec: SerializedTask | undefined,
  state: typeof TaskState.UpForRetry | typeof TaskState.Failed,
  error: Record<string, unknown>,
): Promise<void> {
  const callback = owedCallback(spec, state);
  const key = { taskInstanceId: Number(ti.id), tryNumber: Number(ti.try_number) };
  const line =
    `[${now.toISOString()}] ERROR - ${String(error.message)} (${String(error.code)}); the try was marked ${state} by the scheduler` +
    (callback ? `; its ${callback} callback runs on a live worker` : "") +
    "\n";
  const statements = [epilogueStatement(now, [{ ...key, text: line }])];
  if (callback) statements.push(owedCallbackStatement(now, [{ ...key, queue: String(ti.queue), callback, error: error as unknown as TryError }]));
  await runAll(tx, statements);
}

/** The oldest signal of that name no task took, among those sent after the task was last cleared (ti.signals_after). */
async function consumeOldest(tx: Tx, now: Date, dagRunId: number, name: string, ti: RowDataPacket): Promise<RowDataPacket | undefined> {
  const tiId = Number(ti.id);
  const [signals] = await tx.query<RowDataPacket[]>(
    `SELECT id, signal_id, payload FROM run_signal WHERE dag_run_id = ? AND name = ? AND consumed_by IS NULL AND id > ? ORDER BY id LIMIT 1 FOR UPDATE`,
    [dagRunId, name, ti.signals_after],
  );
  const signal = signals[0];
  if (signal) await tx.query("UPDATE run_signal SET consumed_by = ?, consumed_at = ? WHERE id = ?", [tiId, now, signal.id]);
  return signal;
}

export async function deliverPendingSignal(tx: Tx, now: Date, tiId: number, shape: DagShape): Promise<SettleResult> {
  const [rows] = await tx.query<RowDataPacket[]>(
    "SELECT id, dag_run_id, task_id, map_index, deferred_on, signals_after FROM task_instance WHERE id = ? AND state = 'deferred' FOR UPDATE",
    [tiId],
  );
  const ti = rows[0];
  if (!ti?.deferred_on) return { queued: [] };
  const signal = await consumeOldest(tx, now, Number(ti.dag_run_id), ti.deferred_on, ti);
  if (!signal) return { queued: [] };
  return (await endDeferred(tx, now, ti, shape, "success", { payloadText: signal.payload }, null)) ?? { queued: [] };
}

export interface SignalRequest {
  dagId: string;
  runId: string;
  name: string;
  signalId?: string;
  payload?: unknown;
}

export interface SignalResult {
  signalId: string | null;
  duplicate: boolean;
  /** The task that received it, or null if none waits yet (it is kept for the first one that does). */
  deliveredTo: string | null;
  queued: number[];
}

/**
 * The answer to a signal whose signal_id the run already recorded, or null if it has none:
 * the same name and payload (keys in any order) is a duplicate that changes nothing, as
 * Idempotency-Key with the same body; another name or payload is a 409, as with another body.
 */
async function recordedSignal(tx: Tx, dagRunId: number, req: SignalRequest): Promise<SignalResult | null> {
  if (req.signalId === undefined) return null;
  const [rows] = await tx.query<RowDataPacket[]>(
    "SELECT s.name, s.payload, ti.task_id FROM run_signal s LEFT JOIN task_instance ti ON ti.id = s.consumed_by WHERE s.dag_run_id = ? AND s.signal_id = ?",
    [dagRunId, req.signalId],
  );
  const prior = rows[0];
  if (!prior) return null;
  const differs = prior.name !== req.name ? `signal "${prior.name}"` : !sameJson(prior.payload, req.payload) ? `signal "${prior.name}" with another payload` : null;
  if (differs) {
    throw new BatonError(
      "BATON_IDEMPOTENCY_CONFLICT",
      `signal_id "${req.signalId}" was already used in DAG run "${req.runId}" of DAG "${req.dagId}" by ${differs}; use a new signal_id for another signal`,
    );
  }
  return { signalId: req.signalId, duplicate: true, deliveredTo: prior.task_id ?? null, queued: [] };
}

/** sendSignal's transaction found the run on another version than the one read before it (a clear with use_latest_version in between). */
const VERSION_MOVED = Symbol("version moved");

export async function sendSignal(db: Db, now: Date, req: SignalRequest, shapeOf: (versionHash: string) => Promise<DagShape>): Promise<SignalResult> {
  // Twice at most: a run changes version only by a clear with use_latest_version, an operator's act.
  for (let attempt = 0; ; attempt++) {
    const result = await sendSignalOnce(db, now, req, shapeOf);
    if (result !== VERSION_MOVED) return result;
    if (attempt >= 1) throw new BatonError("BATON_DATABASE_BUSY", `DAG run "${req.runId}" changed version while the signal was sent; retry`);
  }
}

async function sendSignalOnce(
  db: Db,
  now: Date,
  req: SignalRequest,
  shapeOf: (versionHash: string) => Promise<DagShape>,
): Promise<SignalResult | typeof VERSION_MOVED> {
  const payloadText = JSON.stringify(req.payload ?? null);
  if (Buffer.byteLength(payloadText) > SIGNAL_PAYLOAD_CAP_BYTES) {
    throw new BatonError("BATON_PAYLOAD_TOO_LARGE", `signal payload is ${Buffer.byteLength(payloadText)} bytes; the cap is ${SIGNAL_PAYLOAD_CAP_BYTES}`);
  }
  // The shape is loaded before the transaction: loading it inside would hold one pool
  // connection while waiting for another, and a burst of signals on a cold cache would
  // exhaust the pool and hang. The transaction checks, under the run's lock, that the run is
  // still on this version (a clear with use_latest_version moves it), and starts again if not.
  const [found] = await db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_run WHERE dag_id = ? AND run_id = ?", [req.dagId, req.runId]);
  const shape = found[0] ? await shapeOf(found[0].version_hash) : undefined;
  // A name no task of the run's version waits for could never be delivered (a run keeps its
  // version unless an operator moves it to the latest): refused, not stored to wait for ever (a
  // typo looked like "kept").
  const awaited = shape ? [...new Set([...shape.byId.values()].flatMap((t) => (t.signal ? [t.signal.name] : [])))].sort() : undefined;
  if (awaited && !awaited.includes(req.name)) {
    throw new BatonError(
      "BATON_SIGNAL_NOT_AWAITED",
      `no task of DAG "${req.dagId}" (the version run "${req.runId}" is pinned to) waits for signal "${req.name}"; ` +
        (awaited.length > 0 ? `it waits for: ${awaited.join(", ")}` : "it has no waitForSignal task"),
    );
  }
  return db.tx(async (tx) => {
    const [runs] = await tx.query<RowDataPacket[]>("SELECT id, state, version_hash FROM dag_run WHERE dag_id = ? AND run_id = ? FOR UPDATE", [req.dagId, req.runId]);
    const run = runs[0];
    if (!run) throw await runNotFoundError(tx, req.dagId, req.runId);
    if (found[0] && run.version_hash !== found[0].version_hash) return VERSION_MOVED;
    if (run.state === "success" || run.state === "failed") {
      // A sender retrying the signal that finished the run (or any it sent before) is told so.
      const recorded = await recordedSignal(tx, Number(run.id), req);
      if (recorded) return recorded;
      throw new BatonError("BATON_DAG_RUN_FINISHED", `DAG run "${req.runId}" has already finished (state ${run.state}); it takes no more signals`, {
        state: run.state,
      });
    }
    try {
      await tx.query("INSERT INTO run_signal (dag_run_id, name, signal_id, payload, created_at) VALUES (?, ?, ?, ?, ?)", [
        run.id,
        req.name,
        req.signalId ?? null,
        payloadText,
        now,
      ]);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      // The signal_id again: already stored (and perhaps delivered). The INSERT is tried first,
      // so a new signal costs no extra read.
      const recorded = await recordedSignal(tx, Number(run.id), req);
      if (!recorded) throw err;
      return recorded;
    }
    // A task whose timeout has passed timed out, even if no scheduler has ended it yet (one was
    // down): the signal came too late for it and stays stored, as one sent before a task waits.
    const [waiting] = await tx.query<RowDataPacket[]>(
      `SELECT id, dag_run_id, task_id, map_index, signals_after FROM task_instance
        WHERE dag_run_id = ? AND state = 'deferred' AND deferred_on = ? AND (next_check_at IS NULL OR next_check_at > ?)
        ORDER BY id LIMIT 1 FOR UPDATE`,
      [run.id, req.name, now],
    );
    const ti = waiting[0];
    if (!ti) return { signalId: req.signalId ?? null, duplicate: false, deliveredTo: null, queued: [] };
    // The oldest one it may take: one kept from before it was cleared is not (see consumeOldest).
    const signal = await consumeOldest(tx, now, Number(run.id), req.name, ti);
    const signalId = signal ? (signal.signal_id as string | null) : (req.signalId ?? null);
    const detail = `signal ${JSON.stringify(req.name)}${signalId === null ? "" : ` (signal_id ${JSON.stringify(signalId)})`}`;
    const outcome = await endDeferred(tx, now, ti, shape!, "success", { payloadText: signal?.payload ?? payloadText }, null, detail);
    return { signalId: req.signalId ?? null, duplicate: false, deliveredTo: ti.task_id, queued: outcome?.queued ?? [] };
  });
}

/**
 * Cleared waits start afresh: they take only the signals their run receives from now on (see the
 * header). Run with the dag_run row locked. A re-drive, which goes on where the task stopped,
 * does not use it (ClearRequest.keepSignals).
 */
export function forgetSignalsStatement(dagRunId: number, tiIds: number[]): Statement {
  return {
    sql: `UPDATE task_instance SET signals_after = (SELECT COALESCE(MAX(s.id), 0) FROM run_signal s WHERE s.dag_run_id = ?)
           WHERE id IN (${inList(tiIds)})`,
    params: [dagRunId, ...tiIds],
  };
}

/**
 * Deferred tasks whose timeout passed end as their onTimeout says; returns how many. One of a run
 * whose version cannot be read (isUnusableVersion) stays deferred, its run returned in `unusable`
 * for the caller to fail (failUnusableRuns): its onTimeout and downstream tasks cannot be known.
 */
/**
 * One page of due waits ended. `scanned`: the due rows it locked (a page shorter than `limit` was
 * the last); `notEnded`: the ids of those it could not end, for the next page to leave out.
 */
export async function timeoutDeferred(
  db: Db,
  now: Date,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  { limit = 500, leaveOut = [] }: { limit?: number; leaveOut?: readonly number[] } = {},
): Promise<{ scanned: number; ended: number; queued: number; unusable: UnusableRun[]; notEnded: number[] }> {
  const none = { scanned: 0, ended: 0, queued: 0, unusable: [], notEnded: [] };
  // Shapes first, outside the transaction (see sendSignal).
  const [versions] = await db.pool.query<RowDataPacket[]>(
    `SELECT DISTINCT r.version_hash FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
      WHERE ti.state = 'deferred' AND ti.next_check_at <= ?`,
    [now],
  );
  if (versions.length === 0) return none;
  const shapes = new Map<string, DagShape>();
  const unreadable = new Map<string, string>();
  for (const v of versions) {
    try {
      shapes.set(v.version_hash, await shapeOf(v.version_hash));
    } catch (err) {
      if (!isUnusableVersion(err)) throw err;
      unreadable.set(v.version_hash, unusableVersionNote(err));
    }
  }
  return db.tx(async (tx) => {
    const [due] = await tx.query<RowDataPacket[]>(
      // Index forced for the reason queueRetries gives: a filesort plan locks every due row, not the LIMIT.
      `SELECT id FROM task_instance FORCE INDEX (ix_ti_deferred) WHERE state = 'deferred' AND next_check_at <= ?
        ${leaveOut.length > 0 ? `AND id NOT IN (${inList(leaveOut)})` : ""}
        ORDER BY next_check_at LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED`,
      [now, ...leaveOut],
    );
    if (due.length === 0) return none;
    const ids = due.map((r) => Number(r.id));
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.task_id, ti.map_index, ti.deferred_on, ti.try_number, ti.max_tries, ti.queue, r.version_hash, r.logical_date
         FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.id IN (${inList(ids)})`,
      ids,
    );
    let ended = 0;
    let queued = 0;
    const unusable: UnusableRun[] = [];
    const notEnded: number[] = [];
    for (const ti of rows) {
      const note = unreadable.get(ti.version_hash);
      if (note !== undefined) {
        const reason = `this run was failed: the timeout of its task "${ti.task_id}", waiting for signal "${ti.deferred_on}", could not be applied; ${note}`;
        unusable.push({ id: Number(ti.dag_run_id), versionHash: ti.version_hash, reason });
        notEnded.push(Number(ti.id));
        continue;
      }
      const shape = shapes.get(ti.version_hash);
      if (!shape) {
        notEnded.push(Number(ti.id)); // deferred after the shapes were read: next tick
        continue;
      }

      const spec = shape.byId.get(ti.task_id);
      const onTimeout = spec?.signal?.onTimeout ?? "fail";
      const state = onTimeout === "succeed" ? TaskState.Success : onTimeout === "skip" ? TaskState.Skipped : TaskState.Failed;
      // A timeout that fails the wait is a failure like any other: retried while tries are left,
      // as Airflow retries a deferral's timeout (the next try waits afresh).
      const retry = state === TaskState.Failed && !!spec && shouldRetry(Number(ti.try_number), Number(ti.max_tries), false);
      const error =
        state === TaskState.Failed
          ? {
              name: "SignalTimeoutError",
              code: "BATON_SIGNAL_TIMEOUT",
              message: `no "${ti.deferred_on}" signal arrived before the timeout${retry ? "; the try counts as failed and will be retried" : ""}`,
            }
          : null;
      const detail = `no ${JSON.stringify(ti.deferred_on)} signal within its timeout (onTimeout: ${onTimeout}${retry ? ", retried" : ""})`;
      if (retry) {
        if (await retryDeferred(tx, now, ti, spec!, error!, detail)) {
          ended++;
          await oweFailureCallback(tx, now, ti, spec, TaskState.UpForRetry, error!);
        } else notEnded.push(Number(ti.id));
        continue;
      }
      const outcome = await endDeferred(tx, now, ti, shape, state, state === TaskState.Success ? { payloadText: null } : null, error, detail);
      if (outcome) {
        ended++;
        queued += outcome.queued.length;
        if (state === TaskState.Failed) await oweFailureCallback(tx, now, ti, spec, TaskState.Failed, error!);
      } else notEnded.push(Number(ti.id));
    }
    return { scanned: due.length, ended, queued, unusable, notEnded };
  });
}
