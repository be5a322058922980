// Durable steps (ctx.step results) of one task instance, for GET …/taskInstances/{task_id}/steps.
// Index: ix_step_recorded (task_instance_id, created_at) + the primary key's step_name, which
// serves the filter and the order (migration 0017): recorded order, step_name breaking ties.
import type { Queryable, RowDataPacket } from "../db.ts";
import { limitOffset } from "./paging.ts";

export interface StepRow {
  step_name: string;
  try_number: number;
  /** The JSON text of the result; null when it is over maxValueBytes (value_bytes says how big). */
  value: string | null;
  value_bytes: number;
  created_at: Date;
}

/**
 * A page of a task instance's steps and their count. Values longer than maxValueBytes are
 * left in the database (a step may return up to BATON_XCOM_MAX_BYTES, and a page 1,000 steps).
 */
export async function listTaskSteps(
  db: Queryable,
  taskInstanceId: number,
  p: { limit: number; offset: number; maxValueBytes: number },
): Promise<{ rows: StepRow[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT step_name, try_number, IF(LENGTH(value) <= ?, value, NULL) AS value, COALESCE(LENGTH(value), 0) AS value_bytes, created_at
       FROM task_step WHERE task_instance_id = ? ORDER BY created_at, step_name
      ${limitOffset(p)}`,
    [p.maxValueBytes, taskInstanceId],
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_step WHERE task_instance_id = ?", [taskInstanceId]);
  return {
    rows: rows.map((r) => ({ step_name: r.step_name, try_number: r.try_number, value: r.value, value_bytes: Number(r.value_bytes), created_at: r.created_at })),
    total: Number(count!.n),
  };
}
