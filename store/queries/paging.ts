// LIMIT and OFFSET of a list page. mysql2 cannot bind them on every server (DESIGN.md), so they are
// written into the SQL text: every list builds them here, the one place that checks them. And the
// keyset side of the lists that also page by cursor (api/cursor.ts): an order as a cursor holds it,
// and where the page after one starts.
import { BatonError } from "../../core/errors.ts";
import type { RowDataPacket } from "../db.ts";
import { isoOfDateTimeText } from "../rows.ts";
import type { KeysetPosition, SortKey } from "./conditions.ts";

/** `LIMIT n OFFSET m` for a page; a limit or offset that is no integer literal is a 400. */
export function limitOffset(page: { limit: number; offset: number }): string {
  return `LIMIT ${sqlCount("limit", page.limit)} OFFSET ${sqlCount("offset", page.offset)}`;
}

/**
 * A count as SQL text. Past 2^53 JavaScript writes a number as 1e+21 and a float never as an
 * integer: either would be a syntax error in LIMIT (a 500), so it is refused before the query.
 * The API's schemas bound every limit and offset far below; this keeps a missed bound a 400.
 */
export function sqlCount(field: string, value: number): string {
  const n = Math.floor(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new BatonError("BATON_VALIDATION_FAILED", `${field} must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got ${value}`);
  }
  return String(n);
}

/** What a keyset cursor carries for an order: the tie-breaker alone ("id"), or a string or date value with it. */
export type SortValueType = "id" | "string" | "date";

/** A list order as keyset paging sees it: the order_by value it answers (default filled in) and its values' type. */
export interface KeysetOrder extends SortKey {
  orderBy: string;
  type: SortValueType;
}

/** A page of at most `limit` rows from `limit + 1` read, and where the next page starts (null: none). */
export function keysetPage(rows: RowDataPacket[], limit: number, key: KeysetOrder): { rows: RowDataPacket[]; next: KeysetPosition | null } {
  if (rows.length <= limit) return { rows, next: null };
  const page = rows.slice(0, limit);
  const last = page[limit - 1]!;
  const name = (column: string) => column.slice(column.indexOf(".") + 1);
  const id = Number(last[name(key.tieBreaker)]);
  if (key.column === key.tieBreaker) return { rows: page, next: { id } };
  const value: unknown = last[name(key.column)] ?? null;
  // Under DATES_AS_TEXT a date sort value is the column's text: the cursor holds a Date.
  return { rows: page, next: { value: key.type === "date" && typeof value === "string" ? new Date(isoOfDateTimeText(value)) : (value as KeysetPosition["value"]), id } };
}
