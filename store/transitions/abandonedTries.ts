// abandonedTries — tries ended from outside while their worker may still run their code, and the
// gate that keeps a saga's compensations from starting beside them (migration 0033).
// A cancel or run timeout (endRuns), a mark (setTaskState) or a clear (clearTasks) of a running try
// ends it in the database at once; its worker learns so at its next heartbeat, aborts ctx.signal
// and kills the process only after its kill grace. Each such try is listed in abandoned_try (with
// the worker's id, its claim token) in the transaction that ends it, and a compensation of its run
// is held in `scheduled` (not queued, so no claim takes it) while any try of the run is listed:
// settle, startCompensation, finishTries' hand-off, setTaskState and clearTasks all make ready
// tasks ready through readyToQueue below; releaseScheduled queues a held compensation once its run
// lists none. Temporal likewise waits for a cancelled activity to end before compensating.
// A row goes when its process has ended: the worker deletes it (releaseAbandoned: a lost try whose
// process exited, one that never started, a result fenced because its try had been ended), or a
// scheduler does (releaseDeadWorkers) when the worker sent no process heartbeat within the task
// heartbeat timeout, as a zombie's worker is presumed dead.
// cost: only the cancel / mark / clear / compensation paths pay; a try's claim and finish send no
// statement more (finishTries reads the gate only when a compensation becomes ready).
// locks: the rows inserted (PK); the gate reads by ix_abandoned_try_run without locks (READ
//   COMMITTED: a row a worker deletes meanwhile leaves a compensation held until the next tick's
//   releaseScheduled, never the other way round, as rows are only inserted with the run's tries locked).
import type { DagShape } from "../../core/dagStructure.ts";
import type { WindingDownTry } from "../../scheduler/deps/windingDown.ts";
import { inList, type Queryable, type ResultSetHeader, type RowDataPacket, type Statement, type Tx } from "../db.ts";

/**
 * Lists the tries of `ids` still running, with their worker, as abandoned: to run (their rows
 * locked) before the statement that ends them, which clears or keeps their claim token.
 */
export function abandonStatement(now: Date, ids: readonly number[]): Statement {
  return {
    sql: `INSERT IGNORE INTO abandoned_try (task_instance_id, try_number, dag_run_id, worker_id, abandoned_at)
          SELECT id, try_number, dag_run_id, claim_token, ? FROM task_instance
           WHERE id IN (${inList(ids)}) AND state = 'running' AND claim_token IS NOT NULL`,
    params: [now, ...ids],
  };
}

/** The runs among `dagRunIds` with a try still winding down (listed in abandoned_try). */
export async function runsWithAbandonedTries(q: Queryable, dagRunIds: readonly number[]): Promise<Set<number>> {
  if (dagRunIds.length === 0) return new Set();
  const [rows] = await q.query<RowDataPacket[]>(`SELECT DISTINCT dag_run_id FROM abandoned_try WHERE dag_run_id IN (${inList(dagRunIds)})`, [...dagRunIds]);
  return new Set(rows.map((r) => Number(r.dag_run_id)));
}

export function isCompensation(shape: DagShape, taskId: string): boolean {
  return shape.byId.get(taskId)?.kind === "compensate";
}

/**
 * Whether a task made ready is held in `scheduled` rather than queued: one depending on its
 * previous run (releaseScheduled decides), or a compensation while a try of its run winds down.
 */
export function holdsWhenReady(shape: DagShape, taskId: string, runWindingDown: boolean): boolean {
  return shape.byId.get(taskId)?.dependsOnPast === true || (runWindingDown && isCompensation(shape, taskId));
}

/**
 * Of a run's ready task instances (decideDownstream), those to queue and those to hold in
 * `scheduled`: a task depending on its previous run (releaseScheduled decides), and a compensation
 * while a try of its run still winds down. The gate is read only when a compensation is ready.
 */
export async function readyToQueue(tx: Tx, dagRunId: number, shape: DagShape, ready: readonly RowDataPacket[]): Promise<{ queue: number[]; hold: number[] }> {
  const waiting = ready.some((r) => isCompensation(shape, r.task_id)) && (await runsWithAbandonedTries(tx, [dagRunId])).has(dagRunId);
  const queue: number[] = [];
  const hold: number[] = [];
  for (const r of ready) (holdsWhenReady(shape, r.task_id, waiting) ? hold : queue).push(Number(r.id));
  return { queue, hold };
}

/**
 * A worker's tries whose process has ended (or never started): their rows go, so the saga of
 * their run may go on. Fenced by the worker's id and each try's number. Returns the rows deleted.
 */
export async function releaseAbandoned(db: Queryable, workerId: string, tries: readonly { id: number; tryNumber: number }[]): Promise<number> {
  if (tries.length === 0) return 0;
  const [result] = await db.query<ResultSetHeader>(
    `DELETE FROM abandoned_try WHERE worker_id = ? AND (task_instance_id, try_number) IN (${tries.map(() => "(?, ?)").join(", ")})`,
    [workerId, ...tries.flatMap((t) => [t.id, t.tryNumber])],
  );
  return result.affectedRows;
}

/**
 * Rows of workers without a process heartbeat since `cutoff` (killed, frozen, stopped: a clean
 * stop deletes its process row): their tries' processes are presumed dead, as zombies' are.
 * Returns the rows deleted. Cheap when the table is empty, as it nearly always is.
 */
export async function releaseDeadWorkers(db: Queryable, cutoff: Date): Promise<number> {
  const [result] = await db.query<ResultSetHeader>(
    `DELETE a FROM abandoned_try a LEFT JOIN baton_process p ON p.id = a.worker_id AND p.heartbeat_at >= ? WHERE p.id IS NULL`,
    [cutoff],
  );
  return result.affectedRows;
}

/** The run's listed tries, for GET …/dependencies (windingDownDep): their task, and their worker while its process row is there. */
export async function abandonedTriesOf(q: Queryable, dagRunId: number): Promise<WindingDownTry[]> {
  const [rows] = await q.query<RowDataPacket[]>(
    `SELECT ti.task_id, a.try_number, p.hostname, p.pid FROM abandoned_try a
       LEFT JOIN task_instance ti ON ti.id = a.task_instance_id LEFT JOIN baton_process p ON p.id = a.worker_id
      WHERE a.dag_run_id = ? ORDER BY a.abandoned_at, a.task_instance_id, a.try_number`,
    [dagRunId],
  );
  return rows.map((r) => ({ taskId: r.task_id ?? null, tryNumber: Number(r.try_number), hostname: r.hostname ?? null, pid: r.pid == null ? null : Number(r.pid) }));
}
