// recordStep — stores a durable step's result the moment the step completes, in its own
// transaction, so a retry after a crash skips it.
// locks: the task_instance row (PK, shared, via the INSERT … SELECT), the new task_step row.
// fence: only while the try is still running with this try_number + claim token; a zombie
//   cannot record steps for a try that is no longer its own.
// outcomes: recorded | fenced | exists (the step was recorded before: its value is returned).
import type { Queryable, ResultSetHeader, RowDataPacket } from "../db.ts";
import { isDuplicateKey, parseJsonText } from "../rows.ts";

export type StepOutcome = { status: "recorded" } | { status: "fenced" } | { status: "exists"; value: unknown };

export async function recordStep(
  db: Queryable,
  now: Date,
  step: { tiId: number; tryNumber: number; token: string; name: string; valueText: string },
): Promise<StepOutcome> {
  try {
    const [result] = await db.query<ResultSetHeader>(
      `INSERT INTO task_step (task_instance_id, step_name, try_number, value, created_at)
       SELECT id, ?, try_number, ?, ? FROM task_instance WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
      [step.name, step.valueText, now, step.tiId, step.tryNumber, step.token],
    );
    return result.affectedRows === 1 ? { status: "recorded" } : { status: "fenced" };
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const [rows] = await db.query<RowDataPacket[]>("SELECT value FROM task_step WHERE task_instance_id = ? AND step_name = ?", [step.tiId, step.name]);
    return { status: "exists", value: parseJsonText(rows[0]?.value, null) };
  }
}

/** Recorded steps of the given task instances, for tries after the first (and a first try run again after a hand-back: steps_kept). */
export async function stepsOf(db: Queryable, tiIds: number[]): Promise<Map<number, Record<string, unknown>>> {
  const steps = new Map<number, Record<string, unknown>>();
  if (tiIds.length === 0) return steps;
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT task_instance_id, step_name, value FROM task_step WHERE task_instance_id IN (${tiIds.map(() => "?").join(", ")})`,
    tiIds,
  );
  for (const r of rows) {
    // No prototype: a step named "__proto__" is an own key like any other (assigned to a plain
    // object it would set the prototype, be lost on the way to the task, and run again).
    const forTi = steps.get(Number(r.task_instance_id)) ?? (Object.create(null) as Record<string, unknown>);
    forTi[r.step_name] = parseJsonText(r.value, null);
    steps.set(Number(r.task_instance_id), forTi);
  }
  return steps;
}
