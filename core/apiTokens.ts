import { createHash, randomBytes } from "node:crypto";
import { parseDuration } from "./durations.ts";
import { BatonError } from "./errors.ts";

/** Tokens look like `baton_<43 base64url chars>`: recognisable in logs and secret scanners. */
export const TOKEN_PREFIX = "baton_";

/** The longest lifetime a token is created with (`expires_in`, `--expires-in`): 10 years. */
export const MAX_TOKEN_LIFETIME_MS = 10 * 365 * 86_400_000;

/** The shortest: 1 s (a duration rounded to whole milliseconds, as parseDuration rounds it). */
export const MIN_TOKEN_LIFETIME_MS = 1000;

/** The longest `expires_in` text the API's schema takes. */
export const MAX_TOKEN_LIFETIME_TEXT = 32;

/**
 * A token's lifetime from `expires_in` (the API) or `--expires-in` (the CLI, before any request): one
 * check for both, so the CLI refuses exactly what the API would. `field` names the option in the message.
 */
export function tokenLifetimeMs(value: string, field: string): number {
  let ms = Number.NaN;
  try {
    ms = parseDuration(value, field);
  } catch {
    // refused below, in the same words as every other refusal
  }
  if (!(ms >= MIN_TOKEN_LIFETIME_MS && ms <= MAX_TOKEN_LIFETIME_MS) || value.length > MAX_TOKEN_LIFETIME_TEXT) {
    throw new BatonError("BATON_VALIDATION_FAILED", `${field} ${JSON.stringify(value)} must be a duration from 1s to 10 years, such as 90d, 12h or 30m`);
  }
  return ms;
}

export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** What listings show of a token: enough to tell two apart, too little to use. */
export function displayPrefix(token: string): string {
  return token.slice(0, TOKEN_PREFIX.length + 4);
}

/** The token in an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  return match?.[1];
}
