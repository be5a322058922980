/**
 * Which values are secrets, and hiding them (Airflow's secrets masker): the API masks sensitive
 * variables and connection extras, and a task's log masks every secret the task fetched.
 * Pure functions, shared by the API (api/routes/) and the task process (executor/child.ts).
 */

/** Airflow's DEFAULT_SENSITIVE_FIELDS: a key containing one of these (any case) holds a secret. */
export const SENSITIVE_WORDS: readonly string[] = [
  "access_token",
  "api_key",
  "apikey",
  "authorization",
  "passphrase",
  "passwd",
  "password",
  "private_key",
  "secret",
  "token",
  "keyfile_dict",
  "service_account",
];

export const MASK = "***";

/** Shorter secrets are not masked: hiding every "a" or "on" would make logs unreadable. */
export const MIN_MASKED_LENGTH = 4;

export function isSensitiveKey(key: string): boolean {
  const lower = key.toLowerCase();
  return SENSITIVE_WORDS.some((word) => lower.includes(word));
}

/** A copy of a JSON value where every value under a sensitive key is "***", at any depth. */
export function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSensitiveKey(k) ? MASK : redactJson(v)]));
  }
  return value;
}

/**
 * The inverse of redactJson for an update: where `incoming` (a client's edit of what the API
 * showed) still holds the mask under a sensitive key, the stored value stays. A client that
 * reads, edits one field and writes back must not replace a secret with "***".
 */
export function keepMaskedSecrets(incoming: unknown, stored: unknown): unknown {
  if (Array.isArray(incoming)) return incoming.map((v, i) => keepMaskedSecrets(v, Array.isArray(stored) ? stored[i] : undefined));
  if (incoming && typeof incoming === "object") {
    const before = stored && typeof stored === "object" && !Array.isArray(stored) ? (stored as Record<string, unknown>) : {};
    return Object.fromEntries(
      Object.entries(incoming).map(([k, v]) => [k, isSensitiveKey(k) && v === MASK && k in before ? before[k] : keepMaskedSecrets(v, before[k])]),
    );
  }
  return incoming;
}

/** The scalar values (as text) found under sensitive keys of a JSON value, at any depth. */
export function sensitiveLeaves(value: unknown, underSensitive = false, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const v of value) sensitiveLeaves(v, underSensitive, out);
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) sensitiveLeaves(v, underSensitive || isSensitiveKey(k), out);
  } else if (underSensitive && value !== null && value !== undefined) {
    out.push(String(value));
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Replaces known secrets by "***" in text. Each secret is also matched as it appears inside a
 * JSON string (quotes and backslashes escaped), since tasks often log objects.
 */
export class SecretMasker {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | null = null;

  get size(): number {
    return this.secrets.size;
  }

  add(secret: string | null | undefined): void {
    if (typeof secret !== "string" || secret.length < MIN_MASKED_LENGTH) return;
    const before = this.secrets.size;
    this.secrets.add(secret);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) this.secrets.add(escaped);
    if (this.secrets.size !== before) this.pattern = null;
  }

  clear(): void {
    this.secrets.clear();
    this.pattern = null;
  }

  mask(text: string): string {
    if (this.secrets.size === 0) return text;
    // Longest first, so a secret containing another is hidden whole.
    this.pattern ??= new RegExp([...this.secrets].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"), "g");
    return text.replace(this.pattern, MASK);
  }
}
