// Behind a reverse proxy every request comes from the proxy's address: the refusal throttle and the
// rate limit, keyed by client address, lumped all clients together. BATON_TRUST_PROXY names the
// proxies whose X-Forwarded-For the API believes (Fastify's trustProxy); without it the header is ignored,
// so a client cannot pick its own address.
import os from "node:os";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { silentLogger } from "../../core/logger.ts";
import type { Db } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

describe("API behind a proxy", () => {
  let db: Db;
  const apps: FastifyInstance[] = [];
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropTestDb(db);
  });

  async function app(trustProxy: false | string[]): Promise<FastifyInstance> {
    const built = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir(), authRefusalsPerMinute: 2, trustProxy }, auth: { mode: "on" } });
    apps.push(built);
    return built;
  }
  // inject() requests come from 127.0.0.1: the proxy here.
  const refused = (a: FastifyInstance, client: string) => a.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-forwarded-for": client, authorization: "Bearer baton_wrong" } });

  it("throttles refused requests per client named by a trusted proxy", async () => {
    const behind = await app(["127.0.0.1"]);
    for (let i = 0; i < 2; i++) expect((await refused(behind, "203.0.113.7")).statusCode).toBe(401);
    const blocked = await refused(behind, "203.0.113.7");
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().detail).toContain("203.0.113.7");
    // Another client behind the same proxy is not blocked with it.
    expect((await refused(behind, "203.0.113.8")).statusCode).toBe(401);
  });

  it("ignores X-Forwarded-For unless its sender is trusted: a client cannot choose its address", async () => {
    const direct = await app(false);
    expect((await refused(direct, "198.51.100.1")).statusCode).toBe(401);
    expect((await refused(direct, "198.51.100.2")).statusCode).toBe(401);
    const blocked = await refused(direct, "198.51.100.3");
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().detail).toContain("127.0.0.1");
  });
});
