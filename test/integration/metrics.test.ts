// GET /metrics (Prometheus text from prom-client), X-Request-Id and the per-request log line,
// against real MariaDB and real worker processes.
import { buildApp } from "../../api/app.ts";
import { generateToken, hashToken } from "../../core/apiTokens.ts";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { createMetrics, processMetrics, resetProcessMetrics } from "../../core/metrics.ts";
import { insertToken } from "../../store/apiTokens.ts";
import { openDb } from "../../store/db.ts";
import { startMetricsListener } from "../../cli/metricsListener.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const CHAIN = dagSource(`
export default dag({ id: "metrics_chain" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", { upstream: [a] }, async () => 2);
  t.task("boom", { upstream: [b] }, async () => { throw new FailError("no retry"); });
});
`);

// Stays in flight: one task on a queue no worker serves, one waiting for a signal.
const WAITING = dagSource(`
export default dag({ id: "metrics_waiting" }, (t) => {
  t.task("stuck", { queue: "metrics_nobody" }, async () => 1);
  t.waitForSignal("wait", { signal: "go" });
});
`);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (samples only; # HELP / # TYPE lines skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("metrics and request ids", () => {
  const h = new Harness({ workers: 2 });

  const scrape = async () => {
    const res = await h.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(res.body);
  };
  const taskState = async (dagId: string, runId: string, taskId: string) => {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${runId}/taskInstances/${taskId}` });
    return res.statusCode === 200 ? (res.json().state as string) : undefined;
  };

  beforeAll(async () => {
    await h.start({ "chain.ts": CHAIN, "waiting.ts": WAITING });
    await h.run();
  });
  afterAll(() => h.stop());

  describe("GET /metrics", () => {
    it("after a DAG ran: task counters and durations by dag_id, claim latency, scheduler ticks, pool and process metrics", async () => {
      await h.trigger("metrics_chain", { runId: "m1" });
      await waitFor("the chain's last task to fail", async () => (await taskState("metrics_chain", "m1", "boom")) === "failed", 20_000);
      const s = await scrape();

      expect(value(s, "baton_task_finished_total", { state: "success" })).toBeGreaterThanOrEqual(2);
      expect(value(s, "baton_task_finished_total", { state: "failed" })).toBeGreaterThanOrEqual(1);
      expect(value(s, "baton_task_duration_seconds_count", { dag_id: "metrics_chain", state: "success" })).toBe(2);
      expect(value(s, "baton_task_duration_seconds_count", { dag_id: "metrics_chain", state: "failed" })).toBe(1);
      expect(value(s, "baton_task_duration_seconds_bucket", { dag_id: "metrics_chain", state: "success", le: "+Inf" })).toBe(2);
      expect(value(s, "baton_task_duration_seconds_sum", { dag_id: "metrics_chain", state: "success" })).toBeGreaterThan(0);
      // The first task was queued by the scheduler and claimed from the queue.
      expect(value(s, "baton_claim_latency_seconds_count")).toBeGreaterThanOrEqual(1);
      // The worker loop's database calls: the three tries were recorded by finish calls, the first
      // was taken by a claim call, and each of the others either by a claim or handed over by the
      // finish of its upstream task: every try started is counted once.
      expect(value(s, "baton_worker_db_call_tries_total", { call: "finish" })).toBe(3);
      expect(value(s, "baton_worker_db_call_tries_total", { call: "claim" })).toBeGreaterThanOrEqual(1);
      expect(value(s, "baton_worker_handoffs_total")).toBeGreaterThanOrEqual(1);
      expect(value(s, "baton_worker_db_call_tries_total", { call: "claim" })! + value(s, "baton_worker_handoffs_total")!).toBe(3);
      expect(value(s, "baton_worker_db_call_duration_seconds_count", { call: "finish" })).toBeGreaterThanOrEqual(1);
      expect(value(s, "baton_worker_db_call_duration_seconds_count", { call: "claim" })).toBeGreaterThanOrEqual(1);
      expect(value(s, "baton_worker_db_call_duration_seconds_sum", { call: "finish" })).toBeGreaterThan(0);
      expect(value(s, "baton_scheduler_loop_duration_seconds_count")).toBeGreaterThan(0);
      expect(value(s, "baton_scheduler_loop_duration_seconds_sum")).toBeGreaterThan(0);
      for (const state of ["used", "free", "queued"]) expect(value(s, "baton_db_pool_connections", { state })).toBeGreaterThanOrEqual(0);
      expect(value(s, "baton_db_pool_connections", { state: "used" })! + value(s, "baton_db_pool_connections", { state: "free" })!).toBeGreaterThan(0);
      expect(value(s, "baton_metadatabase_up")).toBe(1);
      // Node process metrics, prefixed.
      expect(value(s, "baton_process_cpu_user_seconds_total")).toBeGreaterThan(0);
      expect(value(s, "baton_nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
      expect(s.some((x) => x.name.startsWith("process_") || x.name.startsWith("nodejs_"))).toBe(false);
    });

    it("gauges count active runs, task instances by state and queued tasks per queue", async () => {
      await h.trigger("metrics_waiting", { runId: "w1" });
      await waitFor("the signal task to be deferred", async () => (await taskState("metrics_waiting", "w1", "wait")) === "deferred", 20_000);
      await waitFor("the stuck task to be queued", async () => (await taskState("metrics_waiting", "w1", "stuck")) === "queued");
      const s = await scrape();

      expect(value(s, "baton_dag_runs", { state: "running" })).toBe(1);
      expect(value(s, "baton_dag_runs", { state: "queued" })).toBe(0);
      expect(value(s, "baton_task_instances", { state: "queued" })).toBe(1);
      expect(value(s, "baton_task_instances", { state: "deferred" })).toBe(1);
      expect(value(s, "baton_task_instances", { state: "running" })).toBe(0);
      expect(value(s, "baton_queue_depth", { queue: "metrics_nobody" })).toBe(1);
      expect(value(s, "baton_queue_depth", { queue: "default" })).toBe(0);
      // Finished states are counters, never gauges: no scan over history.
      expect(value(s, "baton_task_instances", { state: "success" })).toBeUndefined();
      expect(value(s, "baton_dag_runs", { state: "failed" })).toBeUndefined();

      // The queue empties: its depth drops to 0 rather than keeping a stale 1.
      await h.db.pool.query("UPDATE task_instance SET state = 'removed' WHERE dag_id = 'metrics_waiting' AND task_id = 'stuck'");
      const after = await scrape();
      expect(value(after, "baton_queue_depth", { queue: "metrics_nobody" })).toBe(0);
      expect(value(after, "baton_task_instances", { state: "queued" })).toBe(0);
    });

    it("stays out of the OpenAPI document and is not under /api/v1", async () => {
      const spec = (await h.app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json();
      expect(Object.keys(spec.paths)).not.toContain("/metrics");
      expect((await h.app.inject({ method: "GET", url: "/api/v1/metrics" })).statusCode).toBe(404);
      expect((await h.app.inject({ method: "POST", url: "/metrics" })).statusCode).toBe(404);
    });

    it("answers the process metrics with baton_metadatabase_up 0 when the database cannot be queried", async () => {
      const broken = openDb("mysql://root@127.0.0.1:3306/baton_metrics_no_such_db", { connectionLimit: 1 });
      const app = await buildApp({ db: broken, clock: systemClock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "off" } });
      try {
        const res = await app.inject({ method: "GET", url: "/metrics" });
        expect(res.statusCode).toBe(200);
        const s = parse(res.body);
        expect(value(s, "baton_metadatabase_up")).toBe(0);
        expect(value(s, "baton_task_instances", { state: "queued" })).toBeUndefined();
        expect(value(s, "baton_process_cpu_user_seconds_total")).toBeGreaterThan(0);
      } finally {
        await app.close();
        await broken.close();
      }
      // The next scrape through a working database sets it back.
      expect(value(await scrape(), "baton_metadatabase_up")).toBe(1);
    });
  });

  describe("BATON_METRICS_PORT listener (worker, scheduler)", () => {
    const listen = async (db: typeof h.db) => {
      const server = await startMetricsListener(db, "127.0.0.1", 0);
      const { port } = server.address() as { port: number };
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        expect(res.status).toBe(200);
        return parse(await res.text());
      } finally {
        await new Promise((r) => server.close(r));
      }
    };

    it("says baton_metadatabase_up 1 while its database answers, 0 when it does not (never 0 just for having no API)", async () => {
      expect(value(await listen(h.db), "baton_metadatabase_up")).toBe(1);
      const broken = openDb("mysql://root@127.0.0.1:3306/baton_metrics_no_such_db", { connectionLimit: 1 });
      try {
        expect(value(await listen(broken), "baton_metadatabase_up")).toBe(0);
      } finally {
        await broken.close();
      }
      expect(value(await listen(h.db), "baton_metadatabase_up")).toBe(1);
    });

    it("a database that does not answer makes the listener say 0 after its probe's deadline, with one probe in flight, not hang the scrape", async () => {
      let probes = 0;
      const stalled = { pool: { query: () => { probes++; return new Promise(() => {}); } } } as unknown as typeof h.db;
      const server = await startMetricsListener(stalled, "127.0.0.1", 0, { probeTimeoutMs: 50 });
      try {
        const { port } = server.address() as { port: number };
        const scrapes = await Promise.all([1, 2, 3].map(() => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())));
        for (const text of scrapes) expect(value(parse(text), "baton_metadatabase_up")).toBe(0);
        expect(probes).toBe(1);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  });

  describe("registries", () => {
    it("createMetrics gives an independent registry; resetProcessMetrics zeroes this process's", async () => {
      // Nothing runs any more (the waiting DAG's tasks are removed or deferred): counts are stable.
      const before = value(await scrape(), "baton_task_finished_total", { state: "success" });
      expect(before).toBeGreaterThanOrEqual(2);
      const fresh = createMetrics({ defaultMetrics: false });
      fresh.taskFinished.inc({ state: "success" }, 5);
      const freshText = await fresh.registry.metrics();
      expect(value(parse(freshText), "baton_task_finished_total", { state: "success" })).toBe(5);
      expect(freshText).not.toContain("baton_process_cpu");
      expect(value(await scrape(), "baton_task_finished_total", { state: "success" })).toBe(before);

      processMetrics().schedulerLoopDuration.observe(0.01);
      resetProcessMetrics();
      const text = await processMetrics().registry.metrics();
      // Zeroed, not gone: the bounded series stay at 0 (test/unit/metrics.test.ts).
      expect(text).toMatch(/^baton_task_finished_total\{state="success"\} 0$/m);
      expect(value(parse(await fresh.registry.metrics()), "baton_task_finished_total", { state: "success" })).toBe(5);
    });
  });

  describe("with authentication on", () => {
    it("needs a viewer token, like any GET; the refusal carries X-Request-Id", async () => {
      const token = generateToken();
      await insertToken(h.db.pool, { name: "metrics-viewer", role: "viewer", hash: hashToken(token), prefix: "baton_x", now: new Date() });
      const app = await buildApp({ db: h.db, clock: systemClock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "on" } });
      try {
        const refused = await app.inject({ method: "GET", url: "/metrics", headers: { "x-request-id": "no-token-1" } });
        expect(refused.statusCode).toBe(401);
        expect(refused.json()).toMatchObject({ code: "BATON_UNAUTHENTICATED" });
        expect(refused.headers["x-request-id"]).toBe("no-token-1");
        const ok = await app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${token}` } });
        expect(ok.statusCode).toBe(200);
        expect(value(parse(ok.body), "baton_metadatabase_up")).toBe(1);
      } finally {
        await app.close();
      }
    });
  });

  describe("X-Request-Id", () => {
    it("echoes a valid incoming id", async () => {
      const res = await h.app.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-request-id": "trace-1.A_b" } });
      expect(res.statusCode).toBe(200);
      expect(res.headers["x-request-id"]).toBe("trace-1.A_b");
    });

    it("generates a UUID when none is sent or the one sent is unsafe or too long", async () => {
      const none = await h.app.inject({ method: "GET", url: "/api/v1/dags" });
      expect(none.headers["x-request-id"]).toMatch(UUID);
      for (const bad of ["has space", "<script>", "a".repeat(129), "semi;colon", "ünï"]) {
        const res = await h.app.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-request-id": bad } });
        expect(res.headers["x-request-id"]).toMatch(UUID);
      }
      const longest = "a".repeat(128);
      expect((await h.app.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-request-id": longest } })).headers["x-request-id"]).toBe(longest);
      const other = await h.app.inject({ method: "GET", url: "/api/v1/dags" });
      expect(other.headers["x-request-id"]).not.toBe(none.headers["x-request-id"]);
    });

    it("is on error answers too: unknown route, unknown DAG, invalid query, malformed path, /metrics", async () => {
      const cases = [
        { url: "/nope", status: 404 },
        { url: "/api/v1/dags/metrics_ghost", status: 404 },
        { url: "/api/v1/dags?limit=abc", status: 400 },
        { url: "/api/v1/dags/%E0%A4%A", status: 400 },
        { url: "/metrics", status: 200 },
      ];
      for (const [i, c] of cases.entries()) {
        const res = await h.app.inject({ method: "GET", url: c.url, headers: { "x-request-id": `err-${i}` } });
        expect({ url: c.url, status: res.statusCode, id: res.headers["x-request-id"] }).toEqual({ url: c.url, status: c.status, id: `err-${i}` });
      }
    });
  });

  describe("request log", () => {
    it("with requestLog, logs one JSON line per request through the api logger, secrets masked, no headers", async () => {
      const lines: string[] = [];
      const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
      const app = await buildApp({ db: h.db, clock: systemClock, logger, config: { logsFolder: h.logsFolder }, auth: { mode: "off" }, requestLog: true });
      const quiet = await buildApp({ db: h.db, clock: systemClock, logger, config: { logsFolder: h.logsFolder }, auth: { mode: "off" } });
      try {
        const ok = await app.inject({
          method: "GET",
          url: "/api/v1/dags?limit=5&access_token=supersecret-1&api_key=supersecret-2",
          headers: { authorization: "Bearer supersecret-3", "x-request-id": "log-me-1" },
        });
        expect(ok.statusCode).toBe(200);
        const missing = await app.inject({ method: "GET", url: "/api/v1/dags/metrics_ghost" });
        expect(missing.statusCode).toBe(404);

        const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.component === "api" && l.request_id);
        expect(requests).toHaveLength(2);
        expect(requests[0]).toMatchObject({
          level: "info",
          component: "api",
          method: "GET",
          url: "/api/v1/dags?limit=5&access_token=***&api_key=***",
          status: 200,
          request_id: "log-me-1",
        });
        expect(typeof requests[0].duration_ms).toBe("number");
        expect(requests[0].duration_ms).toBeGreaterThanOrEqual(0);
        expect(requests[1]).toMatchObject({ url: "/api/v1/dags/metrics_ghost", status: 404, request_id: missing.headers["x-request-id"] });
        expect(lines.join("\n")).not.toMatch(/supersecret|authorization|bearer/i);

        // Without requestLog (the CLI's in-process API), no line per request; the id is still echoed.
        const before = lines.length;
        const res = await quiet.inject({ method: "GET", url: "/api/v1/dags", headers: { "x-request-id": "quiet-1" } });
        expect(res.headers["x-request-id"]).toBe("quiet-1");
        expect(lines.length).toBe(before);
      } finally {
        await app.close();
        await quiet.close();
      }
    });
  });
});
