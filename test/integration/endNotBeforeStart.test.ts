// A row's start_date may be written with another host's clock (a worker's claim, another
// scheduler's startRuns), ahead of the clock of the process that ends it. Every statement ending a
// task instance or a run "now" records an end no earlier than its start, so no end comes before its
// start and no duration is negative (the finish did; the marks, cancels, time-outs, the reaper and
// the signal time-out wrote their own now).
import { randomBytes } from "node:crypto";
import { systemClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { recordedResults } from "../../store/queries/unknownCommits.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { reapZombies } from "../../store/transitions/reapZombies.ts";
import { timeoutDeferred } from "../../store/transitions/signals.ts";
import { timeoutRuns } from "../../store/transitions/timeoutRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ clock: systemClock, manualTicks: true, worker: false });
const HOUR = 3_600_000;

beforeAll(async () => {
  await h.start({
    "skew.ts": dagSource(`
export const skew = dag({ id: "skew", maxActiveRuns: 16, dagrunTimeout: "1d" }, (t) => {
  t.task("a", async () => 1).then(t.task("b", async () => 2));
});
export const wait = dag({ id: "skew_wait", maxActiveRuns: 16 }, (t) => {
  t.waitForSignal("w", { signal: "go", timeout: "1h" });
});
export const saga = dag({ id: "skew_saga", maxActiveRuns: 16 }, (t) => {
  t.task("a", { compensate: async () => {} }, async () => 1).then(t.task("b", async () => 2));
});
`),
  });
  await h.processor.scan();
});
afterAll(() => h.stop());

const versions = () => {
  const cache = new VersionCache(h.db.pool);
  return (hash: string) => cache.shape(hash);
};

/** A run of `dagId` started, its first task claimed by a worker, and its start_dates an hour ahead of this clock. */
async function runningAhead(dagId: string): Promise<{ runId: string; claimed: ClaimedTask }> {
  const runId = `r_${randomBytes(4).toString("hex")}`;
  expect((await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: { dag_run_id: runId } })).statusCode).toBe(200);
  await h.scheduler.tick();
  const [claimed] = await claimTasks(h.db, { now: systemClock.now(), limit: 1, queues: ["default"], hostname: "ahead", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed).toMatchObject({ dagId, runId });
  const ahead = new Date(systemClock.now().getTime() + HOUR);
  await h.db.pool.query("UPDATE task_instance SET start_date = ? WHERE id = ?", [ahead, claimed!.id]);
  await h.db.pool.query("UPDATE dag_run SET start_date = ? WHERE dag_id = ? AND run_id = ?", [ahead, dagId, runId]);
  return { runId, claimed: claimed! };
}

/** The run's and its task instances' times, once ended. */
async function times(dagId: string, runId: string) {
  const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT id, state, start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, start_date, end_date, duration FROM task_instance WHERE dag_run_id = ? ORDER BY task_id", [
    run!.id,
  ]);
  return { run: run!, tis };
}

/** Every ended row ends no earlier than it started, with a duration ≥ 0 where there is one. */
function expectNoEndBeforeStart(t: Awaited<ReturnType<typeof times>>, runState: string): void {
  expect(t.run.state).toBe(runState);
  expect(t.run.end_date).toBeInstanceOf(Date);
  expect(t.run.end_date.getTime()).toBeGreaterThanOrEqual(t.run.start_date.getTime());
  for (const ti of t.tis) {
    expect({ task: ti.task_id, ended: ti.end_date instanceof Date }).toEqual({ task: ti.task_id, ended: true });
    expect({ task: ti.task_id, endBeforeStart: ti.end_date.getTime() < ti.start_date.getTime() }).toEqual({ task: ti.task_id, endBeforeStart: false });
    if (ti.duration !== null) expect({ task: ti.task_id, duration: Number(ti.duration) >= 0 }).toEqual({ task: ti.task_id, duration: true });
  }
}

describe("a row whose start_date is ahead of the clock that ends it", () => {
  it("marked failed (PATCH …/taskInstances): the try, its upstream_failed downstream task and the run end no earlier than they started", async () => {
    const { runId } = await runningAhead("skew");
    const res = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew/dagRuns/${runId}/taskInstances/a`, payload: { new_state: "failed" } });
    expect(res.statusCode).toBe(200);
    const t = await times("skew", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "failed"], ["b", "upstream_failed"]]);
    expect(t.tis[0]!.duration).not.toBeNull();
    expectNoEndBeforeStart(t, "failed");
  });

  it("run marked success (PATCH …/dagRuns state=success)", async () => {
    const { runId } = await runningAhead("skew");
    expect((await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew/dagRuns/${runId}`, payload: { state: "success" } })).statusCode).toBe(200);
    const t = await times("skew", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "success"], ["b", "success"]]);
    expectNoEndBeforeStart(t, "success");
  });

  it("run cancelled (PATCH …/dagRuns state=failed)", async () => {
    const { runId } = await runningAhead("skew");
    expect((await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew/dagRuns/${runId}`, payload: { state: "failed" } })).statusCode).toBe(200);
    const t = await times("skew", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "failed"], ["b", "skipped"]]);
    expectNoEndBeforeStart(t, "failed");
  });

  it("run cancelled while its try waits for a retry (skipped)", async () => {
    const { runId, claimed } = await runningAhead("skew");
    await h.db.pool.query(
      "UPDATE task_instance SET state = 'up_for_retry', end_date = start_date, duration = 0, next_retry_at = start_date, heartbeat_at = NULL WHERE id = ?",
      [claimed.id],
    );
    expect((await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew/dagRuns/${runId}`, payload: { state: "failed" } })).statusCode).toBe(200);
    const t = await times("skew", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "skipped"], ["b", "skipped"]]);
    expectNoEndBeforeStart(t, "failed");
  });

  it("run timed out (timeoutRuns)", async () => {
    const { runId } = await runningAhead("skew");
    const now = systemClock.now();
    await h.db.pool.query("UPDATE dag_run SET timeout_at = ? WHERE dag_id = 'skew' AND run_id = ?", [new Date(now.getTime() - 1000), runId]);
    const out = await timeoutRuns(h.db, now, versions());
    expect(out.runs.map((r) => r.runId)).toContain(runId);
    expectNoEndBeforeStart(await times("skew", runId), "failed");
  });

  it("zombie reaped (reapZombies)", async () => {
    const { runId, claimed } = await runningAhead("skew");
    const now = systemClock.now();
    await h.db.pool.query("UPDATE task_instance SET heartbeat_at = ? WHERE id = ?", [new Date(now.getTime() - HOUR), claimed.id]);
    const reaped = await reapZombies(h.db, now, 30_000, versions());
    expect(reaped.reaped.map((z) => [z.id, z.state])).toEqual([[claimed.id, "failed"]]);
    const t = await times("skew", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "failed"], ["b", "upstream_failed"]]);
    expect(t.tis[0]!.duration).not.toBeNull();
    expectNoEndBeforeStart(t, "failed");
  });

  it("signal wait timed out (timeoutDeferred)", async () => {
    const { runId, claimed } = await runningAhead("skew_wait");
    const now = systemClock.now();
    // As the worker leaves a wait: deferred on its signal, until its timeout (passed).
    await h.db.pool.query("UPDATE task_instance SET state = 'deferred', deferred_on = 'go', next_check_at = ?, heartbeat_at = NULL WHERE id = ?", [
      new Date(now.getTime() - 1000),
      claimed.id,
    ]);
    expect(await timeoutDeferred(h.db, now, versions())).toMatchObject({ ended: 1 });
    const t = await times("skew_wait", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["w", "failed"]]);
    expect(t.tis[0]!.duration).not.toBeNull();
    expectNoEndBeforeStart(t, "failed");
  });

  // Marking a task that is not running (setTaskState's second statement) keeps its start and ends it
  // at now, or at that start when later: a wait deferred by a worker whose clock is ahead.
  it("a deferred try marked success (PATCH …/taskInstances, not running)", async () => {
    const { runId, claimed } = await runningAhead("skew_wait");
    await h.db.pool.query("UPDATE task_instance SET state = 'deferred', deferred_on = 'go', next_check_at = ?, heartbeat_at = NULL WHERE id = ?", [
      new Date(systemClock.now().getTime() + HOUR),
      claimed.id,
    ]);
    const res = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew_wait/dagRuns/${runId}/taskInstances/w`, payload: { new_state: "success" } });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    await h.scheduler.tick();
    const t = await times("skew_wait", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["w", "success"]]);
    expect(t.tis[0]!.duration).not.toBeNull();
    expectNoEndBeforeStart(t, "success");
  });

  // A saga run cancelled with compensate: true whose no task succeeded has nothing to undo: it
  // fails at once (cancelRun's own end, after endRuns' was undone to start the compensation).
  it("saga run cancelled with compensate: true and nothing to compensate (PATCH …/dagRuns state=failed)", async () => {
    const { runId } = await runningAhead("skew_saga");
    const res = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/skew_saga/dagRuns/${runId}`, payload: { state: "failed", compensate: true } });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    const t = await times("skew_saga", runId);
    expect(t.tis.map((ti) => [ti.task_id, ti.state])).toEqual([["a", "failed"], ["b", "skipped"]]);
    expectNoEndBeforeStart(t, "failed");
  });

  // The finish writes the try's start as its end when the worker's clock is behind it; a result sent
  // again after its COMMIT answer was lost is found recorded by that end, not the worker's own.
  it("finished with an end before its start (finishTries), and found recorded after a lost COMMIT answer", async () => {
    const { runId, claimed } = await runningAhead("skew");
    const endedAt = new Date(claimed.startedAt.getTime() - 5000);
    const finished = await finishTries(h.db, systemClock.now(), [{ task: claimed, outcome: "success", output: 1, endedAt }], versions());
    expect(finished.finished).toEqual([claimed.id]);
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT start_date, end_date, duration FROM task_instance WHERE id = ?", [claimed.id]);
    expect([row!.end_date.getTime(), Number(row!.duration)]).toEqual([claimed.startedAt.getTime(), 0]);
    const sent = { id: claimed.id, tryNumber: claimed.tryNumber, token: claimed.token, outcome: "success" as const, endedAt, startedAt: claimed.startedAt };
    expect(await recordedResults(h.db.pool, [sent])).toEqual([sent]);
    expect((await times("skew", runId)).tis.map((ti) => ti.state)).toEqual(["success", "queued"]);
  });
});
