// A try reaped as a zombie (its worker died or froze) ends like a try its worker ended itself:
// its log says why, and the task's onRetry / onFailure run once — on a live worker, because the
// scheduler never runs user code. The dead worker is a claim made through the store by a token
// that goes silent (what `kill -9` leaves behind); the live workers are real ones.
import { randomBytes } from "node:crypto";
import { scratchDir } from "../helpers/scratch.ts";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { FakeClock } from "../../core/clock.ts";
import { taskLogPath } from "../../core/logPaths.ts";
import { Worker } from "../../executor/worker.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { claimTryCallbacks } from "../../store/transitions/tryCallbacks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const TIMEOUT = 30_000;
const clock = new FakeClock("2026-03-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false, taskHeartbeatTimeoutMs: TIMEOUT });

const DAGS = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
export default dag({ id: "zc", defaultArgs: {
  retries: 1,
  retryDelay: "10s",
  onRetry: (ctx, err) => { mark(ctx, "retry:" + ctx.runId + ":" + ctx.tryNumber + ":" + err.code); ctx.log.info("onRetry ran for try " + ctx.tryNumber); },
  onFailure: (ctx, err) => { mark(ctx, "failure:" + ctx.runId + ":" + ctx.tryNumber + ":" + err.code); ctx.log.info("onFailure ran for try " + ctx.tryNumber); },
} }, (t) => {
  t.task("a", async () => 1);
});
export const plain = dag({ id: "zc_plain" }, (t) => {
  t.task("a", async () => 1);
});
`);

let marks: string;
const workers: Worker[] = [];

const ghost = () => ({ queues: ["default"], hostname: "ghost-host", pid: 4242, token: randomBytes(16).toString("hex") });

/** A worker takes the try and dies: no heartbeat, no result. */
async function claimAndDie(dagId: string, runId: string): Promise<ClaimedTask> {
  const claimed = await claimTasks(h.db, { now: clock.now(), limit: 10, ...ghost() });
  const mine = claimed.find((c) => c.dagId === dagId && c.runId === runId);
  expect(mine).toBeDefined();
  return mine!;
}

async function reap(): Promise<void> {
  clock.advance(TIMEOUT + 1000);
  const tick = await h.scheduler.tick();
  expect(tick.zombiesReaped).toBeGreaterThan(0);
}

async function startWorker(): Promise<Worker> {
  const w = new Worker(h.db, clock, h.logger, { concurrency: 1, queues: ["default"], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, callbackPollMs: 50 });
  workers.push(w);
  w.start();
  return w;
}

async function owed(): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_callback");
  return Number(row!.n);
}

const lines = async () => (await readFile(marks, "utf8").catch(() => "")).split("\n").filter(Boolean);

beforeAll(async () => {
  marks = path.join(await scratchDir("baton-zc-"), "marks.txt");
  await h.start({ "zc.ts": DAGS });
  await h.run();
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(2000)));
  await h.stop();
});

describe("a try reaped as a zombie", () => {
  it("ends its log with why, after what the dead worker wrote, even with no log stored anywhere", async () => {
    await h.trigger("zc_plain", { runId: "p1", conf: { marks }, via: "store", tick: true });
    const dead = await claimAndDie("zc_plain", "p1");
    const heartbeatAt = clock.now();
    // The dead worker's try had spilled its log to its file (the API host shares the folder here).
    const file = taskLogPath(h.logsFolder, dead);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, "[2026-03-01T00:00:00.000Z] INFO - working on it\n");
    await reap();

    const log = await h.taskLog("zc_plain", "p1", "a", 1);
    expect(log).not.toBeNull();
    const [first, ...rest] = log!.trimEnd().split("\n");
    expect(first).toBe("[2026-03-01T00:00:00.000Z] INFO - working on it");
    expect(rest).toHaveLength(1);
    expect(rest[0]).toContain(`the worker ghost-host pid 4242 stopped heartbeating at ${heartbeatAt.toISOString()}`);
    expect(rest[0]).toContain("the try was marked failed by the scheduler (zombie");
    expect(rest[0]).toContain("BATON_TASK_ZOMBIE");
    // No callback: nothing is owed for a task that has none.
    expect(await owed()).toBe(0);
  });

  it("runs onRetry, then onFailure, once each on a live worker, appended to the try's log", async () => {
    await h.trigger("zc", { runId: "r1", conf: { marks }, via: "store", tick: true });
    const first = await claimAndDie("zc", "r1");
    await reap();
    let log = await h.taskLog("zc", "r1", "a", 1);
    expect(log).toContain("the worker ghost-host pid 4242 stopped heartbeating at");
    expect(log).toContain("the try was marked up_for_retry by the scheduler (zombie");
    // Owed durably until a worker runs it: none runs yet.
    expect(await owed()).toBe(1);
    expect(await lines()).toEqual([]);

    // Two live workers: the callback runs on one of them, once.
    await startWorker();
    await startWorker();
    await waitFor("onRetry to run", async () => (await owed()) === 0 && (await lines()).length > 0);
    expect(await lines()).toEqual(["retry:r1:1:BATON_TASK_ZOMBIE"]);
    log = await h.taskLog("zc", "r1", "a", 1);
    const reason = log!.indexOf("stopped heartbeating");
    expect(reason).toBeGreaterThanOrEqual(0);
    expect(log!.indexOf("onRetry ran for try 1")).toBeGreaterThan(reason);
    expect(log!.match(/onRetry ran/g)).toHaveLength(1);

    // Stop the live workers before the retry is queued, so the dead worker's stand-in claims it.
    await Promise.all(workers.splice(0).map((w) => w.stop(2000)));
    clock.advance(10_000);
    await h.scheduler.tick();
    const second = await claimAndDie("zc", "r1");
    expect(second).toMatchObject({ id: first.id, tryNumber: 2 });
    await reap();
    expect(await owed()).toBe(1);
    log = await h.taskLog("zc", "r1", "a", 2);
    expect(log).toContain("the try was marked failed by the scheduler (zombie");

    await startWorker();
    await waitFor("onFailure to run", async () => (await owed()) === 0 && (await lines()).length > 1);
    expect(await lines()).toEqual(["retry:r1:1:BATON_TASK_ZOMBIE", "failure:r1:2:BATON_TASK_ZOMBIE"]);
    expect(await h.taskLog("zc", "r1", "a", 2)).toContain("onFailure ran for try 2");
    // Try 1's log is left as it was.
    expect((await h.taskLog("zc", "r1", "a", 1))!.match(/onRetry ran/g)).toHaveLength(1);
    await Promise.all(workers.splice(0).map((w) => w.stop(2000)));
  });

  it("keeps an owed callback through a worker that died running it, and another runs it after the lease", async () => {
    await writeFile(marks, "");
    await h.trigger("zc", { runId: "r2", conf: { marks }, via: "store", tick: true });
    await claimAndDie("zc", "r2");
    await reap();
    // A worker claims the callback and dies before running it.
    const taken = await claimTryCallbacks(h.db, clock.now(), ["default"], 10, 150_000);
    expect(taken).toHaveLength(1);
    await startWorker();
    // Within the lease, nobody else takes it.
    expect(await claimTryCallbacks(h.db, clock.now(), ["default"], 10, 150_000)).toEqual([]);
    expect(await owed()).toBe(1);
    clock.advance(150_001);
    await waitFor("the callback to run after the lease", async () => (await owed()) === 0 && (await lines()).length > 0);
    expect(await lines()).toEqual(["retry:r2:1:BATON_TASK_ZOMBIE"]);
    await Promise.all(workers.splice(0).map((w) => w.stop(2000)));
  });
});
