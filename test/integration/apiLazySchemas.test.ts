// The CLI's in-process API compiles each route's schemas at its first request (lazySchemas): its
// answers must be the listening server's, refusals and the fields a response schema keeps alike.
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
export default dag({ id: "lazy_main", tags: ["a"] }, (t) => {
  t.task("step", async () => 1);
});
`);

describe("API with lazily compiled schemas", () => {
  // No ticks: the run stays queued, so both APIs read the same rows.
  const h = new Harness({ worker: false, manualTicks: true });
  let lazy: FastifyInstance;

  beforeAll(async () => {
    await h.start({ "main.ts": DAGS });
    await h.processor.scan();
    lazy = await buildApp({ db: h.db, clock: h.clock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "off" }, lazySchemas: true });
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/lazy_main/dagRuns", payload: { dag_run_id: "r1", logical_date: "2026-01-01T00:00:00Z" } });
    expect(res.statusCode).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await lazy?.close();
    await h.stop();
  });

  const requests: [string, { method: "GET" | "PATCH" | "POST"; url: string; payload?: object }][] = [
    ["a list, serialized", { method: "GET", url: "/api/v1/dags?limit=5" }],
    ["one DAG", { method: "GET", url: "/api/v1/dags/lazy_main" }],
    ["a run", { method: "GET", url: "/api/v1/dags/lazy_main/dagRuns/r1" }],
    ["a query value of the wrong type", { method: "GET", url: "/api/v1/dags?limit=abc" }],
    ["a query value coerced from text", { method: "GET", url: "/api/v1/dags/lazy_main/dagRuns?limit=1&offset=0" }],
    ["a body value of the wrong type (not coerced)", { method: "PATCH", url: "/api/v1/dags/lazy_main", payload: { is_paused: "true" } }],
    ["a body with an unknown field", { method: "POST", url: "/api/v1/dags/lazy_main/dagRuns", payload: { dag_run_id: "r2", surprise: 1 } }],
    ["an unknown DAG", { method: "GET", url: "/api/v1/dags/lazy_nope" }],
  ];

  it.each(requests)("answers %s as the eagerly compiled API does", async (_what, request) => {
    // Twice: the first call compiles, the second uses what it compiled.
    for (let i = 0; i < 2; i++) {
      const eager = await h.app.inject(request);
      const lazily = await lazy.inject(request);
      expect({ status: lazily.statusCode, body: lazily.json() }).toEqual({ status: eager.statusCode, body: eager.json() });
    }
  });
});
