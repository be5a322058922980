// Since migration 0019, ix_ti_retry is keyed on next_retry_at alone and ix_ti_deferred on
// next_check_at alone: both rely on those columns being set only while a task waits in
// up_for_retry / up_for_reschedule (next_retry_at) or deferred (next_check_at, with deferred_on).
// Each transition that moves a waiting task on is driven here, on a fake clock against real
// MariaDB, and must leave the columns NULL. No task code runs: a ghost worker claims tries
// through the store (claimTasks) and reports their outcomes (finishTries).
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { cancelRun } from "../../store/transitions/cancelRun.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { clearTasks } from "../../store/transitions/clearTasks.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { finishTries, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { markRunSuccess } from "../../store/transitions/markRunSuccess.ts";
import { queueRetries } from "../../store/transitions/queueRetries.ts";
import { setTaskState } from "../../store/transitions/setTaskState.ts";
import { timeoutRuns } from "../../store/transitions/timeoutRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-05-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
let versions: VersionCache;
const shapeOf = (hash: string) => versions.shape(hash);

// Three root tasks that each end up waiting: a retry, a reschedule-mode poke, a signal with a timeout.
const WAITERS = `(t) => {
  t.task("retry", { retries: 3, retryDelay: "10s" }, async () => { throw new Error("never runs"); });
  t.sensor("poke", { mode: "reschedule", pokeInterval: "1m", timeout: "1d", poke: async () => false });
  t.waitForSignal("wait", { signal: "go", timeout: "1d" });
}`;

const DAGS = dagSource(`
export const waiters = dag({ id: "stale", maxActiveRuns: 50, maxActiveTasks: 100, dagrunTimeout: "2h" }, ${WAITERS});
export const backfilled = dag({ id: "stale_bf", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true, maxActiveTasks: 100 }, ${WAITERS});
export const saga = dag({ id: "stale_saga", maxActiveRuns: 50, maxActiveTasks: 100 }, (t) => {
  const a = t.task("a", { retries: 0, compensate: async () => undefined }, async () => 1);
  a.then(t.task("b", { retries: 0 }, async () => { throw new Error("b fails"); }));
});
`);

const WAITING = { retry: "up_for_retry", poke: "up_for_reschedule", wait: "deferred" };

async function claimOf(runId: string, taskIds: string[]): Promise<Map<string, ClaimedTask>> {
  const claimed = await claimTasks(h.db, { now: clock.now(), limit: 50, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") });
  const mine = new Map(claimed.filter((c) => c.runId === runId).map((c) => [c.taskId, c]));
  expect([...mine.keys()].sort()).toEqual([...taskIds].sort());
  return mine;
}

const ended = (task: ClaimedTask, outcome: FinishedTry["outcome"], more: Partial<FinishedTry> = {}): FinishedTry => ({
  task,
  outcome,
  endedAt: clock.now(),
  ...(outcome === "failed" ? { error: { name: "Error", message: `${task.taskId} failed for the test` } } : {}),
  ...more,
});

/** Each task of the run: state, then next_retry_at, next_check_at, deferred_on (set: true). */
async function timeColumns(dagId: string, runId: string): Promise<Record<string, [string, boolean, boolean, boolean]>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT task_id, state, next_retry_at, next_check_at, deferred_on FROM task_instance WHERE dag_id = ? AND run_id = ?",
    [dagId, runId],
  );
  return Object.fromEntries(rows.map((r) => [r.task_id, [r.state, r.next_retry_at !== null, r.next_check_at !== null, r.deferred_on !== null]]));
}

const cleared = (states: Record<string, string>) => Object.fromEntries(Object.entries(states).map(([id, s]) => [id, [s, false, false, false]]));

/** Claims the run's three waiters and parks them: up_for_retry, up_for_reschedule, deferred. */
async function park(dagId: string, runId: string): Promise<void> {
  const tries = await claimOf(runId, ["retry", "poke", "wait"]);
  await finishTries(
    h.db,
    clock.now(),
    [ended(tries.get("retry")!, "failed"), ended(tries.get("poke")!, "reschedule", { rescheduleInMs: 60_000 }), ended(tries.get("wait")!, "deferred")],
    shapeOf,
  );
  expect(await timeColumns(dagId, runId)).toEqual({
    retry: ["up_for_retry", true, false, false],
    poke: ["up_for_reschedule", true, false, false],
    wait: ["deferred", false, true, true],
  });
}

async function parkedRun(runId: string): Promise<void> {
  await createDagRun(h.db, clock.now(), { dagId: "stale", runId, runType: "manual", logicalDate: clock.now(), conf: {} });
  await h.scheduler.tick();
  await park("stale", runId);
}

beforeAll(async () => {
  await h.start({ "stale.ts": DAGS });
  await h.run();
  versions = new VersionCache(h.db.pool);
});
afterAll(() => h.stop());

afterEach(async () => {
  // Whatever a test did, no row anywhere keeps a time its state does not wait on.
  const [stale] = await h.db.pool.query<RowDataPacket[]>(
    `SELECT dag_id, run_id, task_id, state FROM task_instance
      WHERE (next_retry_at IS NOT NULL AND state NOT IN ('up_for_retry', 'up_for_reschedule'))
         OR ((next_check_at IS NOT NULL OR deferred_on IS NOT NULL) AND state <> 'deferred')`,
  );
  expect(stale).toEqual([]);
});

describe("a task leaving a waiting state drops the times of that state", () => {
  it("queueRetries: up_for_retry and up_for_reschedule → queued; a sensor keeps its first poke and count", async () => {
    await parkedRun("q1");
    clock.advance(120_000);
    await queueRetries(h.db, clock.now());
    expect(await timeColumns("stale", "q1")).toEqual({ ...cleared({ retry: "queued", poke: "queued" }), wait: ["deferred", false, true, true] });
    const [[poke]] = await h.db.pool.query<RowDataPacket[]>("SELECT first_poke_at, poke_count FROM task_instance WHERE run_id = 'q1' AND task_id = 'poke'");
    expect(poke!.first_poke_at).not.toBeNull();
    expect(Number(poke!.poke_count)).toBe(1);
    // Claimed, they wait no more either; the deferred one ends with the run.
    await claimOf("q1", ["retry", "poke"]);
    await cancelRun(h.db, clock.now(), "stale", "q1");
  });

  it("run timeout (timeoutRuns → endRuns): every waiter is skipped", async () => {
    await parkedRun("t1");
    const result = await timeoutRuns(h.db, new Date(clock.now().getTime() + 3 * 3_600_000), shapeOf);
    expect(result.runs.map((r) => r.runId)).toContain("t1");
    expect(await timeColumns("stale", "t1")).toEqual(cleared({ retry: "skipped", poke: "skipped", wait: "skipped" }));
  });

  it("cancel (cancelRun → endRuns): every waiter is skipped", async () => {
    await parkedRun("c1");
    await cancelRun(h.db, clock.now(), "stale", "c1");
    expect(await timeColumns("stale", "c1")).toEqual(cleared({ retry: "skipped", poke: "skipped", wait: "skipped" }));
  });

  it("forced backfill cancel (controlBackfill → endRuns): every waiter is skipped", async () => {
    const created = await h.app.inject({ method: "POST", url: "/api/v1/backfills", payload: { dag_id: "stale_bf", from_date: "2026-02-01", to_date: "2026-02-01" } });
    expect(created.statusCode).toBe(200);
    const id = created.json().id as number;
    await h.scheduler.tick();
    await h.scheduler.tick();
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id, state FROM dag_run WHERE backfill_id = ?", [id]);
    expect(run!.state).toBe("running");
    await park("stale_bf", run!.run_id);
    const res = await h.app.inject({ method: "POST", url: `/api/v1/backfills/${id}/cancel`, payload: { force: true } });
    expect(res.json()).toMatchObject({ state: "cancelled" });
    expect(await timeColumns("stale_bf", run!.run_id)).toEqual(cleared({ retry: "skipped", poke: "skipped", wait: "skipped" }));
  });

  it("clear: waiters go back to none and, ready at once, are queued; a sensor's first poke and count go too", async () => {
    await parkedRun("x1");
    const result = await clearTasks(h.db, clock.now(), { dagId: "stale", runId: "x1", taskIds: ["retry", "poke", "wait"] }, shapeOf);
    expect(result.cleared.map((c) => [c.taskId, c.previousState]).sort()).toEqual(Object.entries(WAITING).sort());
    expect(await timeColumns("stale", "x1")).toEqual(cleared({ retry: "queued", poke: "queued", wait: "queued" }));
    // The sensor starts a new timeline: its timeout counts from its next poke.
    const [[poke]] = await h.db.pool.query<RowDataPacket[]>("SELECT first_poke_at, poke_count FROM task_instance WHERE run_id = 'x1' AND task_id = 'poke'");
    expect(poke).toEqual({ first_poke_at: null, poke_count: 0 });
    const tries = await claimOf("x1", ["retry", "poke", "wait"]);
    expect(tries.get("poke")).toMatchObject({ firstPokeAt: null, pokeCount: 0 });
    await cancelRun(h.db, clock.now(), "stale", "x1");
  });

  it("mark the run success (markRunSuccess)", async () => {
    await parkedRun("s1");
    await markRunSuccess(h.db, clock.now(), "stale", "s1");
    expect(await timeColumns("stale", "s1")).toEqual(cleared({ retry: "success", poke: "success", wait: "success" }));
  });

  it("mark tasks skipped (setTaskState)", async () => {
    await parkedRun("m1");
    const result = await setTaskState(h.db, clock.now(), { dagId: "stale", runId: "m1", taskIds: ["retry", "poke", "wait"], newState: "skipped" }, shapeOf);
    expect(result.marked.map((c) => [c.taskId, c.previousState]).sort()).toEqual(Object.entries(WAITING).sort());
    expect(await timeColumns("stale", "m1")).toEqual(cleared({ retry: "skipped", poke: "skipped", wait: "skipped" }));
  });
});

describe("clearing a compensated run", () => {
  it("deletes the stored logs and pokes of the compensation task instances it drops", async () => {
    await createDagRun(h.db, clock.now(), { dagId: "stale_saga", runId: "g1", runType: "manual", logicalDate: clock.now(), conf: {} });
    await h.scheduler.tick();
    const a = (await claimOf("g1", ["a"])).get("a")!;
    await finishTries(h.db, clock.now(), [ended(a, "success", { log: "a ran\n" })], shapeOf);
    const b = (await claimOf("g1", ["b"])).get("b")!;
    await finishTries(h.db, clock.now(), [ended(b, "failed", { error: { name: "Error", message: "b fails", nonRetryable: true }, log: "b failed\n" })], shapeOf);
    // The compensation pokes once (a task_reschedule row), then succeeds; both write its stored log.
    const undo = (await claimOf("g1", ["a__compensate"])).get("a__compensate")!;
    await finishTries(h.db, clock.now(), [ended(undo, "reschedule", { rescheduleInMs: 1000, log: "not yet\n" })], shapeOf);
    clock.advance(2000);
    await queueRetries(h.db, clock.now());
    const again = (await claimOf("g1", ["a__compensate"])).get("a__compensate")!;
    await finishTries(h.db, clock.now(), [ended(again, "success", { log: "undone\n" })], shapeOf);
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, compensation FROM dag_run WHERE dag_id = 'stale_saga' AND run_id = 'g1'");
    expect(run).toMatchObject({ state: "failed", compensation: "compensated" });

    const rowsOf = async (id: number) => {
      const [[logs]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_log WHERE task_instance_id = ?", [id]);
      const [[pokes]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_reschedule WHERE task_instance_id = ?", [id]);
      return [Number(logs!.n), Number(pokes!.n)];
    };
    expect(await rowsOf(undo.id)).toEqual([1, 1]);
    await clearTasks(h.db, clock.now(), { dagId: "stale_saga", runId: "g1", taskIds: ["a", "b"] }, shapeOf);
    const [gone] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE id = ?", [undo.id]);
    expect(gone).toEqual([]);
    expect(await rowsOf(undo.id)).toEqual([0, 0]);
    // The cleared tasks keep the logs of their earlier tries.
    expect(await rowsOf(a.id)).toEqual([1, 0]);
  });
});
