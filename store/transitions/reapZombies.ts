// reapZombies — running tries whose worker stopped heartbeating (killed, frozen, its host
// gone, cut off from the database) are handed to their retry policy, as Airflow's scheduler
// does with zombies: up_for_retry with next_retry_at (queueRetries queues them), or failed
// when out of tries, settled through settle() so downstream tasks and the run move on.
// finds + locks: running task_instance rows with heartbeat_at older than the timeout, via
//   ix_ti_zombie (state, heartbeat_at): equality on state, a range on heartbeat_at, ORDER BY
//   heartbeat_at matching the index, LIMIT a batch, FOR UPDATE SKIP LOCKED — several
//   schedulers split the zombies, and a row a worker is finishing or heartbeating right now is
//   skipped, not waited for (EXPLAIN, MariaDB 10.11: range on ix_ti_zombie, no filesort).
//   Then (settle, failed tries only) their downstream rows (ux_task_instance) and dag_run rows
//   (PK); pool rows last, in name order — the order finishTries, handBack and timeoutRuns lock in.
//   The runs' version and logical date are read without locks (immutable for a running run).
// fence: each row is updated only if still `running` with the try_number and claim_token read
//   under its lock. Afterwards the worker's claim is gone: a late result matches nothing in
//   finishTries (fenced, discarded) and its next heartbeat tells it to abort the try.
// outcomes: the tries moved to up_for_retry and to failed (error BATON_TASK_ZOMBIE), with the
//   runs a failure finished; every reaped try's pool slots are released. In the same
//   transaction each reaped try gets the reason at the end of its log (task_log.epilogue: the
//   dead worker's file is out of reach) and, when its task has one, the onRetry / onFailure it
//   owes (task_callback), which a live worker runs (see tryCallbacks.ts).
// events: each reaped try's says why (detail: "zombie: worker <host> pid <pid> sent no heartbeat
//   for 45s, over the 30s timeout"); those its failure causes (downstream tasks, the run) say a
//   zombie was reaped. Set in the batch of updates (eventDetailStatement): no round trip more.
// refused: when the database refuses the batch for a value (isDataError: e.g. a compensation
//   task of a DAG version stored before ids were bounded, created when a reaped try fails its
//   run), each try is reaped again in a transaction of its own, so the one at fault cannot keep
//   the others from being reaped (nor fail every scheduler tick); the tries refused alone are
//   left running, untouched, and returned in `refused` for the caller to set aside (leaveOut)
//   and try again later, as a worker parks a result refused even as BATON_RESULT_UNRECORDABLE.
//   Another error partway through that pass throws ReapInterrupted, which carries what was reaped
//   and committed before it.
// unusable: tries of a run whose DAG version cannot be read (isUnusableVersion: nothing downstream
//   can be settled without it) are left running, without failing the others' transaction; their
//   runs are returned in `unusable` for the caller to fail (failUnusableRuns, which fails the tries
//   with BATON_DAG_VERSION_UNUSABLE and frees their pool slots), and the tries in `unusableTries`.
import type { DagShape } from "../../core/dagStructure.ts";
import { formatDuration } from "../../core/durations.ts";
import { TaskState } from "../../core/states.ts";
import { nextRetryAt, shouldRetry } from "../../scheduler/retryPolicy.ts";
import { owedCallback, type OwedCallback } from "../../scheduler/owedCallbacks.ts";
import { workerName, zombieLogLine } from "../../scheduler/zombieEnding.ts";
import { eventDetailStatement, inList, isDataError, runAll, type Db, type ResultSetHeader, type RowDataPacket, type Statement, type Tx } from "../db.ts";
import { durationTo, endAt } from "../endDate.ts";
import { occupancyStatements } from "../pools.ts";
import type { TryError } from "./finishTries.ts";
import { isUnusableVersion, unusableVersionNote } from "../versions.ts";
import type { UnusableRun } from "./failUnusableRuns.ts";
import { settle } from "./settle.ts";
import { epilogueStatement, owedCallbackStatement } from "./tryCallbacks.ts";

export interface ReapedTry {
  id: number;
  dagId: string;
  runId: string;
  taskId: string;
  tryNumber: number;
  hostname: string | null;
  pid: number | null;
  heartbeatAt: Date;
  state: "up_for_retry" | "failed";
  /** The task callback the try owes, recorded for a worker to run; null when its task has none. */
  callback: OwedCallback | null;
}

/** A zombie the database refused to reap even alone: still running, untouched. */
export interface UnreapedTry {
  id: number;
  dagId: string;
  runId: string;
  taskId: string;
  tryNumber: number;
  /** The database refused what reaping it writes. */
  code: "BATON_RESULT_UNRECORDABLE";
  reason: string;
}

export interface ReapedZombies {
  reaped: ReapedTry[];
  runsFinished: { dagRunId: number; state: "success" | "failed" }[];
  refused: UnreapedTry[];
  /** Runs of zombies whose DAG version cannot be read (one entry per run), for failUnusableRuns. */
  unusable: UnusableRun[];
  /** Those zombies (ids), left running. */
  unusableTries: number[];
  /** Zombies read (reaped or refused): fewer than the limit means no more are waiting. */
  scanned: number;
}

/**
 * Reaps up to `limit` zombies, the oldest heartbeat first, leaving out the tries in `leaveOut`
 * (refused before and set aside by the caller).
 */
export async function reapZombies(
  db: Db,
  now: Date,
  timeoutMs: number,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  limit = 100,
  leaveOut: readonly number[] = [],
): Promise<ReapedZombies> {
  const cutoff = new Date(now.getTime() - timeoutMs);
  let batch: RowDataPacket[] = [];
  let batchError: unknown;
  try {
    return await db.tx((tx) => reapIn(tx, now, timeoutMs, shapeOf, () => selectBatch(tx, cutoff, limit, leaveOut), (rows) => (batch = rows)));
  } catch (err) {
    if (!isDataError(err) || batch.length === 0) throw err;
    batchError = err;
  }
  // Refused for a value of some try: each alone, in its own transaction (only on this rare path).
  const result: ReapedZombies = { reaped: [], runsFinished: [], refused: [], unusable: [], unusableTries: [], scanned: batch.length };
  for (const row of batch) {
    try {
      // A batch of one was refused alone already.
      if (batch.length === 1) throw batchError;
      const alone = await db.tx((tx) => reapIn(tx, now, timeoutMs, shapeOf, () => selectOne(tx, cutoff, Number(row.id))));
      result.reaped.push(...alone.reaped);
      result.runsFinished.push(...alone.runsFinished);
      result.refused.push(...alone.refused);
      result.unusable.push(...alone.unusable);
      result.unusableTries.push(...alone.unusableTries);
    } catch (err) {
      if (!isDataError(err)) throw new ReapInterrupted(result, err);
      result.refused.push(unreapedTry(row, "BATON_RESULT_UNRECORDABLE", `the database refused what its failure writes: ${(err as Error).message}`));
    }
  }
  return result;
}

/**
 * An error other than a refused value (the database unreachable, say) stopped the one-by-one pass
 * of a refused batch: `partial` is what was reaped and committed before it (reaped, runsFinished,
 * refused, unusable), for the caller to report before it handles `cause` as it would have.
 */
export class ReapInterrupted extends Error {
  constructor(
    readonly partial: ReapedZombies,
    cause: unknown,
  ) {
    super(`reaping zombies one by one stopped after ${partial.reaped.length} reaped: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "ReapInterrupted";
  }
}

function unreapedTry(row: RowDataPacket, code: UnreapedTry["code"], reason: string): UnreapedTry {
  return { id: Number(row.id), dagId: row.dag_id, runId: row.run_id, taskId: row.task_id, tryNumber: Number(row.try_number), code, reason };
}

const ZOMBIE_COLUMNS = `id, dag_run_id, dag_id, run_id, task_id, try_number, max_tries, claim_token, hostname, pid, pool, pool_slots, queue,
              heartbeat_at, start_date`;

function selectBatch(tx: Tx, cutoff: Date, limit: number, leaveOut: readonly number[]): Promise<RowDataPacket[]> {
  return tx
    .query<RowDataPacket[]>(
      `SELECT ${ZOMBIE_COLUMNS}
         FROM task_instance WHERE state = 'running' AND heartbeat_at < ?${leaveOut.length > 0 ? ` AND id NOT IN (${inList(leaveOut)})` : ""}
        ORDER BY heartbeat_at LIMIT ${Math.max(1, Math.floor(limit))} FOR UPDATE SKIP LOCKED`,
      [cutoff, ...leaveOut],
    )
    .then(([rows]) => rows);
}

/** One zombie of a refused batch, if it still is one. */
function selectOne(tx: Tx, cutoff: Date, id: number): Promise<RowDataPacket[]> {
  return tx
    .query<RowDataPacket[]>(`SELECT ${ZOMBIE_COLUMNS} FROM task_instance WHERE id = ? AND state = 'running' AND heartbeat_at < ? FOR UPDATE SKIP LOCKED`, [id, cutoff])
    .then(([rows]) => rows);
}

/** Reaps the zombies `select` locks, in `tx`; `onRows` learns which they are before anything is written. */
async function reapIn(
  tx: Tx,
  now: Date,
  timeoutMs: number,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  select: () => Promise<RowDataPacket[]>,
  onRows?: (rows: RowDataPacket[]) => void,
): Promise<ReapedZombies> {
  const rows = await select();
  onRows?.(rows);
  const result: ReapedZombies = { reaped: [], runsFinished: [], refused: [], unusable: [], unusableTries: [], scanned: rows.length };
  if (rows.length === 0) return result;
  const runIds = [...new Set(rows.map((r) => Number(r.dag_run_id)))].sort((a, b) => a - b);
  const [runs] = await tx.query<RowDataPacket[]>(`SELECT id, version_hash, logical_date FROM dag_run WHERE id IN (${inList(runIds)})`, runIds);
  const runOf = new Map(runs.map((r) => [Number(r.id), r]));
  const shapes = new Map<number, DagShape>();
  // Runs whose version cannot be read: their tries cannot be settled here, so their runs are returned to be failed.
  const unreadable = new Map<number, { versionHash: string; note: string }>();
  for (const r of runs) {
    try {
      shapes.set(Number(r.id), await shapeOf(r.version_hash));
    } catch (err) {
      if (!isUnusableVersion(err)) throw err;
      unreadable.set(Number(r.id), { versionHash: r.version_hash, note: unusableVersionNote(err) });
    }
  }

  const statements: Statement[] = [];
  const planned: { row: RowDataPacket; state: "up_for_retry" | "failed"; error: TryError; callback: OwedCallback | null }[] = [];
  for (const row of [...rows].sort((a, b) => Number(a.id) - Number(b.id))) {
    const version = unreadable.get(Number(row.dag_run_id));
    if (version) {
      // The run's first zombie (in id order) names it in the reason.
      if (!result.unusable.some((u) => u.id === Number(row.dag_run_id))) {
        const reason = `this run was failed: its task "${row.task_id}" stopped heartbeating and could not be reaped; ${version.note}`;
        result.unusable.push({ id: Number(row.dag_run_id), versionHash: version.versionHash, reason });
      }
      result.unusableTries.push(Number(row.id));
      continue;
    }
    const run = runOf.get(Number(row.dag_run_id));
    const spec = shapes.get(Number(row.dag_run_id))?.byId.get(row.task_id);
    const tryNumber = Number(row.try_number);
    const heartbeatAt = row.heartbeat_at as Date;
    const retry = !!spec && shouldRetry(tryNumber, Number(row.max_tries), false);
    const state = retry ? TaskState.UpForRetry : TaskState.Failed;
    const retryAt = retry ? nextRetryAt(now, spec!, { dagId: row.dag_id, taskId: row.task_id, logicalDate: run?.logical_date }, tryNumber) : null;
    const worker = workerName({ hostname: row.hostname ?? null, pid: row.pid ?? null });
    const error: TryError = {
      name: "TaskZombieError",
      code: "BATON_TASK_ZOMBIE",
      message:
        `try ${tryNumber} of ${row.dag_id}.${row.task_id} (run ${row.run_id}): its worker (${worker}) sent no heartbeat for ` +
        `${formatDuration(now.getTime() - heartbeatAt.getTime())}, longer than the ${formatDuration(timeoutMs)} timeout; ` +
        (retry ? "the try counts as failed and will be retried" : "the try counts as failed and the task has no tries left"),
    };
    const [end, duration] = [endAt(now), durationTo(now)];
    const age = formatDuration(now.getTime() - heartbeatAt.getTime());
    statements.push(eventDetailStatement(tx, `zombie: worker ${worker} sent no heartbeat for ${age}, over the ${formatDuration(timeoutMs)} timeout`), {
      sql: `UPDATE task_instance SET state = ?, end_date = ${end.sql}, duration = ${duration.sql}, next_retry_at = ?, error = ?, heartbeat_at = NULL
             WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
      params: [state, ...end.params, ...duration.params, retryAt, JSON.stringify(error), row.id, tryNumber, row.claim_token],
    });
    planned.push({ row, state, error, callback: owedCallback(spec, state) });
  }
  if (statements.length === 0) return result;
  // What the failures cause (downstream tasks, runs ended) is annotated as caused by a zombie.
  statements.push(eventDetailStatement(tx, `after a zombie was reaped (no heartbeat for over ${formatDuration(timeoutMs)})`));
  // One round trip for every try's update (each after its event detail).
  const updates = ((await runAll(tx, statements)) as ResultSetHeader[]).filter((_, i) => i % 2 === 1);

  const freed = new Map<string, number>();
  const failedByRun = new Map<number, string[]>();
  const endings: Statement[] = [];
  const logLines: { taskInstanceId: number; tryNumber: number; text: string }[] = [];
  const owed: Parameters<typeof owedCallbackStatement>[1] = [];
  planned.forEach(({ row, state, error, callback }, i) => {
    // Locked and re-checked above, so every update matches; anything else is left alone.
    if (updates[i]?.affectedRows !== 1) return;
    freed.set(row.pool, (freed.get(row.pool) ?? 0) - Number(row.pool_slots));
    if (state === TaskState.Failed) failedByRun.set(Number(row.dag_run_id), [...(failedByRun.get(Number(row.dag_run_id)) ?? []), row.task_id]);
    result.reaped.push({
      id: Number(row.id),
      dagId: row.dag_id,
      runId: row.run_id,
      taskId: row.task_id,
      tryNumber: Number(row.try_number),
      hostname: row.hostname ?? null,
      pid: row.pid === null || row.pid === undefined ? null : Number(row.pid),
      heartbeatAt: row.heartbeat_at,
      state,
      callback,
    });
    const key = { taskInstanceId: Number(row.id), tryNumber: Number(row.try_number) };
    const z = { hostname: row.hostname ?? null, pid: row.pid ?? null, heartbeatAt: row.heartbeat_at as Date, state };
    logLines.push({ ...key, text: zombieLogLine(now, z, timeoutMs, callback) });
    if (callback) owed.push({ ...key, queue: row.queue, callback, error });
  });
  // The reason and the owed callbacks: one round trip, only for the tries actually reaped.
  if (logLines.length > 0) endings.push(epilogueStatement(now, logLines));
  if (owed.length > 0) endings.push(owedCallbackStatement(now, owed));
  if (endings.length > 0) await tx.query(endings.map((s) => s.sql).join(";\n"), endings.flatMap((s) => s.params ?? []));
  for (const [dagRunId, taskIds] of [...failedByRun].sort(([a], [b]) => a - b)) {
    const shape = shapes.get(dagRunId);
    if (!shape) continue; // a task instance whose run row is gone: nothing downstream to settle
    const outcome = await settle(tx, now, dagRunId, shape, taskIds.sort().map((taskId) => ({ taskId, state: TaskState.Failed })));
    if (outcome.runState) result.runsFinished.push({ dagRunId, state: outcome.runState });
  }
  for (const s of occupancyStatements(freed)) await tx.query(s.sql, s.params);
  return result;
}
