import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { BatonError } from "../../core/errors.ts";
import { connectionOptions, databaseUrlOn, dropDatabase, ensureDatabase, openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import { MIGRATIONS_FOLDER, migrate, readMigrations } from "../../store/migrate.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";
import { capturingLogger } from "../helpers/logger.ts";

const SERVER = process.env.BATON_TEST_DATABASE_SERVER ?? "mysql://root@127.0.0.1:3306";

function uniqueUrl(tag: string): string {
  return databaseUrlOn(SERVER, `baton_test_${tag}_${process.env.JEST_WORKER_ID ?? "0"}_${randomBytes(4).toString("hex")}`);
}

async function schemaExists(url: string): Promise<boolean> {
  const name = new URL(url).pathname.slice(1);
  const conn = await mysql.createConnection(connectionOptions(url));
  try {
    const [rows] = await conn.query<RowDataPacket[]>("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [name]);
    return rows.length === 1;
  } finally {
    await conn.end();
  }
}

async function tableNames(db: Db): Promise<string[]> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", [
    db.database,
  ]);
  return rows.map((r) => r.t as string);
}

describe("migrate() with the real migrations", () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDb(); // already migrated once
  });
  afterAll(() => dropTestDb(db));

  it("is idempotent: a second call applies nothing and changes no recorded row", async () => {
    const [before] = await db.pool.query<RowDataPacket[]>("SELECT id, name, checksum, applied_at FROM baton_migration ORDER BY id");
    expect(await migrate(db)).toEqual([]);
    expect(await migrate(db)).toEqual([]);
    const [after] = await db.pool.query<RowDataPacket[]>("SELECT id, name, checksum, applied_at FROM baton_migration ORDER BY id");
    expect(after).toEqual(before);
  });

  it("records every migration file with its sha256 checksum in baton_migration", async () => {
    const files = await readMigrations();
    expect(files.length).toBeGreaterThan(0);
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT id, name, checksum FROM baton_migration ORDER BY id");
    expect(rows.map((r) => ({ id: Number(r.id), name: r.name, checksum: r.checksum }))).toEqual(
      files.map((f) => ({ id: f.id, name: f.name, checksum: f.checksum })),
    );
    for (const r of rows) expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await tableNames(db)).toEqual(expect.arrayContaining(["dag", "dag_version", "dag_run", "task_instance", "import_error", "baton_migration"]));
  });
});

/** A database of its own and an empty migrations folder, for the describe block that calls it. */
function scratchDatabase(tag: string): { readonly db: Db; readonly folder: string } {
  const url = uniqueUrl(tag);
  const scratch = {} as { db: Db; folder: string };
  beforeAll(async () => {
    await ensureDatabase(url);
    scratch.db = openDb(url, { connectionLimit: 2 });
    scratch.folder = await mkdtemp(path.join(os.tmpdir(), "baton-migrations-"));
  });
  afterAll(async () => {
    await scratch.db?.close();
    await dropDatabase(url);
    await rm(scratch.folder, { recursive: true, force: true });
  });
  return scratch;
}

describe("migrate() with a temporary migrations folder", () => {
  const scratch = scratchDatabase("mig");
  let db: Db;
  let folder: string;
  beforeAll(() => ({ db, folder } = scratch));

  it("applies pending files in order, only once, and ignores files that are not NNNN_name.sql", async () => {
    await writeFile(path.join(folder, "0001_first.sql"), "CREATE TABLE widget (id INT NOT NULL PRIMARY KEY);\nINSERT INTO widget VALUES (1);\n");
    await writeFile(path.join(folder, "0002_second.sql"), "ALTER TABLE widget ADD COLUMN label VARCHAR(20) NULL;\n");
    await writeFile(path.join(folder, "README.md"), "not a migration\n");
    await writeFile(path.join(folder, "3_bad_name.sql"), "THIS IS NOT SQL;\n");

    expect(await migrate(db, undefined, folder)).toEqual(["0001_first.sql", "0002_second.sql"]);
    expect(await migrate(db, undefined, folder)).toEqual([]);

    await writeFile(path.join(folder, "0003_third.sql"), "INSERT INTO widget (id, label) VALUES (2, 'b');\n");
    expect(await migrate(db, undefined, folder)).toEqual(["0003_third.sql"]);
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT id, label FROM widget ORDER BY id");
    expect(rows.map((r) => [r.id, r.label])).toEqual([
      [1, null],
      [2, "b"],
    ]);
    const [recorded] = await db.pool.query<RowDataPacket[]>("SELECT id, name FROM baton_migration ORDER BY id");
    expect(recorded.map((r) => r.name)).toEqual(["0001_first.sql", "0002_second.sql", "0003_third.sql"]);
  });

  it("fails with BATON_MIGRATION_CHECKSUM_MISMATCH when an applied file was changed, applying nothing after it", async () => {
    await writeFile(path.join(folder, "0002_second.sql"), "ALTER TABLE widget ADD COLUMN label VARCHAR(40) NULL;\n");
    await writeFile(path.join(folder, "0004_fourth.sql"), "CREATE TABLE gadget (id INT NOT NULL PRIMARY KEY);\n");

    const failure = await migrate(db, undefined, folder).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(BatonError);
    expect((failure as BatonError).code).toBe("BATON_MIGRATION_CHECKSUM_MISMATCH");
    expect((failure as BatonError).message).toContain("0002_second.sql");
    expect(await tableNames(db)).not.toContain("gadget");

    // The lock was released: once the file is restored, migrate proceeds.
    await writeFile(path.join(folder, "0002_second.sql"), "ALTER TABLE widget ADD COLUMN label VARCHAR(20) NULL;\n");
    expect(await migrate(db, undefined, folder)).toEqual(["0004_fourth.sql"]);
  });

  it("serializes concurrent callers: each file is applied exactly once", async () => {
    await writeFile(path.join(folder, "0005_fifth.sql"), "INSERT INTO widget (id, label) VALUES (5, 'e');\n");
    const results = await Promise.all([migrate(db, undefined, folder), migrate(db, undefined, folder), migrate(db, undefined, folder)]);
    expect(results.flat()).toEqual(["0005_fifth.sql"]);
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM widget WHERE id = 5");
    expect(Number(rows[0]!.n)).toBe(1);
  });
});

// A migration whose SQL fails (or a process killed in the middle of one) leaves the statements before
// the failing one applied, since MySQL commits DDL at once, and no baton_migration row: every later
// start runs the file again from its first statement. That failed with the server's bare error, which
// the CLI printed as a stack trace naming no migration.
describe("migrate() with a migration that fails part-way", () => {
  const scratch = scratchDatabase("migf");

  it("fails with BATON_MIGRATION_FAILED naming the file, the server's error and what was left applied", async () => {
    await writeFile(path.join(scratch.folder, "0001_first.sql"), "CREATE TABLE widget (id INT NOT NULL PRIMARY KEY);\n");
    await writeFile(
      path.join(scratch.folder, "0002_half.sql"),
      "CREATE TABLE half_done (id INT NOT NULL PRIMARY KEY);\nALTER TABLE no_such_table ADD COLUMN label VARCHAR(20) NULL;\n",
    );
    const first = await migrate(scratch.db, undefined, scratch.folder).then(() => null, (err: unknown) => err);
    expect(first).toBeInstanceOf(BatonError);
    expect((first as BatonError).code).toBe("BATON_MIGRATION_FAILED");
    expect((first as BatonError).message).toMatch(/0002_half\.sql/);
    expect((first as BatonError).message).toMatch(/no_such_table/);
    expect((first as BatonError).message).toMatch(/partly applied/);
    expect((first as BatonError).message).not.toMatch(/\n/);
    expect(await tableNames(scratch.db)).toEqual(["baton_migration", "half_done", "widget"]);

    // Started again, the file runs from its first statement, which now fails: the same code, and
    // 0001 stays recorded once.
    const again = await migrate(scratch.db, undefined, scratch.folder).then(() => null, (err: unknown) => err);
    expect((again as BatonError).code).toBe("BATON_MIGRATION_FAILED");
    expect((again as BatonError).message).toMatch(/half_done/);
    const [rows] = await scratch.db.pool.query<RowDataPacket[]>("SELECT name FROM baton_migration ORDER BY id");
    expect(rows.map((r) => r.name)).toEqual(["0001_first.sql"]);
  });
});

// A database a newer Baton migrated: an older process runs on beside migrations it does not know
// (a rolling upgrade), unless one of them says on its first line that older processes must stop.
describe("migrate() on a database a newer Baton migrated", () => {
  const scratch = scratchDatabase("mign");
  const lines: string[] = [];
  const logger = capturingLogger(lines);
  const warnings = () => lines.filter((l) => l.startsWith("warn: "));

  it("records a file whose first line is `-- breaking` as breaking", async () => {
    await writeFile(path.join(scratch.folder, "0001_first.sql"), "CREATE TABLE widget (id INT NOT NULL PRIMARY KEY);\n");
    await writeFile(path.join(scratch.folder, "0002_second.sql"), "-- breaking: older workers read widget.label\nALTER TABLE widget ADD COLUMN label VARCHAR(20) NULL;\n");
    expect(await migrate(scratch.db, logger, scratch.folder)).toEqual(["0001_first.sql", "0002_second.sql"]);
    const [rows] = await scratch.db.pool.query<RowDataPacket[]>("SELECT id, breaking FROM baton_migration ORDER BY id");
    expect(rows.map((r) => [Number(r.id), Number(r.breaking)])).toEqual([
      [1, 0],
      [2, 1],
    ]);
  });

  it("runs on, with a warning naming them, beside newer migrations none of which is breaking", async () => {
    await scratch.db.pool.query("INSERT INTO baton_migration (id, name, checksum, applied_at, breaking) VALUES (3, '0003_newer_index.sql', REPEAT('a', 64), UTC_TIMESTAMP(6), FALSE)");
    lines.length = 0;
    // Was: nothing said, as for a database that is up to date.
    expect(await migrate(scratch.db, logger, scratch.folder)).toEqual([]);
    expect(warnings()).toEqual([expect.stringContaining("0003_newer_index.sql")]);
  });

  it("refuses with BATON_DATABASE_TOO_NEW when a migration it does not know is breaking", async () => {
    await scratch.db.pool.query("INSERT INTO baton_migration (id, name, checksum, applied_at, breaking) VALUES (4, '0004_split_table.sql', REPEAT('b', 64), UTC_TIMESTAMP(6), TRUE)");
    // Was: the older process started and ran against a schema it does not know.
    const failure = await migrate(scratch.db, logger, scratch.folder).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(BatonError);
    expect((failure as BatonError).code).toBe("BATON_DATABASE_TOO_NEW");
    expect((failure as BatonError).message).toContain("0004_split_table.sql");
    expect((failure as BatonError).message).not.toContain("0003_newer_index.sql");
  });
});

describe("migrate() with MySQL variants (NNNN_name.mysql.sql)", () => {
  const maria = scratchDatabase("migm");
  const my = scratchDatabase("migy");
  const real = scratchDatabase("migr");

  it("runs the variant on MySQL and the file itself on MariaDB, each recording the checksum of what it ran", async () => {
    for (const { folder } of [maria, my]) {
      await writeFile(path.join(folder, "0001_first.sql"), "CREATE TABLE maria_side (id INT NOT NULL PRIMARY KEY);\n");
      await writeFile(path.join(folder, "0001_first.mysql.sql"), "CREATE TABLE mysql_side (id INT NOT NULL PRIMARY KEY);\n");
      await writeFile(path.join(folder, "0002_second.sql"), "CREATE TABLE both_sides (id INT NOT NULL PRIMARY KEY);\n");
    }
    expect(await migrate(maria.db, undefined, maria.folder, { flavour: "mariadb" })).toEqual(["0001_first.sql", "0002_second.sql"]);
    expect(await migrate(my.db, undefined, my.folder, { flavour: "mysql" })).toEqual(["0001_first.sql", "0002_second.sql"]);
    expect(await tableNames(maria.db)).toEqual(["baton_migration", "both_sides", "maria_side"]);
    expect(await tableNames(my.db)).toEqual(["baton_migration", "both_sides", "mysql_side"]);

    const [file] = await readMigrations(my.folder);
    const recorded = async (db: Db) => (await db.pool.query<RowDataPacket[]>("SELECT checksum FROM baton_migration WHERE id = 1"))[0][0]!.checksum;
    expect(await recorded(maria.db)).toBe(file!.checksum);
    expect(await recorded(my.db)).toBe(file!.mysql!.checksum);
    // Each is up to date by its own checksum: nothing to apply, no mismatch.
    expect(await migrate(maria.db, undefined, maria.folder, { flavour: "mariadb" })).toEqual([]);
    expect(await migrate(my.db, undefined, my.folder, { flavour: "mysql" })).toEqual([]);
  });

  it("a variant without its migration is BATON_MIGRATION_INVALID, and nothing is applied", async () => {
    await writeFile(path.join(my.folder, "0003_third.sql"), "CREATE TABLE third (id INT NOT NULL PRIMARY KEY);\n");
    await writeFile(path.join(my.folder, "0004_fourth.mysql.sql"), "CREATE TABLE fourth (id INT NOT NULL PRIMARY KEY);\n");
    await expect(migrate(my.db, undefined, my.folder, { flavour: "mysql" })).rejects.toMatchObject({ code: "BATON_MIGRATION_INVALID" });
    expect(await tableNames(my.db)).not.toContain("third");
  });

  it("the real migrations as MySQL would run them leave working event-log triggers (checked on this MariaDB)", async () => {
    for (const name of await readdir(MIGRATIONS_FOLDER)) await copyFile(path.join(MIGRATIONS_FOLDER, name), path.join(real.folder, name));
    const files = await readMigrations(real.folder);
    expect(files.filter((f) => f.mysql).map((f) => f.name)).toEqual(["0025_event_log_simple_inserts.sql", "0031_event_detail.sql"]);
    await migrate(real.db, undefined, real.folder, { flavour: "mysql" });
    await real.db.pool.query(
      `INSERT INTO dag_run (dag_id, run_id, run_type, state, version_hash, queued_at, unfinished_tasks) VALUES ('mig_dag', 'r1', 'manual', 'queued', 'h', UTC_TIMESTAMP(6), 0)`,
    );
    await real.db.withEventDetail("why it ran").pool.query("UPDATE dag_run SET state = 'running' WHERE run_id = 'r1'");
    await real.db.pool.query("UPDATE dag_run SET unfinished_tasks = 0 WHERE run_id = 'r1'"); // no state change: no event
    await real.db.pool.query(
      `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, try_number, max_tries, pool, pool_slots, queue, priority_weight)
       SELECT id, dag_id, run_id, 't', -1, 'none', 0, 1, 'default_pool', 1, 'default', 1 FROM dag_run WHERE run_id = 'r1'`,
    );
    // A value past the column's 1,000 characters set by hand is cut by the trigger, not refused with the UPDATE.
    const raw = await mysql.createConnection({ ...connectionOptions(real.db.url), database: real.db.database });
    try {
      await raw.query("SET @baton_event_detail = REPEAT('x', 1200)");
      await raw.query("UPDATE task_instance SET state = 'queued' WHERE run_id = 'r1'");
    } finally {
      await raw.end();
    }
    const [events] = await real.db.pool.query<RowDataPacket[]>("SELECT kind, from_state, to_state, detail FROM event_log WHERE run_id = 'r1' ORDER BY id");
    expect(events.map((e) => [e.kind, e.from_state, e.to_state, e.detail])).toEqual([
      ["run", null, "queued", null],
      ["run", "queued", "running", "why it ran"],
      ["task", null, "none", null],
      ["task", "none", "queued", "x".repeat(1000)],
    ]);
  });
});

describe("ensureDatabase()", () => {
  const url = uniqueUrl("ensure");
  let created = false;
  afterAll(async () => {
    if (created) await dropDatabase(url);
  });

  it("creates a missing database, and leaves an existing one (and its tables) alone", async () => {
    expect(await schemaExists(url)).toBe(false);
    await ensureDatabase(url);
    created = true;
    expect(await schemaExists(url)).toBe(true);

    const db = openDb(url, { connectionLimit: 1 });
    try {
      await db.pool.query("CREATE TABLE keep_me (id INT)");
      await ensureDatabase(url);
      expect(await tableNames(db)).toEqual(["keep_me"]);
      const [rows] = await db.pool.query<RowDataPacket[]>(
        "SELECT DEFAULT_CHARACTER_SET_NAME AS cs FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        [db.database],
      );
      expect(rows[0]!.cs).toBe("utf8mb4");
    } finally {
      await db.close();
    }
  });
});

describe("0020_run_callbacks on a database with history", () => {
  const scratch = scratchDatabase("mig20");
  let db: Db;
  let folder: string;
  beforeAll(() => ({ db, folder } = scratch));

  it("learns which callbacks stored versions define, and a run of one that ends afterwards owes its callback", async () => {
    const files = (await readdir(MIGRATIONS_FOLDER)).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort();
    for (const f of files.filter((f) => f < "0020")) await copyFile(path.join(MIGRATIONS_FOLDER, f), path.join(folder, f));
    await migrate(db, undefined, folder);
    const structure = (callbacks: object | undefined) => JSON.stringify({ dagId: "d", ...(callbacks ? { callbacks } : {}) });
    await db.pool.query("INSERT INTO dag (dag_id, fileloc, last_parsed_at, created_at, latest_version_hash) VALUES ('d', 'd.ts', NOW(6), NOW(6), 'v2')");
    await db.pool.query(
      `INSERT INTO dag_version (dag_id, version_hash, code_hash, structure, created_at) VALUES
         ('d', 'v1', 'c', ?, NOW(6)), ('d', 'v2', 'c', ?, NOW(6)), ('d', 'v3', 'c', ?, NOW(6))`,
      [structure(undefined), structure({ onSuccess: false, onFailure: true }), structure({ onSuccess: true, onFailure: true })],
    );
    await db.pool.query(
      `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end, conf, external_trigger, queued_at)
       VALUES ('d', 'r1', 'v1', 'manual', 'running', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6)),
              ('d', 'r2', 'v2', 'manual', 'running', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6)),
              ('d', 'r3', 'v2', 'manual', 'running', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6))`,
    );

    for (const f of files.filter((f) => f >= "0020")) await copyFile(path.join(MIGRATIONS_FOLDER, f), path.join(folder, f));
    expect(await migrate(db, undefined, folder)).toContain("0020_run_callbacks.sql");
    const [versions] = await db.pool.query<RowDataPacket[]>("SELECT version_hash, on_success, on_failure FROM dag_version ORDER BY version_hash");
    expect(versions.map((v) => [v.version_hash, Number(v.on_success), Number(v.on_failure)])).toEqual([["v1", 0, 0], ["v2", 0, 1], ["v3", 1, 1]]);

    await db.pool.query("UPDATE dag_run SET state = 'failed' WHERE run_id IN ('r1', 'r2')");
    await db.pool.query("UPDATE dag_run SET state = 'success' WHERE run_id = 'r3'");
    const [runs] = await db.pool.query<RowDataPacket[]>("SELECT run_id, callback_due FROM dag_run ORDER BY run_id");
    // r1's version has no callback, r3's has no onSuccess: only r2 owes one.
    expect(runs.map((r) => [r.run_id, Number(r.callback_due)])).toEqual([["r1", 0], ["r2", 1], ["r3", 0]]);
  });
});

describe("0028_cut_off_compensations on a database with history", () => {
  const scratch = scratchDatabase("mig28");

  it("ends the compensation of failed runs left showing 'running', and leaves compensating runs alone", async () => {
    const { db, folder } = scratch;
    const files = (await readdir(MIGRATIONS_FOLDER)).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort();
    for (const f of files.filter((f) => f < "0028")) await copyFile(path.join(MIGRATIONS_FOLDER, f), path.join(folder, f));
    await migrate(db, undefined, folder);
    await db.pool.query(
      `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end, conf, external_trigger, queued_at, compensation)
       VALUES ('d', 'cut_off', 'v', 'manual', 'failed', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6), 'running'),
              ('d', 'compensating', 'v', 'manual', 'running', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6), 'running'),
              ('d', 'compensated', 'v', 'manual', 'failed', NOW(6), NOW(6), NOW(6), '{}', 1, NOW(6), 'compensated')`,
    );
    for (const f of files.filter((f) => f >= "0028")) await copyFile(path.join(MIGRATIONS_FOLDER, f), path.join(folder, f));
    expect(await migrate(db, undefined, folder)).toContain("0028_cut_off_compensations.sql");
    const [runs] = await db.pool.query<RowDataPacket[]>("SELECT run_id, compensation FROM dag_run ORDER BY run_id");
    expect(runs.map((r) => [r.run_id, r.compensation])).toEqual([
      ["compensated", "compensated"],
      ["compensating", "running"],
      ["cut_off", "compensation_failed"],
    ]);
  });
});
