// The stored parts of a try's log (task_log): `content`, written with the try's outcome by
// finishTries (short tries keep their whole log here; see executor/tryLog.ts), and `epilogue`,
// lines written after the try ended by others than its process (the reason a scheduler reaped
// it, what its callbacks run elsewhere logged; migration 0026). The API serves content, then the
// try's file, then the epilogue.
import type { Queryable, RowDataPacket } from "../db.ts";

export interface StoredTaskLog {
  /** UTF-8 bytes served before the try's file. */
  head: Buffer;
  /** UTF-8 bytes served after it. */
  tail: Buffer;
}

/** The try's stored log, or null when it has none (still running, or logged to its file only). */
export async function storedTaskLog(db: Queryable, taskInstanceId: number, tryNumber: number): Promise<StoredTaskLog | null> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT content, epilogue FROM task_log WHERE task_instance_id = ? AND try_number = ?", [taskInstanceId, tryNumber]);
  if (rows.length === 0) return null;
  return { head: Buffer.from(String(rows[0]!.content), "utf8"), tail: Buffer.from(String(rows[0]!.epilogue ?? ""), "utf8") };
}
