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

export function isoOrNull(value: Date | null | undefined): string | null {
  return value ? value.toISOString() : null;
}

export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: string })?.code === "ER_DUP_ENTRY";
}
