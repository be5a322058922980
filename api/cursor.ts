// Keyset cursors of list endpoints (`?cursor=`, `next_cursor`): opaque to clients, base64url
// JSON of the list they belong to, the order_by they were made for, the last row's sort key and
// the list's total_entries, so a cursor page answers with one range read: no offset walk, no COUNT.
// Not signed: a client that edits one only moves where its own page starts, as a filter could.
import { BatonError } from "../core/errors.ts";
import type { KeysetPosition } from "../store/queries/conditions.ts";
import type { KeysetOrder } from "../store/queries/read.ts";

/** The lists that page by cursor; a cursor of one is refused by the other. */
export type CursorList = "dag_runs" | "task_instances";

interface CursorJson {
  /** Format version. */
  v: 1;
  l: CursorList;
  /** order_by, the default filled in. */
  o: string;
  /** [id], or [sort value, id]; a date as an ISO string. */
  k: unknown[];
  /** total_entries of the page the walk started from. */
  t: number;
}

const MAX_CURSOR_CHARS = 1024;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function encodeCursor(list: CursorList, order: KeysetOrder, next: KeysetPosition, total: number): string {
  const value = next.value instanceof Date ? next.value.toISOString() : (next.value ?? null);
  const json: CursorJson = { v: 1, l: list, o: order.orderBy, k: order.type === "id" ? [next.id] : [value, next.id], t: total };
  return Buffer.from(JSON.stringify(json)).toString("base64url");
}

/**
 * The position and total a cursor carries, for a list asked in `order`. A cursor with a non-zero
 * offset, one this API did not issue for this list, or one made for another order_by is refused.
 */
export function decodeCursor(cursor: string, offset: number, list: CursorList, order: KeysetOrder): { after: KeysetPosition; total: number } {
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
  if (typeof json !== "object" || json === null || json.v !== 1 || typeof json.o !== "string" || !Array.isArray(json.k)) {
    throw invalid("is not a cursor this API issued");
  }
  if (json.l !== list) throw invalid(`belongs to another list (${String(json.l)}), not ${list}`);
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
