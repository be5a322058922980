// Signals received by one run, for GET …/dagRuns/{dag_run_id}/signals, in the order they
// arrived (id). Index: ux_signal_id (dag_run_id, …) finds a run's signals, ix_signal_pending
// (dag_run_id, name, …) a run's signals of one name; the page is sorted after that lookup,
// which is cheap because a run receives few signals (each payload is capped at 64 KiB).
import type { Queryable, RowDataPacket } from "../db.ts";
import { limitOffset } from "./paging.ts";

export interface SignalRow {
  id: number;
  name: string;
  signal_id: string | null;
  payload: string | null;
  created_at: Date;
  /** The task_id of the task instance that consumed it; null while it waits for one. */
  delivered_to: string | null;
  consumed_at: Date | null;
}

export async function listRunSignals(db: Queryable, dagRunId: number, f: { name?: string; limit: number; offset: number }): Promise<{ rows: SignalRow[]; total: number }> {
  const where = f.name === undefined ? "s.dag_run_id = ?" : "s.dag_run_id = ? AND s.name = ?";
  const params = f.name === undefined ? [dagRunId] : [dagRunId, f.name];
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT s.id, s.name, s.signal_id, s.payload, s.created_at, ti.task_id AS delivered_to, s.consumed_at
       FROM run_signal s LEFT JOIN task_instance ti ON ti.id = s.consumed_by
      WHERE ${where} ORDER BY s.id ${limitOffset(f)}`,
    params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM run_signal s WHERE ${where}`, params);
  return { rows: rows as SignalRow[], total: Number(count!.n) };
}
