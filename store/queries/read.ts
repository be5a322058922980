// Read-only queries behind the API and CLI. Lists order by a unique key so pages are stable.
import type { Queryable, ResultSetHeader, RowDataPacket } from "../db.ts";

export interface Page {
  limit: number;
  offset: number;
}

function page(p: Page): string {
  return `LIMIT ${Math.floor(p.limit)} OFFSET ${Math.floor(p.offset)}`;
}

export async function listDags(db: Queryable, p: Page & { onlyActive: boolean; paused?: boolean }) {
  const where = ["1 = 1"];
  const params: unknown[] = [];
  if (p.onlyActive) where.push("d.is_active = 1");
  if (p.paused !== undefined) {
    where.push("d.is_paused = ?");
    params.push(p.paused ? 1 : 0);
  }
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT d.*, EXISTS (SELECT 1 FROM import_error e WHERE e.fileloc = d.fileloc) AS has_import_errors
       FROM dag d WHERE ${where.join(" AND ")} ORDER BY d.dag_id ${page(p)}`,
    params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM dag d WHERE ${where.join(" AND ")}`, params);
  return { rows, total: Number(count!.n) };
}

export async function getDag(db: Queryable, dagId: string) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT d.*, EXISTS (SELECT 1 FROM import_error e WHERE e.fileloc = d.fileloc) AS has_import_errors FROM dag d WHERE d.dag_id = ?`,
    [dagId],
  );
  return rows[0];
}

export async function setDagPaused(db: Queryable, dagId: string, paused: boolean): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("UPDATE dag SET is_paused = ? WHERE dag_id = ?", [paused ? 1 : 0, dagId]);
  return result.affectedRows > 0;
}

export async function listDagRuns(db: Queryable, dagId: string, p: Page & { state?: string[] }) {
  const where = ["dag_id = ?"];
  const params: unknown[] = [dagId];
  if (p.state?.length) {
    where.push(`state IN (${p.state.map(() => "?").join(", ")})`);
    params.push(...p.state);
  }
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM dag_run WHERE ${where.join(" AND ")} ORDER BY id ${page(p)}`, params);
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM dag_run WHERE ${where.join(" AND ")}`, params);
  return { rows, total: Number(count!.n) };
}

export async function getDagRun(db: Queryable, dagId: string, runId: string) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  return rows[0];
}

export async function getDagRunById(db: Queryable, id: number) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE id = ?", [id]);
  return rows[0];
}

export async function listTaskInstances(db: Queryable, dagRunId: number, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM task_instance WHERE dag_run_id = ? ORDER BY id ${page(p)}`, [dagRunId]);
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_run_id = ?", [dagRunId]);
  return { rows, total: Number(count!.n) };
}

export async function getTaskInstance(db: Queryable, dagRunId: number, taskId: string, mapIndex = -1) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE dag_run_id = ? AND task_id = ? AND map_index = ?", [
    dagRunId,
    taskId,
    mapIndex,
  ]);
  return rows[0];
}

export async function getXcom(db: Queryable, dagRunId: number, taskId: string, key: string, mapIndex = -1) {
  const [rows] = await db.query<RowDataPacket[]>(
    "SELECT * FROM xcom WHERE dag_run_id = ? AND task_id = ? AND map_index = ? AND xcom_key = ?",
    [dagRunId, taskId, mapIndex, key],
  );
  return rows[0];
}

/** A reschedule-mode sensor's pokes that did not succeed (task_reschedule), oldest first. */
export async function listTaskReschedules(db: Queryable, taskInstanceId: number, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT try_number, start_date, end_date, reschedule_date FROM task_reschedule WHERE task_instance_id = ? ORDER BY id ${page(p)}`,
    [taskInstanceId],
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_reschedule WHERE task_instance_id = ?", [taskInstanceId]);
  return { rows, total: Number(count!.n) };
}

export async function listImportErrors(db: Queryable, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM import_error ORDER BY id ${page(p)}`);
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM import_error");
  return { rows, total: Number(count!.n) };
}

export async function latestHeartbeat(db: Queryable, kind: string): Promise<Date | null> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT MAX(heartbeat_at) AS at FROM baton_process WHERE kind = ?", [kind]);
  return rows[0]?.at ?? null;
}

export async function listDagVersions(db: Queryable, dagId: string, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT v.version_hash, v.created_at, v.code_hash, (d.latest_version_hash = v.version_hash) AS is_latest
       FROM dag_version v JOIN dag d ON d.dag_id = v.dag_id WHERE v.dag_id = ? ORDER BY v.id ${page(p)}`,
    [dagId],
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_version WHERE dag_id = ?", [dagId]);
  return { rows, total: Number(count!.n) };
}

export async function getDagVersion(db: Queryable, dagId: string, versionHash: string) {
  const [rows] = await db.query<RowDataPacket[]>(
    "SELECT version_hash, created_at, code_hash, structure FROM dag_version WHERE dag_id = ? AND version_hash = ?",
    [dagId, versionHash],
  );
  return rows[0];
}
