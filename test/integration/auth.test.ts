import { chmod, readFile, stat } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { MAX_REFUSALS_PER_MINUTE, TOKEN_CACHE_MS } from "../../api/auth.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { FakeClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import type { Role } from "../../core/roles.ts";
import { ensureAdminToken } from "../../cli/adminToken.ts";
import { expiresInArg } from "../../cli/commands/tokens.ts";
import { insertToken } from "../../store/apiTokens.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

/**
 * The policy, written out independently of the routes: a route that drifts from it fails here.
 * viewer reads; operator also triggers, clears, signals, pauses, cancels; admin also manages
 * pools, variables, connections, tokens and reads the config.
 */
function expectedRole(method: string, route: string): Role | "public" {
  if (/^\/(health|version|openapi\.json)$/.test(route)) return "public";
  if (/^\/(variables|connections|tokens|config)(\/|$)/.test(route)) return "admin";
  if (/^\/pools(\/|$)/.test(route) && method !== "GET") return "admin";
  // Deleting a DAG erases its whole history.
  if (method === "DELETE" && /^\/dags\/\{dag_id\}$/.test(route)) return "admin";
  // Airflow's batch reads (POST …/list) only read.
  if (method === "POST" && /\/list$/.test(route)) return "viewer";
  return method === "GET" ? "viewer" : "operator";
}

const RANK = { viewer: 1, operator: 2, admin: 3 } as const;

describe("API authentication and roles", () => {
  let db: Db;
  let app: FastifyInstance;
  const clock = new FakeClock("2026-03-01T00:00:00Z");
  const tokens = {} as Record<Role, string>;

  beforeAll(async () => {
    db = await createTestDb();
    for (const role of ["viewer", "operator", "admin"] as const) {
      tokens[role] = generateToken();
      await insertToken(db.pool, { name: `test-${role}`, role, hash: hashToken(tokens[role]), prefix: "baton_x", now: clock.now() });
    }
    const logsFolder = await scratchDir("baton-auth-");
    // The role matrix below is hundreds of refusals from one address: no refusal throttle here.
    app = await buildApp({ db, clock, logger: silentLogger, config: { logsFolder, authRefusalsPerMinute: 100_000 }, auth: { mode: "on" } });
  });

  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
  });

  const as = (role: Role | undefined, method: string, url: string, payload?: object) =>
    app.inject({ method: method as "GET", url, headers: role ? { authorization: `Bearer ${tokens[role]}` } : {}, ...(payload ? { payload } : {}) });

  async function authEvents(): Promise<RowDataPacket[]> {
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT * FROM event_log WHERE kind = 'auth' ORDER BY id");
    return rows;
  }

  it("answers 401 problem JSON without a token, with WWW-Authenticate, and logs it without the token", async () => {
    const res = await as(undefined, "GET", "/api/v1/dags");
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toContain("Bearer");
    expect(res.json()).toMatchObject({ status: 401, code: "BATON_UNAUTHENTICATED" });

    const bogus = "baton_" + "A".repeat(43);
    const bad = await app.inject({ method: "GET", url: "/api/v1/dags", headers: { authorization: `Bearer ${bogus}` } });
    expect(bad.statusCode).toBe(401);
    const events = await authEvents();
    expect(events.map((e) => e.to_state)).toEqual(["unauthenticated", "unauthenticated"]);
    expect(events[1]!.detail).toContain("GET /api/v1/dags");
    expect(JSON.stringify(events)).not.toContain(bogus);
  });

  it("keeps health, version, the OpenAPI document and the docs public", async () => {
    expect((await as(undefined, "GET", "/api/v1/openapi.json")).statusCode).toBe(200);
    expect([200, 503]).toContain((await as(undefined, "GET", "/api/v1/health")).statusCode);
    expect([200, 302]).toContain((await as(undefined, "GET", "/docs")).statusCode);
  });

  it("enforces each role on every route of the OpenAPI document", async () => {
    const spec = (await as(undefined, "GET", "/api/v1/openapi.json")).json() as { paths: Record<string, Record<string, unknown>> };
    const checked: string[] = [];
    for (const [template, operations] of Object.entries(spec.paths)) {
      const route = template.replace(/^\/api\/v1/, "");
      const url = template.replace(/\{[^}]+\}/g, "nosuch");
      for (const method of Object.keys(operations).map((m) => m.toUpperCase())) {
        if (route === "/events") continue; // a stream: checked below without holding it open
        const needs = expectedRole(method, route);
        for (const role of ["viewer", "operator", "admin"] as const) {
          const res = await as(role, method, url, method === "GET" || method === "DELETE" ? undefined : {});
          const allowed = needs === "public" || RANK[role] >= RANK[needs];
          if (allowed) expect({ method, route, role, refused: [401, 403].includes(res.statusCode) }).toEqual({ method, route, role, refused: false });
          else {
            expect({ method, route, role, status: res.statusCode }).toEqual({ method, route, role, status: 403 });
            expect(res.json().code).toBe("BATON_FORBIDDEN");
          }
        }
        if (needs !== "public") expect({ method, route, anonymous: (await as(undefined, method, url)).statusCode }).toEqual({ method, route, anonymous: 401 });
        checked.push(`${method} ${route}`);
      }
    }
    // The mutating routes the issue names are all in the document (so all were checked above).
    for (const op of ["POST /dags/{dag_id}/dagRuns", "PATCH /dags/{dag_id}", "POST /pools", "POST /tokens", "DELETE /tokens/{token_name}"]) {
      expect(checked).toContain(op);
    }
    const forbidden = (await authEvents()).filter((e) => e.to_state === "forbidden");
    expect(forbidden.length).toBeGreaterThan(0);
    expect(forbidden[0]!.actor).toMatch(/^token:test-(viewer|operator)$/);
  });

  it("refuses the event stream without a token", async () => {
    expect((await as(undefined, "GET", "/api/v1/events")).statusCode).toBe(401);
  });

  /** Opens the event stream with a fresh viewer token; `end` waits (up to a deadline) for the server to close it. */
  async function openStream(expiresIn?: string) {
    if (!app.server.listening) await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    const name = `stream-${Math.random().toString(36).slice(2, 10)}`;
    const { token } = (await as("admin", "POST", "/api/v1/tokens", { name, role: "viewer", ...(expiresIn ? { expires_in: expiresIn } : {}) })).json();
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/events?poll_ms=50`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (done: () => boolean, ms: number) => {
      // Aborting at the deadline makes a pending read fail, so a stream that never ends fails the test.
      const timer = setTimeout(() => controller.abort(), ms);
      try {
        while (!done()) {
          const chunk = await reader.read();
          if (chunk.done) return true;
          text += decoder.decode(chunk.value);
        }
        return false;
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    };
    await readUntil(() => text.includes(": connected"), 5_000);
    return { name, end: async () => ({ closed: await readUntil(() => false, 10_000), text }) };
  }

  it("ends an open event stream once its token is revoked", async () => {
    const stream = await openStream();
    expect((await as("admin", "DELETE", `/api/v1/tokens/${stream.name}`)).statusCode).toBe(204);
    clock.advance(TOKEN_CACHE_MS + 1);
    const { closed, text } = await stream.end();
    expect(closed).toBe(true);
    expect(text).toMatch(/event: error\ndata: .*"code":"BATON_UNAUTHENTICATED"/);
  });

  it("ends an open event stream once its token expires", async () => {
    const stream = await openStream("1m");
    clock.advance(61_000);
    const { closed, text } = await stream.end();
    expect(closed).toBe(true);
    expect(text).toMatch(/event: error\ndata: .*"code":"BATON_UNAUTHENTICATED"/);
  });

  it("creates a token shown once, lists it without its value, and revokes it", async () => {
    const created = await as("admin", "POST", "/api/v1/tokens", { name: "ci", role: "operator", expires_in: "1h" });
    expect(created.statusCode).toBe(201);
    const { token } = created.json();
    expect(token).toMatch(/^baton_[A-Za-z0-9_-]{43}$/);
    const [[stored]] = await db.pool.query<RowDataPacket[]>("SELECT * FROM api_token WHERE name = 'ci'");
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(stored!.token_hash).toBe(hashToken(token));

    const list = await as("admin", "GET", "/api/v1/tokens");
    expect(list.body).not.toContain(token);
    expect(list.json().tokens.find((t: { name: string }) => t.name === "ci")).toMatchObject({ role: "operator", active: true });

    const use = () => app.inject({ method: "POST", url: "/api/v1/dags/nosuch/dagRuns", headers: { authorization: `Bearer ${token}` }, payload: {} });
    expect((await use()).statusCode).toBe(404); // authenticated, authorized: the DAG just does not exist
    expect((await as("admin", "DELETE", "/api/v1/tokens/ci")).statusCode).toBe(204);
    clock.advance(TOKEN_CACHE_MS + 1);
    expect((await use()).statusCode).toBe(401);
    expect((await as("admin", "DELETE", "/api/v1/tokens/ci")).json().code).toBe("BATON_TOKEN_NOT_FOUND");
    expect((await as("admin", "POST", "/api/v1/tokens", { name: "ci", role: "viewer" })).json().code).toBe("BATON_TOKEN_EXISTS");
  });

  // The API process that revokes a token forgets its cached lookups: the token is refused at once
  // there (other API processes refuse it within TOKEN_CACHE_MS).
  it("refuses a token revoked through this API process at once, not after the lookup cache expires", async () => {
    const { token } = (await as("admin", "POST", "/api/v1/tokens", { name: "revoked-now", role: "operator" })).json();
    const use = () => app.inject({ method: "GET", url: "/api/v1/dags", headers: { authorization: `Bearer ${token}` } });
    expect((await use()).statusCode).toBe(200); // cached as live
    expect((await as("admin", "DELETE", "/api/v1/tokens/revoked-now")).statusCode).toBe(204);
    expect((await use()).statusCode).toBe(401);
  });

  // An expired token was revoked ("revoked token x") while a revoked one was "no live token named x",
  // which an expired token is not either: the detail now says which case it is.
  it("revokes an expired token like a live one, and says whether a refused name is unknown or revoked already", async () => {
    const revoke = (name: string) => as("admin", "DELETE", `/api/v1/tokens/${name}`);
    const unknown = await revoke("never-made");
    expect([unknown.statusCode, unknown.json().code, unknown.json().detail]).toEqual([404, "BATON_TOKEN_NOT_FOUND", 'no token named "never-made"']);

    expect((await as("admin", "POST", "/api/v1/tokens", { name: "lapsed", role: "viewer", expires_in: "1m" })).statusCode).toBe(201);
    clock.advance(61_000);
    const revokedAt = clock.now().toISOString();
    expect((await revoke("lapsed")).statusCode).toBe(204);
    const listed = (await as("admin", "GET", "/api/v1/tokens")).json().tokens.find((t: { name: string }) => t.name === "lapsed");
    expect(listed).toMatchObject({ active: false, revoked_at: revokedAt });

    clock.advance(1000);
    const again = await revoke("lapsed");
    expect([again.statusCode, again.json().code, again.json().detail]).toEqual([404, "BATON_TOKEN_NOT_FOUND", `token "lapsed" was revoked already, at ${revokedAt}`]);
  });

  it("rejects expired tokens and bad token requests", async () => {
    const created = (await as("admin", "POST", "/api/v1/tokens", { name: "short", role: "viewer", expires_in: "1m" })).json();
    const use = () => app.inject({ method: "GET", url: "/api/v1/dags", headers: { authorization: `Bearer ${created.token}` } });
    expect((await use()).statusCode).toBe(200);
    clock.advance(61_000);
    expect((await use()).statusCode).toBe(401);
    for (const body of [{ name: "x", role: "root" }, { name: "bad name", role: "viewer" }, { name: "y", role: "viewer", expires_in: "soon" }, { role: "viewer" }]) {
      const res = await as("admin", "POST", "/api/v1/tokens", body);
      expect({ body, status: res.statusCode, code: res.json().code }).toEqual({ body, status: 400, code: "BATON_VALIDATION_FAILED" });
    }
  });

  // The API took 1–999 ms ("500ms", "10", "0.5s") though it said "between 1s and 10 years", and the CLI refused them:
  // one check (core/apiTokens.ts tokenLifetimeMs) decides for both.
  it("refuses exactly the expires_in values that tokens create --expires-in refuses", async () => {
    const values = ["0", "1", "10", "999", "500ms", "0.5s", "999.4ms", "999.5ms", "1s", "1000", " 1h ", "1h30m", "soon", "5 minutes", "3650d", "3651d", "600w", `${"0".repeat(29)}1h`, `${"0".repeat(30)}1h`];
    let n = 0;
    for (const value of values) {
      let cli = "accepted";
      try {
        expiresInArg(value);
      } catch (err) {
        cli = `${(err as { code?: string }).code}`;
      }
      const res = await as("admin", "POST", "/api/v1/tokens", { name: `lifetime-${n++}`, role: "viewer", expires_in: value });
      const api = res.statusCode === 201 ? "accepted" : `${res.json().code}`;
      expect({ value, api }).toEqual({ value, api: cli });
    }
    const refused = await as("admin", "POST", "/api/v1/tokens", { name: "lifetime-short", role: "viewer", expires_in: "500ms" });
    expect([refused.statusCode, refused.json().detail]).toEqual([400, 'body.expires_in "500ms" must be a duration from 1s to 10 years, such as 90d, 12h or 30m']);
  });

  it("tells each token its own name and role (GET /whoami: the web UI hides what the role may not do)", async () => {
    for (const role of ["viewer", "operator", "admin"] as const) {
      const res = await as(role, "GET", "/api/v1/whoami");
      expect({ role, status: res.statusCode, body: res.json() }).toEqual({ role, status: 200, body: { auth: "on", token_name: `test-${role}`, role } });
    }
    expect((await as(undefined, "GET", "/api/v1/whoami")).statusCode).toBe(401);
  });
});

describe("GET /whoami with auth off", () => {
  let db: Db;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await createTestDb();
    app = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir() }, auth: { mode: "off" } });
  });
  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
  });

  it("answers no token and the admin role: every route is open", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/whoami" });
    expect([res.statusCode, res.json()]).toEqual([200, { auth: "off", token_name: null, role: "admin" }]);
  });
});

describe("rate limit", () => {
  let db: Db;
  let app: FastifyInstance;
  const token = generateToken();
  const other = generateToken();
  const third = generateToken();

  beforeAll(async () => {
    db = await createTestDb();
    const now = new Date();
    await insertToken(db.pool, { name: "c", role: "viewer", hash: hashToken(third), prefix: "x", now });
    await insertToken(db.pool, { name: "a", role: "viewer", hash: hashToken(token), prefix: "x", now });
    await insertToken(db.pool, { name: "b", role: "viewer", hash: hashToken(other), prefix: "x", now });
    app = await buildApp({
      db,
      clock: { now: () => new Date() },
      logger: silentLogger,
      config: { logsFolder: os.tmpdir(), apiRateLimit: { max: 5, windowMs: 60_000 } },
      auth: { mode: "on" },
    });
  });

  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
  });

  it("answers 429 to an address after 30 refused requests a minute, without logging more, yet lets a live token in", async () => {
    const bad = () => app.inject({ method: "GET", url: "/api/v1/pools", headers: { authorization: `Bearer baton_${"x".repeat(43)}` }, remoteAddress: "10.9.9.9" });
    for (let i = 0; i < MAX_REFUSALS_PER_MINUTE; i++) expect((await bad()).statusCode).toBe(401);
    const throttled = await bad();
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json().code).toBe("BATON_RATE_LIMITED");
    expect(Number(throttled.headers["retry-after"])).toBeGreaterThan(0);
    const [[logged]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM event_log WHERE kind = 'auth' AND detail LIKE '%/api/v1/pools%'");
    expect(Number(logged!.n)).toBe(MAX_REFUSALS_PER_MINUTE);
    // Another address, and valid tokens, are not affected.
    const other = await app.inject({ method: "GET", url: "/api/v1/pools", remoteAddress: "10.9.9.10" });
    expect(other.statusCode).toBe(401);
    // A valid token from the throttled address (a shared NAT or proxy) still works: anyone could
    // otherwise lock every user behind that address out with 30 bad requests a minute.
    const valid = await app.inject({ method: "GET", url: "/api/v1/pools", headers: { authorization: `Bearer ${third}` }, remoteAddress: "10.9.9.9" });
    expect(valid.statusCode).toBe(200);
    // Still throttled for anything else, without logging: no token, or a valid token short of the route's role.
    expect((await app.inject({ method: "GET", url: "/api/v1/pools", remoteAddress: "10.9.9.9" })).statusCode).toBe(429);
    const low = await app.inject({ method: "POST", url: "/api/v1/pools", headers: { authorization: `Bearer ${third}` }, payload: {}, remoteAddress: "10.9.9.9" });
    expect(low.statusCode).toBe(429);
    const [[all]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM event_log WHERE kind = 'auth'");
    expect(Number(all!.n)).toBe(MAX_REFUSALS_PER_MINUTE + 1);
  });

  it("limits each token separately and answers 429 problem JSON with retry-after", async () => {
    const get = (t: string) => app.inject({ method: "GET", url: "/api/v1/pools", headers: { authorization: `Bearer ${t}` } });
    for (let i = 0; i < 5; i++) expect((await get(token)).statusCode).toBe(200);
    const limited = await get(token);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe("BATON_RATE_LIMITED");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect((await get(other)).statusCode).toBe(200);
  });
});

describe("CORS", () => {
  let db: Db;
  const apps: FastifyInstance[] = [];
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropTestDb(db);
  });

  const preflight = async (corsOrigins?: string[]) => {
    const app = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir(), corsOrigins }, auth: { mode: "off" } });
    apps.push(app);
    return app.inject({
      method: "OPTIONS",
      url: "/api/v1/dags",
      headers: { origin: "https://ui.example", "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
    });
  };

  it("is off by default and allows only the configured origins", async () => {
    expect((await preflight()).headers["access-control-allow-origin"]).toBeUndefined();
    expect((await preflight(["https://other.example"])).headers["access-control-allow-origin"]).toBeUndefined();
    const allowed = await preflight(["https://ui.example"]);
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://ui.example");
    expect(String(allowed.headers["access-control-allow-headers"])).toContain("authorization");
  });

  // Browsers send a preflight without the Authorization header; the auth hook ran first and answered
  // it 401 (and logged it as a refused request), so no cross-origin client could call the API.
  it("answers a preflight with auth on, without a token, and lets a browser read a refusal", async () => {
    const app = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir(), corsOrigins: ["https://ui.example"] }, auth: { mode: "on" } });
    apps.push(app);
    const res = await app.inject({
      method: "OPTIONS",
      url: "/api/v1/dags/d1/dagRuns",
      headers: { origin: "https://ui.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect([res.statusCode, res.headers["access-control-allow-origin"]]).toEqual([204, "https://ui.example"]);
    const [[logged]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM event_log WHERE kind = 'auth'");
    expect(Number(logged!.n)).toBe(0);
    const refused = await app.inject({ method: "GET", url: "/api/v1/dags", headers: { origin: "https://ui.example" } });
    expect([refused.statusCode, refused.headers["access-control-allow-origin"]]).toEqual([401, "https://ui.example"]);
  });
});

describe("first admin token", () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await dropTestDb(db);
  });

  it("is generated once, written to a 0600 file, and BATON_ADMIN_TOKEN is registered", async () => {
    const dir = await scratchDir("baton-token-");
    const file = path.join(dir, ".baton", "admin-token");
    const now = new Date();
    const first = await ensureAdminToken(db, { adminTokenFile: file }, now);
    expect(first.kind).toBe("generated");
    const written = (await readFile(file, "utf8")).trim();
    expect(written).toBe((first as { token: string }).token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await ensureAdminToken(db, { adminTokenFile: file }, now)).kind).toBe("exists");

    // Revoked, the first token no longer counts: the next start makes a new one, into a 0600
    // file even when the old file had been loosened.
    await chmod(file, 0o644);
    await db.pool.query("UPDATE api_token SET revoked_at = ? WHERE token_hash = ?", [now, hashToken(written)]);
    const again = await ensureAdminToken(db, { adminTokenFile: file }, now);
    expect(again.kind).toBe("generated");
    expect((await readFile(file, "utf8")).trim()).toBe((again as { token: string }).token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // Two processes starting together after a revocation make one token between them.
    await db.pool.query("UPDATE api_token SET revoked_at = ? WHERE role = 'admin'", [now]);
    const together = await Promise.all([ensureAdminToken(db, { adminTokenFile: file }, now), ensureAdminToken(db, { adminTokenFile: file }, now)]);
    expect(together.map((o) => o.kind).sort()).toEqual(["exists", "generated"]);
    const [[live]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM api_token WHERE role = 'admin' AND revoked_at IS NULL");
    expect(Number(live!.n)).toBe(1);

    const fromEnv = "automation-token-0123456789";
    expect((await ensureAdminToken(db, { adminToken: fromEnv, adminTokenFile: file }, now)).kind).toBe("from-env");
    expect((await ensureAdminToken(db, { adminToken: fromEnv, adminTokenFile: file }, now)).kind).toBe("from-env");
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT role FROM api_token WHERE token_hash IN (?, ?)", [hashToken(written), hashToken(fromEnv)]);
    expect(rows.map((r) => r.role)).toEqual(["admin", "admin"]);
  });
});
