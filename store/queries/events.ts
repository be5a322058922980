// Reading the event log: filtered pages for the API, one entry by id, and "everything after id N"
// for live streams.
import type { Queryable, RowDataPacket } from "../db.ts";
import { Conditions } from "./conditions.ts";
import { pageTotal } from "./counting.ts";
import { limitOffset } from "./paging.ts";

/** An event name as the API shows it, `<kind>:<to_state>` (e.g. task:success), split in two. */
export interface EventName {
  kind: string;
  toState: string;
}

export interface EventFilter {
  dagId?: string;
  runId?: string;
  taskId?: string;
  mapIndex?: number;
  tryNumber?: number;
  /** Exactly this event; undefined matches every event, null none (a name that cannot exist). */
  event?: EventName | null;
  /** Only these events (an empty list matches none). */
  includedEvents?: EventName[];
  /** None of these events. */
  excludedEvents?: EventName[];
  /** The actor column: the process or API token that made the change. */
  owner?: string;
  after?: Date;
  before?: Date;
}

function where(f: EventFilter): { sql: string; params: unknown[] } {
  const w = new Conditions().eq("dag_id", f.dagId).eq("run_id", f.runId).eq("task_id", f.taskId).eq("map_index", f.mapIndex).eq("try_number", f.tryNumber);
  const anyOf = (names: EventName[]) => `(${names.map(() => "(kind = ? AND to_state = ?)").join(" OR ")})`;
  const paramsOf = (names: EventName[]) => names.flatMap((n) => [n.kind, n.toState]);
  if (f.event === null) w.add("1 = 0");
  else if (f.event !== undefined) w.add("kind = ? AND to_state = ?", f.event.kind, f.event.toState);
  if (f.includedEvents !== undefined) {
    if (f.includedEvents.length === 0) w.add("1 = 0");
    else w.add(anyOf(f.includedEvents), ...paramsOf(f.includedEvents));
  }
  if (f.excludedEvents?.length) w.add(`NOT ${anyOf(f.excludedEvents)}`, ...paramsOf(f.excludedEvents));
  w.eq("actor", f.owner);
  if (f.after !== undefined) w.add("at >= ?", f.after);
  if (f.before !== undefined) w.add("at < ?", f.before);
  return w;
}

export async function listEvents(db: Queryable, f: EventFilter, page: { limit: number; offset: number; newestFirst?: boolean }) {
  const w = where(f);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT * FROM event_log WHERE ${w.sql} ORDER BY id${page.newestFirst ? " DESC" : ""} ${limitOffset(page)}`,
    w.params,
  );
  const total = await pageTotal(db, `SELECT COUNT(*) AS n FROM event_log WHERE ${w.sql}`, w.params, { offset: page.offset, asked: Math.floor(page.limit), fetched: rows.length });
  return { rows, total };
}

/**
 * For live streams: the ids above `afterId` and those of `missing` that exist now, oldest first,
 * each with whether it matches the filter. Every id, matching or not, so the stream can tell an id
 * not yet committed from one its filter leaves out. No total (each client polls several times a second).
 */
export async function eventIdsAfter(db: Queryable, f: EventFilter, afterId: number, missing: readonly number[], limit: number): Promise<{ id: number; matches: boolean }[]> {
  const w = where(f);
  const orMissing = missing.length ? ` OR id IN (${missing.map(() => "?").join(", ")})` : "";
  const [rows] = await db.query<RowDataPacket[]>(`SELECT id, (${w.sql}) AS matches FROM event_log WHERE id > ?${orMissing} ORDER BY id LIMIT ${Math.floor(limit)}`, [
    ...w.params,
    afterId,
    ...missing,
  ]);
  return rows.map((r) => ({ id: Number(r.id), matches: Number(r.matches) === 1 }));
}

/** Whole events by id, oldest first. */
export async function eventsByIds(db: Queryable, ids: readonly number[]): Promise<RowDataPacket[]> {
  if (ids.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM event_log WHERE id IN (${ids.map(() => "?").join(", ")}) ORDER BY id`, [...ids]);
  return rows;
}

/** The ids that exist in (`fromId`, `toId`]: where a stream starts, to tell which ids below it are not committed yet. */
export async function eventIdsBetween(db: Queryable, fromId: number, toId: number): Promise<number[]> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT id FROM event_log WHERE id > ? AND id <= ? ORDER BY id", [fromId, toId]);
  return rows.map((r) => Number(r.id));
}

export async function getEvent(db: Queryable, id: number): Promise<RowDataPacket | undefined> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM event_log WHERE id = ?", [id]);
  return rows[0];
}

export async function latestEventId(db: Queryable): Promise<number> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT COALESCE(MAX(id), 0) AS id FROM event_log");
  return Number(rows[0]!.id);
}
