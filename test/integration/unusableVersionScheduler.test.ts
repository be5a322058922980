// A run pinned to a DAG version whose structure cannot be read (BATON_DAG_VERSION_UNUSABLE: here
// its stored structure is not JSON) must not stall the scheduler. Starting runs, timing runs out,
// releasing scheduled (dependsOnPast) tasks and timing out signals each loaded the versions of a
// whole batch first, so such a run failed that step, and the tick, every time: no other run
// started, timed out or moved on. Now the run is failed alone with the reason in its note (its
// tasks cannot be known, so nothing of it can go on), and the others proceed in the same tick.
import { randomBytes } from "node:crypto";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { startRuns } from "../../store/transitions/startRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
export const ok = dag({ id: "suv_ok", maxActiveRuns: 16 }, (t) => { t.task("only", async () => 1); });
export const start = dag({ id: "suv_start" }, (t) => { t.task("only", async () => 1); });
export const timeout = dag({ id: "suv_timeout", dagrunTimeout: "1h" }, (t) => {
  const a = t.task("a", async () => 1);
  t.task("b", { upstream: [a] }, async () => 2);
});
export const release = dag({ id: "suv_release" }, (t) => { t.task("a", { dependsOnPast: true }, async () => 1); });
export const signal = dag({ id: "suv_signal" }, (t) => {
  const wait = t.waitForSignal("wait", { signal: "go", queue: "suv_signal", timeout: "1h" });
  wait.then(t.task("after", async () => 1));
});
`);

const h = new Harness({ clock: systemClock, manualTicks: true, worker: false });
const lines: string[] = [];
const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });

beforeAll(async () => {
  await h.start({ "suv.ts": DAGS });
  await h.processor.scan();
});
afterAll(() => h.stop());

async function run(dagId: string, runId: string): Promise<{ state: string; note: string | null; tasks: Record<string, string> }> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id, state, note FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_run_id = ? ORDER BY task_id", [row!.id]);
  return { state: row!.state, note: row!.note, tasks: Object.fromEntries(tis.map((t) => [t.task_id, t.state])) };
}

/** Starts the queued runs as a scheduler would, with the versions still readable. */
async function startQueued(): Promise<void> {
  const cache = new VersionCache(h.db.pool);
  await startRuns(h.db, systemClock.now(), (v) => cache.shape(v));
}

/** The stored structure of `dagId`'s versions, made unreadable. */
async function corrupt(dagId: string): Promise<void> {
  await h.db.pool.query("UPDATE dag_version SET structure = '{not json' WHERE dag_id = ?", [dagId]);
}

/** A tick of a scheduler that has not read any version yet (the harness's caches them forever); fails if the tick fails. */
async function freshTick() {
  lines.length = 0;
  const scheduler = new Scheduler(h.db, h.clock, logger, { intervalMs: 100 });
  try {
    return await scheduler.tick();
  } finally {
    await scheduler.stop();
  }
}

function expectUnusableNote(note: string | null): void {
  expect(note).toContain("BATON_DAG_VERSION_UNUSABLE");
  expect(note).toContain("cannot be read: its stored structure is not JSON");
}

it("a queued run: failed at start with the reason in its note, the others start in the same tick", async () => {
  const bad = await h.trigger("suv_start");
  const ok = await h.trigger("suv_ok");
  await corrupt("suv_start");
  const report = await freshTick();
  expect(report.runsStarted).toBe(1);
  expect((await run("suv_ok", ok)).state).toBe("running");
  const failed = await run("suv_start", bad);
  expect(failed).toMatchObject({ state: "failed", tasks: {} });
  expectUnusableNote(failed.note);
  expect(lines.filter((l) => l.includes(`suv_start/${bad} failed`))).toHaveLength(1);
  // Not again at the next tick.
  await freshTick();
  expect(lines.filter((l) => l.includes("suv_start"))).toEqual([]);
});

it("a run past its dagrunTimeout: timed out without its version (no compensation), the others start", async () => {
  const bad = await h.trigger("suv_timeout");
  await startQueued();
  await h.db.pool.query("UPDATE dag_run SET timeout_at = ? WHERE dag_id = 'suv_timeout'", [new Date(Date.now() - 60_000)]);
  await corrupt("suv_timeout");
  const ok = await h.trigger("suv_ok");
  const report = await freshTick();
  expect(report).toMatchObject({ runsTimedOut: 1, runsStarted: 1 });
  expect((await run("suv_ok", ok)).state).toBe("running");
  const failed = await run("suv_timeout", bad);
  expect(failed).toMatchObject({ state: "failed", tasks: { a: "skipped", b: "skipped" } });
  expectUnusableNote(failed.note);
});

it("a run whose scheduled (dependsOnPast) task cannot be released: failed, the others start", async () => {
  const bad = await h.trigger("suv_release");
  await startQueued();
  expect((await run("suv_release", bad)).tasks).toEqual({ a: "scheduled" });
  await corrupt("suv_release");
  const ok = await h.trigger("suv_ok");
  const report = await freshTick();
  expect(report.runsStarted).toBe(1);
  expect((await run("suv_ok", ok)).state).toBe("running");
  const failed = await run("suv_release", bad);
  expect(failed).toMatchObject({ state: "failed", tasks: { a: "skipped" } });
  expectUnusableNote(failed.note);
});

it("a run whose signal wait timed out: failed, the others start", async () => {
  const bad = await h.trigger("suv_signal");
  await startQueued();
  // Its wait deferred by a worker, then past its timeout.
  const cache = new VersionCache(h.db.pool);
  const [wait] = await claimTasks(h.db, { now: systemClock.now(), limit: 1, queues: ["suv_signal"], hostname: "w", pid: 1, token: randomBytes(16).toString("hex") });
  await finishTries(h.db, systemClock.now(), [{ task: wait!, outcome: "deferred", endedAt: systemClock.now() }], (v) => cache.shape(v));
  await h.db.pool.query("UPDATE task_instance SET next_check_at = ? WHERE dag_id = 'suv_signal' AND task_id = 'wait'", [new Date(Date.now() - 60_000)]);
  expect((await run("suv_signal", bad)).tasks).toEqual({ after: "none", wait: "deferred" });
  await corrupt("suv_signal");
  const ok = await h.trigger("suv_ok");
  const report = await freshTick();
  expect(report.runsStarted).toBe(1);
  expect((await run("suv_ok", ok)).state).toBe("running");
  const failed = await run("suv_signal", bad);
  expect(failed).toMatchObject({ state: "failed", tasks: { after: "skipped", wait: "skipped" } });
  expectUnusableNote(failed.note);
});
