// Encryption at rest for variable values and connection passwords/extras (Airflow's Fernet
// key, here AES-256-GCM). The key is BATON_SECRET_KEY, any string (SHA-256 makes it 32 bytes);
// without it, values are stored as plain text and rows carry is_encrypted = false.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { SECRET_KEY_ENV } from "../core/config.ts";
import { BatonError } from "../core/errors.ts";

const PREFIX = "v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;

let cached: { raw: string; key: Buffer } | undefined;

/** The key from BATON_SECRET_KEY, or null when unset (read on each use: no restart needed in tests). */
export function secretKey(env: Record<string, string | undefined> = process.env): Buffer | null {
  const raw = env[SECRET_KEY_ENV];
  if (!raw) return null;
  if (cached?.raw !== raw) cached = { raw, key: createHash("sha256").update(raw, "utf8").digest() };
  return cached.key;
}

/** `v1:` + base64(iv | tag | ciphertext). */
export function encrypt(key: Buffer, plain: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

export function decrypt(key: Buffer, stored: string, what: string): string {
  try {
    if (!stored.startsWith(PREFIX)) throw new Error("unknown format");
    const bytes = Buffer.from(stored.slice(PREFIX.length), "base64");
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    throw new BatonError("BATON_CONFIG_INVALID", `${what} cannot be decrypted: BATON_SECRET_KEY is not the key it was stored with`);
  }
}

/** What to store for a value: encrypted when a key is set. */
export function seal(plain: string): { text: string; encrypted: boolean } {
  const key = secretKey();
  return key ? { text: encrypt(key, plain), encrypted: true } : { text: plain, encrypted: false };
}

/** The plain value of a stored field. */
export function unseal(text: string, encrypted: boolean, what: string): string {
  if (!encrypted) return text;
  const key = secretKey();
  if (!key) throw new BatonError("BATON_CONFIG_INVALID", `${what} is stored encrypted but BATON_SECRET_KEY is not set`);
  return decrypt(key, text, what);
}
