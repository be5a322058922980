import { createHash, randomBytes } from "node:crypto";

/** Tokens look like `baton_<43 base64url chars>`: recognisable in logs and secret scanners. */
export const TOKEN_PREFIX = "baton_";

/** The longest lifetime a token is created with (`expires_in`, `--expires-in`): 10 years. */
export const MAX_TOKEN_LIFETIME_MS = 10 * 365 * 86_400_000;

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
