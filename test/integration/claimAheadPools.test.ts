// A try claimed ahead of a worker's free slots holds its pool slots while it waits in that worker,
// so claimTasks gives claim-ahead at most half of a pool's free slots: other workers keep their
// share of a small pool (store/transitions/claimTasks.ts, req.ahead).
import type { RowDataPacket } from "../../store/db.ts";
import { Worker } from "../../executor/worker.ts";
import { claimTasks, claimTasksReporting } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

beforeAll(async () => {
  await h.start({
    "ahead_pool.ts": dagSource(`
export default dag({ id: "ahead_pool", maxActiveTasks: 100 }, (t) => {
  for (let i = 0; i < 10; i++) t.task("p" + i, { pool: "ten" }, async () => i);
});
`),
    "ahead_fan.ts": dagSource(`
export default dag({ id: "ahead_fan", maxActiveTasks: 100 }, (t) => {
  const root = t.task("root", async () => 0);
  const middle = [];
  for (let i = 0; i < 24; i++) middle.push(t.task("m" + i, { pool: "four", upstream: [root] }, async () => i));
  t.task("join", { upstream: middle }, async () => "done");
});
`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "ten", slots: 10 } })).statusCode).toBe(200);
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "four", slots: 4 } })).statusCode).toBe(200);
  await h.run();
});

afterAll(async () => {
  await h.stop();
});

async function queued(): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'ahead_pool' AND state = 'queued'");
  return Number(row!.n);
}

const request = (token: string, limit: number, ahead: number) => ({ now: new Date(), limit, ahead, queues: ["default"], hostname: "test", pid: 1, token });

describe("claim-ahead and pools", () => {
  it("takes every free slot a worker runs now, but claims ahead only while the pool keeps half of its free slots", async () => {
    const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/ahead_pool/dagRuns", payload: {} });
    expect(trigger.statusCode).toBe(200);
    await waitFor("10 queued tries", async () => (await queued()) === 10);

    // 2 slots free now, 8 more ahead: the 2 plus ahead ones while ≥ 5 of the 10 free slots stay free.
    const first = await claimTasksReporting(h.db, request("worker-a", 10, 8));
    expect({ claimed: first.tasks.length, heldBack: first.heldBack }).toEqual({ claimed: 5, heldBack: true });
    // Another worker still finds the pool's other half, and with nothing ahead takes all it asks for.
    const second = await claimTasksReporting(h.db, request("worker-b", 3, 0));
    expect({ claimed: second.tasks.length, heldBack: second.heldBack }).toEqual({ claimed: 3, heldBack: false });
    // A worker asking only ahead of slots gets half of what is left (2 free: 1).
    const third = await claimTasks(h.db, request("worker-c", 2, 2));
    expect(third).toHaveLength(1);
    const [[pool]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'ten'");
    expect(Number(pool!.occupied_slots)).toBe(9);
    expect(await queued()).toBe(1);
  });

  it("a worker whose claim the pool rule cut short claims the rest as its waiting tries run low, without waiting for a poll", async () => {
    // Polls every 10 minutes: only claimIfRunningLow (executor/worker.ts) can bring the 24 tries of a
    // 4-slot pool in, a few at a time, once the root's finish has queued them.
    const worker = new Worker(h.db, h.clock, h.logger, {
      concurrency: 1,
      queues: ["default"],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      pollMinMs: 600_000,
      pollMaxMs: 600_000,
      claimAhead: 8,
    });
    try {
      const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/ahead_fan/dagRuns", payload: { dag_run_id: "fan" } });
      expect(trigger.statusCode).toBe(200);
      await waitFor("the root queued", async () => {
        const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'ahead_fan' AND task_id = 'root'");
        return row?.state === "queued";
      });
      worker.start();
      const state = async () => {
        const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'ahead_fan' AND run_id = 'fan'");
        return run?.state as string | undefined;
      };
      await waitFor("the fan-out run to succeed", async () => (await state()) === "success", 30_000);
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, COUNT(*) AS n FROM task_instance WHERE dag_id = 'ahead_fan' GROUP BY state");
      expect(rows.map((r) => [r.state, Number(r.n)])).toEqual([["success", 26]]);
    } finally {
      await worker.stop(2000);
    }
  });
});
