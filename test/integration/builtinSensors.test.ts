import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { Harness } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

// Every sensor here runs in reschedule mode (the built-ins' default) with a short interval.
const DAGS = `
import { dag, fileSensor, httpSensor, sqlSensor, externalTaskSensor } from "baton";

export const files = dag({ id: "files", schedule: null }, (t) => {
  const arrived = t.sensor("wait_csv", fileSensor({ path: (ctx) => ctx.conf.dir + "/*.csv", minSize: 1, pokeInterval: 100, timeout: "1m" }));
  t.task("load", { upstream: [arrived] }, async (ctx) => ctx.get(arrived).length);
});

export const http = dag({ id: "http", schedule: null }, (t) => {
  t.sensor("status", httpSensor({ url: (ctx) => ctx.conf.base + "/health", pokeInterval: 100, timeout: "1m" }));
  t.sensor("body", httpSensor({
    url: (ctx) => ctx.conf.base + "/job",
    pokeInterval: 100,
    timeout: "1m",
    predicate: async (res) => {
      const job = await res.json();
      return job.state === "done" ? { done: true, value: job.rows } : false;
    },
  }));
  t.sensor("refused", httpSensor({ url: "http://127.0.0.1:9/", requestTimeout: "2s", pokeInterval: 100, timeout: "1m" }));
  // An error status other than 404 fails the poke, as Airflow's HttpSensor raises; waitOnStatus and tolerateErrors wait on it.
  t.sensor("down", httpSensor({ url: (ctx) => ctx.conf.base + "/down?key=k-123", pokeInterval: 100, timeout: "1m" }));
  t.sensor("busy", httpSensor({ url: (ctx) => ctx.conf.base + "/busy", waitOnStatus: [404, 503], pokeInterval: 100, timeout: "1m" }));
  t.sensor("flaky", httpSensor({ url: (ctx) => ctx.conf.base + "/flaky", tolerateErrors: true, pokeInterval: 100, timeout: "1m" }));
});

export const producer = dag({ id: "producer", schedule: null }, (t) => {
  t.task("extract", async (ctx) => {
    if (ctx.conf.fail) throw new Error("source is down");
    return 1;
  });
});

export const consumer = dag({ id: "consumer", schedule: null }, (t) => {
  t.sensor("producer_run", externalTaskSensor({ externalDagId: "producer", pokeInterval: 100, timeout: "1m" }));
  t.sensor("producer_extract", externalTaskSensor({
    externalDagId: "producer",
    externalTaskId: "extract",
    failedStates: ["failed", "upstream_failed"],
    pokeInterval: 100,
    timeout: "1m",
  }));
  // Airflow's soft_fail: the external task failing skips the sensor instead of failing it.
  t.sensor("producer_extract_soft", externalTaskSensor({
    externalDagId: "producer",
    externalTaskId: "extract",
    failedStates: ["failed"],
    softFail: true,
    pokeInterval: 100,
    timeout: "1m",
  }));
});

export const sql = dag({ id: "sql", schedule: null }, (t) => {
  t.sensor("ready", sqlSensor({ conn: "BATON_TEST_SQL_URL", sql: "SELECT ready FROM partition_flag WHERE ds = ?", params: (ctx) => [ctx.conf.ds], pokeInterval: 100, timeout: "1m" }));
  t.sensor("no_env", sqlSensor({ conn: "BATON_TEST_UNSET_URL", sql: "SELECT 1", pokeInterval: 100 }));
});
`;

describe("built-in sensors", () => {
  const h = new Harness({ workers: 2 });
  const savedEnv = { db: process.env.BATON_DATABASE_URL, sql: process.env.BATON_TEST_SQL_URL };
  let tmp: string;

  beforeAll(async () => {
    await h.start({ "sensors.ts": DAGS });
    // Task processes inherit the worker's environment: externalTaskSensor reads Baton's
    // database from BATON_DATABASE_URL, sqlSensor its connection from a named variable.
    process.env.BATON_DATABASE_URL = h.db.url;
    process.env.BATON_TEST_SQL_URL = h.db.url;
    tmp = await mkdtemp(path.join(os.tmpdir(), "baton-sensors-"));
    await h.run();
  });
  afterAll(async () => {
    await h.stop();
    await rm(tmp, { recursive: true, force: true });
    for (const [key, value] of [["BATON_DATABASE_URL", savedEnv.db], ["BATON_TEST_SQL_URL", savedEnv.sql]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  const tasks = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id as string, r]));
  };
  const output = async (dagId: string, runId: string, taskId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/xcomEntries/return_value` })).json().value;
  const reschedules = async (dagId: string, runId: string, taskId: string) => {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/reschedules` });
    expect(res.statusCode).toBe(200);
    return res.json() as { task_reschedules: { try_number: number; start_date: string; end_date: string; reschedule_date: string }[]; total_entries: number };
  };

  it("fileSensor releases its slot between pokes and succeeds once a non-empty file appears; pokes are listed in the API", async () => {
    const dir = path.join(tmp, "in");
    const runId = await h.trigger("files", { conf: { dir } });
    await waitFor("two unsuccessful pokes", async () => (await reschedules("files", runId, "wait_csv")).total_entries >= 2);
    expect((await tasks("files", runId)).wait_csv.state).not.toBe("running"); // up_for_reschedule or queued, between pokes
    const { mkdir } = await import("node:fs/promises");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "empty.csv"), ""); // below minSize: still waiting
    await writeFile(path.join(dir, ".partial.csv"), "x"); // hidden: never matched by *
    const before = (await reschedules("files", runId, "wait_csv")).total_entries;
    await waitFor("another poke", async () => (await reschedules("files", runId, "wait_csv")).total_entries > before);
    expect((await tasks("files", runId)).wait_csv.state).not.toBe("success");
    await writeFile(path.join(dir, "orders.csv"), "id\n1\n");
    expect(await h.runEnded("files", runId)).toBe("success");
    expect(await output("files", runId, "wait_csv")).toEqual([path.join(dir, "orders.csv")]);
    expect(await output("files", runId, "load")).toBe(1);
    const t = await tasks("files", runId);
    expect(t.wait_csv).toMatchObject({ state: "success", try_number: 1 });

    const page = await reschedules("files", runId, "wait_csv");
    expect(page.task_reschedules.length).toBe(page.total_entries);
    const first = page.task_reschedules[0]!;
    expect(first.try_number).toBe(1);
    expect(new Date(first.end_date).getTime()).toBeGreaterThanOrEqual(new Date(first.start_date).getTime());
    expect(new Date(first.reschedule_date).getTime()).toBeGreaterThan(new Date(first.end_date).getTime());
    const limited = await h.app.inject({ method: "GET", url: `/api/v1/dags/files/dagRuns/${encodeURIComponent(runId)}/taskInstances/wait_csv/reschedules?limit=1&offset=1` });
    expect(limited.json().task_reschedules).toEqual([page.task_reschedules[1]]);
    const missing = await h.app.inject({ method: "GET", url: `/api/v1/dags/files/dagRuns/${encodeURIComponent(runId)}/taskInstances/nope/reschedules` });
    expect(missing.json().code).toBe("BATON_TASK_NOT_FOUND");
  });

  it("httpSensor: expected status, a predicate on the body, a refused connection and a 503 that fail the poke, waitOnStatus and tolerateErrors that wait on it", async () => {
    let health = 0;
    let job = 0;
    let busy = 0;
    let flaky = 0;
    const server: Server = createServer((req, res) => {
      if (req.url === "/health") {
        health++;
        res.writeHead(health >= 3 ? 200 : 404).end();
      } else if (req.url === "/down?key=k-123") {
        res.writeHead(503).end();
      } else if (req.url === "/busy") {
        busy++;
        res.writeHead(busy >= 3 ? 200 : 503).end();
      } else if (req.url === "/flaky") {
        flaky++;
        res.writeHead(flaky >= 3 ? 200 : 500).end();
      } else if (req.url === "/job") {
        job++;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(job >= 2 ? { state: "done", rows: 42 } : { state: "running" }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const runId = await h.trigger("http", { conf: { base } });
      expect(await h.runEnded("http", runId)).toBe("failed");
      const t = await tasks("http", runId);
      expect(t.status.state).toBe("success");
      expect(t.body.state).toBe("success");
      expect(health).toBeGreaterThanOrEqual(3);
      expect(await output("http", runId, "status")).toEqual({ status: 200 });
      expect(await output("http", runId, "body")).toBe(42);
      // A poke that throws is a failed try (no retries configured): the error says why.
      expect(t.refused.state).toBe("failed");
      expect(JSON.parse(t.refused.error).message).toMatch(/httpSensor: GET http:\/\/127\.0\.0\.1:9\/ failed/);
      expect(t.down).toMatchObject({ state: "failed", try_number: 1 });
      expect(JSON.parse(t.down.error).message).toBe(`httpSensor: GET ${base}/down?key=*** answered 503 (not 200; only 404 means not yet: waitOnStatus)`);
      expect(t.busy.state).toBe("success");
      expect(t.flaky.state).toBe("success");
      expect(busy).toBeGreaterThanOrEqual(3);
      expect(flaky).toBeGreaterThanOrEqual(3);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("externalTaskSensor waits for another DAG's run of the same logical date, and fails fast on failedStates", async () => {
    const day = "2026-02-01T00:00:00.000Z";
    const consumer = await h.trigger("consumer", { logicalDate: day });
    await waitFor("the sensors to poke without finding a producer run", async () => (await reschedules("consumer", consumer, "producer_run")).total_entries >= 1);
    // A producer run of another logical date does not count.
    const other = await h.trigger("producer", { logicalDate: "2026-01-31T00:00:00.000Z" });
    expect(await h.runEnded("producer", other)).toBe("success");
    const seen = (await reschedules("consumer", consumer, "producer_run")).total_entries;
    await waitFor("another poke", async () => (await reschedules("consumer", consumer, "producer_run")).total_entries > seen);
    expect((await tasks("consumer", consumer)).producer_run.state).not.toBe("success");

    const producer = await h.trigger("producer", { logicalDate: day });
    expect(await h.runEnded("producer", producer)).toBe("success");
    expect(await h.runEnded("consumer", consumer)).toBe("success");
    expect(await output("consumer", consumer, "producer_run")).toMatchObject({ dagId: "producer", runId: producer, logicalDate: day, taskId: null, states: ["success"] });
    expect(await output("consumer", consumer, "producer_extract")).toMatchObject({ taskId: "extract", states: ["success"] });

    // The producer fails for another day: the task-level sensor fails at once (no timeout wait),
    // the run-level one (no failedStates) keeps waiting.
    const day2 = "2026-02-02T00:00:00.000Z";
    const failing = await h.trigger("producer", { logicalDate: day2, conf: { fail: true } });
    expect(await h.runEnded("producer", failing)).toBe("failed");
    const consumer2 = await h.trigger("consumer", { logicalDate: day2 });
    await waitFor("producer_extract to fail", async () => (await tasks("consumer", consumer2)).producer_extract?.state === "failed");
    const t = await tasks("consumer", consumer2);
    expect(JSON.parse(t.producer_extract.error)).toMatchObject({ name: "FailError", nonRetryable: true });
    expect(JSON.parse(t.producer_extract.error).message).toContain("ended failed, one of failedStates");
    await waitFor("producer_extract_soft to end", async () => ["skipped", "failed"].includes((await tasks("consumer", consumer2)).producer_extract_soft?.state));
    expect((await tasks("consumer", consumer2)).producer_extract_soft.state).toBe("skipped");
    expect(["up_for_reschedule", "queued", "running", "scheduled"]).toContain(t.producer_run.state);
  });

  it("sqlSensor polls a query on a connection named by an environment variable; a missing variable fails the poke", async () => {
    await h.db.pool.query("CREATE TABLE partition_flag (ds VARCHAR(10) PRIMARY KEY, ready INT NOT NULL)");
    await h.db.pool.query("INSERT INTO partition_flag VALUES ('2026-02-01', 0)");
    const runId = await h.trigger("sql", { conf: { ds: "2026-02-01" } });
    await waitFor("two unsuccessful pokes", async () => (await reschedules("sql", runId, "ready")).total_entries >= 2);
    await h.db.pool.query("UPDATE partition_flag SET ready = 7 WHERE ds = '2026-02-01'");
    expect(await h.runEnded("sql", runId)).toBe("failed"); // no_env fails
    const t = await tasks("sql", runId);
    expect(t.ready.state).toBe("success");
    expect(await output("sql", runId, "ready")).toBe(7);
    expect(t.no_env.state).toBe("failed");
    expect(JSON.parse(t.no_env.error).message).toContain("BATON_TEST_UNSET_URL is not set");
  });
});
