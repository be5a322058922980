// Reading the event log: filtered pages for the API, and "everything after id N" for live streams.
import type { Queryable, RowDataPacket } from "../db.ts";
import { countRows } from "./counting.ts";

export interface EventFilter {
  dagId?: string;
  runId?: string;
  taskId?: string;
  after?: Date;
  before?: Date;
  afterId?: number;
}

function where(f: EventFilter): { sql: string; params: unknown[] } {
  const clauses: string[] = ["1 = 1"];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    clauses.push(sql);
    params.push(value);
  };
  if (f.dagId !== undefined) add("dag_id = ?", f.dagId);
  if (f.runId !== undefined) add("run_id = ?", f.runId);
  if (f.taskId !== undefined) add("task_id = ?", f.taskId);
  if (f.after !== undefined) add("at >= ?", f.after);
  if (f.before !== undefined) add("at < ?", f.before);
  if (f.afterId !== undefined) add("id > ?", f.afterId);
  return { sql: clauses.join(" AND "), params };
}

export async function listEvents(db: Queryable, f: EventFilter, page: { limit: number; offset: number; newestFirst?: boolean }) {
  const w = where(f);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT * FROM event_log WHERE ${w.sql} ORDER BY id${page.newestFirst ? " DESC" : ""} LIMIT ${Math.floor(page.limit)} OFFSET ${Math.floor(page.offset)}`,
    w.params,
  );
  const total = await countRows(db, `SELECT COUNT(*) AS n FROM event_log WHERE ${w.sql}`, w.params);
  return { rows, total };
}

export async function latestEventId(db: Queryable): Promise<number> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT COALESCE(MAX(id), 0) AS id FROM event_log");
  return Number(rows[0]!.id);
}
