// queueRetries — tries whose retry delay has passed go back to queued.
// locks: up_for_retry rows with next_retry_at <= now, found by ix_ti_retry (next_retry_at; state is a filter)
//   in index order, FOR UPDATE SKIP LOCKED: several schedulers split the due retries instead of
//   queueing behind each other (a plain UPDATE … LIMIT waited on every row another held, and
//   could fail the whole tick with a deadlock). The UPDATE re-checks the state under the lock.
//   The index is forced: with `state = ?` selective, MariaDB chose an index with a state prefix
//   (ix_ti_zombie) and a filesort, which locks every due row before LIMIT keeps some — two
//   schedulers asking for 5 each then locked all 12 due retries between them, queued 10, and
//   the other schedulers skipped the last 2 as locked (test/integration/zombies.test.ts).
// next_retry_at is cleared with the state: ix_ti_retry is keyed on it alone (migration 0019), so
//   it must be set only while the row waits. A sensor keeps first_poke_at and poke_count: its
//   timeout counts from the first poke, across reschedules.
import { inList, type Db, type ResultSetHeader, type RowDataPacket } from "../db.ts";

// Reschedule-mode sensors (up_for_reschedule) come back the same way when their next poke is due.
export async function queueRetries(db: Db, now: Date, limit = 1000): Promise<number> {
  let queued = 0;
  for (const state of ["up_for_retry", "up_for_reschedule"]) {
    queued += await db.tx(async (tx) => {
      const [due] = await tx.query<RowDataPacket[]>(
        `SELECT id FROM task_instance FORCE INDEX (ix_ti_retry) WHERE state = ? AND next_retry_at <= ?
          ORDER BY next_retry_at LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED`,
        [state, now],
      );
      if (due.length === 0) return 0;
      const ids = due.map((r) => Number(r.id));
      const [result] = await tx.query<ResultSetHeader>(
        `UPDATE task_instance SET state = 'queued', queued_at = ?, next_retry_at = NULL WHERE id IN (${inList(ids)}) AND state = ?`,
        [now, ...ids, state],
      );
      return result.affectedRows;
    });
  }
  return queued;
}
