// runCallbacks — the DAG-level onSuccess / onFailure of runs that ended, claimed by workers.
// A run's end marks its callback due in the same UPDATE (migration 0020's trigger, whatever
// ended it: a worker's last task, a dagrunTimeout, a reaped zombie, the API); a worker claims
// due callbacks under a lease, runs them and clears them. A worker that dies mid-callback
// leaves its lease to expire and another runs the callback again: at least once. A run reopened
// (cleared) before a worker took its callback owes none until it ends again; ending again owes
// (and re-leases) a new one.
// locks: dag_run rows with callback_due = 1 (ix_dag_run_callback), SKIP LOCKED so workers split them.
import { inList, type Db, type ResultSetHeader, type RowDataPacket } from "../db.ts";
import { parseJsonText } from "../rows.ts";

export interface DueRunCallback {
  dagRunId: number;
  dagId: string;
  runId: string;
  state: "success" | "failed";
  versionHash: string;
  logicalDate: Date | null;
  conf: Record<string, unknown>;
  /** The lease this claim holds: only it may complete the callback. */
  claimedAt: Date;
}

/** Takes up to `limit` due callbacks whose lease is free or older than leaseMs. */
export async function claimRunCallbacks(db: Db, now: Date, limit: number, leaseMs: number): Promise<DueRunCallback[]> {
  if (limit <= 0) return [];
  const due = `FROM dag_run FORCE INDEX (ix_dag_run_callback) WHERE callback_due = 1 AND (callback_claimed_at IS NULL OR callback_claimed_at < ?)`;
  const expired = new Date(now.getTime() - leaseMs);
  // Every worker looks every second: a plain read answers the usual "none" without a transaction.
  const [any] = await db.pool.query<RowDataPacket[]>(`SELECT 1 ${due} LIMIT 1`, [expired]);
  if (any.length === 0) return [];
  return db.tx(async (tx) => {
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT id, dag_id, run_id, callback_state, version_hash, logical_date, conf ${due} ORDER BY id LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED`,
      [expired],
    );
    const ids = rows.map((r) => Number(r.id));
    if (ids.length === 0) return [];
    await tx.query(`UPDATE dag_run SET callback_claimed_at = ? WHERE id IN (${inList(ids)})`, [now, ...ids]);
    return rows.map((r) => ({
      dagRunId: Number(r.id),
      dagId: r.dag_id,
      runId: r.run_id,
      state: r.callback_state === "success" ? "success" : "failed",
      versionHash: r.version_hash,
      logicalDate: r.logical_date ?? null,
      conf: parseJsonText(r.conf, {}),
      claimedAt: now,
    }));
  });
}

/**
 * The callback ran (or the DAG has none): no longer due. Fenced by the lease, so a run that
 * ended again meanwhile (cleared and re-run: its new end reset the lease) keeps its new callback.
 */
export async function completeRunCallback(db: Db, c: Pick<DueRunCallback, "dagRunId" | "claimedAt">): Promise<boolean> {
  const [result] = await db.pool.query<ResultSetHeader>(
    "UPDATE dag_run SET callback_due = 0, callback_claimed_at = NULL WHERE id = ? AND callback_due = 1 AND callback_claimed_at = ?",
    [c.dagRunId, c.claimedAt],
  );
  return result.affectedRows > 0;
}

/** A stopping worker gives back callbacks it claimed and did not run: another worker runs them now, not after the lease. */
export async function releaseRunCallbacks(db: Db, claims: Pick<DueRunCallback, "dagRunId" | "claimedAt">[]): Promise<void> {
  for (const c of claims) {
    // A run reopened since the claim owes nothing now (its next end will).
    await db.pool.query(
      `UPDATE dag_run SET callback_claimed_at = NULL, callback_due = IF(state IN ('success', 'failed'), 1, 0)
        WHERE id = ? AND callback_due = 1 AND callback_claimed_at = ?`,
      [c.dagRunId, c.claimedAt],
    );
  }
}
