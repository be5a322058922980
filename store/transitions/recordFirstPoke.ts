// recordFirstPoke — a sensor's first poke, stored when its process reports it and before the
// poke runs (the process waits for the answer: a worker killed before this commits leaves no
// poke behind), so the timeout that counts from it survives the try: a worker that dies (the
// reaped try's retry) or stops (the handed-back try's re-run) leaves it in the row, and the next
// try's claim reads it.
// Only a sensor's first poke of its task instance costs this statement: one per sensor, never
// one per task try (finishTries and handBack also keep it, from the worker's memory).
// locks: the task_instance row (PK).
// fence: only while the try is still running with this try_number + claim token; an earlier
//   first poke already stored is kept (COALESCE).
// outcomes: recorded (true) | fenced or already set (false).
import type { Queryable, ResultSetHeader } from "../db.ts";

export async function recordFirstPoke(db: Queryable, t: { id: number; tryNumber: number; token: string; at: Date }): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>(
    `UPDATE task_instance SET first_poke_at = ?
      WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ? AND first_poke_at IS NULL`,
    [t.at, t.id, t.tryNumber, t.token],
  );
  return result.affectedRows === 1;
}
