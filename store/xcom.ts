import type { Queryable, RowDataPacket } from "./db.ts";
import { parseJsonText } from "./rows.ts";

/** return_value XComs of the given tasks, per run: one statement for a whole claim batch. */
export async function upstreamOutputs(
  db: Queryable,
  wanted: { dagRunId: number; taskIds: string[] }[],
): Promise<Map<number, Record<string, unknown>>> {
  const result = new Map<number, Record<string, unknown>>();
  const clauses: string[] = [];
  const params: unknown[] = [];
  for (const w of wanted) {
    result.set(w.dagRunId, {});
    if (w.taskIds.length === 0) continue;
    clauses.push(`(dag_run_id = ? AND task_id IN (${w.taskIds.map(() => "?").join(", ")}))`);
    params.push(w.dagRunId, ...w.taskIds);
  }
  if (clauses.length === 0) return result;
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT dag_run_id, task_id, value FROM xcom WHERE map_index = -1 AND xcom_key = 'return_value' AND (${clauses.join(" OR ")})`,
    params,
  );
  for (const r of rows) result.get(Number(r.dag_run_id))![r.task_id] = parseJsonText(r.value, null);
  return result;
}
