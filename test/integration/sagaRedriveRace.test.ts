// A re-drive of dead letters reads them (and checks for sagas) before it clears them, one run at a
// time: a run's saga may start, or even end, in between. The clear decides again under the run's
// lock, so a re-drive never starts a new attempt of a saga run (charging a refunded order again)
// and never stops half way because a later run began compensating. The saga is made to start
// between the listing and the clear through redriveDeadLetters' beforeClear seam. No task code
// runs: a ghost worker claims tries through the store and reports their outcomes, on a fake clock.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { redriveDeadLetters } from "../../store/transitions/redriveDeadLetters.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-05-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
let versions: VersionCache;
const shapeOf = (hash: string) => versions.shape(hash);

// charge → (t, u) in parallel; only charge has a compensation.
const DAGS = dagSource(`
export default dag({ id: "race_saga", maxActiveRuns: 50, defaultArgs: { retries: 0 } }, (t) => {
  const charge = t.task("charge", { compensate: async () => undefined }, async () => 1);
  charge.then(t.task("t", async () => 1));
  charge.then(t.task("u", async () => 1));
});
`);

beforeAll(async () => {
  await h.start({ "race_saga.ts": DAGS });
  await h.run();
  versions = new VersionCache(h.db.pool);
});
afterAll(() => h.stop());

/** Claims what is queued, which must be exactly the given tasks (runId/taskId). */
async function claim(...expected: string[]): Promise<Map<string, ClaimedTask>> {
  const claimed = await claimTasks(h.db, { now: clock.now(), limit: 50, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed.map((c) => `${c.runId}/${c.taskId}`).sort()).toEqual([...expected].sort());
  return new Map(claimed.map((c) => [`${c.runId}/${c.taskId}`, c]));
}

async function end(task: ClaimedTask, outcome: "success" | "failed"): Promise<void> {
  const error = outcome === "failed" ? { error: { name: "Error", message: `${task.taskId} failed for the test` } } : {};
  await finishTries(h.db, clock.now(), [{ task, outcome, endedAt: clock.now(), ...error }], shapeOf);
}

/** A run whose t failed (a dead letter) while u still runs: its saga has not started. Returns u's claimed try. */
async function deadLetterWhileURuns(runId: string): Promise<ClaimedTask> {
  await createDagRun(h.db, clock.now(), { dagId: "race_saga", runId, runType: "manual", logicalDate: clock.now(), conf: {} });
  await h.scheduler.tick();
  await end((await claim(`${runId}/charge`)).get(`${runId}/charge`)!, "success");
  const both = await claim(`${runId}/t`, `${runId}/u`);
  await end(both.get(`${runId}/t`)!, "failed");
  expect(await run(runId)).toEqual({ state: "running", compensation: null });
  return both.get(`${runId}/u`)!;
}

async function run(runId: string): Promise<{ state: string; compensation: string | null }> {
  const [[r]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, compensation FROM dag_run WHERE dag_id = 'race_saga' AND run_id = ?", [runId]);
  return { state: r!.state, compensation: r!.compensation ?? null };
}

async function states(runId: string): Promise<Record<string, string>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'race_saga' AND run_id = ?", [runId]);
  return Object.fromEntries(rows.map((r) => [r.task_id, r.state]));
}

async function tiId(runId: string, taskId: string): Promise<number> {
  const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'race_saga' AND run_id = ? AND task_id = ?", [runId, taskId]);
  return Number(ti!.id);
}

/** u fails, the run's saga starts, and (compensate) charge__compensate succeeds: the run is compensated. */
async function sagaRuns(runId: string, u: ClaimedTask, compensate: boolean): Promise<void> {
  await end(u, "failed");
  expect(await run(runId)).toEqual({ state: "running", compensation: "running" });
  if (!compensate) return;
  await end((await claim(`${runId}/charge__compensate`)).get(`${runId}/charge__compensate`)!, "success");
  expect(await run(runId)).toEqual({ state: "failed", compensation: "compensated" });
}

const compensated = { charge: "success", t: "failed", u: "failed", charge__compensate: "success" };

describe("a run whose saga ends between the re-drive's listing and its clear", () => {
  it("by dag_id: its failed task is not re-driven, the charge is not made again, the compensation stays", async () => {
    const u = await deadLetterWhileURuns("r1");
    const out = await redriveDeadLetters(h.db, clock.now(), { dagId: "race_saga" }, false, shapeOf, async ({ runId }) => {
      if (runId === "r1") await sagaRuns("r1", u, true);
    });
    expect(out.letters.map((l) => [`${l.run_id}/${l.task_id}`, l.skipped])).toEqual([["r1/t", "compensating"]]);
    expect(out.redriven).toBe(0);
    expect(await states("r1")).toEqual(compensated);
    expect(await run("r1")).toEqual({ state: "failed", compensation: "compensated" });
  });

  it("by id: refused with BATON_DAG_RUN_COMPENSATING, nothing changed", async () => {
    const u = await deadLetterWhileURuns("r2");
    const t = await tiId("r2", "t");
    let first = true;
    const hook = async () => {
      if (first) await sagaRuns("r2", u, true);
      first = false;
    };
    await expect(redriveDeadLetters(h.db, clock.now(), { ids: [t] }, false, shapeOf, hook)).rejects.toMatchObject({ code: "BATON_DAG_RUN_COMPENSATING" });
    expect(await states("r2")).toEqual(compensated);
    expect(await run("r2")).toEqual({ state: "failed", compensation: "compensated" });
  });
});

describe("a run whose saga starts between the re-drive's listing and its clear", () => {
  it("by dag_id: that run is skipped, the re-drive does not stop half way, the other run is re-driven", async () => {
    const uA = await deadLetterWhileURuns("a");
    const uB = await deadLetterWhileURuns("b");
    const seen: string[] = [];
    // The second run the re-drive comes to starts compensating just before its clear.
    const out = await redriveDeadLetters(h.db, clock.now(), { dagId: "race_saga" }, false, shapeOf, async ({ runId }) => {
      seen.push(runId);
      if (seen.length === 2) await sagaRuns(runId, runId === "a" ? uA : uB, false);
    });
    expect(seen.sort()).toEqual(["a", "b"]);
    expect(out.redriven).toBe(1);
    const [redriven, compensating] = (await run("a")).compensation === null ? ["a", "b"] : ["b", "a"];
    // The answer says which letters were re-driven: the skipped run's letter is marked, with why.
    expect(out.letters.map((l) => [`${l.run_id}/${l.task_id}`, l.skipped]).sort()).toEqual(
      [[`${redriven}/t`, null], [`${compensating}/t`, "compensating"]].sort(),
    );
    expect(await states(redriven)).toMatchObject({ charge: "success", t: "queued", u: "running" });
    expect(await states(compensating)).toEqual({ charge: "success", t: "failed", u: "failed", charge__compensate: "queued" });
    expect(await run(compensating)).toEqual({ state: "running", compensation: "running" });
  });
});
