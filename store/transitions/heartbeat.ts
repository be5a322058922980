// heartbeat — proves a process and its running tries are alive, in one statement each.
// locks: the process row (PK); the worker's running task_instance rows (PK), fenced by token.
import os from "node:os";
import { inList, type Db, type RowDataPacket } from "../db.ts";

export async function beatProcess(db: Db, now: Date, p: { id: string; kind: string; startedAt: Date; info?: unknown }): Promise<void> {
  await db.pool.query(
    `INSERT INTO baton_process (id, kind, hostname, pid, started_at, heartbeat_at, info) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE heartbeat_at = VALUES(heartbeat_at), info = VALUES(info)`,
    [p.id, p.kind, os.hostname(), process.pid, p.startedAt, now, p.info === undefined ? null : JSON.stringify(p.info)],
  );
}

export async function removeProcess(db: Db, id: string): Promise<void> {
  await db.pool.query("DELETE FROM baton_process WHERE id = ?", [id]);
}

/**
 * Refreshes heartbeat_at of the worker's running tries and answers which of them are still
 * its own, as task instance id → try number: a try that was cleared, reaped as a zombie or
 * failed by a run timeout is not, and the worker aborts it. The same worker may hold two
 * tries of one task instance (the first cleared, the second claimed again): only the try the
 * row is on now is answered. One round trip.
 */
export async function beatTries(db: Db, now: Date, tries: { id: number; tryNumber: number }[], token: string): Promise<Map<number, number>> {
  if (tries.length === 0) return new Map();
  const ids = tries.map((t) => t.id);
  const [results] = await db.pool.query(
    `UPDATE task_instance SET heartbeat_at = ? WHERE id IN (${inList(ids)}) AND state = 'running' AND claim_token = ?;
     SELECT id, try_number FROM task_instance WHERE id IN (${inList(ids)}) AND state = 'running' AND claim_token = ?`,
    [now, ...ids, token, ...ids, token],
  );
  const rows = (results as unknown[])[1] as RowDataPacket[];
  const wanted = new Set(tries.map((t) => `${t.id}#${t.tryNumber}`));
  return new Map(rows.filter((r) => wanted.has(`${r.id}#${r.try_number}`)).map((r) => [Number(r.id), Number(r.try_number)]));
}
