import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";
import { BatonError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { silentLogger } from "../core/logger.ts";
import { connectionOptions, type Db, type RowDataPacket } from "./db.ts";

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../migrations");

interface MigrationFile {
  id: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(folder = MIGRATIONS_FOLDER): Promise<MigrationFile[]> {
  const names = (await readdir(folder)).filter((n) => /^\d{4}_[\w-]+\.sql$/.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(folder, name), "utf8");
      return { id: Number(name.slice(0, 4)), name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

/**
 * Applies pending migrations in order under a named lock, so concurrent starters wait
 * rather than race. An applied file whose checksum changed stops everything: migrations
 * are forward-only, fixes go in a new file.
 */
export async function migrate(db: Db, logger: Logger = silentLogger, folder = MIGRATIONS_FOLDER): Promise<string[]> {
  const files = await readMigrations(folder);
  // The lock is per database, so migrating one database never waits on another's.
  // DDL needs multi-statement files; a dedicated connection keeps that flag off the pool.
  const conn = await mysql.createConnection({ ...connectionOptions(db.url), database: db.database, multipleStatements: true });
  const applied: string[] = [];
  try {
    const [lockRows] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK(CONCAT('baton_migrate:', DATABASE()), 60) AS got");
    if (lockRows[0]?.got !== 1) throw new BatonError("BATON_MIGRATION_LOCK_TIMEOUT", "another process held the migration lock for 60 s");
    try {
      await conn.query(
        `CREATE TABLE IF NOT EXISTS baton_migration (
           id INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL,
           applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      );
      const [rows] = await conn.query<RowDataPacket[]>("SELECT id, name, checksum FROM baton_migration");
      const done = new Map(rows.map((r) => [Number(r.id), r]));
      for (const file of files) {
        const prior = done.get(file.id);
        if (prior) {
          if (prior.checksum !== file.checksum) {
            throw new BatonError(
              "BATON_MIGRATION_CHECKSUM_MISMATCH",
              `migration ${file.name} was changed after it was applied (checksum ${String(prior.checksum).slice(0, 12)} → ${file.checksum.slice(0, 12)}); add a new migration instead`,
            );
          }
          continue;
        }
        logger.info(`applying migration ${file.name}`);
        await conn.query(file.sql);
        await conn.query("INSERT INTO baton_migration (id, name, checksum, applied_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))", [
          file.id,
          file.name,
          file.checksum,
        ]);
        applied.push(file.name);
      }
    } finally {
      await conn.query("SELECT RELEASE_LOCK(CONCAT('baton_migrate:', DATABASE()))");
    }
  } finally {
    await conn.end();
  }
  return applied;
}
