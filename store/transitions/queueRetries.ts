// queueRetries — tries whose retry delay has passed go back to queued.
// locks: up_for_retry rows with next_retry_at <= now, found by ix_ti_retry (state, next_retry_at).
import type { Db, ResultSetHeader } from "../db.ts";

export async function queueRetries(db: Db, now: Date, limit = 1000): Promise<number> {
  const [result] = await db.pool.query<ResultSetHeader>(
    `UPDATE task_instance SET state = 'queued', queued_at = ?
      WHERE state = 'up_for_retry' AND next_retry_at <= ? ORDER BY next_retry_at LIMIT ${Math.floor(limit)}`,
    [now, now],
  );
  return result.affectedRows;
}
