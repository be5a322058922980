// LIMIT and OFFSET of a list page. mysql2 cannot bind them on every server (DESIGN.md), so they are
// written into the SQL text: every list builds them here, the one place that checks them.
import { BatonError } from "../../core/errors.ts";

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
