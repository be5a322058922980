/** The units a duration string may use (see PART below). */
export type DurationUnit = "ms" | "s" | "m" | "h" | "d" | "w";

/**
 * A duration string as the type system can check it. parseDuration's grammar (parts repeated any
 * number of times) is not expressible as a template-literal type, so this approximates it: it
 * accepts every string parseDuration accepts and rejects prose such as "5 minutes" or "2 hours".
 * Digits alone ("250"), or a number and a unit ("500ms", "1.5h", "5 m") followed by nothing or by
 * one more character that TypeScript reads as a number: a digit ("1h30m") or whitespace
 * ("1h 30m", "5m "). `${number}` allows whitespace around the number, as parseDuration does. The
 * rest is not checked ("1h30x" type-checks): parseDuration still refuses it when the DAG file
 * loads, as an import error naming the option. test/unit/sdkTypes.test.ts checks both ways.
 */
export type DurationString = `${number}` | `${number}${DurationUnit}` | `${number}${DurationUnit}${number}${string}`;

/**
 * Durations are accepted as milliseconds or as strings such as "500ms", "5s", "10m",
 * "1h", "5d" or compound "1h30m" (Temporal's Duration convention).
 */
export type Duration = number | DurationString;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gy;

/**
 * The longest duration accepted: 100 years. Durations are added to now and stored in
 * DATETIME columns (next_retry_at, next_check_at, …), which end at year 9999; a timeout of
 * 1e15 ms (year 33715) could not be stored and failed every transaction recording it. 100
 * years is far beyond any real timeout or interval and far from that limit.
 */
export const MAX_DURATION_MS = 36_525 * 86_400_000;

/**
 * Returns milliseconds, or throws a RangeError naming the value. Takes any string: values also come
 * from environment variables, request bodies and JavaScript DAG files, where no type checked them.
 */
export function parseDuration(value: number | string, field = "duration"): number {
  const ms = parse(value, field);
  if (ms > MAX_DURATION_MS) {
    throw new RangeError(`${field} must be at most 100 years (${MAX_DURATION_MS} ms), got ${typeof value === "string" ? `"${value}"` : value}`);
  }
  return ms;
}

function parse(value: number | string, field: string): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`${field} must be a non-negative number of milliseconds, got ${value}`);
    }
    return value;
  }
  if (typeof value !== "string") {
    throw new RangeError(`${field} must be milliseconds or a string like "5m", got ${typeof value}`);
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = PART.exec(text)) !== null) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed = PART.lastIndex;
    while (text[consumed] === " ") consumed++;
    PART.lastIndex = consumed;
  }
  if (consumed !== text.length || text.length === 0) {
    throw new RangeError(`${field} must be milliseconds or a string like "5m", "1h30m", got "${value}"`);
  }
  return Math.round(total);
}

/** Formats milliseconds for humans: 1500 → "1.5s", 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(2)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds ? `${minutes}m${seconds}s` : `${minutes}m`;
}
