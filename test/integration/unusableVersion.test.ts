// A try whose pinned DAG version cannot be read (its stored structure is not JSON) must not stall
// its worker, nor the scheduler. The worker failed it at once, then could not record that (the
// outcome is settled with the version's shape), and sent the same batch again and again: no
// result was recorded and nothing claimed again, by any worker that took such a try. The tries
// claimed with it lost their upstream outputs too. Now the try is set aside as a result refused
// even as BATON_RESULT_UNRECORDABLE (parkedResult.test.ts). The scheduler's reaper, which meets
// the same version once it is a zombie, then left it running and set it aside every minute, as
// its worker did its result: the try kept its pool slot and the run never ended (unless it had a
// dagrunTimeout). Now the reaper fails its run (failUnusableRuns), without failing the others.
import { randomBytes } from "node:crypto";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const DAGS = dagSource(`
export const bad = dag({ id: "uv_bad" }, (t) => { t.task("x", { priorityWeight: 100 }, async () => 1); });
export const other = dag({ id: "uv_other", maxActiveRuns: 5 }, (t) => {
  const a = t.task("a", { queue: "prep" }, async () => 1);
  t.task("b", { upstream: [a] }, async (ctx) => ctx.get(a) + 1);
});
`);

const h = new Harness({ clock: systemClock, manualTicks: true, worker: false });
const lines: string[] = [];
let worker: Worker | undefined;
let scheduler: Scheduler | undefined;

beforeAll(async () => {
  await h.start({ "uv.ts": DAGS });
  await h.processor.scan();
});
afterAll(async () => {
  await scheduler?.stop();
  await worker?.stop(0).catch(() => undefined);
  await h.stop();
});

async function task(dagId: string, taskId: string): Promise<RowDataPacket> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT ti.state, ti.dag_run_id, r.state AS run_state FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.dag_id = ? AND ti.task_id = ?",
    [dagId, taskId],
  );
  return row!;
}

async function occupied(pool: string): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = ?", [pool]);
  return Number(row!.occupied_slots);
}

it("sets the try aside: the tries claimed with it run with their inputs, and the reaper fails its run", async () => {
  await h.trigger("uv_bad", { runId: "r1", via: "store" });
  await h.trigger("uv_other", { runId: "r1", via: "store" });
  await h.scheduler.tick();
  // uv_other's first task ends first, so its second waits in the same claim as uv_bad's try.
  const versions = new VersionCache(h.db.pool);
  const [a] = await claimTasks(h.db, { now: systemClock.now(), limit: 1, queues: ["prep"], hostname: "prep", pid: 1, token: randomBytes(16).toString("hex") });
  await finishTries(h.db, systemClock.now(), [{ task: a!, outcome: "success", output: 1, endedAt: systemClock.now() }], (v) => versions.shape(v));
  expect((await task("uv_other", "b")).state).toBe("queued");
  await h.db.pool.query("UPDATE dag_version SET structure = '{not json' WHERE dag_id = 'uv_bad'");

  const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
  worker = new Worker(h.db, h.clock, logger, { concurrency: 4, queues: ["default"], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, heartbeatMs: 500 });
  worker.start();
  await waitFor("uv_other's run to succeed", async () => (await task("uv_other", "b")).run_state === "success", 20_000).catch((err) => {
    console.log(lines.join("\n"));
    throw err;
  });
  const [[output]] = await h.db.pool.query<RowDataPacket[]>("SELECT value FROM xcom WHERE task_id = 'b'");
  expect(JSON.parse(output!.value)).toBe(2);
  await waitFor("uv_bad's try to be set aside", async () => lines.some((l) => l.includes("could not be stored even as failed")), 20_000);
  const parked = lines.find((l) => l.includes("could not be stored even as failed"))!;
  expect(parked).toContain("try 1 of uv_bad.x");
  expect(parked).toContain("cannot be read: its stored structure is not JSON");
  expect(lines.filter((l) => l.includes("worker database work failed"))).toEqual([]);
  expect((await task("uv_bad", "x")).state).toBe("running");

  // Its worker does not heartbeat it: a zombie for a scheduler that has not read the version yet.
  // The worker stops, so no other try holds a slot of the pool.
  await worker.stop(0);
  worker = undefined;
  expect(await occupied("default_pool")).toBe(1);
  await h.db.pool.query("UPDATE task_instance SET heartbeat_at = heartbeat_at - INTERVAL 1 HOUR WHERE dag_id = 'uv_bad'");
  scheduler = new Scheduler(h.db, h.clock, logger, { intervalMs: 100, taskHeartbeatTimeoutMs: 30_000 });
  await h.trigger("uv_other", { runId: "r2", via: "store" });
  expect(await scheduler.tick()).toMatchObject({ zombiesReaped: 0, runsStarted: 1 });
  const bad = await task("uv_bad", "x");
  expect(bad).toMatchObject({ state: "failed", run_state: "failed" });
  const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT note FROM dag_run WHERE id = ?", [bad.dag_run_id]);
  expect(run!.note).toContain('its task "x" stopped heartbeating and could not be reaped');
  expect(run!.note).toContain("BATON_DAG_VERSION_UNUSABLE");
  expect(run!.note).toContain("cannot be read: its stored structure is not JSON");
  const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT error FROM task_instance WHERE dag_id = 'uv_bad' AND task_id = 'x'");
  expect(JSON.parse(ti!.error)).toMatchObject({ code: "BATON_DAG_VERSION_UNUSABLE" });
  expect(await occupied("default_pool")).toBe(0);
  expect(lines.filter((l) => l.includes("dag run uv_bad/r1 failed:"))).toHaveLength(1);
  expect(lines.filter((l) => l.includes("could not be reaped ("))).toEqual([]);
  // Nothing of it is met again.
  expect(await scheduler.tick()).toMatchObject({ zombiesReaped: 0 });
  expect(lines.filter((l) => l.includes("dag run uv_bad/r1 failed:"))).toHaveLength(1);
});
