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

  async function app(trustProxy: boolean | number | string[]): Promise<FastifyInstance> {
    const built = await buildApp({ db, clock: { now: () => new Date() }, logger: silentLogger, config: { logsFolder: os.tmpdir(), authRefusalsPerMinute: 2, trustProxy }, auth: { mode: "on" } });
    apps.push(built);
    return built;
  }
  // inject() requests come from 127.0.0.1: the proxy here.
  const refused = (a: FastifyInstance, client: string) => a.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-forwarded-for": client, authorization: "Bearer baton_wrong" } });
  /** A refused request from `from` (the socket's address) carrying `forwarded` as X-Forwarded-For. */
  const refusedFrom = (a: FastifyInstance, from: string, forwarded: string) =>
    a.inject({ method: "GET", url: "/api/v1/dags", remoteAddress: from, headers: { "x-forwarded-for": forwarded, authorization: "Bearer baton_wrong" } });
  /** The address the refusal throttle counted a request as: its 429 names it, after 2 refusals (authRefusalsPerMinute). */
  async function countedAs(a: FastifyInstance, from: string, forwarded: string): Promise<string> {
    for (let i = 0; i < 2; i++) expect((await refusedFrom(a, from, forwarded)).statusCode).toBe(401);
    const blocked = await refusedFrom(a, from, forwarded);
    expect(blocked.statusCode).toBe(429);
    return /too many refused requests from (\S+);/.exec(blocked.json().detail)![1]!;
  }

  it("throttles refused requests per client named by a trusted proxy", async () => {
    const behind = await app(["127.0.0.1"]);
    for (let i = 0; i < 2; i++) expect((await refused(behind, "203.0.113.7")).statusCode).toBe(401);
    const blocked = await refused(behind, "203.0.113.7");
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().detail).toContain("203.0.113.7");
    // Another client behind the same proxy is not blocked with it.
    expect((await refused(behind, "203.0.113.8")).statusCode).toBe(401);
  });

  // What request.ip (the address the throttle and the rate limit count) becomes for each accepted form, for a
  // client that reaches the API directly (198.51.100.50) and forges the header, and for one behind the proxy
  // (10.0.0.5, which appends the address it saw, 203.0.113.20, to what the client sent).
  describe.each([
    // true: anyone's header is believed, the leftmost entry wins: a direct client names any address it likes.
    ["true", true, { direct: "192.0.2.66", proxied: "192.0.2.66" }],
    // A hop count: the n nearest senders are believed whoever they are: a direct client takes the proxy's place.
    ["1 hop", 1, { direct: "192.0.2.66", proxied: "203.0.113.20" }],
    // A list: only those senders are believed: a direct client is counted by its own address.
    ["a list of proxy addresses", ["10.0.0.5"], { direct: "198.51.100.50", proxied: "203.0.113.20" }],
    ["a CIDR range", ["10.0.0.0/8"], { direct: "198.51.100.50", proxied: "203.0.113.20" }],
    ["off", false, { direct: "198.51.100.50", proxied: "10.0.0.5" }],
  ] as const)("BATON_TRUST_PROXY %s", (_name, trust, counted) => {
    it(`counts a direct client forging X-Forwarded-For as ${counted.direct}`, async () => {
      expect(await countedAs(await app(trust as boolean | number | string[]), "198.51.100.50", "192.0.2.66")).toBe(counted.direct);
    });
    it(`counts a client behind the proxy, whatever it forged, as ${counted.proxied}`, async () => {
      expect(await countedAs(await app(trust as boolean | number | string[]), "10.0.0.5", "192.0.2.66, 203.0.113.20")).toBe(counted.proxied);
    });
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
