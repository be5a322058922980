// A database that stalls instead of refusing (a partition, a hung server: here a TCP proxy that
// stops forwarding bytes but keeps its sockets open) must not hang the API or the scheduler: a
// statement that gets no answer within the statement timeout fails, its connection is destroyed,
// and everything works again once the database answers.
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { buildApp } from "../../api/app.ts";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import { isConnectionError, longerStatementTimeout, openDb, poolStats, STATEMENT_TIMEOUT_CODE, type Db, type RowDataPacket } from "../../store/db.ts";
import { createTestDb, dropTestDb, waitFor } from "../helpers/db.ts";

/** The statement timeout here; the bound each stalled call must answer within allows for a busy machine. */
const TIMEOUT_MS = 1000;
const BOUND_MS = 4000;

/** Forwards to the database until stall(); then drops every byte both ways, sockets left open. */
class StallingProxy {
  stalled = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((client) => {
    const upstream = net.connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => this.sockets.delete(s));
    }
    client.on("data", (chunk) => this.stalled || upstream.write(chunk));
    upstream.on("data", (chunk) => this.stalled || client.write(chunk));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Resolves with fn's value and how long it took, or rejects once `ms` passed: no test waits for a hang. */
async function timed<T>(what: string, fn: () => Promise<T>, ms = BOUND_MS * 3): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([fn(), deadline]);
    return { value, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

describe("a database that stalls", () => {
  let db: Db;
  let proxy: StallingProxy;
  let stalling: Db;

  beforeAll(async () => {
    db = await createTestDb();
    await db.pool.query("CREATE TABLE stall_probe (id INT NOT NULL PRIMARY KEY)");
    const url = new URL(db.url);
    proxy = new StallingProxy({ host: url.hostname === "localhost" ? "127.0.0.1" : url.hostname, port: Number(url.port || 3306) });
    url.hostname = "127.0.0.1";
    url.port = String(await proxy.listen());
    stalling = openDb(url.toString(), { connectionLimit: 4, statementTimeoutMs: TIMEOUT_MS });
  });

  afterEach(() => {
    proxy.stalled = false;
  });

  afterAll(async () => {
    proxy.stalled = false;
    await proxy.close();
    await stalling.close().catch(() => undefined);
    await dropTestDb(db);
  });

  it("fails a stalled statement within the timeout and destroys its connection; the pool recovers", async () => {
    // Two pooled connections, idle, before the stall.
    await Promise.all([stalling.pool.query("SELECT SLEEP(0.05)"), stalling.pool.query("SELECT SLEEP(0.05)")]);
    expect(poolStats(stalling.pool)).toMatchObject({ used: 0, free: 2 });
    proxy.stalled = true;
    const failed = await timed("a stalled SELECT", () => stalling.pool.query("SELECT 1").then(() => "answered", (err: { code?: string }) => err.code));
    expect(failed.value).toBe(STATEMENT_TIMEOUT_CODE);
    expect(failed.ms).toBeLessThan(BOUND_MS);
    // Destroyed, not handed back: only the untouched idle connection is left.
    expect(poolStats(stalling.pool)).toMatchObject({ used: 0, free: 1 });
    proxy.stalled = false;
    // The idle connection that lived through the stall saw no byte dropped: it still works, as do new ones.
    const rows = await Promise.all([1, 2, 3].map((n) => stalling.pool.query<RowDataPacket[]>("SELECT ? AS n", [n])));
    expect(rows.map(([r]) => r[0]!.n)).toEqual([1, 2, 3]);
  });

  it("fails callers queued for a connection within the timeout too, not one connect timeout after another", async () => {
    proxy.stalled = true;
    // 4 connections (the limit), 20 callers: 16 queue behind statements (or connects) that stall.
    const all = await timed("20 stalled SELECTs", () =>
      Promise.all(Array.from({ length: 20 }, () => stalling.pool.query("SELECT 1").then(() => "answered", (err: unknown) => (isConnectionError(err) ? "unavailable" : String(err))))),
    );
    expect(all.value).toEqual(Array(20).fill("unavailable"));
    expect(all.ms).toBeLessThan(BOUND_MS);
    proxy.stalled = false;
    const [rows] = await stalling.pool.query<RowDataPacket[]>("SELECT 7 AS n");
    expect(rows[0]!.n).toBe(7);
    // Nothing leaks. Not asserted at once: a queued caller that gave up still sits in mysql2's
    // queue, and a connection a timed-out statement frees is opened for it; a handshake the stall
    // caught counts as used until its connect timeout (the statement timeout here) fails it.
    await waitFor("the pool to settle with no connection in use", async () => {
      const stats = poolStats(stalling.pool);
      return stats?.used === 0 && stats.queued === 0;
    }, BOUND_MS * 3);
  });

  it("abandons a transaction whose statement stalled: nothing of it is applied", async () => {
    const attempt = timed("a stalled transaction", () =>
      stalling.tx(async (tx) => {
        await tx.query("INSERT INTO stall_probe (id) VALUES (1)");
        proxy.stalled = true;
        await tx.query("INSERT INTO stall_probe (id) VALUES (2)");
      }),
    );
    await expect(attempt).rejects.toMatchObject({ code: STATEMENT_TIMEOUT_CODE });
    proxy.stalled = false;
    // The server rolls back the dead connection's transaction once it notices; the row lock on
    // id 1 goes with it, so this insert waits for that at most, then succeeds.
    await db.pool.query("INSERT INTO stall_probe (id) VALUES (1)");
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT id FROM stall_probe ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual([1]);
  });

  it("answers /health and other API calls with 503 within the bound while stalled, and recovers after", async () => {
    const logsFolder = path.join(os.tmpdir(), "baton-db-stall-logs");
    const app = await buildApp({ db: stalling, clock: systemClock, logger: createLogger("silent"), config: { logsFolder, healthTimeoutMs: TIMEOUT_MS }, auth: { mode: "off" } });
    try {
      const get = (url: string) => app.inject({ method: "GET", url });
      // Warm the pool so the stall finds idle connections, as in a running server.
      const warm = await Promise.all([get("/api/v1/health"), get("/api/v1/dags"), get("/api/v1/dags"), get("/api/v1/dags")]);
      expect(warm.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
      proxy.stalled = true;
      const health = await timed("GET /api/v1/health", () => get("/api/v1/health"));
      expect(health.value.statusCode).toBe(503);
      expect(health.value.json()).toMatchObject({ metadatabase: { status: "unhealthy" } });
      expect(health.ms).toBeLessThan(BOUND_MS);
      const dags = await timed("4 × GET /api/v1/dags", () => Promise.all([1, 2, 3, 4].map(() => get("/api/v1/dags"))));
      expect(dags.value.map((r) => [r.statusCode, r.json().code])).toEqual(Array(4).fill([503, "BATON_DATABASE_UNAVAILABLE"]));
      expect(dags.ms).toBeLessThan(BOUND_MS);
      proxy.stalled = false;
      const healthAfter = await timed("GET /api/v1/health after the stall", () => get("/api/v1/health"));
      expect(healthAfter.value.statusCode).toBe(200);
      const dagsAfter = await timed("GET /api/v1/dags after the stall", () => get("/api/v1/dags"));
      expect(dagsAfter.value.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("fails a stalled scheduler tick within the bound, logged, and the next tick works", async () => {
    const lines: string[] = [];
    const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
    const scheduler = new Scheduler(stalling, systemClock, logger, { intervalMs: 60_000 });
    await timed("a tick before the stall", () => scheduler.tick());
    proxy.stalled = true;
    const stalledTick = await timed("a stalled tick", () => scheduler.tick().then(() => "answered", (err: { code?: string }) => err.code));
    expect(stalledTick.value).toBe(STATEMENT_TIMEOUT_CODE);
    expect(stalledTick.ms).toBeLessThan(BOUND_MS);
    // The loop logs a failed tick and goes on (Scheduler.wake).
    scheduler.wake();
    await timed("the 'tick failed' log line", async () => {
      while (!lines.some((l) => l.includes("scheduler tick failed"))) await new Promise((r) => setTimeout(r, 20));
    });
    proxy.stalled = false;
    await scheduler.stop();
    const report = await timed("a tick after the stall", () => new Scheduler(stalling, systemClock, logger, { intervalMs: 60_000 }).tick());
    expect(report.value.durationMs).toBeGreaterThanOrEqual(0);
  });
});

describe("a statement allowed to run longer (DELETE DAG's)", () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await dropTestDb(db);
  });

  /** A silent 1.5 s statement through a Db of timeout `baseMs` widened to at least `wantedMs`: "answered" or the error's code. */
  async function silentStatement(baseMs: number, wantedMs?: number): Promise<string> {
    const base = openDb(db.url, { statementTimeoutMs: baseMs });
    const through = wantedMs === undefined ? base : base.withStatementTimeout(longerStatementTimeout(base.statementTimeoutMs, wantedMs));
    try {
      return await through.pool.query("SELECT SLEEP(1.5)").then(() => "answered", (err: { code?: string }) => err.code ?? String(err));
    } finally {
      await base.close();
    }
  }

  it("gets the longer timeout where the usual one would cut it, and never a shorter one", async () => {
    expect(await silentStatement(500)).toBe(STATEMENT_TIMEOUT_CODE);
    expect(await silentStatement(500, 3000)).toBe("answered");
    expect(await silentStatement(3000, 500)).toBe("answered");
  });

  it("has no limit when the operator chose none (BATON_DB_STATEMENT_TIMEOUT=0)", async () => {
    expect(await silentStatement(0, 500)).toBe("answered");
  });
});
