import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { displayPrefix, generateToken, hashToken } from "../core/apiTokens.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/logger.ts";
import { countLiveAdminTokens, hasTokenWithHash, insertToken } from "../store/apiTokens.ts";
import { userLockName, type Db } from "../store/db.ts";
import { relative } from "./runtime.ts";

export type AdminTokenOutcome =
  | { kind: "from-env" }
  | { kind: "generated"; token: string; file: string }
  | { kind: "exists" };

/**
 * Makes sure someone can use a fresh API: BATON_ADMIN_TOKEN is registered if new; otherwise,
 * when no live admin token exists (first start), one is generated, written to a 0600 file
 * and returned to be printed once. Two processes starting together generate one token: the
 * name "admin" is unique, and only the process whose insert wins writes and prints it.
 */
export async function ensureAdminToken(db: Db, config: Pick<Config, "adminToken" | "adminTokenFile">, now: Date): Promise<AdminTokenOutcome> {
  if (config.adminToken) {
    const hash = hashToken(config.adminToken);
    if (!(await hasTokenWithHash(db.pool, hash))) {
      const prefix = displayPrefix(config.adminToken);
      await insertToken(db.pool, { name: `admin-from-env-${hash.slice(0, 8)}`, role: "admin", hash, prefix, now }, { ignoreDuplicate: true });
    }
    return { kind: "from-env" };
  }
  // The lock makes "none live → create one" atomic across processes starting together; a name
  // per minute would not (two starts a minute apart after a revocation would both be refused).
  // Autocommit statements on one connection, so the insert is committed before the lock goes.
  const conn = await db.pool.getConnection();
  let created: string | undefined;
  try {
    const lockName = userLockName("baton_admin_token", db.database);
    await conn.query("SELECT GET_LOCK(?, 10)", [lockName]);
    try {
      if ((await countLiveAdminTokens(conn, now)) === 0) {
        const token = generateToken();
        const name = `admin-${now.toISOString().slice(0, 10)}-${hashToken(token).slice(0, 6)}`;
        await insertToken(conn, { name, role: "admin", hash: hashToken(token), prefix: displayPrefix(token), now });
        created = token;
      }
    } finally {
      await conn.query("SELECT RELEASE_LOCK(?)", [lockName]);
    }
  } finally {
    conn.release();
  }
  if (!created) return { kind: "exists" };
  const token = created;
  await mkdir(path.dirname(config.adminTokenFile), { recursive: true, mode: 0o700 });
  // Replaced, not rewritten in place: an existing file keeps its mode on write, which may be 0644.
  await rm(config.adminTokenFile, { force: true });
  await writeFile(config.adminTokenFile, token + "\n", { mode: 0o600, flag: "wx" });
  await chmod(config.adminTokenFile, 0o600);
  return { kind: "generated", token, file: config.adminTokenFile };
}

/** The one-time announcement of a generated token (stdout, so it is not mixed with log lines). */
export function announceAdminToken(outcome: AdminTokenOutcome, log: Logger): void {
  if (outcome.kind !== "generated") return;
  process.stdout.write(
    `\nAn admin API token was created (shown once; also saved to ${relative(outcome.file)}, mode 0600):\n\n    ${outcome.token}\n\n` +
      `Use it as "Authorization: Bearer <token>", e.g.\n    export BATON_API_TOKEN=$(cat ${relative(outcome.file)})\n\n`,
  );
  log.info(`admin API token created and written to ${relative(outcome.file)}`);
}
