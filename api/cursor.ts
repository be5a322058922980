// Keyset cursors of list endpoints (`?cursor=`, `next_cursor`: dag runs, task instances, the event
// log): opaque to clients, base64url JSON of the list they belong to (the endpoint, and a digest of
// its path's DAG and run and of its filters), the order_by they were made for, the last row's sort key and the list's total_entries,
// so a cursor page answers with one range read: no offset walk, no COUNT. A cursor used on another
// list is refused: its position means nothing there (it gave an empty or partial page) and its
// total_entries is another list's.
// Not signed: a client that edits one only moves where its own page starts, as a filter could.
import { createHash } from "node:crypto";
import { BatonError } from "../core/errors.ts";
import type { KeysetPosition } from "../store/queries/conditions.ts";
import type { KeysetOrder } from "../store/queries/paging.ts";

/** The lists that page by cursor; a cursor of one is refused by the others. */
export type CursorList = "dag_runs" | "task_instances" | "event_logs";

/**
 * What a list is, beyond its endpoint: the path's ids (`~` included) and the filters as the route
 * resolved them (known parameters only: one a route ignores filters nothing).
 */
export interface CursorScope {
  path: Record<string, string>;
  filters: Record<string, unknown>;
}

/**
 * Format version. 1 (before lists carried p and f) is refused: such a cursor cannot say which
 * DAG, run and filters it was made for.
 */
const VERSION = 2;

interface CursorJson {
  v: typeof VERSION;
  l: CursorList;
  /** Digests of the scope's path and filters. */
  p: string;
  f: string;
  /** order_by, the default filled in. */
  o: string;
  /** [id], or [sort value, id]; a date as an ISO string. */
  k: unknown[];
  /** total_entries of the page the walk started from. */
  t: number;
}

const MAX_CURSOR_CHARS = 1024;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A short digest of a value, the same whatever the order of its object keys and of its arrays (every filter array is a set). */
function digest(value: unknown): string {
  return createHash("sha256").update(canonical(value)).digest("base64url").slice(0, 16);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).sort().join(",")}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function encodeCursor(list: CursorList, scope: CursorScope, order: KeysetOrder, next: KeysetPosition, total: number): string {
  const value = next.value instanceof Date ? next.value.toISOString() : (next.value ?? null);
  const json: CursorJson = {
    v: VERSION,
    l: list,
    p: digest(scope.path),
    f: digest(scope.filters),
    o: order.orderBy,
    k: order.type === "id" ? [next.id] : [value, next.id],
    t: total,
  };
  return Buffer.from(JSON.stringify(json)).toString("base64url");
}

/**
 * The position and total a cursor carries, for a list asked in `order`. A cursor with a non-zero
 * offset, one this API did not issue for this list (endpoint, DAG and run, filters), or one made
 * for another order_by is refused.
 */
export function decodeCursor(
  cursor: string,
  offset: number,
  list: CursorList,
  scope: CursorScope,
  order: KeysetOrder,
): { after: KeysetPosition; total: number } {
  if (offset !== 0) {
    throw new BatonError("BATON_CURSOR_WITH_OFFSET", `query.cursor continues after a row and query.offset skips rows (${offset}): give one of them`);
  }
  const invalid = (why: string) => new BatonError("BATON_INVALID_CURSOR", `query.cursor ${why}; pass next_cursor back unchanged, or start again without cursor`);
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid("is not base64url text");
  let json: Partial<CursorJson> | null;
  try {
    json = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<CursorJson> | null;
  } catch {
    throw invalid("is not a cursor this API issued");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw invalid("is not a cursor this API issued");
  if ((json.v as number) === 1) throw invalid("was made by an earlier Baton, before cursors named the DAG, run and filters of their list");
  if (json.v !== VERSION || typeof json.o !== "string" || !Array.isArray(json.k)) throw invalid("is not a cursor this API issued");
  if (json.l !== list) throw invalid(`belongs to another list (${String(json.l)}), not ${list}`);
  if (json.p !== digest(scope.path)) throw invalid(`was made for another DAG or run's list, not ${describePath(scope.path)}`);
  if (json.f !== digest(scope.filters)) throw invalid("was made for other filters (state, dates, …) than this request's");
  if (json.o !== order.orderBy) throw invalid(`was made for order_by "${json.o}", not "${order.orderBy}"`);
  const total = json.t;
  if (typeof total !== "number" || !Number.isSafeInteger(total) || total < 0) throw invalid("has no valid total");
  const key = json.k;
  const id = key[key.length - 1];
  if (key.length !== (order.type === "id" ? 1 : 2) || typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
    throw invalid("holds no valid sort key");
  }
  if (order.type === "id") return { after: { id }, total };
  return { after: { value: sortValue(key[0], order, invalid), id }, total };
}

function sortValue(value: unknown, order: KeysetOrder, invalid: (why: string) => BatonError): string | Date | null {
  if (value === null) {
    if (order.nullable) return null;
    throw invalid(`holds null for order_by "${order.orderBy}", which has no nulls`);
  }
  if (typeof value !== "string") throw invalid("holds no valid sort key");
  if (order.type === "string") {
    // The longest string sort column (dag_id, run_id) holds 250 characters.
    if (value.length > 250) throw invalid("holds no valid sort key");
    return value;
  }
  const date = new Date(value);
  if (!ISO_INSTANT.test(value) || Number.isNaN(date.getTime())) throw invalid("holds no valid date");
  return date;
}

function describePath(path: Record<string, string>): string {
  const ids = Object.entries(path).map(([k, v]) => `${k} "${v.length > 80 ? `${v.slice(0, 80)}…` : v}"`);
  // The event log's path names no DAG or run.
  return ids.length ? ids.join(", ") : "this list";
}
