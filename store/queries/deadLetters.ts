// Dead letters: task instances that ended `failed` with no try left (their retries exhausted
// or a non-retryable error), across every DAG, newest first. Not what an operator failed: a task
// of a cancelled run (BATON_DAG_RUN_CANCELLED) or one marked failed (TaskMarkedFailed) did not
// fail at its work, and re-driving it would undo the operator's decision.
import type { Queryable, RowDataPacket } from "../db.ts";

export interface DeadLetterFilter {
  dagId?: string;
  ids?: number[];
}

function where(f: DeadLetterFilter): { sql: string; params: unknown[] } {
  const clauses = [
    "ti.state = 'failed'",
    "COALESCE(JSON_VALUE(ti.error, '$.code'), '') <> 'BATON_DAG_RUN_CANCELLED'",
    "COALESCE(JSON_VALUE(ti.error, '$.name'), '') <> 'TaskMarkedFailed'",
  ];
  const params: unknown[] = [];
  if (f.dagId !== undefined) {
    clauses.push("ti.dag_id = ?");
    params.push(f.dagId);
  }
  if (f.ids?.length) {
    clauses.push(`ti.id IN (${f.ids.map(() => "?").join(", ")})`);
    params.push(...f.ids);
  }
  return { sql: clauses.join(" AND "), params };
}

export async function listDeadLetters(db: Queryable, f: DeadLetterFilter, page: { limit: number; offset: number }) {
  const w = where(f);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.end_date, ti.error, ti.hostname
       FROM task_instance ti WHERE ${w.sql} ORDER BY ti.end_date DESC, ti.id DESC
      LIMIT ${Math.floor(page.limit)} OFFSET ${Math.floor(page.offset)}`,
    w.params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM task_instance ti WHERE ${w.sql}`, w.params);
  return { rows, total: Number(count!.n) };
}
