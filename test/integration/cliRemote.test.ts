import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import os from "node:os";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { systemClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import { insertToken } from "../../store/apiTokens.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { createTestDb, dropTestDb, waitFor } from "../helpers/db.ts";
import { BIN, ROOT, cleanEnv, runBaton } from "../helpers/cli.ts";

/** The CLI against a real API over HTTP (--api-url + BATON_API_TOKEN), and against the database directly. */
describe("CLI with --api-url and tokens", () => {
  let db: Db;
  let app: FastifyInstance;
  let apiUrl: string;
  const admin = generateToken();
  const viewer = generateToken();

  beforeAll(async () => {
    db = await createTestDb();
    const now = new Date();
    await insertToken(db.pool, { name: "cli-admin", role: "admin", hash: hashToken(admin), prefix: "x", now });
    await insertToken(db.pool, { name: "cli-viewer", role: "viewer", hash: hashToken(viewer), prefix: "x", now });
    app = await buildApp({ db, clock: systemClock, logger: silentLogger, config: { logsFolder: os.tmpdir() }, auth: { mode: "on" } });
    await app.listen({ port: 0, host: "127.0.0.1" });
    apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
  });

  it("manages pools remotely with an admin token, and prints the API's objects with --output json", async () => {
    const set = await runBaton(["--api-url", apiUrl, "pools", "set", "etl", "3", "--description", "nightly ETL"], { BATON_API_TOKEN: admin });
    expect(set).toMatchObject({ code: 0, stdout: "pool etl: 3 slot(s)\n" });
    const list = await runBaton(["--api-url", apiUrl, "--output", "json", "pools", "list"], { BATON_API_TOKEN: admin });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: "etl", slots: 3, open_slots: 3, description: "nightly ETL" })]));
    const [[row]] = await db.pool.query<RowDataPacket[]>("SELECT slots FROM pool WHERE name = 'etl'");
    expect(row!.slots).toBe(3);
  });

  it("updates only the given fields of a connection (update_mask), and prints deletes as JSON under --output json", async () => {
    const auth = { authorization: `Bearer ${admin}` };
    const created = await app.inject({ method: "POST", url: "/api/v1/connections", headers: auth, payload: { connection_id: "wh", conn_type: "postgres", host: "old", login: "etl", port: 5432 } });
    expect(created.statusCode).toBe(200);
    const [update, nothing] = await Promise.all([
      runBaton(["--api-url", apiUrl, "connections", "update", "wh", "--host", "db.internal", "--port", "6432", "--password", "s3cret"], { BATON_API_TOKEN: admin }),
      runBaton(["--api-url", apiUrl, "connections", "update", "wh"], { BATON_API_TOKEN: admin }),
    ]);
    expect(update).toMatchObject({ code: 0, stdout: "updated connection wh: host, password, port\n" });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain("BATON_VALIDATION_FAILED: give at least one field to change");
    const after = await app.inject({ method: "GET", url: "/api/v1/connections/wh", headers: auth });
    expect(after.json()).toMatchObject({ conn_type: "postgres", host: "db.internal", login: "etl", port: 6432 });
    const [[row]] = await db.pool.query<RowDataPacket[]>("SELECT password FROM connection WHERE connection_id = 'wh'");
    expect(row!.password).not.toBeNull();

    const deleted = await runBaton(["--api-url", apiUrl, "-o", "json", "connections", "delete", "wh"], { BATON_API_TOKEN: admin });
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ connection_id: "wh", deleted: true });
    expect((await app.inject({ method: "GET", url: "/api/v1/connections/wh", headers: auth })).statusCode).toBe(404);
  });

  it("reports a refused role or a missing token as one line with the code, and exits 1", async () => {
    const forbidden = await runBaton(["--api-url", apiUrl, "pools", "delete", "etl"], { BATON_API_TOKEN: viewer });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^baton: BATON_FORBIDDEN: token "cli-viewer" has role viewer/)]);
    const anonymous = await runBaton(["--api-url", apiUrl, "pools", "list"], {});
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("BATON_UNAUTHENTICATED");
    // The API's words are for any client; a CLI user also learns where the CLI takes its token from.
    expect(anonymous.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^baton: BATON_UNAUTHENTICATED: .*; BATON_API_TOKEN is not set/)]);
    const [[row]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM pool WHERE name = 'etl'");
    expect(row!.n).toBe(1);
  });

  it("shows version, config (admin only), import errors and the event log", async () => {
    const version = await runBaton(["--api-url", apiUrl, "--output", "json", "version"], {});
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ version: expect.any(String) });
    const config = await runBaton(["--api-url", apiUrl, "config"], { BATON_API_TOKEN: viewer });
    expect(config.code).toBe(1);
    expect(config.stderr).toContain("BATON_FORBIDDEN");
    // The refusal above is itself in the event log (kind auth), which `events` prints.
    const events = await runBaton(["--api-url", apiUrl, "--output", "json", "events"], { BATON_API_TOKEN: admin });
    expect(events.code).toBe(0);
    expect(JSON.parse(events.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ event: "auth:forbidden", owner: "token:cli-viewer" })]));
    const errors = await runBaton(["--api-url", apiUrl, "import-errors"], { BATON_API_TOKEN: viewer });
    expect(errors).toMatchObject({ code: 0, stdout: expect.stringMatching(/^filename\s+line\s+code\s+message\s+timestamp\n$/) });
  });

  it("a scheduler without the API serves its own metrics on BATON_METRICS_PORT", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const child = spawn(process.execPath, [BIN, "scheduler"], {
      cwd: ROOT,
      env: cleanEnv({ BATON_DATABASE_URL: db.url, BATON_METRICS_PORT: String(port), BATON_SCHEDULER_INTERVAL: "100ms", BATON_LOG_LEVEL: "warn" }),
      stdio: "ignore",
    });
    try {
      const text = await waitFor(
        "the scheduler's tick histogram on its metrics port",
        async () => {
          const body = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => "");
          const count = Number(/^baton_scheduler_loop_duration_seconds_count (\d+)/m.exec(body)?.[1] ?? 0);
          return count > 0 ? body : null;
        },
        20_000,
        100,
      );
      expect(text).toContain("baton_db_pool_connections");
      expect((await fetch(`http://127.0.0.1:${port}/api/v1/dags`)).status).toBe(404);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);

  it("says so in one line when nothing answers at --api-url", async () => {
    const r = await runBaton(["--api-url", "http://127.0.0.1:1", "pools", "list"], { BATON_API_TOKEN: admin });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining("BATON_API_UNREACHABLE")]);
  });

  // fetch() refuses ports browsers block (1, 6000 for X11, 6665-6669, …) before any connection: it
  // said only "fetch failed", for an API that may well be listening there.
  it("names why fetch refused a port it will not call, not just 'fetch failed'", async () => {
    const r = await runBaton(["--api-url", "http://127.0.0.1:6000", "pools", "list"], { BATON_API_TOKEN: admin });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual(["baton: BATON_API_UNREACHABLE: cannot reach the Baton API at http://127.0.0.1:6000 (bad port: Node's fetch refuses to call port 6000; serve the API on another port)"]);
  });

  it("creates a token on the database directly (no --api-url), prints it once, and the API accepts it", async () => {
    const created = await runBaton(["tokens", "create", "--name", "deployer", "--role", "operator"], { BATON_DATABASE_URL: db.url, BATON_LOG_LEVEL: "warn" });
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^baton_[A-Za-z0-9_-]{43}$/);
    const res = await app.inject({ method: "GET", url: "/api/v1/dags", headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    const list = await runBaton(["--api-url", apiUrl, "tokens", "list"], { BATON_API_TOKEN: admin });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/deployer\s+operator/);
    expect(list.stdout).not.toContain(token);
  });
});
