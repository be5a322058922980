// A task whose poolSlots exceed its pool's size can never be claimed. As in Airflow's scheduler
// ("Not executing … Requested pool slots (N) are greater than total pool slots: M for pool: P"),
// it stays queued, and it is not silent: the claiming worker logs a warning once per task, pool
// and size, and GET …/taskInstances/{task_id}/dependencies says why it waits.
import type { Db, RowDataPacket } from "../../store/db.ts";
import { Worker } from "../../executor/worker.ts";
import { claimTasksReporting } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { capturingLogger } from "../helpers/logger.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

/** A worker claiming every 20 ms, its log lines in `lines`. */
function startWorker(db: Db, lines: string[]): Worker {
  const worker = new Worker(db, h.clock, capturingLogger(lines), {
    concurrency: 2,
    queues: ["default"],
    logsFolder: h.logsFolder,
    cacheFolder: h.cacheFolder,
    pollMinMs: 20,
    pollMaxMs: 20,
  });
  worker.start();
  return worker;
}

const TOO_BIG = "Requested pool slots (3) are greater than total pool slots: 2 for pool: tiny";

beforeAll(async () => {
  await h.start({
    "slots_big.ts": dagSource(`
export default dag({ id: "slots_big", maxActiveTasks: 100 }, (t) => {
  t.task("big", { pool: "tiny", poolSlots: 3 }, async () => "ran");
  t.task("small", { pool: "tiny", poolSlots: 1 }, async () => "ran");
});
`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "tiny", slots: 2 } })).statusCode).toBe(200);
  await h.run();
  for (const run of ["one", "two"]) {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/slots_big/dagRuns", payload: { dag_run_id: run } })).statusCode).toBe(200);
  }
  await waitFor("both runs' tasks queued", async () => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'slots_big' AND state = 'queued'");
    return Number(row!.n) === 4;
  });
});

afterAll(async () => {
  await h.stop();
});

const dependencies = async (run: string, task: string) => {
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/slots_big/dagRuns/${run}/taskInstances/${task}/dependencies` });
  expect({ status: res.statusCode, body: res.body.slice(0, 300) }).toMatchObject({ status: 200 });
  return (res.json() as { dependencies: { name: string; reason: string }[] }).dependencies;
};

describe("a task that needs more slots than its pool has", () => {
  it("is left queued by a claim, which reports it", async () => {
    const req = { now: new Date(), limit: 0, queues: ["default"], hostname: "test", pid: 1, token: "t" };
    // limit 0 claims nothing at all; a limit of 1 takes a small task and reports the big ones it read past.
    expect((await claimTasksReporting(h.db, req)).oversized).toEqual([]);
    const result = await claimTasksReporting(h.db, { ...req, limit: 1 });
    expect(result.tasks.map((t) => t.taskId)).toEqual(["small"]);
    expect(result.oversized.length).toBeGreaterThan(0);
    expect(result.oversized[0]).toMatchObject({ dagId: "slots_big", pool: "tiny", poolSlots: 3, poolTotalSlots: 2 });
  });

  it("makes the claiming worker warn once per task, pool and size, not on every claim", async () => {
    const lines: string[] = [];
    const worker = startWorker(h.db, lines);
    try {
      await waitFor("the warning", async () => lines.some((l) => l.includes(TOO_BIG)), 15_000);
      // The small task the claim above did not take runs (the other stays held by that claim); the
      // worker keeps claiming, and reading past the big ones, for a while.
      await waitFor("the other small task done", async () => {
        const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE task_id = 'small' AND state = 'success'");
        return Number(row!.n) === 1;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await worker.stop(2000);
    }
    const warnings = lines.filter((l) => l.includes(TOO_BIG));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warn: Not executing task "big" of DAG "slots_big", run "(one|two)"/);
    const [states] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE task_id = 'big'");
    expect(states.map((r) => r.state)).toEqual(["queued", "queued"]);
  });

  it("warns once the tries can be named, when naming them failed the first time", async () => {
    const lines: string[] = [];
    // Naming tries (taskInstanceNames) fails once, as on a database blip.
    let failed = false;
    const pool = new Proxy(h.db.pool, {
      get(target, prop, receiver) {
        if (prop !== "query") return Reflect.get(target, prop, receiver);
        return (sql: unknown, ...rest: unknown[]) => {
          if (!failed && typeof sql === "string" && sql.startsWith("SELECT id, dag_id, run_id, task_id, map_index FROM task_instance WHERE id IN")) {
            failed = true;
            return Promise.reject(new Error("connection lost for a moment"));
          }
          return (target.query as (...a: unknown[]) => unknown)(sql, ...rest);
        };
      },
    });
    const worker = startWorker({ ...h.db, pool }, lines);
    try {
      await waitFor("the warning after the failed lookup", async () => lines.some((l) => l.includes(TOO_BIG)), 15_000);
    } finally {
      await worker.stop(2000);
    }
    expect(failed).toBe(true);
    expect(lines.filter((l) => l.includes("could not name the tries"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes(TOO_BIG))).toHaveLength(1);
  });

  it("says why through the API until the pool is big enough", async () => {
    // The workers above have stopped: the queued tasks also wait for one (the `queue` check).
    const noWorker = { name: "queue", reason: expect.stringContaining("No worker is running") };
    expect(await dependencies("one", "big")).toEqual([{ name: "pool_slots", reason: expect.stringContaining(TOO_BIG) }, noWorker]);
    expect((await dependencies("two", "big"))[0]!.reason).toContain('run "two"');
    expect(await dependencies("one", "small")).toEqual([]);
    const notFound = await h.app.inject({ method: "GET", url: "/api/v1/dags/slots_big/dagRuns/one/taskInstances/nope/dependencies" });
    expect(notFound.json()).toMatchObject({ status: 404, code: "BATON_TASK_NOT_FOUND" });
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/pools/tiny", payload: { slots: 3 } })).statusCode).toBe(200);
    // Big enough in all, but the small task the first claim took still holds one of its slots.
    expect(await dependencies("one", "big")).toEqual([
      noWorker,
      { name: "pool_open_slots", reason: expect.stringContaining("Not scheduling since there are 2 open slots in pool tiny and require 3 pool slots") },
    ]);
  });
});
