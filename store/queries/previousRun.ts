// The previous run of a run, as dependsOnPast / waitForDownstream mean it. The one definition:
// the scheduler (releaseScheduled) and the API (…/taskInstances/{task_id}/dependencies) both ask
// here, so what the API says a task waits for is what the scheduler waits for.
import type { DagShape } from "../../core/dagStructure.ts";
import { dependsOnPastDep, type DepStatus } from "../../scheduler/deps/dependsOnPast.ts";
import { inList, type Queryable, type RowDataPacket } from "../db.ts";

export interface PreviousRun {
  id: number;
  runId: string;
}

/**
 * The run that comes before a run of logical date `logicalDate`: among the DAG's runs with the
 * latest logical date strictly before it (Airflow's get_previous_dagrun), the newest one not
 * replaced by a backfill (a replaced run is history: the backfill's run re-did its date), or the
 * newest replaced one when all of that date's runs were replaced (their replacing run deleted).
 * Runs of the same logical date never count: a re-run of a date (a backfill's, or a manual run
 * given that date) must not wait on the failed run it re-does. Null for the first run, or a run
 * without a logical date.
 *
 * One read on ix_dag_run_dag_logical (dag_id, logical_date): the MAX subquery is one index dive
 * (EXPLAIN: "Select tables optimized away"), then a ref on that date's rows; ordering all earlier
 * runs by (replaced, id) instead would sort every one of them.
 */
export async function previousRunOf(q: Queryable, dagId: string, logicalDate: Date | null): Promise<PreviousRun | null> {
  if (logicalDate === null) return null;
  const [rows] = await q.query<RowDataPacket[]>(
    `SELECT id, run_id FROM dag_run
      WHERE dag_id = ? AND logical_date = (SELECT MAX(logical_date) FROM dag_run WHERE dag_id = ? AND logical_date < ?)
      ORDER BY replaced_by_backfill_id IS NULL DESC, id DESC LIMIT 1`,
    [dagId, dagId, logicalDate],
  );
  return rows[0] ? { id: Number(rows[0].id), runId: rows[0].run_id as string } : null;
}

/**
 * dependsOnPast for one task of a run: reads the previous run (previousRunOf) and the states of
 * the task (and, with waitForDownstream, its direct downstream tasks) there. Plain reads.
 */
export async function dependsOnPastStatus(
  q: Queryable,
  run: { dagId: string; logicalDate: Date | null },
  taskId: string,
  shape: DagShape,
): Promise<DepStatus> {
  const spec = shape.byId.get(taskId);
  const previous = await previousRunOf(q, run.dagId, run.logicalDate);
  let previousState: string | undefined;
  // No prototype: a downstream task named "__proto__" is an own key like any other (assigned to a
  // plain object its state was dropped, and a failed one did not hold the task back).
  const downstreamStates: Record<string, string> = Object.create(null);
  if (previous) {
    const names = [taskId, ...(spec?.waitForDownstream ? spec.downstream : [])];
    const [states] = await q.query<RowDataPacket[]>(
      `SELECT task_id, state FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(names)})`,
      [previous.id, ...names],
    );
    for (const s of states) {
      if (s.task_id === taskId) previousState = s.state;
      else downstreamStates[s.task_id] = s.state;
    }
  }
  return dependsOnPastDep({
    previousRunId: previous?.runId ?? null,
    previousState,
    waitForDownstream: !!spec?.waitForDownstream,
    previousDownstreamStates: downstreamStates,
  });
}
