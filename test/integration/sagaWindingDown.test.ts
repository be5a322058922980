// A saga's compensations wait for tries of their run ended from outside while their workers may
// still run them (abandoned_try): a compensation marked success by hand while it runs holds the
// next one back (setTaskState), and so does any listed try when a compensation finishes normally
// and readies the next (finishTries). No task code runs: a ghost worker claims tries through the
// store and reports outcomes.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { releaseAbandoned } from "../../store/transitions/abandonedTries.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { finishTries, type FinishResult } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-05-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
let versions: VersionCache;

// a → b → c → d; compensations (a chain, the last task undone first): c, b, a.
const DAGS = dagSource(`
export default dag({ id: "wd_saga", defaultArgs: { retries: 0 } }, (t) => {
  const undo = { compensate: async () => undefined };
  const a = t.task("a", undo, async () => 1);
  const b = t.task("b", undo, async () => 1);
  const c = t.task("c", undo, async () => 1);
  a.then(b).then(c).then(t.task("d", async () => 1));
});
`);

beforeAll(async () => {
  await h.start({ "wd_saga.ts": DAGS });
  await h.run();
  versions = new VersionCache(h.db.pool);
});
afterAll(() => h.stop());

async function claim(...taskIds: string[]): Promise<ClaimedTask[]> {
  const claimed = await claimTasks(h.db, { now: clock.now(), limit: 50, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed.map((c) => c.taskId).sort()).toEqual([...taskIds].sort());
  return claimed;
}

function end(task: ClaimedTask, outcome: "success" | "failed"): Promise<FinishResult> {
  const error = outcome === "failed" ? { error: { name: "Error", message: "failed for the test" } } : {};
  return finishTries(h.db, clock.now(), [{ task, outcome, endedAt: clock.now(), ...error }], (hash) => versions.shape(hash));
}

async function states(): Promise<Record<string, string>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'wd_saga' AND run_id = 'r1'");
  return Object.fromEntries(rows.map((r) => [r.task_id, r.state]));
}

it("holds the next compensation while one marked by hand still runs, or while any try of the run winds down", async () => {
  await createDagRun(h.db, clock.now(), { dagId: "wd_saga", runId: "r1", runType: "manual", logicalDate: clock.now(), conf: {} });
  await h.scheduler.tick();
  for (const id of ["a", "b", "c"]) await end((await claim(id))[0]!, "success");
  await end((await claim("d"))[0]!, "failed");
  const cUndo = (await claim("c__compensate"))[0]!;
  // Refunded by hand while its try still runs on the (ghost) worker: b's undo waits for that try.
  const mark = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/wd_saga/dagRuns/r1/taskInstances/c__compensate", payload: { new_state: "success" } });
  expect(mark.statusCode).toBe(200);
  expect(await states()).toMatchObject({ c__compensate: "success", b__compensate: "scheduled", a__compensate: "none" });
  const deps = (await h.app.inject({ method: "GET", url: "/api/v1/dags/wd_saga/dagRuns/r1/taskInstances/b__compensate/dependencies" })).json();
  expect(deps.dependencies).toEqual([{ name: "winding_down", reason: expect.stringContaining(`"c__compensate" try 1 on a worker that no longer heartbeats`) }]);
  // The marked try's process ends: its late result is fenced and, as a worker does, it says so.
  expect((await end(cUndo, "success")).fencedTries).toHaveLength(1);
  expect(await releaseAbandoned(h.db.pool, cUndo.token, [{ id: cUndo.id, tryNumber: cUndo.tryNumber }])).toBe(1);
  await h.scheduler.tick();
  expect(await states()).toMatchObject({ b__compensate: "queued" });

  // A try of the run still listed (as a cancel or mark leaves it) when b's undo finishes: a's waits too.
  const bUndo = (await claim("b__compensate"))[0]!;
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id, dag_run_id FROM task_instance WHERE dag_id = 'wd_saga' AND run_id = 'r1' AND task_id = 'd'");
  await h.db.pool.query("INSERT INTO abandoned_try (task_instance_id, try_number, dag_run_id, worker_id, abandoned_at) VALUES (?, 1, ?, 'w', ?)", [row!.id, row!.dag_run_id, clock.now()]);
  await end(bUndo, "success");
  expect(await states()).toMatchObject({ b__compensate: "success", a__compensate: "scheduled" });
  await h.db.pool.query("DELETE FROM abandoned_try WHERE dag_run_id = ?", [row!.dag_run_id]);
  await h.scheduler.tick();
  await end((await claim("a__compensate"))[0]!, "success");
  const run = (await h.app.inject({ method: "GET", url: "/api/v1/dags/wd_saga/dagRuns/r1" })).json();
  expect(run).toMatchObject({ state: "failed", compensation: "compensated" });
});
