// Queued runs of a DAG that became inactive (its file removed, or no longer defining it) are not
// started, as in Airflow (get_queued_dag_runs_to_set_running joins on an active DAG): a run would
// start without its DAG's file. They stay queued, a backfill's runs included (which start while
// the DAG is paused), and start once the file defines the DAG again. The backfill tells why it
// makes no progress meanwhile (waiting_reason). Scheduler ticks by hand, no worker.
import { rm } from "node:fs/promises";
import type { RowDataPacket } from "../../store/db.ts";
import { advanceBackfills } from "../../store/transitions/advanceBackfills.ts";
import { FakeClock } from "../../core/clock.ts";
import { runBaton } from "../helpers/cli.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-06-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
const SOURCE = dagSource(`export default dag({ id: "gone_queued", schedule: "@daily", startDate: "2026-01-01", catchup: false }, (t) => {
  t.task("work", async () => 1);
});`);
let file: string;

beforeAll(async () => {
  await h.start();
  file = await h.writeDag("gone_queued.ts", SOURCE);
  await h.run();
});
afterAll(() => h.stop());

async function runs(): Promise<{ run_type: string; state: string; tasks: number }[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    `SELECT run_type, state, (SELECT COUNT(*) FROM task_instance ti WHERE ti.dag_run_id = r.id) AS tasks
       FROM dag_run r WHERE dag_id = 'gone_queued' AND run_type IN ('manual', 'backfill') ORDER BY run_type`,
  );
  return rows.map((r) => ({ run_type: r.run_type, state: r.state, tasks: Number(r.tasks) }));
}

const backfill = async (id: number) => (await h.app.inject({ method: "GET", url: `/api/v1/backfills/${id}` })).json();

it("keeps a manual and a backfill run queued while the DAG is inactive, and starts them once it is back; the backfill says why it waits", async () => {
  await h.trigger("gone_queued");
  const created = await h.app.inject({
    method: "POST",
    url: "/api/v1/backfills",
    payload: { dag_id: "gone_queued", from_date: "2026-01-01", to_date: "2026-01-02", max_active_runs: 1 },
  });
  expect(created.statusCode).toBe(200);
  const id = created.json().id as number;
  expect(created.json()).toMatchObject({ waiting_reason: null, waiting_message: null });
  expect((await advanceBackfills(h.db, clock.now())).created).toHaveLength(1);
  expect(await runs()).toEqual([
    { run_type: "backfill", state: "queued", tasks: 0 },
    { run_type: "manual", state: "queued", tasks: 0 },
  ]);

  // The file goes before the scheduler started either run.
  await rm(file);
  await h.processor.scan();
  const report = await h.scheduler.tick();
  expect(report.runsStarted).toBe(0);
  expect(await runs()).toEqual([
    { run_type: "backfill", state: "queued", tasks: 0 },
    { run_type: "manual", state: "queued", tasks: 0 },
  ]);
  const waiting = await backfill(id);
  expect(waiting).toMatchObject({ state: "running", waiting_reason: "dag_inactive" });
  expect(waiting.waiting_message).toContain("gone_queued");
  const listed = (await h.app.inject({ method: "GET", url: "/api/v1/backfills?dag_id=gone_queued" })).json();
  expect(listed.backfills[0]).toMatchObject({ id, waiting_reason: "dag_inactive" });
  // The CLI says so too.
  const env = { BATON_DATABASE_URL: h.db.url, BATON_LOG_LEVEL: "error" };
  const [status, list] = await Promise.all([runBaton(["backfill", "status", String(id)], env), runBaton(["backfill", "list", "--dag-id", "gone_queued"], env)]);
  expect(status).toMatchObject({ code: 0, stderr: "" });
  expect(status.stdout).toContain(`waiting: ${waiting.waiting_message}`);
  expect(list).toMatchObject({ code: 0, stderr: "" });
  expect(list.stdout.split("\n")[0]).toMatch(/ waiting_reason$/);
  expect(list.stdout.split("\n")[1]).toMatch(/ dag_inactive$/);
  // Cancelled, it waits for its queued run all the same (unless forced).
  const cancelled = (await h.app.inject({ method: "POST", url: `/api/v1/backfills/${id}/cancel` })).json();
  expect(cancelled).toMatchObject({ state: "cancelling", waiting_reason: "dag_inactive" });
  expect(cancelled.waiting_message).toContain("cancel it with force");

  // A paused DAG holds its manual run, never its backfill's: no waiting reason for that.
  await h.writeDag("gone_queued.ts", SOURCE);
  await h.processor.scan();
  await h.db.pool.query("UPDATE dag SET is_paused = 1 WHERE dag_id = 'gone_queued'");
  await h.scheduler.tick();
  expect(await runs()).toEqual([
    { run_type: "backfill", state: "running", tasks: 1 },
    { run_type: "manual", state: "queued", tasks: 0 },
  ]);
  expect(await backfill(id)).toMatchObject({ waiting_reason: null, waiting_message: null });

  await h.db.pool.query("UPDATE dag SET is_paused = 0 WHERE dag_id = 'gone_queued'");
  await h.scheduler.tick();
  expect((await runs()).map((r) => r.state)).toEqual(["running", "running"]);
}, 60_000); // two CLI processes, each 1–5 s to start on a busy machine
