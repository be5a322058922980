// deleteDag — DELETE /dags/{id}: removes a DAG's metadata in one transaction: its runs with their
// task instances, outputs, durable steps, reschedules, signals and event log rows, its backfills,
// its versions and the dag row (the caller removes its log folder after the commit: the DAG parsed
// again repeats its scheduled run ids). Like Airflow, if the DAG's file still
// defines it, the DAG comes back (with no history) at the next parse — the file's content hash is
// forgotten so the DAG processor parses it again. Bundled code (dag_code) is shared by hash with
// other DAGs of the file and other versions, and stays. The import error of the file, if any,
// belongs to the file and stays too.
// The transaction is proportional to the DAG's history; for a very long history, `baton db clean`
// first removes old finished runs in small batches.
// refuses: a DAG with a `running` task instance (BATON_TASKS_RUNNING, Airflow's 409 "still running"):
//   a worker holds it and its pool slots. Queued task instances are locked here, so no worker can
//   claim them meanwhile (claims SKIP LOCKED), and deleted.
// locks: the DAG's queued/running task_instance rows (ix_ti_dag_pool prefix; ORDER BY state, id sorts them), its dag_run rows
//   (ix_dag_run_dag_id), the dag row (PK) — task rows before runs before the dag, the order claims,
//   settle and startRuns lock in — its dag_version rows (triggers share-lock the one they pin),
//   then the queued/running task rows again (READ COMMITTED takes no
//   gap locks: startRuns may have created some while this waited) and its backfill rows.
//   The scheduler skips a locked dag row (createScheduledRuns: SKIP LOCKED).
// outcomes: the counts deleted; BATON_DAG_NOT_FOUND; BATON_TASKS_RUNNING.
import { BatonError } from "../../core/errors.ts";
import { TaskState } from "../../core/states.ts";
import { inList, longerStatementTimeout, type Db, type RowDataPacket } from "../db.ts";
import { deleteRunRows, type DeletedRuns } from "./deleteDagRun.ts";

/**
 * Its DELETEs grow with the DAG's history, so they get longer than the usual statement timeout
 * (BATON_DB_STATEMENT_TIMEOUT) before a silent server counts as stalled; with that set to 0 (no
 * limit) they have none either.
 */
export const DELETE_DAG_STATEMENT_TIMEOUT_MS = 10 * 60_000;

export async function deleteDag(db: Db, dagId: string): Promise<DeletedRuns> {
  return db.withStatementTimeout(longerStatementTimeout(db.statementTimeoutMs, DELETE_DAG_STATEMENT_TIMEOUT_MS)).tx(async (tx) => {
    const lockActiveTasks = () =>
      tx.query<RowDataPacket[]>(
        "SELECT id, run_id, task_id, state FROM task_instance WHERE dag_id = ? AND state IN ('queued', 'running') ORDER BY state, id FOR UPDATE",
        [dagId],
      );
    const lockRuns = async () => {
      const [rows] = await tx.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE dag_id = ? ORDER BY id FOR UPDATE", [dagId]);
      return rows.map((r) => Number(r.id));
    };
    await lockActiveTasks();
    const runIds = await lockRuns();
    const [dags] = await tx.query<RowDataPacket[]>("SELECT dag_id, fileloc FROM dag WHERE dag_id = ? FOR UPDATE", [dagId]);
    if (!dags[0]) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
    // A trigger (createDagRun) inserts its run under a shared lock on the pinned version: from
    // here on none can start, and the runs of those that held one are seen by the last look below.
    await tx.query("SELECT id FROM dag_version WHERE dag_id = ? ORDER BY id FOR UPDATE", [dagId]);
    const [active] = await lockActiveTasks();
    const running = active.filter((t) => t.state === TaskState.Running);
    if (running.length > 0) {
      const some = running.slice(0, 5).map((t) => `${t.run_id}/${t.task_id}`);
      throw new BatonError(
        "BATON_TASKS_RUNNING",
        `DAG "${dagId}" has ${running.length} running task instance(s) (${some.join(", ")}); ` +
          "pause it and cancel its runs (PATCH …/dagRuns/{id} state=failed) or wait for them to finish, then delete it",
      );
    }
    const [[count]] = await tx.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ?", [dagId]);
    const [backfills] = await tx.query<RowDataPacket[]>("SELECT id FROM backfill WHERE dag_id = ? ORDER BY id FOR UPDATE", [dagId]);
    const backfillIds = backfills.map((b) => Number(b.id));
    await deleteRunRows(tx, runIds);
    // A backfill may have created a run while this waited for its row: those go too.
    const late = await lockRuns();
    await deleteRunRows(tx, late);
    if (backfillIds.length > 0) {
      await tx.query(`DELETE FROM backfill_date WHERE backfill_id IN (${inList(backfillIds)})`, backfillIds);
      await tx.query(`DELETE FROM backfill WHERE id IN (${inList(backfillIds)})`, backfillIds);
    }
    await tx.query("DELETE FROM dag_version WHERE dag_id = ?", [dagId]);
    await tx.query("DELETE FROM dag WHERE dag_id = ?", [dagId]);
    await tx.query("UPDATE dag_file SET content_hash = REPEAT('0', 64) WHERE fileloc = ?", [dags[0].fileloc]);
    return { runs: runIds.length + late.length, taskInstances: Number(count!.n) };
  });
}
