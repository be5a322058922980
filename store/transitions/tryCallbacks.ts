// tryCallbacks — task callbacks (onRetry / onFailure) owed by tries that no worker ended: a
// scheduler reaped them as zombies, or ended their signal wait at its timeout. reapZombies and
// the signal-wait timeout write the row in their transaction (owedCallbackStatement); a worker serving the task's queue claims it under a lease, runs it in
// a child and completes it, which deletes the row and appends the callback's log lines to the
// try's stored log (task_log.epilogue) in one transaction. A worker that dies mid-callback leaves
// its lease to expire and another runs it again: once normally, at least once in all. Migration
// 0026.
// locks: task_callback rows only (PK; the claim reads ix_task_callback_queue (queue, claimed_at)
//   with SKIP LOCKED, so workers split them); the try's task_instance and dag_run rows are read
//   after the claim commits, without locks (a reaped try's fields no longer change). The epilogue
//   is written by upsert on task_log's PK, the row nobody else writes once the try has ended.
// fence: completion and release match the lease (claimed_at) the claim wrote.
import { inList, type Db, type ResultSetHeader, type RowDataPacket, type Statement } from "../db.ts";
import { parseJsonText } from "../rows.ts";
import type { TryError } from "./finishTries.ts";

/** The most a try's epilogue keeps (like its stored log): later lines are dropped, not the row. */
export const MAX_EPILOGUE_BYTES = 1024 * 1024;

export interface OwedTryCallback {
  taskInstanceId: number;
  tryNumber: number;
  callback: "onRetry" | "onFailure";
  error: TryError;
  /** The lease this claim holds: only it may complete the callback. */
  claimedAt: Date;
  dagRunId: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  maxTries: number;
  /** The task instance's key_epoch as it is now (ctx.idempotencyKey; a new attempt could have raised it since the try). */
  keyEpoch: number;
  versionHash: string;
  logicalDate: Date | null;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
}

/** Appends text to tries' epilogues (creating their task_log rows), capped at MAX_EPILOGUE_BYTES each. */
export function epilogueStatement(now: Date, entries: { taskInstanceId: number; tryNumber: number; text: string }[]): Statement {
  return {
    sql: `INSERT INTO task_log (task_instance_id, try_number, content, updated_at, epilogue)
          VALUES ${entries.map(() => "(?, ?, '', ?, ?)").join(", ")}
          ON DUPLICATE KEY UPDATE
            epilogue = IF(LENGTH(IFNULL(epilogue, '')) + LENGTH(VALUES(epilogue)) <= ${MAX_EPILOGUE_BYTES}, CONCAT(IFNULL(epilogue, ''), VALUES(epilogue)), epilogue),
            updated_at = VALUES(updated_at)`,
    params: entries.flatMap((e) => [e.taskInstanceId, e.tryNumber, now, e.text]),
  };
}

/** Records the callbacks reaped tries owe; a try owes one at most (its key), so a repeat changes nothing. */
export function owedCallbackStatement(
  now: Date,
  owed: { taskInstanceId: number; tryNumber: number; queue: string; callback: "onRetry" | "onFailure"; error: TryError }[],
): Statement {
  return {
    sql: `INSERT INTO task_callback (task_instance_id, try_number, queue, callback, error, created_at)
          VALUES ${owed.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}
          ON DUPLICATE KEY UPDATE task_instance_id = task_instance_id`,
    params: owed.flatMap((o) => [o.taskInstanceId, o.tryNumber, o.queue, o.callback, JSON.stringify(o.error), now]),
  };
}

/** Takes up to `limit` owed callbacks of the given queues whose lease is free or older than leaseMs. */
export async function claimTryCallbacks(db: Db, now: Date, queues: readonly string[], limit: number, leaseMs: number): Promise<OwedTryCallback[]> {
  if (limit <= 0 || queues.length === 0) return [];
  const due = `FROM task_callback WHERE queue IN (${inList(queues)}) AND (claimed_at IS NULL OR claimed_at < ?)`;
  const params = [...queues, new Date(now.getTime() - leaseMs)];
  // Every worker looks every second: a plain read answers the usual "none" without a transaction.
  const [any] = await db.pool.query<RowDataPacket[]>(`SELECT 1 ${due} LIMIT 1`, params);
  if (any.length === 0) return [];
  const claimed = await db.tx(async (tx) => {
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT task_instance_id, try_number, callback, error ${due} ORDER BY created_at LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED`,
      params,
    );
    if (rows.length === 0) return [];
    const keys = rows.map((r) => [Number(r.task_instance_id), Number(r.try_number)] as const);
    await tx.query(
      `UPDATE task_callback SET claimed_at = ? WHERE (task_instance_id, try_number) IN (${keys.map(() => "(?, ?)").join(", ")})`,
      [now, ...keys.flat()],
    );
    return rows;
  });
  if (claimed.length === 0) return [];
  const ids = [...new Set(claimed.map((r) => Number(r.task_instance_id)))];
  const [tis] = await db.pool.query<RowDataPacket[]>(
    `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.max_tries, ti.key_epoch,
            r.version_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf
       FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.id IN (${inList(ids)})`,
    ids,
  );
  const byId = new Map(tis.map((t) => [Number(t.id), t]));
  const result: OwedTryCallback[] = [];
  for (const c of claimed) {
    const ti = byId.get(Number(c.task_instance_id));
    const key = { taskInstanceId: Number(c.task_instance_id), tryNumber: Number(c.try_number), claimedAt: now };
    // Its task instance was deleted (with its run, or dropped by a clear): nothing to call back.
    if (!ti) {
      await completeTryCallback(db, now, key);
      continue;
    }
    result.push({
      ...key,
      callback: c.callback === "onRetry" ? "onRetry" : "onFailure",
      error: parseJsonText<TryError>(c.error, { name: "TaskZombieError", code: "BATON_TASK_ZOMBIE", message: "the try's worker stopped heartbeating" }),
      dagRunId: Number(ti.dag_run_id),
      dagId: ti.dag_id,
      runId: ti.run_id,
      taskId: ti.task_id,
      mapIndex: Number(ti.map_index),
      maxTries: Number(ti.max_tries),
      keyEpoch: Number(ti.key_epoch),
      versionHash: ti.version_hash,
      logicalDate: ti.logical_date ?? null,
      dataIntervalStart: ti.data_interval_start ?? null,
      dataIntervalEnd: ti.data_interval_end ?? null,
      conf: parseJsonText(ti.conf, {}),
    });
  }
  return result;
}

type TryCallbackKey = Pick<OwedTryCallback, "taskInstanceId" | "tryNumber" | "claimedAt">;

/**
 * The callback ran (or could not start and never will): no longer owed, and what it logged goes
 * to the end of the try's log. Fenced by the lease: a worker whose lease expired and was taken
 * over changes nothing (the one that took it over writes the log). Returns whether it held the lease.
 */
export async function completeTryCallback(db: Db, now: Date, c: TryCallbackKey, log?: string): Promise<boolean> {
  return db.tx(async (tx) => {
    const [deleted] = await tx.query<ResultSetHeader>("DELETE FROM task_callback WHERE task_instance_id = ? AND try_number = ? AND claimed_at = ?", [
      c.taskInstanceId,
      c.tryNumber,
      c.claimedAt,
    ]);
    if (deleted.affectedRows === 0) return false;
    if (log) {
      const s = epilogueStatement(now, [{ taskInstanceId: c.taskInstanceId, tryNumber: c.tryNumber, text: log }]);
      await tx.query(s.sql, s.params);
    }
    return true;
  });
}

/** A stopping worker gives back callbacks it claimed and did not run: another worker runs them now, not after the lease. */
export async function releaseTryCallbacks(db: Db, claims: TryCallbackKey[]): Promise<void> {
  for (const c of claims) {
    await db.pool.query("UPDATE task_callback SET claimed_at = NULL WHERE task_instance_id = ? AND try_number = ? AND claimed_at = ?", [
      c.taskInstanceId,
      c.tryNumber,
      c.claimedAt,
    ]);
  }
}
