// How the CLI fails: one line `baton: CODE: detail` and a non-zero exit, never a stack trace;
// bad input refused before any request. Where nothing may reach the database, the URL points at
// a closed port: a command that tried would say "cannot reach MySQL" and exit 2.
import { spawn } from "node:child_process";
import { scratchDir } from "../helpers/scratch.ts";
import { createServer, type AddressInfo, type Server } from "node:net";
import path from "node:path";
import { createTestDb, dropTestDb } from "../helpers/db.ts";
import { BIN, cleanEnv, ROOT, runBaton } from "../helpers/cli.ts";
import { databaseNameOf, dropDatabase, type Db, type RowDataPacket } from "../../store/db.ts";

const closed = { BATON_DATABASE_URL: "mysql://root@127.0.0.1:1/baton" };

function expectOneLine(r: { code: number | null; stdout: string; stderr: string }, prefix: string) {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: "" });
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]!.startsWith(`baton: ${prefix}`)).toBe(true);
}

describe("CLI date options take what the API takes (RFC 3339 date-times with an offset or Z), checked before any request", () => {
  it.concurrent.each([
    ["--logical-date 1 (was 2001-01-01)", ["dags", "trigger", "d", "--logical-date", "1"], '--logical-date "1"'],
    ["--logical-date in words", ["dags", "trigger", "d", "--logical-date", "March 3 2026"], '--logical-date "March 3 2026"'],
    ["--logical-date without an offset (was local time)", ["dags", "trigger", "d", "--logical-date", "2026-03-01T00:00:00"], '--logical-date "2026-03-01T00:00:00"'],
    ["db clean --before 32 (was 2032-01-01: every finished run)", ["db", "clean", "--before", "32", "--dry-run"], '--before "32"'],
    ["db clean --before a bare date", ["db", "clean", "--before", "2026-01-01"], '--before "2026-01-01"'],
  ])("%s: BATON_INVALID_DATE in one line, exit 1", async (_name, args, names) => {
    const r = await runBaton(args, closed);
    expectOneLine(r, `BATON_INVALID_DATE: ${names} is not an ISO 8601 date-time with an offset or Z`);
  });

  it.concurrent.each([
    ["--logical-date", ["dags", "trigger", "d", "--logical-date", "2026-03-01T09:00:00+09:00"]],
    ["--before", ["db", "clean", "--before", "2026-01-01T00:00:00Z", "--dry-run"]],
  ])("a valid %s goes on to the database", async (_name, args) => {
    const r = await runBaton(args, closed);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot reach MySQL");
  });
});

// The API's schema answered a short --from with BATON_VALIDATION_FAILED "body.from_date must NOT have fewer than 10
// characters", a long but impossible one with BATON_INVALID_DATE: one code, naming the option, before any request.
describe("backfill create --from/--to are checked by the CLI: BATON_INVALID_DATE naming the option", () => {
  it.concurrent.each([
    ["--from bogus (was the schema's length)", ["backfill", "create", "d", "--from", "bogus", "--to", "2026-01-02"], '--from "bogus"'],
    ["--from 2026-13-45", ["backfill", "create", "d", "--from", "2026-13-45", "--to", "2026-01-02"], '--from "2026-13-45"'],
    ["--to 0999-01-01 (the API's years are 1000-9999)", ["backfill", "create", "d", "--from", "2026-01-01", "--to", "0999-01-01"], '--to "0999-01-01"'],
    ["--to with words after the date", ["backfill", "create", "d", "--from", "2026-01-01", "--to", "2026-01-02 then"], '--to "2026-01-02 then"'],
  ])("%s", async (_name, args, names) => {
    const r = await runBaton(args, closed);
    expectOneLine(r, `BATON_INVALID_DATE: ${names} is not a date`);
    expect(r.stderr).toContain('"2026-01-01"');
  });

  it.concurrent.each([
    ["dates", ["backfill", "create", "d", "--from", "2026-01-01", "--to", "2026-01-02"]],
    ["date-times in the DAG's time zone", ["backfill", "create", "d", "--from", "2026-01-01T06:00", "--to", "2026-01-02T06:00:00"]],
    ["date-times with an offset", ["backfill", "create", "d", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00+09:00"]],
  ])("valid %s go on to the database", async (_name, args) => {
    const r = await runBaton(args, closed);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot reach MySQL");
  });
});

// The schema's "body.expires_in must NOT have fewer than 2 characters" named neither the option nor the form.
describe("tokens create --expires-in is checked by the CLI, naming the option and the accepted form", () => {
  it.concurrent.each([["0"], ["1"], ["soon"], ["500ms"], ["600w"]])("--expires-in %s", async (value) => {
    const r = await runBaton(["tokens", "create", "--name", "n", "--role", "viewer", "--expires-in", value], closed);
    expectOneLine(r, `BATON_VALIDATION_FAILED: --expires-in "${value}" must be a duration from 1s to 10 years, such as 90d, 12h or 30m`);
  });

  it("a valid one goes on to the database", async () => {
    const r = await runBaton(["tokens", "create", "--name", "n", "--role", "viewer", "--expires-in", "90d"], closed);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot reach MySQL");
  });
});

describe("errors thrown inside an action are one line too (they were uncaught, with a stack trace)", () => {
  it.concurrent.each([
    ["pools set p9 -2", ["pools", "set", "p9", "-2"], 'BATON_VALIDATION_FAILED: <slots> "-2": must be a non-negative integer, or -1 for no limit'],
    ["pools set p9 abc", ["pools", "set", "p9", "abc"], 'BATON_VALIDATION_FAILED: <slots> "abc": must be a non-negative integer, or -1 for no limit'],
    // Number() read "" as 0 (a pool that blocks every task) and "0x10" as 16, as --port did.
    ["pools set p9 \"\"", ["pools", "set", "p9", ""], 'BATON_VALIDATION_FAILED: <slots> "": must be a non-negative integer, or -1 for no limit'],
    ["pools set p9 0x10", ["pools", "set", "p9", "0x10"], 'BATON_VALIDATION_FAILED: <slots> "0x10": must be a non-negative integer, or -1 for no limit'],
    ["backfill status 1e2", ["backfill", "status", "1e2"], 'BATON_VALIDATION_FAILED: backfill id must be a positive integer, got "1e2"'],
    // commander's InvalidArgumentError, thrown by the action itself
    ["dead-letters redrive without --dag-id or --ids", ["dead-letters", "redrive", "--dry-run"], "BATON_VALIDATION_FAILED: give --dag-id or --ids"],
  ])("%s", async (_name, args, line) => {
    const r = await runBaton(args, closed);
    expectOneLine(r, line);
    expect(r.stderr).not.toContain("    at ");
  });
});

// Commander's own usage errors printed `error: …` and the whole help text after it: no BATON_* code
// for a script to match, and the one line the README promises lost in forty.
describe("usage errors (unknown option or command, missing argument, bad option value) are one line with a code too", () => {
  it.concurrent.each([
    ["an unknown option", ["dags", "trigger", "d", "--bogus"], "BATON_VALIDATION_FAILED: unknown option '--bogus' (see 'baton dags trigger --help')"],
    ["a missing argument", ["dags", "trigger"], "BATON_VALIDATION_FAILED: missing required argument 'dag_id' (see 'baton dags trigger --help')"],
    ["a missing required option", ["tasks", "clear", "d"], "BATON_VALIDATION_FAILED: required option '-r, --run-id <run_id>' not specified (see 'baton tasks clear --help')"],
    ["a bad option value", ["runs", "list", "d", "--limit", "-1"], "BATON_VALIDATION_FAILED: option '--limit <n>' argument '-1' is invalid. must be a non-negative integer (see 'baton runs list --help')"],
    // Number() read "" as 0 and "0x10" as 16: `--port ""` (as `--extra ""` clears the extra) set port 0.
    ["a blank integer option", ["connections", "update", "c", "--port", ""], "BATON_VALIDATION_FAILED: option '--port <port>' argument '' is invalid. must be a non-negative integer (see 'baton connections update --help')"],
    ["a hexadecimal integer option", ["connections", "add", "c", "--conn-type", "http", "--port", "0x10"], "BATON_VALIDATION_FAILED: option '--port <port>' argument '0x10' is invalid. must be a non-negative integer (see 'baton connections add --help')"],
    ["an exponent in an integer option", ["runs", "list", "d", "--limit", "1e2"], "BATON_VALIDATION_FAILED: option '--limit <n>' argument '1e2' is invalid. must be a non-negative integer (see 'baton runs list --help')"],
    ["a bad global option", ["-o", "yaml", "dags", "list"], `BATON_VALIDATION_FAILED: option '-o, --output <format>' argument 'yaml' is invalid. must be "table" or "json" (see 'baton --help')`],
    ["an unknown command", ["dags", "lsit"], "BATON_VALIDATION_FAILED: unknown command 'lsit' (Did you mean list?) (see 'baton dags --help')"],
  ])("%s", async (_name, args, line) => {
    const r = await runBaton(args, closed);
    expectOneLine(r, line);
  });
});

describe("a database that does not exist (a misspelt BATON_DATABASE_URL): commands on Baton's state refuse it, they do not create it", () => {
  let probe: Db;
  let missingUrl: string;
  beforeAll(async () => {
    probe = await createTestDb();
    missingUrl = `${probe.url}_typo`;
  });
  afterAll(async () => {
    // Only there if a command created it (the bug) or `db migrate` did (below).
    await dropDatabase(missingUrl).catch(() => undefined);
    await dropTestDb(probe);
  });
  const exists = async (url: string) => {
    const [rows] = await probe.pool.query<RowDataPacket[]>("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [databaseNameOf(url)]);
    return rows.length > 0;
  };

  // Each created the database and migrated it, then answered from the new, empty one ("no DAGs").
  it.concurrent.each([
    ["dags list", ["dags", "list"]],
    ["runs list", ["runs", "list", "~"]],
    ["tasks list", ["tasks", "list", "d", "r"]],
    ["tokens list", ["tokens", "list"]],
    ["dags trigger", ["dags", "trigger", "d"]],
    ["db clean", ["db", "clean", "--before", "2026-01-01T00:00:00Z", "--dry-run"]],
  ])("%s: BATON_DATABASE_MISSING in one line naming the database and how to create it, exit 2", async (_name, args) => {
    const r = await runBaton(args, { BATON_DATABASE_URL: missingUrl });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: "" });
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toEqual([expect.stringMatching(/^baton: BATON_DATABASE_MISSING: database "baton_test_\w+_typo" does not exist /)]);
    expect(lines[0]).toContain("baton db migrate");
    expect(await exists(missingUrl)).toBe(false);
  });

  it("`db migrate` creates it, and the commands then work on it", async () => {
    const migrated = await runBaton(["db", "migrate"], { BATON_DATABASE_URL: missingUrl, BATON_LOG_LEVEL: "warn" });
    expect({ code: migrated.code, stderr: migrated.stderr }).toEqual({ code: 0, stderr: "" });
    expect(migrated.stdout).toMatch(/^applied: 0001_/);
    expect(await exists(missingUrl)).toBe(true);
    const listed = await runBaton(["--output", "json", "dags", "list"], { BATON_DATABASE_URL: missingUrl, BATON_LOG_LEVEL: "warn" });
    expect({ code: listed.code, stderr: listed.stderr, dags: JSON.parse(listed.stdout) }).toEqual({ code: 0, stderr: "", dags: [] });
  });
});

describe("a reader that closes stdout early (`baton … | head -5`)", () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => dropTestDb(db));

  it("ends the CLI quietly with 141 (128 + SIGPIPE, as a shell reports other CLIs), not an unhandled EPIPE", async () => {
    const child = spawn(process.execPath, [BIN, "pools", "list"], { cwd: ROOT, env: cleanEnv({ BATON_DATABASE_URL: db.url }), stdio: ["ignore", "pipe", "pipe"] });
    // The reader is gone before the CLI writes its first line.
    child.stdout!.destroy();
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once("close", (c, s) => resolve([c, s])));
    clearTimeout(timer);
    expect({ code, signal, stderr }).toEqual({ code: 141, signal: null, stderr: "" });
  });
});

// Every other unreadable setting exits 1 from loadConfig; the URL, read later when the database is
// opened, exited 2, the status of an unreachable server, though retrying cannot help.
describe("a BATON_DATABASE_URL that cannot be read: one line, exit 1, like any bad setting", () => {
  it.concurrent.each([
    ["worker, no database in the URL", ["worker"], "mysql://root@127.0.0.1:1", 'BATON_CONFIG_INVALID: BATON_DATABASE_URL must name a database (letters, digits, _), got "mysql://root@127.0.0.1:1"'],
    ["db migrate, not mysql://", ["db", "migrate"], "postgres://root@127.0.0.1:1/baton", 'BATON_CONFIG_INVALID: BATON_DATABASE_URL must start with mysql://'],
    ["pools list, an unencoded password", ["pools", "list"], "mysql://baton:2024/secret@127.0.0.1:1/baton", 'BATON_CONFIG_INVALID: BATON_DATABASE_URL has an "@" after its host'],
  ])("%s", async (_name, args, url, line) => {
    const r = await runBaton(args, { BATON_DATABASE_URL: url });
    expectOneLine(r, line);
    expect(r.stderr).not.toContain("secret");
  });
});

describe("bad listen settings: one line, exit 1 (they crashed with a RangeError or listen error and its stack)", () => {
  // The database URL is a closed port: these fail before any startup work (migrations, a DAG scan).
  it.concurrent.each([
    ["standalone --port 99999", ["standalone", "--port", "99999"], {}, 'BATON_CONFIG_INVALID: --port must be a port from 0 to 65535, got "99999"'],
    ["api --port 65536", ["api", "--port", "65536"], {}, 'BATON_CONFIG_INVALID: --port must be a port from 0 to 65535, got "65536"'],
    ["BATON_PORT=99999 api", ["api"], { BATON_PORT: "99999" }, 'BATON_CONFIG_INVALID: BATON_PORT must be a port from 0 to 65535, got "99999"'],
    ["BATON_METRICS_PORT=99999 worker", ["worker"], { BATON_METRICS_PORT: "99999" }, 'BATON_CONFIG_INVALID: BATON_METRICS_PORT must be a port from 0 to 65535, got "99999"'],
    // would register as a live worker that never runs a task, or serve `default` unasked
    ["worker --concurrency 0", ["worker", "--concurrency", "0"], {}, "BATON_CONFIG_INVALID: a worker needs at least one task slot (BATON_WORKERS / --concurrency), got 0"],
    ["BATON_WORKERS=0 standalone", ["standalone"], { BATON_WORKERS: "0" }, "BATON_CONFIG_INVALID: a worker needs at least one task slot (BATON_WORKERS / --concurrency), got 0"],
    // forked a task process per slot before listening to signals: a fork bomb that Ctrl-C could not stop
    ["worker --concurrency 99999999", ["worker", "--concurrency", "99999999"], {}, "BATON_CONFIG_INVALID: a worker has at most 1024 task slots (BATON_WORKERS / --concurrency; each is a task process), got 99999999; run more `baton worker` processes instead"],
    ["BATON_WORKERS=1025 standalone", ["standalone"], { BATON_WORKERS: "1025" }, "BATON_CONFIG_INVALID: a worker has at most 1024 task slots (BATON_WORKERS / --concurrency; each is a task process), got 1025; run more `baton worker` processes instead"],
    ["worker --queues ,", ["worker", "--queues", ","], {}, "BATON_CONFIG_INVALID: --queues names no queue"],
    // a queue name no DAG may use (core/dagLimits.ts): it would print as two log lines
    ["worker --queues 'a<newline>b'", ["worker", "--queues", "etl,a\nb"], {}, 'BATON_CONFIG_INVALID: --queues: queue must not contain control characters (a newline, a tab: it is printed in log lines), got U+000A in "a\\nb"'],
    // task_instance.hostname is a VARCHAR(255): a longer name started a worker whose every claim failed
    // ("Data too long for column 'hostname'", BATON_TASK_UNCLAIMABLE), so it never ran a task
    ["worker --hostname <256 characters>", ["worker", "--hostname", "h".repeat(256)], {}, `BATON_CONFIG_INVALID: --hostname must be 1-255 characters, got 256 ("${"h".repeat(40)}"…)`],
    // recorded on its tasks and shown by GET /api/v1/workers as an empty host
    ["worker --hostname ''", ["worker", "--hostname", ""], {}, "BATON_CONFIG_INVALID: --hostname must be 1-255 characters, got 0"],
    ["worker --hostname 'a<newline>b'", ["worker", "--hostname", "a\nb"], {}, 'BATON_CONFIG_INVALID: --hostname must not contain control characters (a newline, a tab: it is printed in log lines), got U+000A in "a\\nb"'],
    // was "cannot reach MySQL … (ENOTFOUND)", exit 2: the listen host taken for the database
    ["api --host nosuchhost.invalid", ["api", "--host", "nosuchhost.invalid"], {}, "BATON_LISTEN_FAILED: cannot listen for the API on nosuchhost.invalid:8080: the host name nosuchhost.invalid does not resolve (ENOTFOUND)"],
  ])("%s", async (_name, args, env, line) => {
    const r = await runBaton(args, { ...closed, ...env });
    expectOneLine(r, line);
  });

  describe("with a database", () => {
    let db: Db;
    let busy: Server;
    let busyPort: number;
    let folder: string;
    beforeAll(async () => {
      db = await createTestDb();
      folder = await scratchDir("baton-listen-");
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
      busyPort = (busy.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => busy.close(resolve));
      await dropTestDb(db);
    });
    const env = (extra: Record<string, string>) => ({
      BATON_DATABASE_URL: db.url,
      BATON_ADMIN_TOKEN_FILE: path.join(folder, "admin-token"),
      // a given admin token is not announced on stdout, as a generated one is
      BATON_ADMIN_TOKEN: "listen-test-admin-token",
      BATON_LOGS_FOLDER: path.join(folder, "logs"),
      BATON_CACHE_FOLDER: path.join(folder, "cache"),
      BATON_LOG_LEVEL: "silent",
      ...extra,
    });

    it("an address not of this machine: BATON_LISTEN_FAILED (EADDRNOTAVAIL)", async () => {
      // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it.
      const r = await runBaton(["api", "--host", "192.0.2.1", "--port", "0"], env({}));
      expectOneLine(r, "BATON_LISTEN_FAILED: cannot listen for the API on 192.0.2.1:0: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL)");
    });

    it("a port in use, for the API and for a worker's metrics: BATON_LISTEN_FAILED (EADDRINUSE)", async () => {
      const api = await runBaton(["api", "--port", String(busyPort)], env({}));
      expectOneLine(api, `BATON_LISTEN_FAILED: cannot listen for the API on 127.0.0.1:${busyPort}: port ${busyPort} is already in use (EADDRINUSE)`);
      const worker = await runBaton(["worker", "--concurrency", "1"], env({ BATON_METRICS_PORT: String(busyPort) }));
      expectOneLine(worker, `BATON_LISTEN_FAILED: cannot listen for the metrics on 127.0.0.1:${busyPort}: port ${busyPort} is already in use (EADDRINUSE)`);
    });
  });
});

describe("a login MySQL refuses (a wrong user or password in BATON_DATABASE_URL): one line naming the URL without its password, exit 2", () => {
  // No such user on the test server: MariaDB answers ER_ACCESS_DENIED_NO_PASSWORD_ERROR (1698)
  // or ER_ACCESS_DENIED_ERROR (1045), as MySQL does, depending on its authentication plugins.
  const refused = { BATON_DATABASE_URL: "mysql://baton_no_such_user:s3cret@127.0.0.1:3306/baton_login_test", BATON_LOG_LEVEL: "silent" };
  it.concurrent.each([
    ["a service (worker)", ["worker", "--concurrency", "1"]],
    ["a command on the database (dags list)", ["dags", "list"]],
    ["db migrate", ["db", "migrate"]],
  ])("%s", async (_name, args) => {
    const r = await runBaton(args, refused);
    // Was: an uncaught ER_ACCESS_DENIED_NO_PASSWORD_ERROR with a stack trace, exit 1.
    expect(r.code).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^baton: MySQL at mysql:\/\/baton_no_such_user:\*\*\*@127\.0\.0\.1:3306\/baton_login_test over TCP refused the login \(ER_ACCESS_DENIED_(NO_PASSWORD_)?ERROR: Access denied for user 'baton_no_such_user'@'[^']+'.*\)\. Check the user and password in BATON_DATABASE_URL and the user's grants\.$/,
    );
    expect(r.stderr).not.toContain("s3cret");
  });
});
