import { execFileSync } from "node:child_process";
import { scratchDir } from "../helpers/scratch.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { capturingLogger } from "../helpers/logger.ts";
import { openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import type { Logger } from "../../core/logger.ts";
import { Worker, type WorkerOptions } from "../../executor/worker.ts";

/** This process's task children (executor/child.ts, or its compiled entry executor-child-<hash>.mjs), by pid. */
function taskChildren(): Set<number> {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return new Set(
    out
      .split("\n")
      .filter((line) => line.includes("executor/child.ts") || line.includes("executor-child-"))
      .map((line) => Number(line.trim().split(/\s+/)[0])),
  );
}

const DAGS = dagSource(`
import { appendFileSync } from "node:fs";

export const pids = dag({ id: "pids" }, (t) => {
  const a = t.task("a", async () => process.pid);
  const b = t.task("b", async () => process.pid);
  const c = t.task("c", async () => process.pid);
  const d = t.task("d", { isolation: "process" }, async () => process.pid);
  const e = t.task("e", { isolation: "process" }, async () => process.pid);
  a.then(b).then(c).then(d).then(e);
});

export const early = dag({ id: "early" }, (t) => {
  t.task("pid", { queue: "early" }, async () => process.pid);
});

export const dbLost = dag({ id: "db_lost" }, (t) => {
  t.task("wait", { queue: "db_lost" }, async (ctx) => {
    while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  });
});

export const dbLostAfter = dag({ id: "db_lost_after" }, (t) => {
  t.task("nap", { queue: "db_lost_after" }, async () => {
    await new Promise((r) => setTimeout(r, 300));
  });
});

export const stubborn = dag({ id: "stubborn" }, (t) => {
  t.task("wait", async (ctx) => {
    appendFileSync(String(ctx.conf.marks), "started\\n");
    while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
    appendFileSync(String(ctx.conf.marks), "aborted: " + String(ctx.signal.reason?.message ?? ctx.signal.reason) + "\\n");
    throw new Error("stopped");
  });
});
`);

describe("worker: process isolation and lost claims", () => {
  const h = new Harness({ workers: 2, heartbeatMs: 200, killGraceMs: 2000 });
  beforeAll(async () => {
    await h.start({ "lifecycle.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  it("runs isolation: 'process' tries in fresh processes and the others in reused ones", async () => {
    const runId = await h.trigger("pids");
    await waitFor("pids run", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'pids' AND run_id = ?", [runId]);
      return rows[0]?.state === "success";
    });
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT x.task_id, x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.run_id = ? AND r.dag_id = 'pids'",
      [runId],
    );
    const pid = Object.fromEntries(rows.map((r) => [r.task_id, Number(JSON.parse(r.value))]));
    const warm = new Set([pid.a, pid.b, pid.c]);
    expect(warm.size).toBeLessThanOrEqual(2); // a chain on 2 warm children reuses them
    expect(warm.has(pid.d)).toBe(false);
    expect(warm.has(pid.e)).toBe(false);
    expect(pid.d).not.toBe(pid.e);
  });

  it("aborts a running try whose claim was taken away, and discards its result", async () => {
    const marks = path.join(await scratchDir("baton-lost-"), "marks.txt");
    const runId = await h.trigger("stubborn", { conf: { marks } });
    const marked = async () => await readFile(marks, "utf8").catch(() => "");
    // Started in its process, not only claimed (running in the database): a claim taken away
    // before the try starts is never started, so it would have no abort to see.
    await waitFor("the task to start", async () => (await marked()).includes("started"));
    // What a clear, a run timeout or the zombie reaper does to the row: the claim is gone.
    await h.db.pool.query("UPDATE task_instance SET state = 'up_for_retry', claim_token = NULL, next_retry_at = '2099-01-01' WHERE dag_id = 'stubborn' AND run_id = ?", [runId]);
    const text = await waitFor("the task to see its signal abort", async () => ((await marked()).includes("aborted") ? await marked() : null), 10_000);
    expect(text).toContain("aborted: the task instance was cancelled, marked, cleared, timed out or reaped");
    // Its failure is not recorded over the row someone else now owns.
    await waitFor("the worker to drop the try", async () => h.worker!.runningCount === 0);
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, error FROM task_instance WHERE dag_id = 'stubborn' AND run_id = ?", [runId]);
    expect(rows[0]).toMatchObject({ state: "up_for_retry", error: null });
  });

  it("starts one warm child per slot with prestartChildren, before any try, and runs tries in them", async () => {
    const before = taskChildren();
    const worker = new Worker(h.db, h.clock, h.logger, {
      concurrency: 3,
      queues: ["early"],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      prestartChildren: true,
    });
    try {
      // It registers at once (health sees it while its children boot), then starts one child per slot.
      await worker.start();
      const [registered] = await h.db.pool.query<RowDataPacket[]>("SELECT 1 FROM baton_process WHERE id = ?", [worker.id]);
      expect(registered).toHaveLength(1);
      const started = await waitFor("its three children to start", async () => {
        const now = [...taskChildren()].filter((pid) => !before.has(pid));
        return now.length === 3 ? now : null;
      });
      expect(started).toHaveLength(3);
      const runId = await h.trigger("early");
      await waitFor("early run", async () => {
        const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'early' AND run_id = ?", [runId]);
        return rows[0]?.state === "success";
      });
      const [[xcom]] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.dag_id = 'early' AND r.run_id = ? AND x.task_id = 'pid'",
        [runId],
      );
      expect(started).toContain(Number(JSON.parse(xcom!.value)));
      expect([...taskChildren()].filter((pid) => !before.has(pid))).toHaveLength(3);
    } finally {
      await worker.stop(2000);
    }
    await waitFor("its children gone", async () => [...taskChildren()].every((pid) => before.has(pid)));
  });

  /** A one-slot worker of its own on `db` for `queue`, started with one try of `dagId` running in it. */
  async function workerRunningOneTry(db: Db, dagId: string, queue: string, options: Partial<WorkerOptions> = {}, logger: Logger = h.logger) {
    const worker = new Worker(db, h.clock, logger, { concurrency: 1, queues: [queue], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, ...options });
    worker.start();
    await h.trigger(dagId);
    await waitFor("the try running in that worker", async () => worker.runningCount === 1, 20_000);
    return worker;
  }

  it("stops heartbeating when the database is gone at stop(), which fails: the hand-back could not be written", async () => {
    const workerDb = openDb(h.db.url);
    const lines: string[] = [];
    // Failed heartbeats after the first log at debug level: counted too.
    const logger = capturingLogger(lines, { debug: true });
    const before = taskChildren();
    const worker = await workerRunningOneTry(workerDb, "db_lost", "db_lost", { heartbeatMs: 50 }, logger);
    await workerDb.close();
    await expect(worker.stop(100)).rejects.toThrow(/closed/i);
    const failedBeats = () => lines.filter((l) => /^(warn|debug): heartbeat failed/.test(l)).length;
    const atStop = failedBeats();
    // A 50 ms heartbeat interval left running would fail at least twice before a 150 ms timer set now.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(failedBeats()).toBe(atStop);
    await waitFor("its task process gone", async () => [...taskChildren()].every((pid) => before.has(pid)));
  });

  it("retries a failed heartbeat within a second, not a whole interval later", async () => {
    let failing = true;
    const real = openDb(h.db.url);
    // The worker's plain queries (its heartbeats) fail until the database is "back".
    const pool = new Proxy(real.pool, {
      get(target, prop) {
        if (prop === "query" && failing) return async () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:3306 (test)"));
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const worker = new Worker({ ...real, pool }, h.clock, h.logger, { concurrency: 1, queues: ["hb_retry"], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, heartbeatMs: 20_000 });
    try {
      worker.start();
      const registered = async () => {
        const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT 1 FROM baton_process WHERE id = ?", [worker.id]);
        return rows.length === 1;
      };
      expect(await registered()).toBe(false);
      failing = false;
      // The next interval is 20 s away: only a retry registers the worker within 5 s.
      await waitFor("a heartbeat once the database is back", registered, 5_000);
    } finally {
      await worker.stop(1000);
      await real.close();
    }
  });

  it("gives up recording results the database refuses after stopRecordTimeoutMs: stop() fails instead of retrying forever", async () => {
    const workerDb = openDb(h.db.url);
    const worker = await workerRunningOneTry(workerDb, "db_lost_after", "db_lost_after", { stopRecordTimeoutMs: 300 });
    // The try ends within the grace, but its result can no longer be written.
    await workerDb.close();
    const started = Date.now();
    await expect(worker.stop(10_000)).rejects.toThrow(/could not record 1 finished try within 300 ms of stopping/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("fails stop() within stopRecordTimeoutMs when a database call hangs (a database that stopped answering)", async () => {
    let frozen = false;
    const real = openDb(h.db.url);
    // Once frozen, every transaction waits forever, as on a partitioned network with no query timeout.
    const workerDb = { ...real, batchTx: <T>(fn: Parameters<typeof real.batchTx<T>>[0]) => (frozen ? new Promise<T>(() => {}) : real.batchTx(fn)) };
    try {
      const worker = await workerRunningOneTry(workerDb, "db_lost_after", "db_lost_after", { stopRecordTimeoutMs: 300 });
      frozen = true;
      const started = Date.now();
      await expect(worker.stop(10_000)).rejects.toThrow(/did not end within 300 ms of stopping/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await real.close();
    }
  });
});
