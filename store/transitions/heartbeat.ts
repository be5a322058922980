// heartbeat — proves a process and its running tries are alive, in one statement each.
// locks: the process row (PK); the worker's running task_instance rows (PK), fenced by token.
import os from "node:os";
import { inList, type Db } from "../db.ts";

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

export async function beatTries(db: Db, now: Date, ids: number[], tokens: string[]): Promise<void> {
  if (ids.length === 0 || tokens.length === 0) return;
  await db.pool.query(
    `UPDATE task_instance SET heartbeat_at = ? WHERE id IN (${inList(ids)}) AND state = 'running' AND claim_token IN (${inList(tokens)})`,
    [now, ...ids, ...tokens],
  );
}
