// Dead letters: task instances that ended `failed` with no try left (their retries exhausted
// or a non-retryable error), across every DAG, newest first. Not what an operator failed: a task
// of a cancelled run (BATON_DAG_RUN_CANCELLED) or one marked failed (TaskMarkedFailed) did not
// fail at its work, and re-driving it would undo the operator's decision. Nor a task of a run
// whose saga started (dag_run.compensation set) other than its compensations: its failure is
// handled by the saga, which undoes (or undid) the attempt; re-driving it would redo work that
// was undone (charge a refunded order again). That run's failed compensations are dead letters.
// Compensations are told by their reserved `__compensate` suffix (the parser refuses a task that
// takes the name of one): a task merely named so in a DAG without that saga stays listed.
// Nor a task of a run a backfill replaced (dag_run.replaced_by_backfill_id): the backfill re-ran
// its date, so the run is history; re-driving it would run the date a second time beside the run
// that replaced it (README: "never doubled").
import type { Queryable, RowDataPacket } from "../db.ts";
import { limitOffset } from "./paging.ts";

export interface DeadLetterFilter {
  dagId?: string;
  ids?: number[];
}

/**
 * The dead letters; with "saga": the task instances that would be dead letters but for their
 * run's saga; with "replaced": those that would be but for a backfill that replaced their run.
 */
function where(f: DeadLetterFilter, but: "none" | "saga" | "replaced" = "none"): { sql: string; params: unknown[] } {
  const inSaga =
    "ti.task_id NOT LIKE '%\\_\\_compensate' AND EXISTS (SELECT 1 FROM dag_run dr WHERE dr.id = ti.dag_run_id AND dr.compensation IS NOT NULL)";
  const replaced = "EXISTS (SELECT 1 FROM dag_run dr WHERE dr.id = ti.dag_run_id AND dr.replaced_by_backfill_id IS NOT NULL)";
  const clauses = [
    "ti.state = 'failed'",
    "COALESCE(JSON_VALUE(ti.error, '$.code'), '') <> 'BATON_DAG_RUN_CANCELLED'",
    "COALESCE(JSON_VALUE(ti.error, '$.name'), '') <> 'TaskMarkedFailed'",
    but === "saga" ? inSaga : `NOT (${inSaga})`,
    but === "replaced" ? replaced : `NOT ${replaced}`,
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
  const w = where(f, "saga");
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id FROM task_instance ti WHERE ${w.sql} ORDER BY ti.id`, w.params);
  return rows;
}

/**
 * The task instances named by id (within the filter) that are no dead letters only because a
 * backfill replaced their run, each with the current run of its date (current_run_id: the one
 * holding ux_dag_run_automated's key; null when it was deleted).
 */
export async function replacedRunFailures(db: Queryable, f: DeadLetterFilter): Promise<RowDataPacket[]> {
  if (!f.ids?.length) return [];
  const w = where(f, "replaced");
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id, r.replaced_by_backfill_id, cur.run_id AS current_run_id
       FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
       LEFT JOIN dag_run cur ON cur.dag_id = r.dag_id AND cur.automated_logical_date = r.logical_date
      WHERE ${w.sql} ORDER BY ti.id`,
    w.params,
  );
  return rows;
}

/**
 * Why a task instance named by id is no dead letter (where()'s clauses, in its order): "not_found",
 * no task instance has the id (or it was deleted); "other_dag", it is of another DAG than the
 * re-drive's dag_id; "not_failed", its state is not failed; "failed_by_operator", a cancel or a
 * mark failed it; "compensating", its run's saga handles its failure; "replaced", a backfill
 * replaced its run; "changed", it is one now but was not when the re-drive read the dead letters
 * (it failed meanwhile): a re-drive again takes it.
 */
export type NotDeadLetterReason = "not_found" | "other_dag" | "not_failed" | "failed_by_operator" | "compensating" | "replaced" | "changed";
export const NOT_DEAD_LETTER_REASONS: readonly NotDeadLetterReason[] = ["not_found", "other_dag", "not_failed", "failed_by_operator", "compensating", "replaced", "changed"];

export interface NotDeadLetter {
  id: number;
  dag_id: string | null;
  run_id: string | null;
  task_id: string | null;
  state: string | null;
  reason: NotDeadLetterReason;
}

/**
 * The ids of `f.ids` not in `listed` (the dead letters the re-drive chose), in the order first
 * named (duplicates once), each with why it is no dead letter, as its row reads now.
 */
export async function notDeadLetters(db: Queryable, f: DeadLetterFilter, listed: ReadonlySet<number>): Promise<NotDeadLetter[]> {
  const ids = [...new Set(f.ids ?? [])].filter((id) => !listed.has(id));
  if (ids.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.state,
            JSON_VALUE(ti.error, '$.code') AS error_code, JSON_VALUE(ti.error, '$.name') AS error_name,
            dr.compensation, dr.replaced_by_backfill_id
       FROM task_instance ti JOIN dag_run dr ON dr.id = ti.dag_run_id
      WHERE ti.id IN (${ids.map(() => "?").join(", ")})`,
    ids,
  );
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return ids.map((id) => {
    const r = byId.get(id);
    if (!r) return { id, dag_id: null, run_id: null, task_id: null, state: null, reason: "not_found" as const };
    const reason: NotDeadLetterReason =
      f.dagId !== undefined && r.dag_id !== f.dagId
        ? "other_dag"
        : r.state !== "failed"
          ? "not_failed"
          : r.error_code === "BATON_DAG_RUN_CANCELLED" || r.error_name === "TaskMarkedFailed"
            ? "failed_by_operator"
            : r.compensation != null && !String(r.task_id).endsWith("__compensate")
              ? "compensating"
              : r.replaced_by_backfill_id != null
                ? "replaced"
                : "changed";
    return { id, dag_id: r.dag_id, run_id: r.run_id, task_id: r.task_id, state: r.state ?? null, reason };
  });
}
