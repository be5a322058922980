// queueRetries — tries whose retry delay has passed, and reschedule-mode sensors whose next poke
// is due, go back to queued.
// locks: up_for_retry / up_for_reschedule rows with next_retry_at <= now, found by ix_ti_retry
//   (next_retry_at) in index order, FOR UPDATE SKIP LOCKED: several schedulers split the due rows
//   instead of queueing behind each other (a plain UPDATE … LIMIT waited on every row another
//   held, and could fail the whole tick with a deadlock). The UPDATE re-checks the state under
//   the lock. SKIP LOCKED splits the rows exactly only if every row the read locks is one it
//   returns, so:
//   - the index is forced: with the state selective, MariaDB chose an index with a state prefix
//     (ix_ti_zombie) and a filesort, which locks every due row before LIMIT keeps some (two
//     schedulers asking for 5 locked all 12 due retries between them and queued 10; the others
//     skipped the last 2);
//   - both states are read together: next_retry_at is set only in these two states, so every
//     row of the range matches. Read one state at a time, a scan for one locked the other's rows
//     while it checked their state, and a concurrent scan for those skipped them.
//   (test/integration/waitingLocks.test.ts; zombies.test.ts failed intermittently.)
// next_retry_at is cleared with the state: ix_ti_retry is keyed on it alone (migration 0019), so
//   it must be set only while the row waits. A sensor keeps first_poke_at and poke_count: its
//   timeout counts from the first poke, across reschedules and retries.
import { inList, type Db, type ResultSetHeader, type RowDataPacket } from "../db.ts";

const WAITING = "('up_for_retry', 'up_for_reschedule')";

/** Due rows one call queues at most by default (the scheduler calls again while a batch comes back full). */
export const QUEUE_RETRIES_BATCH = 1000;

export async function queueRetries(db: Db, now: Date, limit = QUEUE_RETRIES_BATCH): Promise<number> {
  return db.tx(async (tx) => {
    const [due] = await tx.query<RowDataPacket[]>(
      `SELECT id FROM task_instance FORCE INDEX (ix_ti_retry) WHERE next_retry_at <= ? AND state IN ${WAITING}
        ORDER BY next_retry_at LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED`,
      [now],
    );
    if (due.length === 0) return 0;
    const ids = due.map((r) => Number(r.id));
    const [result] = await tx.query<ResultSetHeader>(
      `UPDATE task_instance SET state = 'queued', queued_at = ?, next_retry_at = NULL WHERE id IN (${inList(ids)}) AND state IN ${WAITING}`,
      [now, ...ids],
    );
    return result.affectedRows;
  });
}
