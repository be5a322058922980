// The date-time syntax the API accepts wherever its schema says `format: "date-time"`: RFC 3339
// (ISO 8601 with a time zone: `2026-03-01T00:00:00Z`, `2026-03-01T01:00:00+01:00`). The check is
// ajv-formats' own, the one api/app.ts compiles into every schema, so a value passes here exactly
// when it passes there; the API then refuses what JavaScript cannot place in time (a leap second,
// `23:59:60Z`) with BATON_INVALID_DATE, and so does parseDateTime. Loose spellings `new Date()`
// takes ("1" is 2001-01-01, "March 3 2026", a date-time without an offset read in the local
// time zone) are refused.
import { fullFormats } from "ajv-formats/dist/formats.js";
import { BatonError } from "./errors.ts";

const dateTimeFormat = fullFormats["date-time"] as { validate: (text: string) => boolean };

/** Whether the text is an RFC 3339 date-time with an offset or Z (ajv-formats "date-time"). */
export function isDateTime(text: string): boolean {
  return dateTimeFormat.validate(text);
}

/**
 * The instant an RFC 3339 date-time names, or BATON_INVALID_DATE naming `what` (e.g. an option,
 * `--logical-date`) and the text.
 */
export function parseDateTime(text: string, what: string): Date {
  const date = isDateTime(text) ? new Date(text) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    throw new BatonError(
      "BATON_INVALID_DATE",
      `${what} "${text}" is not an ISO 8601 date-time with an offset or Z (RFC 3339), e.g. 2026-01-01T00:00:00Z or 2026-01-01T09:00:00+09:00`,
    );
  }
  return date;
}
