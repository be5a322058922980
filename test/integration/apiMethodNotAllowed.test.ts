// A known API path asked with a method it does not support answers 405 with an Allow header, as
// Airflow's API does (it was a 404, as for a path that does not exist). Unknown paths, the web UI's
// paths and CORS preflights keep what they answered.
import os from "node:os";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { silentLogger } from "../../core/logger.ts";
import { insertToken } from "../../store/apiTokens.ts";
import type { Db } from "../../store/db.ts";
import { expectProblem } from "../helpers/expect.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

describe("405 for a method an API path does not support", () => {
  let db: Db;
  let app: FastifyInstance;
  let withCors: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDb();
    const deps = { db, clock: { now: () => new Date() }, logger: silentLogger, auth: { mode: "off" as const } };
    app = await buildApp({ ...deps, config: { logsFolder: os.tmpdir() } });
    withCors = await buildApp({ ...deps, config: { logsFolder: os.tmpdir(), corsOrigins: ["https://ui.example"] } });
  });
  afterAll(async () => {
    await app.close();
    await withCors.close();
    await dropTestDb(db);
  });

  it("answers 405 BATON_METHOD_NOT_ALLOWED with the methods the path supports in Allow", async () => {
    for (const [method, url, allow] of [
      ["DELETE", "/api/v1/health", "GET, HEAD"],
      ["POST", "/api/v1/health?x=1", "GET, HEAD"],
      ["PUT", "/api/v1/dags/x/dagRuns", "GET, HEAD, POST"],
      ["DELETE", "/api/v1/dags", "GET, HEAD, PATCH"],
      ["PUT", "/api/v1/dags/some_dag", "GET, HEAD, PATCH, DELETE"],
      ["GET", "/api/v1/dags/some_dag/clearTaskInstances", "POST"],
      ["HEAD", "/api/v1/dags/some_dag/clearTaskInstances", "POST"],
    ] as const) {
      const res = await app.inject({ method, url });
      expect({ method, url, status: res.statusCode, allow: res.headers.allow }).toEqual({ method, url, status: 405, allow });
      if (method !== "HEAD") expectProblem(res, 405, "BATON_METHOD_NOT_ALLOWED", `${method} ${url.split("?")[0]}`);
    }
  });

  it("keeps 404 BATON_ROUTE_NOT_FOUND for unknown paths, and for the web UI's paths", async () => {
    for (const [method, url] of [
      ["GET", "/api/v1/no_such_thing"],
      ["DELETE", "/api/v1/no/such/route"],
      ["POST", "/"],
      ["DELETE", "/favicon.svg"],
      ["PUT", "/dags/some_dag/graph"],
    ] as const) {
      const res = await app.inject({ method, url });
      expect({ method, url, status: res.statusCode, allow: res.headers.allow }).toEqual({ method, url, status: 404, allow: undefined });
      expectProblem(res, 404, "BATON_ROUTE_NOT_FOUND");
    }
  });

  it("leaves supported methods and CORS preflights alone", async () => {
    expect((await app.inject({ method: "GET", url: "/api/v1/health" })).statusCode).toBe(200);
    expect((await app.inject({ method: "HEAD", url: "/api/v1/health" })).statusCode).toBe(200);
    const preflight = await withCors.inject({
      method: "OPTIONS",
      url: "/api/v1/health",
      headers: { origin: "https://ui.example", "access-control-request-method": "GET" },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://ui.example");
    // With CORS on, OPTIONS matches every path: it must not turn an unknown path into a 405.
    expectProblem(await withCors.inject({ method: "DELETE", url: "/api/v1/no_such_thing" }), 404, "BATON_ROUTE_NOT_FOUND");
    const wrong = await withCors.inject({ method: "DELETE", url: "/api/v1/health", headers: { origin: "https://ui.example" } });
    expectProblem(wrong, 405, "BATON_METHOD_NOT_ALLOWED");
    expect(wrong.headers.allow).toBe("GET, HEAD, OPTIONS");
  });

  it("with auth on, needs a token even under a public path (README: no route is revealed without one)", async () => {
    const authed = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir(), authRefusalsPerMinute: 100_000 }, auth: { mode: "on" } });
    try {
      const token = generateToken();
      await insertToken(db.pool, { name: "method-viewer", role: "viewer", hash: hashToken(token), prefix: "baton_x", now: new Date() });
      expect((await authed.inject({ method: "GET", url: "/api/v1/health" })).statusCode).toBe(200);
      expectProblem(await authed.inject({ method: "DELETE", url: "/api/v1/health" }), 401, "BATON_UNAUTHENTICATED");
      expectProblem(await authed.inject({ method: "DELETE", url: "/api/v1/no_such_thing" }), 401, "BATON_UNAUTHENTICATED");
      const withToken = await authed.inject({ method: "DELETE", url: "/api/v1/health", headers: { authorization: `Bearer ${token}` } });
      expectProblem(withToken, 405, "BATON_METHOD_NOT_ALLOWED");
      expect(withToken.headers.allow).toBe("GET, HEAD");
    } finally {
      await authed.close();
    }
  });
});
