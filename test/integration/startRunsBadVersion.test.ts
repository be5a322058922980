// A run pinned to a version whose task instances the database cannot hold (stored before
// core/dagLimits.ts checked the options) must not wedge the scheduler: its INSERT failed the
// batch of every tick, so no other DAG's run ever started.
import type { RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ manualTicks: true, worker: false });

beforeAll(async () => {
  await h.start({
    "ok.ts": dagSource(`export default dag({ id: "ok" }, (t) => { t.task("only", async () => 1); });`),
    "old_bad.ts": dagSource(`export default dag({ id: "old_bad" }, (t) => { t.task("only", async () => 1); });`),
    "old_bad_timeout.ts": dagSource(`export default dag({ id: "old_bad_timeout" }, (t) => { t.task("only", async () => 1); });`),
    "old_bad_wide.ts": dagSource(`export default dag({ id: "old_bad_wide" }, (t) => { for (let i = 0; i < 1001; i++) t.task(\`t\${i}\`, async () => i); });`),
  });
  await h.run();
  // What a file with such options stored before they were checked.
  await h.db.pool.query("UPDATE dag_version SET structure = JSON_SET(structure, '$.tasks[0].queue', REPEAT('q', 300)) WHERE dag_id = 'old_bad'");
  await h.db.pool.query("UPDATE dag_version SET structure = JSON_SET(structure, '$.tasks[1000].retries', 3000000000) WHERE dag_id = 'old_bad_wide'");
  // 10,000,000 weeks: timeout_at = start + it is past a DATETIME's year 9999.
  await h.db.pool.query("UPDATE dag_version SET structure = JSON_SET(structure, '$.dagrunTimeoutMs', 6048000000000000) WHERE dag_id = 'old_bad_timeout'");
});
afterAll(() => h.stop());

async function run(dagId: string, runId: string): Promise<{ state: string; note: string | null; tasks: number }> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT state, note, (SELECT COUNT(*) FROM task_instance ti WHERE ti.dag_run_id = r.id) AS tasks FROM dag_run r WHERE dag_id = ? AND run_id = ?",
    [dagId, runId],
  );
  return { state: row!.state, note: row!.note, tasks: Number(row!.tasks) };
}

it("fails such a run with the reason in its note and starts the other DAGs' runs in the same tick", async () => {
  const bad = await h.trigger("old_bad");
  const wide = await h.trigger("old_bad_wide");
  const timeout = await h.trigger("old_bad_timeout");
  const ok = await h.trigger("ok");
  const report = await h.scheduler.tick();
  expect(report.runsStarted).toBe(1);
  expect(await run("ok", ok)).toMatchObject({ state: "running", tasks: 1 });

  const failed = await run("old_bad", bad);
  expect(failed).toMatchObject({ state: "failed", tasks: 0 });
  expect(failed.note).toContain("queue");
  expect(failed.note).toContain("could not start");
  // Its first 1,000 task instances were inserted before the 1,001st failed: none is left.
  const failedWide = await run("old_bad_wide", wide);
  expect(failedWide).toMatchObject({ state: "failed", tasks: 0 });
  expect(failedWide.note).toContain("max_tries");

  const failedTimeout = await run("old_bad_timeout", timeout);
  expect(failedTimeout).toMatchObject({ state: "failed", tasks: 0 });
  expect(failedTimeout.note).toContain("dagrunTimeout");

  // Later ticks go on: a new run of a good DAG starts.
  const next = await h.trigger("ok");
  await h.scheduler.tick();
  expect((await run("ok", next)).state).toBe("running");
});
