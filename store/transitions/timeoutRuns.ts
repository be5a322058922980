// timeoutRuns — fails running runs past their dagrunTimeout (timeout_at, set by startRuns from
// the run's pinned version) and ends their unfinished task instances: running ones `failed`
// with BATON_DAGRUN_TIMEOUT, the others (none, scheduled, queued, up_for_retry, deferred, …)
// `skipped`, as Airflow skips a timed-out run's unfinished tasks.
// finds: ix_dag_run_timeout (state, timeout_at), a range read without locks (EXPLAIN on
//   MariaDB 10.11: range, using index, no filesort).
// locks: the runs' unfinished task_instance rows (ix_ti_waiting: dag_run_id, state, deferred_on; read and
//   locked in that index's order, which the ORDER BY spells out: EXPLAIN range, no filesort), then the dag_run rows
//   (PK), then pool rows in name order — the order finishTries and settle lock in. Each run is
//   re-checked under its lock (still running, still past its deadline: a clear may have moved it).
// fence: a worker still running a failed try finds its row no longer `running` and its result
//   is discarded by finishTries as fenced. The try's process is not aborted here (its
//   ctx.signal is left to run cancellation); its pool slots are released here.
// saga: a run timed out before its saga started compensates, as a run that fails does: its
//   running tasks fail and the rest are skipped as above, then, when a task that declares
//   `compensate` succeeded, the run stays running with compensation "running" (it ends failed,
//   compensated or not, when the compensations are done) and its clock restarts: timeout_at = now
//   + dagrunTimeout, so the compensations get a whole dagrunTimeout of their own instead of being
//   cut off at once. A timeout is no operator's decision to leave work half done (a cancel without
//   compensate is), so a charge made before it is refunded. A run timed out while compensating ends
//   compensation_failed (endRuns); the timed-out compensation is a dead letter, and re-driving it
//   resumes the saga.
// unusable: a run whose version cannot be read (isUnusableVersion) times out all the same, with no
//   compensation (which tasks declare one cannot be read) and the reason in its note: reading the
//   versions of a batch used to fail on it at every tick, and no run timed out again.
// events: every one the timeout causes (the run's, its tasks') has the detail "timed out: the run
//   ran past its dagrunTimeout".
// outcomes: the runs failed (or now compensating), with how many task instances were failed and skipped.
import { runTimeoutAt, type DagShape } from "../../core/dagStructure.ts";
import { formatDuration } from "../../core/durations.ts";
import { RunState, TaskState, UNFINISHED_TASK_STATES } from "../../core/states.ts";
import { inList, type Db, type RowDataPacket, type Tx } from "../db.ts";
import { durationTo, endAt } from "../endDate.ts";
import { occupancyStatements } from "../pools.ts";
import { isUnusableVersion, unusableVersionNote } from "../versions.ts";
import { abandonStatement } from "./abandonedTries.ts";
import { startCompensation } from "./settle.ts";


export interface TimedOutRuns {
  /**
   * compensation: the run's saga compensation before it ended (null: none); compensating: the run
   * did not end but compensates (it ends failed when its compensations are done); previousState: its
   * state before it ended, read under its lock.
   */
  runs: { id: number; dagId: string; runId: string; previousState: string; compensation: string | null; compensating: boolean; unusable?: string }[];
  tasksFailed: number;
  tasksSkipped: number;
}

export async function timeoutRuns(db: Db, now: Date, shapeOf: (versionHash: string) => Promise<DagShape>, limit = 100): Promise<TimedOutRuns> {
  const [due] = await db.pool.query<RowDataPacket[]>(
    `SELECT id, version_hash FROM dag_run WHERE state = 'running' AND timeout_at <= ? ORDER BY timeout_at LIMIT ${Math.max(1, Math.floor(limit))}`,
    [now],
  );
  if (due.length === 0) return { runs: [], tasksFailed: 0, tasksSkipped: 0 };
  const runIds = due.map((r) => Number(r.id)).sort((a, b) => a - b);
  // Versions are read before the transaction: no lock is held while a shape loads.
  const shapes = new Map<number, DagShape>();
  const unusable = new Map<number, string>();
  for (const r of due) {
    try {
      shapes.set(Number(r.id), await shapeOf(r.version_hash));
    } catch (err) {
      if (!isUnusableVersion(err)) throw err;
      unusable.set(Number(r.id), unusableVersionNote(err));
    }
  }
  return db.withEventDetail("timed out: the run ran past its dagrunTimeout").tx(async (tx) => {
    const result = await endRuns(tx, now, runIds, {
      recheck: { sql: "state = 'running' AND timeout_at <= ?", params: [now] },
      compensate: shapes,
      // A clear with use_latest_version may have switched a run's version since: its shape (and
      // compensations) would be another's. Such a run is left to the next tick, read afresh.
      versions: new Map(due.map((r) => [Number(r.id), r.version_hash as string])),
      errorFor: (run) => {
        const timeoutMs = shapes.get(Number(run.id))?.dag.dagrunTimeoutMs;
        const limitText = timeoutMs != null ? formatDuration(timeoutMs) : run.start_date ? formatDuration(run.timeout_at.getTime() - run.start_date.getTime()) : "its limit";
        return {
          name: "DagRunTimeoutError",
          code: "BATON_DAGRUN_TIMEOUT",
          message: `dag run "${run.run_id}" of "${run.dag_id}" ran longer than its dagrunTimeout (${limitText}); the run was failed`,
          nonRetryable: true,
        };
      },
    });
    for (const run of result.runs) {
      const why = unusable.get(run.id);
      if (why === undefined) continue;
      // A run compensating already ends compensation_failed, as any (endRuns).
      const note = `this run timed out${run.compensation == null ? ", and no compensation could be started for it" : ""}: ${why}`;
      run.unusable = note;
      await tx.query("UPDATE dag_run SET note = CONCAT_WS('\\n', note, ?) WHERE id = ?", [note, run.id]);
    }
    return result;
  });
}

/**
 * Fails runs now (a timeout, a cancel): their running task instances fail with the given
 * error (their workers see the claim gone at the next heartbeat and abort ctx.signal), the
 * other unfinished ones are skipped, pool slots are released. Each run is re-checked under its
 * lock with `recheck`. A run that was compensating ends with compensation "compensation_failed":
 * the compensations it cut off were not done. A run in `how.compensate` (by id, with its shape)
 * whose saga had not started and that has a succeeded task to undo does not end: it compensates
 * (startCompensation), with its clock restarted.
 */
export async function endRuns(
  tx: Tx,
  now: Date,
  runIds: number[],
  how: {
    recheck: { sql: string; params: unknown[] };
    errorFor: (run: RowDataPacket) => Record<string, unknown>;
    compensate?: ReadonlyMap<number, DagShape>;
    /** The version each run had when `compensate` was read: a run on another one now is not ended here. */
    versions?: ReadonlyMap<number, string>;
  },
): Promise<TimedOutRuns> {
  if (runIds.length === 0) return { runs: [], tasksFailed: 0, tasksSkipped: 0 };
  const [tis] = await tx.query<RowDataPacket[]>(
    `SELECT id, dag_run_id, state, pool, pool_slots FROM task_instance
      WHERE dag_run_id IN (${inList(runIds)}) AND state IN (${inList(UNFINISHED_TASK_STATES)})
      ORDER BY dag_run_id, state, deferred_on, id FOR UPDATE`,
    [...runIds, ...UNFINISHED_TASK_STATES],
  );
  const [locked] = await tx.query<RowDataPacket[]>(
    `SELECT id, dag_id, run_id, state, start_date, timeout_at, compensation, version_hash FROM dag_run
      WHERE id IN (${inList(runIds)}) AND ${how.recheck.sql} ORDER BY id FOR UPDATE`,
    [...runIds, ...how.recheck.params],
  );
  const runs = how.versions ? locked.filter((r) => how.versions!.get(Number(r.id)) === r.version_hash) : locked;
  const result: TimedOutRuns = { runs: [], tasksFailed: 0, tasksSkipped: 0 };
  if (runs.length === 0) return result;
  const live = new Set(runs.map((r) => Number(r.id)));
  const freed = new Map<string, number>();
  const skip: number[] = [];
  for (const run of runs) {
    const running = tis.filter((t) => Number(t.dag_run_id) === Number(run.id) && t.state === TaskState.Running);
    if (running.length > 0) {
      const error = how.errorFor(run);
      const ids = running.map((t) => Number(t.id));
      const [end, duration] = [endAt(now), durationTo(now)];
      // Their workers abort them at their next heartbeat and kill them after the kill grace: listed
      // until then, so the compensations startCompensation adds below do not start beside them.
      const abandon = abandonStatement(now, ids);
      await tx.query(abandon.sql, abandon.params);
      await tx.query(
        `UPDATE task_instance SET state = 'failed', end_date = ${end.sql}, duration = ${duration.sql},
                error = ?, heartbeat_at = NULL, next_retry_at = NULL
          WHERE id IN (${inList(ids)})`,
        [...end.params, ...duration.params, JSON.stringify(error), ...ids],
      );
      for (const t of running) freed.set(t.pool, (freed.get(t.pool) ?? 0) - Number(t.pool_slots));
      result.tasksFailed += ids.length;
    }
    result.runs.push({ id: Number(run.id), dagId: run.dag_id, runId: run.run_id, previousState: run.state, compensation: run.compensation ?? null, compensating: false });
  }
  for (const t of tis) if (live.has(Number(t.dag_run_id)) && t.state !== TaskState.Running) skip.push(Number(t.id));
  if (skip.length > 0) {
    // Retry and deferral times go with the state: ix_ti_retry and ix_ti_deferred are keyed on
    // them alone (migration 0019), so a stale one would stay in those indexes for good.
    const end = endAt(now);
    await tx.query(
      `UPDATE task_instance SET state = 'skipped', start_date = COALESCE(start_date, ?), end_date = ${end.sql}, next_retry_at = NULL,
              next_check_at = NULL, deferred_on = NULL
        WHERE id IN (${inList(skip)})`,
      [now, ...end.params, ...skip],
    );
    result.tasksSkipped = skip.length;
  }
  for (const r of result.runs) {
    const shape = how.compensate?.get(r.id);
    if (!shape || r.compensation != null || shape.compensations.length === 0) continue;
    // Every task of the attempt has ended: the compensations startCompensation adds are all that is unfinished.
    await tx.query("UPDATE dag_run SET unfinished_tasks = 0 WHERE id = ?", [r.id]);
    if (await startCompensation(tx, now, r.id, shape)) {
      await tx.query("UPDATE dag_run SET timeout_at = ? WHERE id = ?", [runTimeoutAt(shape.dag, now), r.id]);
      r.compensating = true;
      live.delete(r.id);
    }
  }
  const failed = [...live];
  // A run ended while compensating did not undo everything it owed: its saga ended
  // compensation_failed (resumable: clear or re-drive the compensation that was cut off).
  if (failed.length > 0) {
    const end = endAt(now);
    await tx.query(
      `UPDATE dag_run SET state = ?, end_date = ${end.sql}, unfinished_tasks = 0, compensation = IF(compensation = 'running', 'compensation_failed', compensation)
        WHERE id IN (${inList(failed)})`,
      [RunState.Failed, ...end.params, ...failed],
    );
  }
  for (const s of occupancyStatements(freed)) await tx.query(s.sql, s.params);
  return result;
}
