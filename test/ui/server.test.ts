// Serving the web UI: files of the build, index.html for the app's pages (/ and /dags/...),
// problem JSON 404s for anything else, public without a token while the API keeps its roles.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { installErrorHandler } from "../../api/errors.ts";
import { uiRoutes } from "../../api/ui.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { roleAllows, ROLES, type Role } from "../../core/roles.ts";
import { FakeClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import { insertToken } from "../../store/apiTokens.ts";
import { ACTIONS } from "../../ui/src/browse.ts";
import type { Db } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/app-abc123.js"></script></head><body><div id="app"></div></body></html>';

describe("uiRoutes on a build folder", () => {
  let root: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), "baton-ui-serve-"));
    root = path.join(base, "dist");
    await mkdir(path.join(root, "assets"), { recursive: true });
    await writeFile(path.join(root, "index.html"), INDEX);
    await writeFile(path.join(root, "assets/app-abc123.js"), "console.log('app');");
    await writeFile(path.join(root, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
    await writeFile(path.join(root, ".env"), "SECRET=1");
    await writeFile(path.join(base, "secret.txt"), "outside the build");
    app = Fastify();
    installErrorHandler(app, silentLogger);
    await app.register(uiRoutes, { root });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await rm(path.dirname(root), { recursive: true, force: true });
  });

  const get = (url: string, method: "GET" | "HEAD" | "POST" = "GET") => app.inject({ method, url });

  it("serves index.html at / and for every page of the app, uncached", async () => {
    for (const url of ["/", "/dags", "/import-errors", "/dead-letters", "/dead-letters?dag_id=etl", "/event-log", "/event-log?dag_id=etl&order=oldest", "/dags/example_etl/graph?run=x", "/dags/etl/runs/manual__2026-01-01T00%3A00%3A00.000Z/tasks/load", "/dags/a.b/runs/r.json"]) {
      const res = await get(url);
      expect({ url, status: res.statusCode, type: res.headers["content-type"] }).toEqual({ url, status: 200, type: expect.stringContaining("text/html") });
      expect(res.body).toBe(INDEX);
      expect(res.headers["cache-control"]).toBe("no-cache");
    }
    expect((await get("/", "HEAD")).statusCode).toBe(200);
  });

  it("serves the build's files, hashed assets as immutable", async () => {
    const js = await get("/assets/app-abc123.js");
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toContain("javascript");
    expect(js.headers["cache-control"]).toContain("immutable");
    const icon = await get("/favicon.svg");
    expect(icon.statusCode).toBe(200);
    expect(icon.headers["content-type"]).toContain("image/svg+xml");
  });

  it("answers problem JSON 404s for missing files, other paths, and /api and /docs paths", async () => {
    for (const url of ["/assets/missing.js", "/logo.png", "/nowhere", "/api/v1/nope", "/api", "/docs/nope"]) {
      const res = await get(url);
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 404, code: "BATON_ROUTE_NOT_FOUND" });
    }
    expect((await get("/", "POST")).statusCode).toBe(404);
  });

  it("never serves a file outside the build or a dot-file", async () => {
    for (const url of ["/..%2fsecret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt", "/.env", "/assets/%2e%2e/.env"]) {
      const res = await get(url);
      expect({ url, leaked: res.body.includes("outside the build") || res.body.includes("SECRET") }).toEqual({ url, leaked: false });
    }
  });

  it("says how to build the UI when there is no build", async () => {
    const bare = Fastify();
    installErrorHandler(bare, silentLogger);
    await bare.register(uiRoutes, { root: path.join(os.tmpdir(), "baton-no-such-build") });
    const res = await bare.inject({ method: "GET", url: "/dags/x" });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain("npm run build:ui");
    await bare.close();
  });
});

describe("the UI in the API app with auth on", () => {
  let db: Db;
  let app: FastifyInstance;
  let logsFolder: string;
  const viewer = generateToken();
  const tokens: Record<Role, string> = { viewer, operator: generateToken(), admin: generateToken() };

  beforeAll(async () => {
    db = await createTestDb();
    const clock = new FakeClock("2026-03-01T00:00:00Z");
    for (const role of ROLES) await insertToken(db.pool, { name: `ui-${role}`, role, hash: hashToken(tokens[role]), prefix: "baton_x", now: clock.now() });
    logsFolder = await mkdtemp(path.join(os.tmpdir(), "baton-ui-app-"));
    app = await buildApp({ db, clock, logger: silentLogger, config: { logsFolder }, auth: { mode: "on" } });
  });
  afterAll(async () => {
    await app?.close();
    await dropTestDb(db);
    if (logsFolder) await rm(logsFolder, { recursive: true, force: true });
  });

  it("serves the app without a token (it asks for one itself)", async () => {
    for (const url of ["/", "/dags/example_etl/graph"]) {
      const res = await app.inject({ method: "GET", url });
      // 200 with a build, 503 "not built" without one: never a 401.
      expect({ url, status: [200, 503].includes(res.statusCode), type: res.headers["content-type"] }).toEqual({ url, status: true, type: expect.stringContaining("text/html") });
    }
  });

  it("keeps unknown API paths behind a token, then a problem JSON 404", async () => {
    const anonymous = await app.inject({ method: "GET", url: "/api/v1/no/such/route" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().code).toBe("BATON_UNAUTHENTICATED");
    const known = await app.inject({ method: "GET", url: "/api/v1/dags", headers: { authorization: `Bearer ${viewer}` } });
    expect(known.statusCode).toBe(200);
    const unknown = await app.inject({ method: "GET", url: "/api/v1/no/such/route", headers: { authorization: `Bearer ${viewer}` } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers["content-type"]).toContain("application/problem+json");
    expect(unknown.json()).toMatchObject({ status: 404, code: "BATON_ROUTE_NOT_FOUND" });
  });

  it("gives each action the pages offer the role its routes need (browse.ts ACTIONS)", async () => {
    const spec = (await app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json() as { paths: Record<string, Record<string, unknown>> };
    for (const [action, { role: needs, routes }] of Object.entries(ACTIONS)) {
      for (const route of routes) {
        const [method, template] = route.split(" ") as [string, string];
        // A route the API does not have would be refused by nothing: the table would be wrong unnoticed.
        expect({ action, route, documented: !!spec.paths[`/api/v1${template}`]?.[method.toLowerCase()] }).toEqual({ action, route, documented: true });
        const url = `/api/v1${template.replace(/\{backfill_id\}/, "1").replace(/\{[^}]+\}/g, "nosuch")}`;
        for (const role of ROLES) {
          const res = await app.inject({ method: method as "POST", url, headers: { authorization: `Bearer ${tokens[role]}` }, payload: {} });
          const refused = res.statusCode === 403;
          expect({ action, route, role, refused }).toEqual({ action, route, role, refused: !roleAllows(role, needs) });
          expect({ action, route, role, unauthenticated: res.statusCode === 401 }).toEqual({ action, route, role, unauthenticated: false });
        }
      }
    }
  });

  it("keeps the UI routes out of the OpenAPI document", async () => {
    const spec = (await app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths).filter((p) => !p.startsWith("/api/v1/"))).toEqual([]);
  });
});
