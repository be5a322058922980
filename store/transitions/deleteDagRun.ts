// deleteDagRun — DELETE …/dagRuns/{id}: removes one run with everything that hangs off it (task
// instances, outputs, durable steps, reschedules, signals, event log rows), in one transaction.
// Its log folder is removed by the caller after the commit (api/routes/dagRuns.ts): a run created
// again under the same run_id must not read or append to the deleted run's files. A backfill's
// date that created the run keeps its row.
// refuses: a run with a `running` task instance (BATON_TASKS_RUNNING): a worker holds it and its
//   pool slots; cancel the run first (PATCH state=failed). Queued task instances are deleted:
//   their rows are locked here, so no worker can claim them meanwhile (claims SKIP LOCKED).
// locks: the run's task_instance rows (ux_task_instance: range on dag_run_id), then the dag_run
//   row (PK) — the order settle and clearTasks lock in — then the task rows again: startRuns may
//   have inserted them while this waited on the run row (READ COMMITTED takes no gap locks).
// outcomes: the counts deleted; BATON_DAG_RUN_NOT_FOUND (BATON_DAG_NOT_FOUND without the DAG); BATON_TASKS_RUNNING.
import { BatonError } from "../../core/errors.ts";
import { TaskState } from "../../core/states.ts";
import { inList, type Db, type RowDataPacket, type Tx } from "../db.ts";
import { runNotFoundError } from "../queries/read.ts";

export interface DeletedRuns {
  runs: number;
  taskInstances: number;
}

export async function deleteDagRun(db: Db, dagId: string, runId: string): Promise<DeletedRuns> {
  const [found] = await db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  if (!found[0]) throw await runNotFoundError(db.pool, dagId, runId);
  const id = Number(found[0].id);
  return db.tx(async (tx) => {
    const lockTasks = () =>
      tx.query<RowDataPacket[]>("SELECT id, task_id, state FROM task_instance WHERE dag_run_id = ? ORDER BY task_id, map_index FOR UPDATE", [id]);
    await lockTasks();
    const [runs] = await tx.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE id = ? FOR UPDATE", [id]);
    if (!runs[0]) throw await runNotFoundError(tx, dagId, runId);
    const [tasks] = await lockTasks();
    const running = tasks.filter((t) => t.state === TaskState.Running).map((t) => t.task_id as string);
    if (running.length > 0) {
      throw new BatonError(
        "BATON_TASKS_RUNNING",
        `DAG run "${runId}" of DAG "${dagId}" has ${running.length} running task instance(s) (${running.slice(0, 5).join(", ")}); ` +
          "cancel the run (PATCH state=failed) or wait for them to finish, then delete it",
      );
    }
    await deleteRunRows(tx, [id]);
    return { runs: 1, taskInstances: tasks.length };
  });
}

/** Run ids per statement: keeps each IN list and each statement's lock set small. */
const CHUNK = 500;

/**
 * Deletes the given runs and their dependent rows; the caller holds their locks. Plain id lists
 * (no IN-subqueries, which MariaDB 10.11 runs as a scan in a DELETE); each statement uses an index
 * that starts with dag_run_id / task_instance_id (EXPLAIN: ref/range, no full scans).
 */
export async function deleteRunRows(tx: Tx, runIds: number[]): Promise<void> {
  for (let i = 0; i < runIds.length; i += CHUNK) {
    const ids = runIds.slice(i, i + CHUNK);
    const list = inList(ids);
    await tx.query(`DELETE s FROM task_step s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, ids);
    await tx.query(`DELETE s FROM task_reschedule s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, ids);
    await tx.query(`DELETE s FROM task_log s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, ids);
    await tx.query(`DELETE s FROM task_callback s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id IN (${list})`, ids);
    for (const table of ["xcom", "run_signal", "event_log", "task_instance"]) {
      await tx.query(`DELETE FROM ${table} WHERE dag_run_id IN (${list})`, ids);
    }
    await tx.query(`DELETE FROM dag_run WHERE id IN (${list})`, ids);
  }
}
