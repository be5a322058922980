// redriveDeadLetters — clears dead-letter task instances (and their downstream tasks) so they run
// again, one clearTasks transaction per run, each run on its pinned version. A run whose saga's
// compensation failed has two kinds of dead letters: the task that failed the run and the failed
// compensation. Chosen together, the compensation is resumed (preferCompensation) and the task
// stays a dead letter: a saga owes its compensations first, and a new attempt would delete them.
import type { DagShape } from "../../core/dagStructure.ts";
import type { Db, RowDataPacket } from "../db.ts";
import { listDeadLetters, type DeadLetterFilter } from "../queries/deadLetters.ts";
import { clearTasks } from "./clearTasks.ts";

export async function redriveDeadLetters(
  db: Db,
  now: Date,
  filter: DeadLetterFilter,
  dryRun: boolean,
  shapeOf: (versionHash: string) => Promise<DagShape>,
): Promise<{ letters: RowDataPacket[]; redriven: number }> {
  const { rows } = await listDeadLetters(db.pool, filter, { limit: 10_000, offset: 0 });
  const byRun = new Map<string, { dagId: string; runId: string; taskIds: string[] }>();
  for (const r of rows) {
    const key = `${r.dag_id}\u0000${r.run_id}`;
    const entry = byRun.get(key) ?? { dagId: r.dag_id as string, runId: r.run_id as string, taskIds: [] as string[] };
    entry.taskIds.push(r.task_id as string);
    byRun.set(key, entry);
  }
  let redriven = 0;
  for (const run of byRun.values()) {
    const result = await clearTasks(db, now, { dagId: run.dagId, runId: run.runId, taskIds: run.taskIds, onlyFailed: true, includeDownstream: true, dryRun, preferCompensation: true }, shapeOf);
    redriven += result.cleared.filter((c) => run.taskIds.includes(c.taskId)).length;
  }
  return { letters: rows, redriven };
}
