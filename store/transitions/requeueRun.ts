// requeueRun — PATCH …/dagRuns/{id} state=queued: the run starts over. Airflow re-queues a run by
// clearing it; here that is clearTasks over every task of the run's pinned version (one
// transaction, its locks and fence): each task instance goes back to `none` with a fresh retry
// budget (a running try is fenced), outputs and durable steps are forgotten, roots are queued at
// once. Because its task instances already exist, the run goes straight back to `running`
// (startRuns only starts runs without task instances); a run still `queued` is left as it is.
// Compensation tasks are not among the tasks cleared: in a run whose saga ended, the clear is a
// new attempt (clearTasks), whose compensation task instances go and whose tasks a compensation
// undid get a new idempotency key epoch; a new failure compensates again.
// outcomes: the clear's result; BATON_DAG_NOT_FOUND; BATON_DAG_RUN_NOT_FOUND.
import type { DagShape } from "../../core/dagStructure.ts";
import type { Db, RowDataPacket } from "../db.ts";
import { runNotFoundError } from "../queries/read.ts";
import { clearTasks, type ClearResult } from "./clearTasks.ts";

export async function requeueRun(
  db: Db,
  now: Date,
  dagId: string,
  runId: string,
  shapeOf: (versionHash: string) => Promise<DagShape>,
): Promise<ClearResult> {
  const [runs] = await db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  if (!runs[0]) throw await runNotFoundError(db.pool, dagId, runId);
  const shape = await shapeOf(runs[0].version_hash);
  const taskIds = shape.dag.tasks.filter((t) => t.kind !== "compensate").map((t) => t.taskId);
  return clearTasks(db.withEventDetail(`re-run (state set to queued) by ${db.actor}`), now, { dagId, runId, taskIds }, shapeOf);
}
