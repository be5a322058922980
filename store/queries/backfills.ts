// Read-only queries about backfills, behind the API and `baton backfill status`.
import type { Queryable, RowDataPacket } from "../db.ts";
import { limitOffset } from "./paging.ts";

/** A backfill's row, plus `dag_is_active`: whether its DAG is active (advanceBackfills and
 *  startRuns hold its runs while it is not), read by the DAG row's PK. */
const BACKFILL_ROW = "SELECT b.*, d.is_active AS dag_is_active FROM backfill b LEFT JOIN dag d ON d.dag_id = b.dag_id";

export async function getBackfill(db: Queryable, id: number): Promise<RowDataPacket | undefined> {
  const [rows] = await db.query<RowDataPacket[]>(`${BACKFILL_ROW} WHERE b.id = ?`, [id]);
  return rows[0];
}

export async function listBackfills(db: Queryable, p: { limit: number; offset: number; dagId?: string }) {
  const where = p.dagId === undefined ? "1 = 1" : "dag_id = ?";
  const params = p.dagId === undefined ? [] : [p.dagId];
  const [rows] = await db.query<RowDataPacket[]>(
    `${BACKFILL_ROW} WHERE ${p.dagId === undefined ? "1 = 1" : "b.dag_id = ?"} ORDER BY b.id ${limitOffset(p)}`,
    params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM backfill WHERE ${where}`, params);
  return { rows, total: Number(count!.n) };
}

export interface BackfillProgress {
  /** Dates not handled yet (no run created, not skipped). */
  pending: number;
  /** The runs it created, by their current state. */
  runs: Record<"queued" | "running" | "success" | "failed", number>;
  /**
   * Dates whose run it created was deleted since (DELETE …/dagRuns/{id}: backfill_date keeps the
   * run's id). Nothing of them is left to do, so they count as done: the progress reaches the total.
   */
  deleted: number;
  /** Dates skipped, by reason (exists, succeeded, in_flight, cancelled). */
  skipped: Record<string, number>;
  /** The next pending dates, in processing order (at most `datesLeftLimit`). */
  datesLeft: Date[];
}

/** Counts per state over the backfill's dates (PK range) joined to its runs (PK). */
export async function backfillProgress(db: Queryable, id: number, datesLeftLimit = 100): Promise<BackfillProgress> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT d.state AS date_state, d.reason, r.state AS run_state, COUNT(*) AS n
       FROM backfill_date d LEFT JOIN dag_run r ON r.id = d.dag_run_id
      WHERE d.backfill_id = ? GROUP BY d.state, d.reason, r.state`,
    [id],
  );
  const progress: BackfillProgress = { pending: 0, runs: { queued: 0, running: 0, success: 0, failed: 0 }, deleted: 0, skipped: {}, datesLeft: [] };
  for (const row of rows) {
    const n = Number(row.n);
    if (row.date_state === "pending") progress.pending += n;
    else if (row.date_state === "skipped") progress.skipped[row.reason ?? "unknown"] = (progress.skipped[row.reason ?? "unknown"] ?? 0) + n;
    else if (row.run_state === null) progress.deleted += n;
    else if (row.run_state in progress.runs) progress.runs[row.run_state as keyof BackfillProgress["runs"]] += n;
  }
  const [left] = await db.query<RowDataPacket[]>(
    `SELECT logical_date FROM backfill_date
      WHERE backfill_id = ? AND sort_ordinal >= (SELECT next_ordinal FROM backfill WHERE id = ?) AND state = 'pending'
      ORDER BY sort_ordinal LIMIT ${Math.max(0, Math.floor(datesLeftLimit))}`,
    [id, id],
  );
  progress.datesLeft = left.map((r) => r.logical_date as Date);
  return progress;
}

/** Schedulers that heartbeated since `since` (ix_process_kind): backfill runs are created by one. */
export async function aliveSchedulers(db: Queryable, since: Date): Promise<number> {
  const [[row]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM baton_process WHERE kind = 'scheduler' AND heartbeat_at >= ?", [since]);
  return Number(row!.n);
}
