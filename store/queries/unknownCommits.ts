// Reads a worker makes after a transaction whose COMMIT answer was lost (Db's unknownCommitOf),
// to learn what that transaction did. Never on the claim / finish path: only after such a failure.
import { recordedEnd } from "../transitions/finishTries.ts";
import type { HeldTry } from "../transitions/handBack.ts";
import { inList, type Queryable, type RowDataPacket } from "../db.ts";

/**
 * Whether the server is still running a statement on any of these connections (server thread
 * ids): a connection whose client went away may still be executing the batch it was sent, COMMIT
 * included, and what that batch claimed is not visible before it ends. A thread that is gone or
 * idle (`Sleep`) has ended its batch. Its own threads are visible to any user (no PROCESS privilege).
 */
export async function connectionsBusy(db: Queryable, threadIds: number[]): Promise<boolean> {
  if (threadIds.length === 0) return false;
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (${inList(threadIds)}) AND COMMAND <> 'Sleep'`, threadIds);
  return rows.length > 0;
}

/**
 * Every try running under this claim token (a worker's id: tokens are per worker, not per try).
 * No index on claim_token (it would be rewritten by every claim and finish): the range of
 * running tries on ix_ti_zombie (state, heartbeat_at), bounded by the slots of all workers (EXPLAIN:
 * ref on ix_ti_zombie's state prefix).
 */
export async function triesClaimedBy(db: Queryable, token: string): Promise<HeldTry[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    // Forced: on a small table the optimizer walks the primary key, which on a big one reads every row.
    "SELECT id, try_number, pool, pool_slots FROM task_instance FORCE INDEX (ix_ti_zombie) WHERE state = 'running' AND claim_token = ?",
    [token],
  );
  return rows.map((r) => ({ id: Number(r.id), tryNumber: Number(r.try_number), token, pool: r.pool as string, poolSlots: Number(r.pool_slots) }));
}

/** A result a worker sent, as finishTries records it: the fence and what it writes. */
export interface SentResult {
  id: number;
  tryNumber: number;
  token: string;
  outcome: "success" | "failed" | "skipped" | "reschedule" | "deferred";
  /** The try's start as claimed and its end by the worker's clock: the finish records recordedEnd of both. */
  startedAt: Date;
  endedAt: Date;
}

/**
 * Of results that were fenced when sent again after a lost COMMIT answer, those the lost call
 * recorded: the row still carries the try's claim token, and shows this result — its end_date
 * is the one the try's finish writes (recordedEnd, to the millisecond: no reaper, mark or run timeout writes that,
 * unless its clock and the worker's were both behind the try's start, when both write the start), or,
 * for a deferral (which writes no end_date), the row is deferred on this try.
 */
export async function recordedResults<T extends SentResult>(db: Queryable, results: T[]): Promise<T[]> {
  if (results.length === 0) return [];
  const ids = [...new Set(results.map((r) => r.id))];
  const [rows] = await db.query<RowDataPacket[]>(`SELECT id, try_number, claim_token, state, end_date FROM task_instance WHERE id IN (${inList(ids)})`, ids);
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return results.filter((r) => {
    const row = byId.get(r.id);
    if (!row || row.claim_token !== r.token || row.state === "running") return false;
    if (r.outcome === "deferred") return row.state === "deferred" && Number(row.try_number) === r.tryNumber;
    return row.end_date instanceof Date && row.end_date.getTime() === recordedEnd(r.startedAt, r.endedAt).getTime();
  });
}
