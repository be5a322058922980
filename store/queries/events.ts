// Reading the event log: filtered pages for the API (by offset or after a keyset position), one
// entry by id, and "everything after id N" for live streams.
import type { Queryable, RowDataPacket } from "../db.ts";
import { Conditions, type KeysetPosition } from "./conditions.ts";
import { pageTotal } from "./counting.ts";
import { keysetPage, limitOffset, sqlCount, type KeysetOrder } from "./paging.ts";

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

function where(f: EventFilter): Conditions {
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

/**
 * The event log's one order, by id: the order rows were added in, which `at` follows, so order_by
 * "when" is the same order. Oldest first unless order_by (the API's value) starts with "-".
 */
export function eventOrder(orderBy: string | undefined): KeysetOrder {
  const value = orderBy ?? "event_log_id";
  return { orderBy: value, column: "id", tieBreaker: "id", descending: value.startsWith("-"), nullable: false, type: "id" };
}

/**
 * where() plus conditions that change no answer and let an index find a list's rows, and that
 * index, so a page reads about its own rows however deep it starts (EXPLAIN and ANALYZE on
 * 1,000,000 events; README "Cursor paging"):
 * - run_id: no event_log index leads with it, and a page walked the whole log (PRIMARY) filtering
 *   it: 200,000 entries, 235 ms, for a page 100 events short of the run's first. A run's events
 *   are exactly those of its dag_run_id (the triggers copy the run's ids; a run's events are
 *   deleted with it), so its runs are looked up first (ux_dag_run, ix_dag_run_run_id) and their
 *   events are ranges of ix_event_run (dag_run_id, id): one for one run, read in order (0.1 ms);
 *   one per run for a run id that many DAGs share, merged by a sort of their events past the
 *   position (200 DAGs' runs of one day, 10,000 events: 6-40 ms), however deep. Looked up apart, not as a subquery: MariaDB 10.11
 *   joined a subquery's runs after a scan of the whole log when dag_run held a few rows.
 * - only refused requests (kind auth, rare): they and only they hold "" as dag_id, so they are one
 *   range of ix_event_dag (dag_id, id) instead of a walk of the log (100,000 entries for 100).
 * - dag_id: a range of ix_event_dag; no filter: one of PRIMARY.
 * Other filters (task, event, owner, …) are checked on that range's rows as it is read: a page
 * reads as many of them as it takes to find its own, as deep as on the first page.
 * The index is forced: for ORDER BY id LIMIT, MariaDB 10.11 walked PRIMARY instead where the
 * estimates were close (6,000 events: 6,128 entries read for a page of 10 of one run id). Not
 * ix_event_dag under a date bound: ix_event_at may then serve better, the optimizer chooses.
 */
async function listWhere(db: Queryable, f: EventFilter): Promise<{ w: Conditions; from: string }> {
  const w = where(f);
  if (f.runId !== undefined) {
    const [runs] = await db.query<RowDataPacket[]>(`SELECT id FROM dag_run WHERE run_id = ?${f.dagId !== undefined ? " AND dag_id = ?" : ""}`, [
      f.runId,
      ...(f.dagId !== undefined ? [f.dagId] : []),
    ]);
    w.in("dag_run_id", runs.map((r) => Number(r.id)), "none");
    return { w, from: "event_log FORCE INDEX (ix_event_run)" };
  }
  const names = f.event ? [f.event] : f.includedEvents;
  const refusals = f.dagId === undefined && !!names?.length && names.every((n) => n.kind === "auth");
  if (refusals) w.eq("dag_id", "");
  // With a date bound ix_event_at may find fewer rows (a short window of a long history).
  const dated = f.after !== undefined || f.before !== undefined;
  return { w, from: (f.dagId !== undefined || refusals) && !dated ? "event_log FORCE INDEX (ix_event_dag)" : "event_log" };
}

/**
 * A page by offset (Airflow's paging), its total, and where a keyset page after it starts (null:
 * it is the last).
 */
export async function listEvents(db: Queryable, f: EventFilter, page: { limit: number; offset: number; orderBy?: string }) {
  const { w, from } = await listWhere(db, f);
  const order = eventOrder(page.orderBy);
  // One row more than the page tells whether another page follows.
  const more = { limit: page.limit + 1, offset: page.offset };
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM ${from} WHERE ${w.sql} ORDER BY id${order.descending ? " DESC" : ""} ${limitOffset(more)}`, w.params);
  const total = await pageTotal(db, `SELECT COUNT(*) AS n FROM ${from} WHERE ${w.sql}`, w.params, { offset: page.offset, asked: more.limit, fetched: rows.length });
  return { ...keysetPage(rows, page.limit, order), total };
}

/**
 * A keyset page: up to `limit` events strictly after `after` in the order, and where the next page
 * starts (null: none). No offset walk and no COUNT. An event recorded during a walk gets a higher
 * id than those already read: newest first it is above the walk's first page and never shown in
 * it, oldest first it comes at the walk's end. Ids are taken at insert and seen at commit, so an
 * event whose transaction commits after a page read a higher id is behind the walk (as it is behind
 * an offset page's; the live stream alone waits for such ids: api/eventCursor.ts).
 */
export async function listEventsAfter(db: Queryable, f: EventFilter, page: { limit: number; orderBy?: string; after: KeysetPosition }) {
  const order = eventOrder(page.orderBy);
  const { w, from } = await listWhere(db, f);
  w.after(order, page.after);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT * FROM ${from} WHERE ${w.sql} ORDER BY id${order.descending ? " DESC" : ""} LIMIT ${sqlCount("limit", page.limit + 1)}`,
    w.params,
  );
  return keysetPage(rows, page.limit, order);
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
