// Zombie reaping, worker observability and HA schedulers, on a fake clock against real
// MariaDB. "Workers" here are claims made through the store (claimTasks) by a token that then
// goes silent, exactly what a worker killed with -9 leaves behind; no task code runs.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import { openDb, type RowDataPacket } from "../../store/db.ts";
import { deleteStaleProcesses } from "../../store/processes.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { beatProcess, beatTries } from "../../store/transitions/heartbeat.ts";
import { queueRetries } from "../../store/transitions/queueRetries.ts";
import { reapZombies } from "../../store/transitions/reapZombies.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const TIMEOUT = 30_000;
const clock = new FakeClock("2026-03-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false, taskHeartbeatTimeoutMs: TIMEOUT });
let versions: VersionCache;
const shapeOf = (hash: string) => versions.shape(hash);

const DAGS = dagSource(`
export default dag({ id: "z_retry", maxActiveRuns: 50, maxActiveTasks: 100, defaultArgs: { retries: 1, retryDelay: "10s" } }, (t) => {
  const a = t.task("a", async () => 1);
  t.task("b", { upstream: [a] }, async () => 2);
});
export const noRetry = dag({ id: "z_fail" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", { upstream: [a] }, async () => 2);
  t.task("c", { upstream: [b] }, async () => 3);
});
export const wide = dag({ id: "z_wide", maxActiveRuns: 5, maxActiveTasks: 100 }, (t) => {
  for (let i = 0; i < 6; i++) t.task("w" + i, { queue: "ha" }, async () => i);
});
`);

const token = () => randomBytes(16).toString("hex");
const ghost = (queues = ["default"]) => ({ queues, hostname: "ghost-host", pid: 4242, token: token() });

async function claimAs(who: ReturnType<typeof ghost>, limit = 100): Promise<ClaimedTask[]> {
  return claimTasks(h.db, { now: clock.now(), limit, ...who });
}

async function ti(dagId: string, runId: string, taskId: string): Promise<RowDataPacket> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?", [dagId, runId, taskId]);
  return row!;
}

async function occupied(): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'default_pool'");
  return Number(row!.occupied_slots);
}

beforeAll(async () => {
  await h.start({ "zombies.ts": DAGS });
  await h.run();
  versions = new VersionCache(h.db.pool);
});
afterAll(() => h.stop());

describe("reapZombies", () => {
  it("hands a try whose heartbeat is older than the timeout to its retry policy, releases its slot, and fences the dead worker", async () => {
    await h.trigger("z_retry", { runId: "r1", via: "store" });
    await h.scheduler.tick();
    const dead = ghost();
    const [claimed] = await claimAs(dead);
    expect(claimed).toMatchObject({ dagId: "z_retry", runId: "r1", taskId: "a", tryNumber: 1 });
    expect(await occupied()).toBe(1);

    // Just inside the timeout: alive.
    clock.advance(TIMEOUT - 1000);
    expect((await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf)).reaped).toEqual([]);
    clock.advance(2000);
    const reapedAt = clock.now();
    const { reaped, runsFinished } = await reapZombies(h.db, reapedAt, TIMEOUT, shapeOf);
    expect(reaped).toEqual([expect.objectContaining({ id: claimed!.id, tryNumber: 1, state: "up_for_retry", hostname: "ghost-host", pid: 4242 })]);
    expect(runsFinished).toEqual([]);

    const row = await ti("z_retry", "r1", "a");
    expect(row.state).toBe("up_for_retry");
    expect(row.heartbeat_at).toBeNull();
    expect(row.next_retry_at.getTime()).toBe(reapedAt.getTime() + 10_000);
    const error = JSON.parse(row.error);
    expect(error).toMatchObject({ name: "TaskZombieError", code: "BATON_TASK_ZOMBIE" });
    expect(error.message).toContain("ghost-host pid 4242");
    expect(error.message).toContain("will be retried");
    expect(await occupied()).toBe(0);
    expect(await h.runState("z_retry", "r1")).toBe("running");

    // The dead worker wakes up and reports success: fenced, nothing recorded.
    const late = await finishTries(h.db, clock.now(), [{ task: claimed!, outcome: "success", output: 1, endedAt: clock.now() }], shapeOf);
    expect(late.fenced).toEqual([claimed!.id]);
    expect(late.finished).toEqual([]);
    expect((await ti("z_retry", "r1", "a")).state).toBe("up_for_retry");
    expect(await occupied()).toBe(0);

    // The retry delay passes: queued again, claimed as try 2, and its success counts.
    clock.advance(10_000);
    await h.scheduler.tick();
    expect((await ti("z_retry", "r1", "a")).state).toBe("queued");
    const alive = ghost();
    const [second] = await claimAs(alive);
    expect(second).toMatchObject({ id: claimed!.id, tryNumber: 2 });
    const done = await finishTries(h.db, clock.now(), [{ task: second!, outcome: "success", output: 1, endedAt: clock.now() }], shapeOf);
    expect(done.finished).toEqual([second!.id]);
    const [b] = await claimAs(alive);
    await finishTries(h.db, clock.now(), [{ task: b!, outcome: "success", output: 2, endedAt: clock.now() }], shapeOf);
    expect(await h.runState("z_retry", "r1")).toBe("success");
    expect(await occupied()).toBe(0);
  });

  it("fails a zombie with no tries left and settles it: downstream tasks upstream_failed, the run failed", async () => {
    await h.trigger("z_fail", { runId: "f1", via: "store" });
    await h.scheduler.tick();
    const [claimed] = await claimAs(ghost());
    expect(claimed).toMatchObject({ dagId: "z_fail", taskId: "a" });
    clock.advance(TIMEOUT + 1);
    const { reaped, runsFinished } = await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf);
    expect(reaped.map((z) => [z.taskId, z.state])).toEqual([["a", "failed"]]);
    expect(runsFinished).toEqual([{ dagRunId: claimed!.dagRunId, state: "failed" }]);
    const a = await ti("z_fail", "f1", "a");
    expect(a.state).toBe("failed");
    expect(JSON.parse(a.error)).toMatchObject({ code: "BATON_TASK_ZOMBIE" });
    expect(JSON.parse(a.error).message).toContain("no tries left");
    expect((await ti("z_fail", "f1", "b")).state).toBe("upstream_failed");
    expect((await ti("z_fail", "f1", "c")).state).toBe("upstream_failed");
    expect(await h.runState("z_fail", "f1")).toBe("failed");
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT unfinished_tasks FROM dag_run WHERE id = ?", [claimed!.dagRunId]);
    expect(run!.unfinished_tasks).toBe(0);
    expect(await occupied()).toBe(0);
  });

  it("leaves a try alone while its worker heartbeats", async () => {
    await h.trigger("z_retry", { runId: "beat", via: "store" });
    await h.scheduler.tick();
    const worker = ghost();
    const [claimed] = await claimAs(worker);
    clock.advance(20_000);
    expect(await beatTries(h.db, clock.now(), [{ id: claimed!.id, tryNumber: 1 }], worker.token)).toEqual(new Map([[claimed!.id, 1]]));
    clock.advance(20_000);
    expect((await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf)).reaped).toEqual([]);
    clock.advance(15_000);
    expect((await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf)).reaped.map((z) => z.id)).toEqual([claimed!.id]);
    // Its next heartbeat tells the worker the try is no longer its own.
    expect(await beatTries(h.db, clock.now(), [{ id: claimed!.id, tryNumber: 1 }], worker.token)).toEqual(new Map());
    // Leave nothing to retry behind for the tests that follow.
    await h.db.pool.query("UPDATE task_instance SET state = 'removed' WHERE dag_id = 'z_retry' AND run_id = 'beat' AND state <> 'success'");
  });

  it("skips zombies another scheduler holds instead of waiting, and two schedulers reap each zombie once", async () => {
    for (let i = 0; i < 3; i++) await h.trigger("z_wide", { runId: `skip${i}`, via: "store" });
    await h.scheduler.tick();
    const claimed = await claimAs(ghost(["ha"]));
    expect(claimed).toHaveLength(18);
    clock.advance(TIMEOUT + 1);

    // Another transaction holds one zombie row: the reaper takes the others without waiting.
    const held = await h.db.pool.getConnection();
    try {
      await held.query("START TRANSACTION");
      await held.query("SELECT id FROM task_instance WHERE id = ? FOR UPDATE", [claimed[0]!.id]);
      const started = Date.now();
      const first = await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf, 10);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(first.reaped).toHaveLength(10);
      expect(first.reaped.map((z) => z.id)).not.toContain(claimed[0]!.id);
    } finally {
      await held.query("ROLLBACK");
      held.release();
    }

    // Two schedulers on their own connections at once: every zombie reaped exactly once.
    const other = openDb(h.db.url, { connectionLimit: 2 });
    try {
      const results = await Promise.all([reapZombies(h.db, clock.now(), TIMEOUT, shapeOf, 3), reapZombies(other, clock.now(), TIMEOUT, shapeOf, 3)]);
      const again = await Promise.all([reapZombies(h.db, clock.now(), TIMEOUT, shapeOf), reapZombies(other, clock.now(), TIMEOUT, shapeOf)]);
      const ids = [...results, ...again].flatMap((r) => r.reaped.map((z) => z.id));
      expect(ids).toHaveLength(8);
      expect(new Set(ids).size).toBe(8);
    } finally {
      await other.close();
    }
    const [[left]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE state = 'running'");
    expect(left!.n).toBe(0);
    expect(await occupied()).toBe(0);
    // z_wide has no retries: every run failed, each counted down to zero exactly once.
    const [runs] = await h.db.pool.query<RowDataPacket[]>("SELECT state, unfinished_tasks FROM dag_run WHERE dag_id = 'z_wide' AND run_id LIKE 'skip%'");
    expect(runs.map((r) => [r.state, r.unfinished_tasks])).toEqual([["failed", 0], ["failed", 0], ["failed", 0]]);
  });

  it("finds zombies through ix_ti_zombie, without a filesort", async () => {
    const [[plan]] = await h.db.pool.query<RowDataPacket[]>(
      "EXPLAIN SELECT id FROM task_instance WHERE state = 'running' AND heartbeat_at < ? ORDER BY heartbeat_at LIMIT 100 FOR UPDATE SKIP LOCKED",
      [clock.now()],
    );
    expect(plan!.key).toBe("ix_ti_zombie");
    expect(String(plan!.Extra)).not.toMatch(/filesort/);
  });
});

describe("after the database was unreachable", () => {
  it("the scheduler gives workers one zombie timeout to heartbeat before it reaps", async () => {
    await h.trigger("z_retry", { runId: "outage", via: "store" });
    await h.scheduler.tick();
    const worker = ghost();
    const [claimed] = await claimAs(worker);
    // The database goes away (a table the tick reads vanishes) for longer than the timeout.
    await h.db.pool.query("RENAME TABLE dag_run TO dag_run_away");
    try {
      await expect(h.scheduler.tick()).rejects.toThrow();
      clock.advance(TIMEOUT + 10_000);
      await expect(h.scheduler.tick()).rejects.toThrow();
    } finally {
      await h.db.pool.query("RENAME TABLE dag_run_away TO dag_run");
    }
    // Back: the try's heartbeat is older than the timeout, yet it is not reaped at once.
    expect((await h.scheduler.tick()).zombiesReaped).toBe(0);
    expect((await ti("z_retry", "outage", "a")).state).toBe("running");
    // A worker that heartbeats meanwhile keeps its try.
    clock.advance(5_000);
    expect(await beatTries(h.db, clock.now(), [{ id: claimed!.id, tryNumber: 1 }], worker.token)).toEqual(new Map([[claimed!.id, 1]]));
    clock.advance(TIMEOUT - 4_000);
    expect((await h.scheduler.tick()).zombiesReaped).toBe(0);
    // One that does not is reaped once the grace is over.
    clock.advance(TIMEOUT);
    expect((await h.scheduler.tick()).zombiesReaped).toBe(1);
    expect((await ti("z_retry", "outage", "a")).state).toBe("up_for_retry");
    await h.db.pool.query("UPDATE task_instance SET state = 'removed' WHERE dag_id = 'z_retry' AND run_id = 'outage' AND state <> 'success'");
  });
});

describe("HA schedulers", () => {
  it("two schedulers ticking at once start each run once, within maxActiveRuns, and queue each retry once", async () => {
    const second = openDb(h.db.url, { connectionLimit: 4 });
    const other = new Scheduler(second, clock, h.logger, { intervalMs: 100, taskHeartbeatTimeoutMs: TIMEOUT });
    try {
      for (let i = 0; i < 20; i++) await h.trigger("z_wide", { runId: `ha${i}`, via: "store" });
      const ticks = await Promise.all([h.scheduler.tick(), other.tick(), h.scheduler.tick(), other.tick()]);
      expect(ticks.reduce((n, t) => n + t.runsStarted, 0)).toBe(5);
      expect(ticks.reduce((n, t) => n + t.tasksQueued, 0)).toBe(30);
      const [counts] = await h.db.pool.query<RowDataPacket[]>(
        `SELECT r.run_id, r.state, COUNT(ti.id) AS n, SUM(ti.state = 'queued') AS queued
           FROM dag_run r LEFT JOIN task_instance ti ON ti.dag_run_id = r.id
          WHERE r.dag_id = 'z_wide' AND r.run_id LIKE 'ha%' GROUP BY r.id`,
      );
      const running = counts.filter((c) => c.state === "running");
      expect(running).toHaveLength(5);
      for (const c of running) expect([Number(c.n), Number(c.queued)]).toEqual([6, 6]);
      expect(counts.filter((c) => c.state === "queued").every((c) => Number(c.n) === 0)).toBe(true);

      // Zombies of the running runs: both schedulers reap and re-queue each one once.
      const zombies = await claimAs(ghost(["ha"]));
      expect(zombies).toHaveLength(30);
      clock.advance(TIMEOUT + 1);
      const reaped = await Promise.all([h.scheduler.tick(), other.tick()]);
      expect(reaped.reduce((n, t) => n + t.zombiesReaped, 0)).toBe(30);
      // z_wide has no retries: the five runs failed, and five more started in their place.
      const [states] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT state, COUNT(*) AS n FROM dag_run WHERE dag_id = 'z_wide' AND run_id LIKE 'ha%' GROUP BY state ORDER BY state",
      );
      expect(Object.fromEntries(states.map((s) => [s.state, Number(s.n)]))).toMatchObject({ failed: 5, running: 5, queued: 10 });
    } finally {
      await other.stop();
      await second.close();
    }
  });

  it("queueRetries from two schedulers at once queues each due retry exactly once", async () => {
    for (let i = 0; i < 12; i++) await h.trigger("z_retry", { runId: `qr${i}`, via: "store" });
    await h.scheduler.tick();
    const claimed = await claimAs(ghost());
    expect(claimed).toHaveLength(12);
    clock.advance(TIMEOUT + 1);
    expect((await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf)).reaped).toHaveLength(12);
    clock.advance(10_000);
    const second = openDb(h.db.url, { connectionLimit: 2 });
    try {
      const counts = await Promise.all([queueRetries(h.db, clock.now(), 5), queueRetries(second, clock.now(), 5), queueRetries(h.db, clock.now()), queueRetries(second, clock.now())]);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(12);
    } finally {
      await second.close();
    }
    const [[queued]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'z_retry' AND run_id LIKE 'qr%' AND state = 'queued'");
    expect(queued!.n).toBe(12);
    // Leave nothing claimable behind for the tests that follow.
    await h.db.pool.query("UPDATE task_instance SET state = 'removed' WHERE dag_id = 'z_retry' AND run_id LIKE 'qr%' AND state IN ('queued', 'none')");
  });
});

describe("GET /api/v1/workers and /api/v1/health", () => {
  it("lists workers from their heartbeats with alive flags, reports liveness in health, and old rows are cleaned up", async () => {
    await h.db.pool.query("DELETE FROM baton_process WHERE kind = 'worker'");
    const now = clock.now();
    const startedAt = new Date(now.getTime() - 60_000);
    await beatProcess(h.db, now, { id: "a".repeat(32), kind: "worker", startedAt, info: { queues: ["default", "gpu"], concurrency: 4, running: 3, hostname: "box-1" } });
    await beatProcess(h.db, new Date(now.getTime() - 45_000), { id: "b".repeat(32), kind: "worker", startedAt, info: { queues: ["default"], concurrency: 2, running: 0 } });
    await beatProcess(h.db, new Date(now.getTime() - 2 * 3_600_000), { id: "c".repeat(32), kind: "worker", startedAt, info: null });

    const res = await h.app.inject({ method: "GET", url: "/api/v1/workers" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.total_entries).toBe(3);
    expect(body.workers[0]).toEqual({
      worker_id: "a".repeat(32),
      hostname: "box-1",
      pid: process.pid,
      queues: ["default", "gpu"],
      concurrency: 4,
      running: 3,
      started_at: startedAt.toISOString(),
      last_heartbeat: now.toISOString(),
      alive: true,
    });
    expect(body.workers.map((w: { worker_id: string; alive: boolean }) => [w.worker_id[0], w.alive])).toEqual([["a", true], ["b", false], ["c", false]]);
    expect(body.workers[2]).toMatchObject({ queues: [], concurrency: null, running: null });
    const page = await h.app.inject({ method: "GET", url: "/api/v1/workers?limit=1&offset=1" });
    expect(page.json().workers.map((w: { worker_id: string }) => w.worker_id)).toEqual(["b".repeat(32)]);
    expect(page.json().total_entries).toBe(3);

    const health = (await h.app.inject({ method: "GET", url: "/api/v1/health" })).json();
    expect(health.metadatabase).toEqual({ status: "healthy" });
    expect(health.scheduler).toBeDefined();
    expect(health.workers).toEqual({ status: "healthy", alive: 1, latest_worker_heartbeat: now.toISOString() });

    expect(await deleteStaleProcesses(h.db.pool, new Date(now.getTime() - 3_600_000))).toBe(1);
    expect((await h.app.inject({ method: "GET", url: "/api/v1/workers" })).json().total_entries).toBe(2);
    await h.db.pool.query("DELETE FROM baton_process WHERE kind = 'worker'");
    const none = (await h.app.inject({ method: "GET", url: "/api/v1/health" })).json();
    expect(none.workers).toEqual({ status: "unhealthy", alive: 0, latest_worker_heartbeat: null });
  });
});
