// The stored part of a try's log (task_log, written with the try's outcome by finishTries):
// short tries keep their whole log here; see executor/tryLog.ts.
import type { Queryable, RowDataPacket } from "../db.ts";

/** The try's stored log as UTF-8 bytes, or null when it has none (still running, or logged to its file). */
export async function storedTaskLog(db: Queryable, taskInstanceId: number, tryNumber: number): Promise<Buffer | null> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT content FROM task_log WHERE task_instance_id = ? AND try_number = ?", [taskInstanceId, tryNumber]);
  return rows.length > 0 ? Buffer.from(String(rows[0]!.content), "utf8") : null;
}
