/** Small conversions between MySQL rows and Baton values, shared by every store module. */

export function toJsonText(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function parseJsonText<T = unknown>(text: unknown, fallback: T): T {
  if (text === null || text === undefined || text === "") return fallback;
  if (typeof text !== "string") return text as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/**
 * Query option for rows read only to be written out as JSON: DATETIME columns arrive as their text
 * ("YYYY-MM-DD HH:MM:SS.ffffff", UTC like every Baton time) instead of Dates. Parsing a 100-run
 * page's 700 dates into Dates and formatting them back cost ≈ 25 % of the page's CPU in the API.
 */
export const DATES_AS_TEXT = { dateStrings: true } as const;

/** A DATETIME's text as Date#toISOString writes it: milliseconds, the rest truncated as mysql2 does. */
export function isoOfDateTimeText(text: string): string {
  const millis = text.length > 20 ? text.slice(20, 23).padEnd(3, "0") : "000";
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${millis}Z`;
}

/** A date read as a Date, or as text under DATES_AS_TEXT, in ISO form. */
export function isoOrNull(value: Date | string | null | undefined): string | null {
  if (!value) return null;
  return typeof value === "string" ? isoOfDateTimeText(value) : value.toISOString();
}

export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: string })?.code === "ER_DUP_ENTRY";
}
