// What an operator does to a saga by hand, and how the run's `compensation` follows: marking a
// compensation success (refunded by hand) or failed, cancelling or timing out a run while it
// compensates, and cancelling a compensating run with compensate: true. No task code runs: a ghost
// worker claims tries through the store (claimTasks) and reports their outcomes (finishTries), on a
// fake clock.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { finishTries, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { releaseAbandoned } from "../../store/transitions/abandonedTries.ts";
import { cancelRun } from "../../store/transitions/cancelRun.ts";
import { timeoutRuns } from "../../store/transitions/timeoutRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-05-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
let versions: VersionCache;
const shapeOf = (hash: string) => versions.shape(hash);

// reserve → charge → ship; compensations run charge__compensate → reserve__compensate.
const DAGS = dagSource(`
export default dag({ id: "op_saga", maxActiveRuns: 50, dagrunTimeout: "1h", defaultArgs: { retries: 0 } }, (t) => {
  const reserve = t.task("reserve", { compensate: async () => undefined }, async () => 1);
  const charge = t.task("charge", { compensate: async () => undefined }, async () => 1);
  reserve.then(charge).then(t.task("ship", async () => 1));
});
`);

beforeAll(async () => {
  await h.start({ "op_saga.ts": DAGS });
  await h.run();
  versions = new VersionCache(h.db.pool);
});
afterAll(() => h.stop());

const runUrl = (runId: string) => `/api/v1/dags/op_saga/dagRuns/${runId}`;
const getRun = async (runId: string) => (await h.app.inject({ method: "GET", url: runUrl(runId) })).json();

async function claim(runId: string, taskId: string): Promise<ClaimedTask> {
  const claimed = await claimTasks(h.db, { now: clock.now(), limit: 50, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed.map((c) => `${c.runId}/${c.taskId}`)).toEqual([`${runId}/${taskId}`]);
  return claimed[0]!;
}

async function end(task: ClaimedTask, outcome: "success" | "failed"): Promise<void> {
  const done: FinishedTry = {
    task,
    outcome,
    endedAt: clock.now(),
    ...(outcome === "failed" ? { error: { name: "Error", message: `${task.taskId} failed for the test` } } : {}),
  };
  const result = await finishTries(h.db, clock.now(), [done], shapeOf);
  // As a worker does (executor/worker.ts noteEnded): a fenced result's try has ended, so it no
  // longer holds back its run's compensations (it was cancelled, marked or cleared while running).
  if (result.fencedTries.length > 0) await releaseAbandoned(h.db.pool, task.token, [{ id: task.id, tryNumber: task.tryNumber }]);
}

async function run(runId: string, taskId: string, outcome: "success" | "failed"): Promise<void> {
  await end(await claim(runId, taskId), outcome);
}

/** A run whose ship failed: it is compensating, charge__compensate queued. */
async function compensatingRun(runId: string): Promise<void> {
  await createDagRun(h.db, clock.now(), { dagId: "op_saga", runId, runType: "manual", logicalDate: clock.now(), conf: {} });
  await h.scheduler.tick();
  await run(runId, "reserve", "success");
  await run(runId, "charge", "success");
  await run(runId, "ship", "failed");
  expect(await getRun(runId)).toMatchObject({ state: "running", compensation: "running" });
}

/** A saga that ended: each compensation ran with the given outcome. */
async function endedSaga(runId: string, charge: "success" | "failed", reserve: "success" | "failed"): Promise<void> {
  await compensatingRun(runId);
  await run(runId, "charge__compensate", charge);
  await run(runId, "reserve__compensate", reserve);
  const compensation = charge === "success" && reserve === "success" ? "compensated" : "compensation_failed";
  expect(await getRun(runId)).toMatchObject({ state: "failed", compensation });
}

async function states(runId: string): Promise<Record<string, string>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'op_saga' AND run_id = ?", [runId]);
  return Object.fromEntries(rows.map((r) => [r.task_id, r.state]));
}

async function events(runId: string): Promise<string[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT kind, task_id, from_state, to_state FROM event_log WHERE dag_id = 'op_saga' AND run_id = ? ORDER BY id",
    [runId],
  );
  return rows.map((r) => `${r.kind}:${r.task_id ?? ""}:${r.from_state}->${r.to_state}`);
}

const deadLetters = async (runId: string) =>
  (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=op_saga" })).json().dead_letters
    .filter((l: { dag_run_id: string }) => l.dag_run_id === runId)
    .map((l: { task_id: string }) => l.task_id)
    .sort();

const mark = (runId: string, taskId: string, newState: string) =>
  h.app.inject({ method: "PATCH", url: `${runUrl(runId)}/taskInstances/${taskId}`, payload: { new_state: newState } });

describe("marking a compensation by hand", () => {
  it("marking the failed compensation success (refunded by hand) closes the saga: the run stays failed, compensated", async () => {
    await endedSaga("m1", "failed", "success");
    expect(await deadLetters("m1")).toEqual(["charge__compensate"]);
    const before = await events("m1");
    const res = await mark("m1", "charge__compensate", "success");
    expect(res.statusCode).toBe(200);
    expect(await getRun("m1")).toMatchObject({ state: "failed", compensation: "compensated", compensated: true });
    expect(await states("m1")).toMatchObject({ charge__compensate: "success", reserve__compensate: "success", ship: "failed" });
    // The mark is in the event log; the run did not reopen (no run event, no second callback).
    expect((await events("m1")).slice(before.length)).toEqual(["task:charge__compensate:failed->success"]);
    // It is no dead letter any more (nor is the task that failed the run: its saga handles it).
    expect(await deadLetters("m1")).toEqual([]);
  });

  it("updateTaskInstancesState does the same", async () => {
    await endedSaga("m2", "failed", "success");
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/op_saga/updateTaskInstancesState",
      payload: { task_id: "charge__compensate", dag_run_id: "m2", new_state: "success", dry_run: false },
    });
    expect(res.statusCode).toBe(200);
    expect(await getRun("m2")).toMatchObject({ state: "failed", compensation: "compensated" });
  });

  it("with two failed compensations, marking one success leaves the run compensation_failed and does not re-run the other", async () => {
    await endedSaga("m3", "failed", "failed");
    expect((await mark("m3", "charge__compensate", "success")).statusCode).toBe(200);
    // reserve__compensate is downstream and failed, but it failed at its own work: not cleared, not run again.
    expect(await states("m3")).toMatchObject({ charge__compensate: "success", reserve__compensate: "failed" });
    expect(await getRun("m3")).toMatchObject({ state: "failed", compensation: "compensation_failed" });
    expect(await deadLetters("m3")).toEqual(["reserve__compensate"]);
    expect((await mark("m3", "reserve__compensate", "success")).statusCode).toBe(200);
    expect(await getRun("m3")).toMatchObject({ state: "failed", compensation: "compensated" });
  });

  it("marking a compensation failed in a compensated run makes it compensation_failed; clearing it resumes", async () => {
    await endedSaga("m4", "success", "success");
    expect((await mark("m4", "charge__compensate", "failed")).statusCode).toBe(200);
    expect(await getRun("m4")).toMatchObject({ state: "failed", compensation: "compensation_failed" });
    // An operator's failure is no dead letter (as for any task marked failed): clear it to resume.
    expect(await deadLetters("m4")).toEqual([]);
    const cleared = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/op_saga/clearTaskInstances",
      payload: { dag_run_id: "m4", dry_run: false, task_ids: ["charge__compensate"] },
    });
    expect(cleared.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["charge__compensate"]);
    expect(await getRun("m4")).toMatchObject({ state: "running", compensation: "running" });
    await run("m4", "charge__compensate", "success");
    expect(await getRun("m4")).toMatchObject({ state: "failed", compensation: "compensated" });
  });
});

describe("a run ended while compensating", () => {
  it("cancelled: compensation_failed, and clearing the cut-off compensation resumes it in order", async () => {
    await compensatingRun("c1");
    const charge = await claim("c1", "charge__compensate");
    const res = await h.app.inject({ method: "PATCH", url: runUrl("c1"), payload: { state: "failed" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ state: "failed", compensation: "compensation_failed", compensated: false });
    expect(await states("c1")).toMatchObject({ charge__compensate: "failed", reserve__compensate: "skipped" });
    // The worker's late result is fenced: nothing changes.
    await end(charge, "success");
    expect(await getRun("c1")).toMatchObject({ state: "failed", compensation: "compensation_failed" });

    await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/op_saga/clearTaskInstances",
      payload: { dag_run_id: "c1", dry_run: false, task_ids: ["charge__compensate"], include_downstream: true },
    });
    expect(await getRun("c1")).toMatchObject({ state: "running", compensation: "running" });
    await run("c1", "charge__compensate", "success");
    await run("c1", "reserve__compensate", "success");
    expect(await getRun("c1")).toMatchObject({ state: "failed", compensation: "compensated" });
  });

  it("resumed without the compensation the cancel skipped: still compensation_failed (that task was not undone)", async () => {
    await compensatingRun("c2");
    const cut = await claim("c2", "charge__compensate");
    await h.app.inject({ method: "PATCH", url: runUrl("c2"), payload: { state: "failed" } });
    await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/op_saga/clearTaskInstances",
      payload: { dag_run_id: "c2", dry_run: false, task_ids: ["charge__compensate"] },
    });
    // The cancelled try still runs on its worker: the resumed compensation waits beside it.
    expect(await states("c2")).toMatchObject({ charge__compensate: "scheduled" });
    await end(cut, "success"); // its process ended: its late result is fenced
    await h.scheduler.tick();
    await run("c2", "charge__compensate", "success");
    expect(await states("c2")).toMatchObject({ charge__compensate: "success", reserve__compensate: "skipped" });
    expect(await getRun("c2")).toMatchObject({ state: "failed", compensation: "compensation_failed" });
  });

  it("timed out: compensation_failed, and re-driving the timed-out compensation resumes it", async () => {
    await compensatingRun("t1");
    const cut = await claim("t1", "charge__compensate");
    const result = await timeoutRuns(h.db, new Date(clock.now().getTime() + 2 * 3_600_000), shapeOf);
    await end(cut, "success"); // the timed-out try's process ended: its late result is fenced
    expect(result.runs.map((r) => r.runId)).toContain("t1");
    expect(await getRun("t1")).toMatchObject({ state: "failed", compensation: "compensation_failed" });
    expect(await deadLetters("t1")).toEqual(["charge__compensate"]);
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'op_saga' AND run_id = 't1' AND task_id = 'charge__compensate'");
    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [Number(ti!.id)] } });
    expect(redrive.json()).toMatchObject({ redriven: 1 });
    expect(await getRun("t1")).toMatchObject({ state: "running", compensation: "running" });
    await run("t1", "charge__compensate", "success");
    await run("t1", "reserve__compensate", "success");
    expect(await getRun("t1")).toMatchObject({ state: "failed", compensation: "compensated" });
  });

  it("cancelling a compensating run with compensate: true is refused, and changes nothing", async () => {
    await compensatingRun("k1");
    const charge = await claim("k1", "charge__compensate");
    const before = await states("k1");
    const res = await h.app.inject({ method: "PATCH", url: runUrl("k1"), payload: { state: "failed", compensate: true } });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: "BATON_DAG_RUN_COMPENSATING" });
    expect(await states("k1")).toEqual(before);
    expect(await getRun("k1")).toMatchObject({ state: "running", compensation: "running" });
    // The compensation carries on.
    await end(charge, "success");
    await run("k1", "reserve__compensate", "success");
    expect(await getRun("k1")).toMatchObject({ state: "failed", compensation: "compensated" });
  });
});

// A run whose saga started belongs to its compensation: the attempt that failed is being (or was)
// undone, so nothing may pretend it went on (marks, mark-run-success, clears while compensating,
// re-drives of its failed task). Clearing once the saga ended starts a new attempt.
describe("a saga's own tasks are left to its compensation", () => {
  const clear = (runId: string, payload: Record<string, unknown>) =>
    h.app.inject({ method: "POST", url: "/api/v1/dags/op_saga/clearTaskInstances", payload: { dag_run_id: runId, dry_run: false, ...payload } });
  const tiId = async (runId: string, taskId: string) => {
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'op_saga' AND run_id = ? AND task_id = ?", [runId, taskId]);
    return Number(ti!.id);
  };
  const refused = (res: { statusCode: number; json: () => { code: string } }) => {
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("BATON_DAG_RUN_COMPENSATING");
  };

  it("marking a task of a compensated run, or the run success, is refused and changes nothing", async () => {
    await endedSaga("s1", "success", "success");
    const before = await states("s1");
    const history = await events("s1");
    refused(await mark("s1", "ship", "success"));
    refused(await mark("s1", "charge", "failed"));
    refused(
      await h.app.inject({
        method: "POST",
        url: "/api/v1/dags/op_saga/updateTaskInstancesState",
        payload: { task_id: "ship", dag_run_id: "s1", new_state: "success", dry_run: true },
      }),
    );
    refused(await h.app.inject({ method: "PATCH", url: runUrl("s1"), payload: { state: "success" } }));
    expect(await states("s1")).toEqual(before);
    expect(await getRun("s1")).toMatchObject({ state: "failed", compensation: "compensated" });
    expect(await events("s1")).toEqual(history);
    // Its compensations can still be marked (closing or reopening the saga by hand).
    expect((await mark("s1", "charge__compensate", "failed")).statusCode).toBe(200);
    expect(await getRun("s1")).toMatchObject({ state: "failed", compensation: "compensation_failed" });
  });

  it("a compensating run refuses marks, mark-run-success and clears of its own tasks; its compensation carries on", async () => {
    await compensatingRun("s2");
    const before = await states("s2");
    refused(await mark("s2", "ship", "success"));
    refused(await h.app.inject({ method: "PATCH", url: runUrl("s2"), payload: { state: "success" } }));
    refused(await clear("s2", { task_ids: ["ship"] }));
    refused(await clear("s2", { task_ids: ["ship"], dry_run: true }));
    refused(await clear("s2", {}));
    refused(await h.app.inject({ method: "PATCH", url: runUrl("s2"), payload: { state: "queued" } }));
    expect(await states("s2")).toEqual(before);
    expect(await getRun("s2")).toMatchObject({ state: "running", compensation: "running" });
    await run("s2", "charge__compensate", "success");
    await run("s2", "reserve__compensate", "success");
    expect(await getRun("s2")).toMatchObject({ state: "failed", compensation: "compensated" });

    // Once the saga ended, clearing the failed task starts a new attempt: what was undone is done again first.
    const res = await clear("s2", { task_ids: ["ship"] });
    expect(res.statusCode).toBe(200);
    expect(await getRun("s2")).toMatchObject({ state: "running", compensation: null });
    expect(await states("s2")).toEqual({ reserve: "queued", charge: "none", ship: "none" });
    await run("s2", "reserve", "success");
    await run("s2", "charge", "success");
    await run("s2", "ship", "success");
    expect(await getRun("s2")).toMatchObject({ state: "success", compensation: null });
  });

  it("a compensated run's failed task is no dead letter, and re-driving it by id is refused", async () => {
    await endedSaga("s3", "success", "success");
    expect(await deadLetters("s3")).toEqual([]);
    const before = await states("s3");
    const ship = await tiId("s3", "ship");
    refused(await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [ship] } }));
    refused(await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [ship], dry_run: true } }));
    // A re-drive of the whole DAG does not choose it.
    const all = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "op_saga", dry_run: true } });
    expect(all.statusCode).toBe(200);
    expect(all.json().dead_letters.map((l: { task_instance_id: number }) => l.task_instance_id)).not.toContain(ship);
    expect(await states("s3")).toEqual(before);
    expect(await getRun("s3")).toMatchObject({ state: "failed", compensation: "compensated" });
  });

  it("in a run whose compensation failed, only the failed compensation is a dead letter", async () => {
    await endedSaga("s4", "failed", "success");
    expect(await deadLetters("s4")).toEqual(["charge__compensate"]);
    refused(await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [await tiId("s4", "ship")] } }));
    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [await tiId("s4", "charge__compensate")] } });
    expect(redrive.json()).toMatchObject({ redriven: 1 });
    await run("s4", "charge__compensate", "success");
    expect(await getRun("s4")).toMatchObject({ state: "failed", compensation: "compensated" });
    expect(await deadLetters("s4")).toEqual([]);
  });
});

describe("a run that times out before its saga started", () => {
  it("compensates what succeeded, with a whole dagrunTimeout of its own, and ends failed once", async () => {
    await createDagRun(h.db, clock.now(), { dagId: "op_saga", runId: "s5", runType: "manual", logicalDate: clock.now(), conf: {} });
    await h.scheduler.tick();
    await run("s5", "reserve", "success");
    const charge = await claim("s5", "charge");
    // The scheduler's tick times it out (past its 1h dagrunTimeout).
    clock.advance(2 * 3_600_000);
    const tick = await h.scheduler.tick();
    expect(tick.runsTimedOut).toBe(1);
    expect(await getRun("s5")).toMatchObject({ state: "running", compensation: "running" });
    // charge never succeeded (the timeout failed it): nothing of it to undo.
    expect(await states("s5")).toEqual({ reserve: "success", charge: "failed", ship: "skipped", charge__compensate: "skipped", reserve__compensate: "queued" });
    // The compensation is not cut off by the deadline that started it.
    const again = await timeoutRuns(h.db, clock.now(), shapeOf);
    expect(again.runs.map((r) => r.runId)).not.toContain("s5");
    await end(charge, "success"); // the timed-out try's late result is fenced
    await run("s5", "reserve__compensate", "success");
    expect(await getRun("s5")).toMatchObject({ state: "failed", compensation: "compensated" });
    // The run ended once, when its compensation did: no failed → running in its history.
    expect((await events("s5")).filter((e) => e.split(":")[1] === "").slice(-1)).toEqual(["run::running->failed"]);
    expect((await events("s5")).filter((e) => e.endsWith("failed->running") && e.split(":")[1] === "")).toEqual([]);
  });

  it("with nothing to undo just fails", async () => {
    await createDagRun(h.db, clock.now(), { dagId: "op_saga", runId: "s6", runType: "manual", logicalDate: clock.now(), conf: {} });
    await h.scheduler.tick();
    await claim("s6", "reserve");
    const result = await timeoutRuns(h.db, new Date(clock.now().getTime() + 2 * 3_600_000), shapeOf);
    expect(result.runs.find((r) => r.runId === "s6")).toMatchObject({ compensating: false, compensation: null });
    expect(await getRun("s6")).toMatchObject({ state: "failed", compensation: null });
    expect(await states("s6")).toEqual({ reserve: "failed", charge: "skipped", ship: "skipped" });
  });

  it("leaves a run whose version changed while its shape was read to the next look, then ends it with the right one", async () => {
    await createDagRun(h.db, clock.now(), { dagId: "op_saga", runId: "s7", runType: "manual", logicalDate: clock.now(), conf: {} });
    await h.scheduler.tick();
    await claim("s7", "reserve");
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id, version_hash FROM dag_run WHERE dag_id = 'op_saga' AND run_id = 's7'");
    const due = new Date(clock.now().getTime() + 2 * 3_600_000);
    // As a clear with use_latest_version would, between the read of the due runs and the transaction.
    const switching = async (hash: string) => {
      if (hash === row!.version_hash) await h.db.pool.query("UPDATE dag_run SET version_hash = REVERSE(version_hash) WHERE id = ?", [row!.id]);
      return shapeOf(hash);
    };
    const raced = await timeoutRuns(h.db, due, switching);
    expect(raced.runs.find((r) => r.runId === "s7")).toBeUndefined();
    expect(await getRun("s7")).toMatchObject({ state: "running" });
    await h.db.pool.query("UPDATE dag_run SET version_hash = ? WHERE id = ?", [row!.version_hash, row!.id]);
    const next = await timeoutRuns(h.db, due, shapeOf);
    expect(next.runs.find((r) => r.runId === "s7")).toBeDefined();
    expect(await getRun("s7")).toMatchObject({ state: "failed" });
  });

  it("cancelling with compensate undoes with the version the run has under the lock, read again if it changed", async () => {
    await createDagRun(h.db, clock.now(), { dagId: "op_saga", runId: "s8", runType: "manual", logicalDate: clock.now(), conf: {} });
    await h.scheduler.tick();
    await run("s8", "reserve", "success");
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id, version_hash FROM dag_run WHERE dag_id = 'op_saga' AND run_id = 's8'");
    const original = row!.version_hash as string;
    const seen: string[] = [];
    // The run's version moves while its shape is read (a clear with use_latest_version), then back.
    const moving = async (hash: string) => {
      seen.push(hash);
      if (seen.length <= 2) {
        await h.db.pool.query("UPDATE dag_run SET version_hash = ? WHERE id = ?", [seen.length === 1 ? original.split("").reverse().join("") : original, row!.id]);
      }
      return shapeOf(original);
    };
    const result = await cancelRun(h.db, clock.now(), "op_saga", "s8", { compensate: true, shapeOf: moving });
    expect(result.compensating).toBe(true);
    const [[after]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_run WHERE id = ?", [row!.id]);
    // The shape it compensated with was read for the version the run had when it was locked.
    expect(seen.at(-1)).toBe(after!.version_hash);
    expect(await getRun("s8")).toMatchObject({ state: "running", compensation: "running" });
  });
});


