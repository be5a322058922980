// How the CLI fails: one line `baton: CODE: detail` and a non-zero exit, never a stack trace;
// bad input refused before any request. Where nothing may reach the database, the URL points at
// a closed port: a command that tried would say "cannot reach MySQL" and exit 2.
import { spawn } from "node:child_process";
import { createTestDb, dropTestDb } from "../helpers/db.ts";
import { BIN, cleanEnv, ROOT, runBaton } from "../helpers/cli.ts";
import type { Db } from "../../store/db.ts";

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

describe("errors thrown inside an action are one line too (they were uncaught, with a stack trace)", () => {
  it.concurrent.each([
    ["pools set p9 -1", ["pools", "set", "p9", "-1"], 'BATON_VALIDATION_FAILED: <slots> "-1": must be a non-negative integer'],
    ["pools set p9 abc", ["pools", "set", "p9", "abc"], 'BATON_VALIDATION_FAILED: <slots> "abc": must be a non-negative integer'],
    // commander's InvalidArgumentError, thrown by the action itself
    ["dead-letters redrive without --dag-id or --ids", ["dead-letters", "redrive", "--dry-run"], "BATON_VALIDATION_FAILED: give --dag-id or --ids"],
  ])("%s", async (_name, args, line) => {
    const r = await runBaton(args, closed);
    expectOneLine(r, line);
    expect(r.stderr).not.toContain("    at ");
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
