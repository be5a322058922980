// JSON helpers shared by the API and the store: nesting depth, and a key-order-free text.

/**
 * How deeply a JSON request body may nest objects and arrays (the body itself is level 1, so
 * a run's `conf` or a signal's `payload` may nest 99 levels). Deeper bodies are refused with
 * 400 BATON_VALIDATION_FAILED before any route sees them: recursive code (JSON.stringify
 * among it) overflows the stack a few thousand levels down, and no real conf nests that far.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * The nesting depth of a parsed JSON value: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2.
 * Counted with an explicit stack, not recursion, so any depth is safe to measure; it stops as
 * soon as the depth passes `limit` (and answers that depth).
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: { value: object; depth: number }[] = [];
  if (value !== null && typeof value === "object") pending.push({ value, depth: 1 });
  while (pending.length > 0) {
    const { value: node, depth } = pending.pop()!;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > limit) return deepest;
    }
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === "object") pending.push({ value: child as object, depth: depth + 1 });
    }
  }
  return deepest;
}

/**
 * JSON with object keys sorted, so equal values always give the same text (for hashing and
 * comparing requests). Recursive: for values within MAX_JSON_DEPTH, as every request body is.
 */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * Whether stored JSON text holds the same value as `value` (a request's, within MAX_JSON_DEPTH),
 * whatever the order of object keys. Text deeper than the limit cannot equal such a value.
 */
export function sameJson(storedText: string | null, value: unknown): boolean {
  const text = JSON.stringify(value ?? null);
  if (storedText === text) return true;
  if (storedText === null) return false;
  let stored: unknown;
  try {
    stored = JSON.parse(storedText);
  } catch {
    return false;
  }
  if (jsonDepth(stored, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) return false;
  return stableJson(stored) === stableJson(value ?? null);
}

/** `text` cut to at most `maxBytes` of UTF-8, on a character boundary, marked "…" when cut. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const room = Math.max(0, maxBytes - 3); // "…" is 3 bytes
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > room) break;
    bytes += size;
    end += ch.length;
  }
  return `${text.slice(0, end)}…`;
}

/**
 * An error object as JSON of at most `maxBytes` of UTF-8 (a TEXT column holds 65,535 bytes):
 * its longest string fields (stack, then message) are shortened, so the JSON stays whole and
 * readable instead of being cut mid-string into text no reader can parse.
 */
export function jsonWithinBytes(error: Record<string, unknown>, maxBytes: number): string {
  let text = JSON.stringify(error);
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const shortened: Record<string, unknown> = { ...error };
  for (const field of ["stack", "message"]) {
    const value = shortened[field];
    if (typeof value !== "string") continue;
    const over = Buffer.byteLength(text) - maxBytes;
    // JSON escapes can make a character cost more in the text than in UTF-8: cut with margin.
    shortened[field] = truncateUtf8(value, Math.max(0, Buffer.byteLength(value) - over - 64));
    text = JSON.stringify(shortened);
    if (Buffer.byteLength(text) <= maxBytes) return text;
  }
  // Still over (long other fields, escapes): keep only what identifies the error.
  return JSON.stringify({ name: shortened.name, code: shortened.code, message: truncateUtf8(String(shortened.message ?? ""), Math.floor(maxBytes / 8)), nonRetryable: shortened.nonRetryable });
}
