import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";
import { BatonError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { silentLogger } from "../core/logger.ts";
import { connectionOptions, isConnectionError, userLockName, type Db, type RowDataPacket } from "./db.ts";

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../migrations");

/** Which SQL a migration runs: MariaDB's, or MySQL's where the two differ. */
export type ServerFlavour = "mariadb" | "mysql";

interface MigrationSql {
  sql: string;
  checksum: string;
}

interface MigrationFile extends MigrationSql {
  id: number;
  name: string;
  /** `NNNN_name.mysql.sql` beside the file: what MySQL runs instead (syntax MariaDB has and MySQL lacks). */
  mysql?: MigrationSql;
}

const MIGRATION_NAME = /^\d{4}_[\w-]+\.sql$/;
const MYSQL_VARIANT_SUFFIX = ".mysql.sql";

async function readSql(file: string): Promise<MigrationSql> {
  const sql = await readFile(file, "utf8");
  return { sql, checksum: createHash("sha256").update(sql).digest("hex") };
}

export async function readMigrations(folder = MIGRATIONS_FOLDER): Promise<MigrationFile[]> {
  const entries = await readdir(folder);
  const names = entries.filter((n) => MIGRATION_NAME.test(n) && !n.endsWith(MYSQL_VARIANT_SUFFIX)).sort();
  const variants = new Set(entries.filter((n) => n.endsWith(MYSQL_VARIANT_SUFFIX)));
  for (const variant of variants) {
    const main = variant.slice(0, -MYSQL_VARIANT_SUFFIX.length) + ".sql";
    if (!names.includes(main)) throw new BatonError("BATON_MIGRATION_INVALID", `${variant} has no ${main} beside it`);
  }
  return Promise.all(
    names.map(async (name) => {
      const variant = name.replace(/\.sql$/, MYSQL_VARIANT_SUFFIX);
      return {
        id: Number(name.slice(0, 4)),
        name,
        ...(await readSql(path.join(folder, name))),
        ...(variants.has(variant) ? { mysql: await readSql(path.join(folder, variant)) } : {}),
      };
    }),
  );
}

/** The SQL a migration runs on this server flavour (its checksum is what baton_migration records). */
function migrationSqlFor(file: MigrationFile, flavour: ServerFlavour): MigrationSql {
  return flavour === "mysql" && file.mysql ? file.mysql : file;
}

/** A migration older processes cannot run beside says so on its first line (graphile's `--! breaking-change`). */
const BREAKING = /^-- breaking\b/;

/**
 * Migrations recorded in the database that this Baton has no file for were applied by a newer
 * one. An older process runs on beside them (a rolling upgrade: new processes first, old ones
 * replaced after), unless one of them was marked breaking: then it must not start at all.
 */
function checkNewer(rows: RowDataPacket[], known: Set<number>, database: string, logger: Logger): void {
  const newer = rows.filter((r) => !known.has(Number(r.id)));
  if (newer.length === 0) return;
  const breaking = newer.filter((r) => Number(r.breaking) === 1).map((r) => String(r.name));
  if (breaking.length > 0) {
    throw new BatonError(
      "BATON_DATABASE_TOO_NEW",
      `database "${database}" was migrated by a newer Baton: ${breaking.join(", ")} ${breaking.length === 1 ? "is a migration" : "are migrations"} ` +
        `this Baton does not have and older versions cannot run beside; upgrade Baton on this host`,
    );
  }
  logger.warn(
    `database "${database}" has migration(s) this Baton does not have, applied by a newer Baton: ${newer.map((r) => String(r.name)).join(", ")}; ` +
      `none is marked breaking, so this process runs on: upgrade it`,
  );
}

/**
 * A migration's SQL the server refused. MySQL commits each DDL statement at once, so the statements
 * before the failing one stay applied, and with no baton_migration row every start runs the file
 * again from its first statement: say so, with the file and the server's words, in one line. A lost
 * connection stays itself: the caller reports an unreachable server as such.
 */
function migrationFailed(name: string, err: unknown): unknown {
  const { code, sqlMessage } = err as { code?: unknown; sqlMessage?: unknown };
  if (typeof sqlMessage !== "string" || isConnectionError(err)) return err;
  return new BatonError(
    "BATON_MIGRATION_FAILED",
    `migration ${name} failed: ${String(code)}: ${sqlMessage.replace(/\s+/g, " ")}; ` +
      `it may be partly applied (MySQL commits each schema change at once) and runs again from its first statement at the next start: ` +
      `undo what it applied, or fix the cause, then start again`,
  );
}

/**
 * Applies pending migrations in order under a named lock, so concurrent starters wait
 * rather than race. An applied file whose checksum changed stops everything: migrations
 * are forward-only, fixes go in a new file.
 */
export async function migrate(
  db: Db,
  logger: Logger = silentLogger,
  folder = MIGRATIONS_FOLDER,
  options: { flavour?: ServerFlavour } = {},
): Promise<string[]> {
  const files = await readMigrations(folder);
  // The lock is per database, so migrating one database never waits on another's.
  // DDL needs multi-statement files; a dedicated connection keeps that flag off the pool.
  const conn = await mysql.createConnection({ ...connectionOptions(db.url), database: db.database, multipleStatements: true });
  const applied: string[] = [];
  try {
    const [versionRows] = await conn.query<RowDataPacket[]>("SELECT VERSION() AS version");
    const flavour = options.flavour ?? (/mariadb/i.test(String(versionRows[0]?.version)) ? "mariadb" : "mysql");
    const lockName = userLockName("baton_migrate", db.database);
    const [lockRows] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK(?, 60) AS got", [lockName]);
    if (lockRows[0]?.got !== 1) throw new BatonError("BATON_MIGRATION_LOCK_TIMEOUT", "another process held the migration lock for 60 s");
    try {
      await conn.query(
        `CREATE TABLE IF NOT EXISTS baton_migration (
           id INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL,
           applied_at DATETIME(6) NOT NULL, breaking BOOLEAN NOT NULL DEFAULT FALSE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      );
      // Tables made before the column: MySQL 8 has no ADD COLUMN IF NOT EXISTS.
      const [breakingColumn] = await conn.query<RowDataPacket[]>(
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'baton_migration' AND COLUMN_NAME = 'breaking'",
      );
      if (breakingColumn.length === 0) await conn.query("ALTER TABLE baton_migration ADD COLUMN breaking BOOLEAN NOT NULL DEFAULT FALSE");
      const [rows] = await conn.query<RowDataPacket[]>("SELECT id, name, checksum, breaking FROM baton_migration ORDER BY id");
      const done = new Map(rows.map((r) => [Number(r.id), r]));
      checkNewer(rows, new Set(files.map((f) => f.id)), db.database, logger);
      for (const file of files) {
        const { sql, checksum } = migrationSqlFor(file, flavour);
        const prior = done.get(file.id);
        if (prior) {
          if (prior.checksum !== checksum) {
            throw new BatonError(
              "BATON_MIGRATION_CHECKSUM_MISMATCH",
              `migration ${file.name} was changed after it was applied (checksum ${String(prior.checksum).slice(0, 12)} → ${checksum.slice(0, 12)}); add a new migration instead`,
            );
          }
          continue;
        }
        logger.info(`applying migration ${file.name}`);
        try {
          await conn.query(sql);
        } catch (err) {
          throw migrationFailed(file.name, err);
        }
        await conn.query("INSERT INTO baton_migration (id, name, checksum, applied_at, breaking) VALUES (?, ?, ?, UTC_TIMESTAMP(6), ?)", [
          file.id,
          file.name,
          checksum,
          BREAKING.test(sql),
        ]);
        applied.push(file.name);
      }
    } finally {
      await conn.query("SELECT RELEASE_LOCK(?)", [lockName]);
    }
  } finally {
    await conn.end();
  }
  return applied;
}
