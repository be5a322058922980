// Tries of dependsOnPast tasks wait in `scheduled` until the same task succeeded in the previous
// run; releaseScheduled looks at them a page at a time, after the last page's ids, so tries that
// wait long (their previous run failed) never hide the tries behind them. Store-level: the
// scheduler does not tick (manualTicks), runs are started with startRuns and released here.
import type { RowDataPacket } from "../../store/db.ts";
import { releaseScheduled } from "../../store/transitions/releaseScheduled.ts";
import { startRuns } from "../../store/transitions/startRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false, manualTicks: true });
let versions: VersionCache;

beforeAll(async () => {
  await h.start({
    "stuck.ts": dagSource(`export default dag({ id: "rs_stuck" }, (t) => { t.task("a", { dependsOnPast: true }, async () => 1); });`),
    "free.ts": dagSource(`export default dag({ id: "rs_free" }, (t) => { t.task("a", { dependsOnPast: true }, async () => 1); });`),
    "rerun.ts": dagSource(`export default dag({ id: "rs_rerun" }, (t) => { t.task("a", { dependsOnPast: true }, async () => 1); });`),
    "proto.ts": dagSource(
      `export default dag({ id: "rs_proto" }, (t) => { t.task("a", { dependsOnPast: true, waitForDownstream: true }, async () => 1).then(t.task("__proto__", async () => 1)); });`,
    ),
  });
  await h.processor.scan();
  versions = new VersionCache(h.db.pool);
});

afterAll(async () => {
  await h.stop();
});

async function stateOf(dagId: string, runId: string): Promise<string> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'a'", [dagId, runId]);
  return row!.state as string;
}

describe("releaseScheduled", () => {
  it("pages past tries that cannot be released to those that can", async () => {
    const first = await h.trigger("rs_stuck", { logicalDate: "2026-01-01T00:00:00Z" });
    const second = await h.trigger("rs_stuck", { logicalDate: "2026-01-02T00:00:00Z" });
    const free = await h.trigger("rs_free", { logicalDate: "2026-01-01T00:00:00Z" });
    const shapeOf = (hash: string) => versions.shape(hash);
    expect((await startRuns(h.db, new Date(), shapeOf)).started).toBe(3);
    // The first run's try failed: the second run's waits, and comes first by id.
    await h.db.pool.query("UPDATE task_instance SET state = 'failed' WHERE dag_id = 'rs_stuck' AND run_id = ?", [first]);
    expect([await stateOf("rs_stuck", second), await stateOf("rs_free", free)]).toEqual(["scheduled", "scheduled"]);

    // A page of one: the waiting try, released nothing; the same page again would find it again.
    const page1 = await releaseScheduled(h.db, new Date(), shapeOf, { limit: 1 });
    expect({ released: page1.released, scanned: page1.scanned }).toEqual({ released: 0, scanned: 1 });
    expect((await releaseScheduled(h.db, new Date(), shapeOf, { limit: 1 })).released).toBe(0);
    // After it: the other DAG's try, whose run has no previous run, is queued.
    const page2 = await releaseScheduled(h.db, new Date(), shapeOf, { limit: 1, afterId: page1.lastId });
    expect({ released: page2.released, scanned: page2.scanned }).toEqual({ released: 1, scanned: 1 });
    expect([await stateOf("rs_stuck", second), await stateOf("rs_free", free)]).toEqual(["scheduled", "queued"]);
    const page3 = await releaseScheduled(h.db, new Date(), shapeOf, { limit: 1, afterId: page2.lastId });
    expect(page3).toEqual({ released: 0, unusable: [], scanned: 0, lastId: page2.lastId });
  });

  it("a re-run of a date waits on the date before it, never on the run of its own date it re-does", async () => {
    const shapeOf = (hash: string) => versions.shape(hash);
    const day1 = await h.trigger("rs_rerun", { logicalDate: "2026-01-01T00:00:00Z" });
    const day2 = await h.trigger("rs_rerun", { logicalDate: "2026-01-02T00:00:00Z" });
    await startRuns(h.db, new Date(), shapeOf);
    await h.db.pool.query("UPDATE task_instance SET state = 'success' WHERE dag_id = 'rs_rerun' AND run_id = ?", [day1]);
    await h.db.pool.query("UPDATE task_instance SET state = 'failed' WHERE dag_id = 'rs_rerun' AND run_id = ?", [day2]);
    // Day 2 failed; a run of the same date re-does it, and day 3 comes after.
    const rerun = await h.trigger("rs_rerun", { logicalDate: "2026-01-02T00:00:00Z", runId: "rerun_day2" });
    const day3 = await h.trigger("rs_rerun", { logicalDate: "2026-01-03T00:00:00Z" });
    await startRuns(h.db, new Date(), shapeOf);
    const deps = async (runId: string) =>
      (await h.app.inject({ method: "GET", url: `/api/v1/dags/rs_rerun/dagRuns/${runId}/taskInstances/a/dependencies` })).json().dependencies;
    expect(await deps(day3)).toEqual([
      { name: "depends_on_past", reason: "the task's state in the previous run rerun_day2 is scheduled, not success or skipped" },
    ]);
    expect(await deps(rerun)).toEqual([]);

    // The re-run's previous run is day 1 (succeeded), not the failed day 2 it shares the date with.
    await releaseScheduled(h.db, new Date(), shapeOf);
    expect([await stateOf("rs_rerun", rerun), await stateOf("rs_rerun", day3)]).toEqual(["queued", "scheduled"]);
    // Day 3's previous run is the newest of day 2's runs: it goes once the re-run succeeded.
    await h.db.pool.query("UPDATE task_instance SET state = 'success' WHERE dag_id = 'rs_rerun' AND run_id = ?", [rerun]);
    await releaseScheduled(h.db, new Date(), shapeOf);
    expect(await stateOf("rs_rerun", day3)).toBe("queued");
    // Nothing of the past holds it; only that no worker runs in this test (it is queued).
    expect((await deps(day3)).map((d: { name: string }) => d.name)).toEqual(["queue"]);
  });

  it("waitForDownstream waits on a downstream task named __proto__ like on any other", async () => {
    const shapeOf = (hash: string) => versions.shape(hash);
    const day1 = await h.trigger("rs_proto", { logicalDate: "2026-01-01T00:00:00Z" });
    const day2 = await h.trigger("rs_proto", { logicalDate: "2026-01-02T00:00:00Z" });
    await startRuns(h.db, new Date(), shapeOf);
    await h.db.pool.query("UPDATE task_instance SET state = IF(task_id = 'a', 'success', 'failed') WHERE dag_id = 'rs_proto' AND run_id = ?", [day1]);
    await releaseScheduled(h.db, new Date(), shapeOf);
    expect(await stateOf("rs_proto", day2)).toBe("scheduled");
    const deps = (await h.app.inject({ method: "GET", url: `/api/v1/dags/rs_proto/dagRuns/${day2}/taskInstances/a/dependencies` })).json().dependencies;
    expect(deps.map((d: { name: string }) => d.name)).toContain("depends_on_past");
  });
});
