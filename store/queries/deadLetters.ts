// Dead letters: task instances that ended `failed` with no try left (their retries exhausted
// or a non-retryable error), across every DAG, newest first. Not what an operator failed: a task
// of a cancelled run (BATON_DAG_RUN_CANCELLED) or one marked failed (TaskMarkedFailed) did not
// fail at its work, and re-driving it would undo the operator's decision. Nor a task of a run
// whose saga started (dag_run.compensation set) other than its compensations: its failure is
// handled by the saga, which undoes (or undid) the attempt; re-driving it would redo work that
// was undone (charge a refunded order again). That run's failed compensations are dead letters.
// Compensations are told by their reserved `__compensate` suffix (the parser refuses a task that
// takes the name of one): a task merely named so in a DAG without that saga stays listed.
import type { Queryable, RowDataPacket } from "../db.ts";
import { limitOffset } from "./paging.ts";

export interface DeadLetterFilter {
  dagId?: string;
  ids?: number[];
}

/** With sagaHandled: the task instances that would be dead letters but for their run's saga. */
function where(f: DeadLetterFilter, sagaHandled = false): { sql: string; params: unknown[] } {
  const inSaga =
    "ti.task_id NOT LIKE '%\\_\\_compensate' AND EXISTS (SELECT 1 FROM dag_run dr WHERE dr.id = ti.dag_run_id AND dr.compensation IS NOT NULL)";
  const clauses = [
    "ti.state = 'failed'",
    "COALESCE(JSON_VALUE(ti.error, '$.code'), '') <> 'BATON_DAG_RUN_CANCELLED'",
    "COALESCE(JSON_VALUE(ti.error, '$.name'), '') <> 'TaskMarkedFailed'",
    sagaHandled ? inSaga : `NOT (${inSaga})`,
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
      ${limitOffset(page)}`,
    w.params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM task_instance ti WHERE ${w.sql}`, w.params);
  return { rows, total: Number(count!.n) };
}

/** The task instances named by id (within the filter) that are no dead letters only because their run's saga handles their failure. */
export async function sagaHandledFailures(db: Queryable, f: DeadLetterFilter): Promise<RowDataPacket[]> {
  if (!f.ids?.length) return [];
  const w = where(f, true);
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id FROM task_instance ti WHERE ${w.sql} ORDER BY ti.id`, w.params);
  return rows;
}
