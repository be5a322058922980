import { randomBytes } from "node:crypto";
import { databaseUrlOn, dropDatabase, ensureDatabase, openDb, type Db, type DbOptions } from "../../store/db.ts";
import { migrate } from "../../store/migrate.ts";

const SERVER = process.env.BATON_TEST_DATABASE_SERVER ?? "mysql://root@127.0.0.1:3306";

/**
 * A fresh, migrated database for one test file, named after the Jest worker, dropped by
 * dropTestDb. Tests only ever drop databases they created.
 */
export async function createTestDb(options: DbOptions = {}): Promise<Db> {
  const name = `baton_test_${process.env.JEST_WORKER_ID ?? "0"}_${randomBytes(4).toString("hex")}`;
  const url = databaseUrlOn(SERVER, name);
  await ensureDatabase(url);
  const db = openDb(url, { connectionLimit: 8, ...options });
  try {
    await migrate(db);
  } catch (err) {
    // A failed migration must not leave the database behind: no test holds it to drop it.
    await dropTestDb(db).catch(() => undefined);
    throw err;
  }
  return db;
}

export async function dropTestDb(db: Db): Promise<void> {
  await db.close();
  await dropDatabase(db.url);
}

/** Polls until check returns a truthy value, failing with `what` after the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<NonNullable<Exclude<T, false | "" | 0>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<Exclude<T, false | "" | 0>>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
