// Runs a backfill replaced, and runs a backfill created that were deleted since: what the other
// operations make of them. A replaced run is history ("never doubled"): no dead letter, and no
// clear or re-drive runs it again beside the run that replaced it.
// Fake clock, manual ticks, real MariaDB and workers.
import { FakeClock } from "../../core/clock.ts";
import { BACKFILL_PRIORITY_FLOOR } from "../../store/transitions/claimTasks.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { redriveDeadLetters } from "../../store/transitions/redriveDeadLetters.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const clock = new FakeClock("2026-02-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, workers: 2 });

const post = (url: string, payload: Record<string, unknown>) => h.app.inject({ method: "POST", url: `/api/v1${url}`, payload });
const get = (url: string) => h.app.inject({ method: "GET", url: `/api/v1${url}` });

/** Ticks (one second apart) until the backfill is completed. */
async function complete(id: number): Promise<void> {
  await waitFor(
    `backfill ${id} to complete`,
    async () => {
      clock.advance(1000);
      await h.scheduler.tick();
      return (await get(`/backfills/${id}`)).json().state === "completed";
    },
    30_000,
    50,
  );
}

async function backfill(body: Record<string, unknown>): Promise<number> {
  const res = await post("/backfills", body);
  expect(res.statusCode).toBe(200);
  const id = res.json().id as number;
  await complete(id);
  return id;
}

async function runsOf(dagId: string): Promise<RowDataPacket[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT id, run_id, state, logical_date, replaced_by_backfill_id FROM dag_run WHERE dag_id = ? ORDER BY logical_date, id",
    [dagId],
  );
  return rows;
}

beforeAll(async () => {
  await h.start({
    "history.ts": dagSource(`export default dag({ id: "bh", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  const a = t.task("a", async (ctx) => { if (ctx.conf.fail) throw new FailError("asked to fail"); return 1; });
  t.task("b", { upstream: [a] }, async () => 2);
});
export const saga = dag({ id: "bh_saga", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  const charge = t.task("charge", { priorityWeight: 5, compensate: async () => undefined }, async () => 1);
  t.task("ship", { upstream: [charge] }, async () => { throw new FailError("no courier"); });
});
export const mark = dag({ id: "bh_mark", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  const a = t.task("a", async (ctx) => { if (ctx.conf.fail) throw new FailError("asked to fail"); return 1; });
  t.task("b", { upstream: [a] }, async () => 2);
});
export const race = dag({ id: "bh_race", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("a", async (ctx) => { if (ctx.conf.fail) throw new FailError("asked to fail"); return 1; });
});
export const gone = dag({ id: "bh_gone", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("a", async () => 1);
});`),
  });
  await h.run();
}, 60_000);

afterAll(() => h.stop(), 30_000);

describe("runs a backfill replaced", () => {
  it("are history: no dead letters, never re-driven or cleared again, so each date keeps one current run", async () => {
    await backfill({ dag_id: "bh", from_date: "2026-01-01", to_date: "2026-01-02", dag_run_conf: { fail: true } });
    const before = (await get("/deadLetters?dag_id=bh")).json();
    expect(before.total_entries).toBe(2);
    const oldIds = before.dead_letters.map((d: { task_instance_id: number }) => d.task_instance_id);
    const oldRuns = (await runsOf("bh")).map((r) => r.run_id as string);

    const again = await backfill({ dag_id: "bh", from_date: "2026-01-01", to_date: "2026-01-02", reprocess_behavior: "failed" });
    const runs = await runsOf("bh");
    expect(runs.map((r) => [r.run_id, r.state, r.replaced_by_backfill_id === null ? null : Number(r.replaced_by_backfill_id)])).toEqual([
      [oldRuns[0], "failed", again],
      [expect.stringMatching(/^backfill__2026-01-01/), "success", null],
      [oldRuns[1], "failed", again],
      [expect.stringMatching(/^backfill__2026-01-02/), "success", null],
    ]);

    // Not dead letters any more: the date's failure was dealt with by the re-run.
    expect((await get("/deadLetters?dag_id=bh")).json()).toEqual({ dead_letters: [], total_entries: 0 });
    for (const dry_run of [true, false]) {
      const all = await post("/deadLetters/redrive", { dag_id: "bh", dry_run });
      expect([all.statusCode, all.json().redriven]).toEqual([200, 0]);
    }
    // Named by id: refused, nothing re-driven, with the run that replaced it.
    const byId = await post("/deadLetters/redrive", { task_instance_ids: oldIds });
    expect([byId.statusCode, byId.json().code]).toEqual([409, "BATON_DAG_RUN_REPLACED"]);
    expect(byId.json().detail).toContain(runs[1]!.run_id);
    // A clear of its tasks, or of the whole run, would run the date a second time: refused too (a dry run included).
    for (const dry_run of [true, false]) {
      const clear = await post("/dags/bh/clearTaskInstances", { dag_run_id: oldRuns[0], dry_run, only_failed: false });
      expect([clear.statusCode, clear.json().code]).toEqual([409, "BATON_DAG_RUN_REPLACED"]);
    }
    const requeue = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/bh/dagRuns/${oldRuns[0]}`, payload: { state: "queued" } });
    expect([requeue.statusCode, requeue.json().code]).toEqual([409, "BATON_DAG_RUN_REPLACED"]);
    // A clear over a range of dates clears each date's current run, never the history beside it.
    const range = await post("/dags/bh/clearTaskInstances", { start_date: "2026-01-01T00:00:00Z", end_date: "2026-01-02T00:00:00Z", task_ids: ["b"], only_failed: false });
    expect(range.statusCode).toBe(200);
    expect(range.json().task_instances.map((t: { dag_run_id: string }) => t.dag_run_id)).toEqual([runs[1]!.run_id, runs[3]!.run_id]);

    // Nothing of the old runs ran again, and nothing was cleared.
    expect((await runsOf("bh")).filter((r) => r.replaced_by_backfill_id !== null).map((r) => r.state)).toEqual(["failed", "failed"]);
    const [tries] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT ti.state, ti.try_number FROM task_instance ti WHERE ti.dag_id = 'bh' AND ti.task_id = 'a' AND ti.run_id IN (?, ?) ORDER BY ti.run_id`,
      oldRuns,
    );
    expect(tries.map((t) => [t.state, t.try_number])).toEqual([
      ["failed", 1],
      ["failed", 1],
    ]);
  });
});

describe("a run a backfill replaced between a re-drive's listing and its clear", () => {
  it("is skipped by a re-drive by dag_id, and its dead letter is answered as skipped (replaced), not as re-driven", async () => {
    await backfill({ dag_id: "bh_race", from_date: "2026-01-01", to_date: "2026-01-01", dag_run_conf: { fail: true } });
    const [old] = await runsOf("bh_race");
    const versions = new VersionCache(h.db.pool);
    let replacedBy: number | null = null;
    const out = await redriveDeadLetters(h.db, clock.now(), { dagId: "bh_race" }, false, (hash) => versions.shape(hash), async () => {
      replacedBy = await backfill({ dag_id: "bh_race", from_date: "2026-01-01", to_date: "2026-01-01", reprocess_behavior: "failed" });
    });
    expect(Number((await runsOf("bh_race")).find((r) => r.run_id === old!.run_id)!.replaced_by_backfill_id)).toBe(replacedBy);
    expect(out.letters.map((l) => [l.run_id, l.task_id, l.skipped])).toEqual([[old!.run_id, "a", "replaced"]]);
    expect(out.redriven).toBe(0);
  });
});

describe("marking a run a backfill replaced", () => {
  it("is refused, a dry run too: a mark re-decides the run (its failed downstream cleared and run again, the run reopened, its callback owed), so the date would run twice", async () => {
    await backfill({ dag_id: "bh_mark", from_date: "2026-01-01", to_date: "2026-01-02", dag_run_conf: { fail: true } });
    const oldRuns = (await runsOf("bh_mark")).map((r) => r.run_id as string);
    await backfill({ dag_id: "bh_mark", from_date: "2026-01-01", to_date: "2026-01-02", reprocess_behavior: "failed" });
    const runs = await runsOf("bh_mark");
    expect(runs.map((r) => [r.run_id, r.state, r.replaced_by_backfill_id === null])).toEqual([
      [oldRuns[0], "failed", false],
      [expect.stringMatching(/^backfill__2026-01-01/), "success", true],
      [oldRuns[1], "failed", false],
      [expect.stringMatching(/^backfill__2026-01-02/), "success", true],
    ]);
    const current = [runs[1]!.run_id as string, runs[3]!.run_id as string];
    const refused = (res: { statusCode: number; json: () => { code: string; detail: string } }) => {
      expect([res.statusCode, res.json().code]).toEqual([409, "BATON_DAG_RUN_REPLACED"]);
      expect(res.json().detail).toContain(current[0]);
    };

    // Marking its failed task success would clear and run "b" (upstream_failed) on a date already re-run;
    // marking "b" skipped runs nothing, but re-decides the history run's outcome: every mark is refused.
    for (const dry_run of [true, false]) {
      refused(await h.app.inject({ method: "PATCH", url: `/api/v1/dags/bh_mark/dagRuns/${oldRuns[0]}/taskInstances/a`, payload: { new_state: "success", dry_run } }));
      for (const [task_id, new_state] of [["a", "success"], ["b", "skipped"], ["b", "failed"]]) {
        refused(await post("/dags/bh_mark/updateTaskInstancesState", { dag_run_id: oldRuns[0], task_id, new_state, dry_run, include_downstream: true }));
      }
    }
    // Marking the run success would owe its onSuccess callback for a date whose current run succeeded.
    refused(await h.app.inject({ method: "PATCH", url: `/api/v1/dags/bh_mark/dagRuns/${oldRuns[0]}`, payload: { state: "success" } }));
    // A replaced run has finished (only a finished run is replaced, and nothing reopens it): it cannot be cancelled.
    const cancel = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/bh_mark/dagRuns/${oldRuns[0]}`, payload: { state: "failed" } });
    expect([cancel.statusCode, cancel.json().code]).toEqual([409, "BATON_DAG_RUN_FINISHED"]);

    // An execution_date names its date's current run, not the history beside it.
    const byDate = await post("/dags/bh_mark/updateTaskInstancesState", { execution_date: "2026-01-01T00:00:00Z", task_id: "a", new_state: "failed" });
    expect(byDate.statusCode).toBe(200);
    expect(byDate.json().task_instances.map((t: { dag_run_id: string }) => t.dag_run_id)).toEqual([current[0]]);
    // With include_past / include_future, each earlier / later date's current run: the replaced runs are left out.
    for (const dry_run of [true, false]) {
      const past = await post("/dags/bh_mark/updateTaskInstancesState", { dag_run_id: current[1], task_id: "a", new_state: "success", include_past: true, dry_run });
      expect([past.statusCode, past.json().task_instances]).toEqual([200, []]);
      const future = await post("/dags/bh_mark/updateTaskInstancesState", { dag_run_id: current[0], task_id: "a", new_state: "success", include_future: true, dry_run });
      expect([future.statusCode, future.json().task_instances]).toEqual([200, []]);
    }

    // The history runs are as they ended: nothing marked, cleared, queued or run; no callback owed.
    const [old] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT r.run_id, r.state AS run_state, r.callback_due, ti.task_id, ti.state, ti.try_number FROM dag_run r JOIN task_instance ti ON ti.dag_run_id = r.id
        WHERE r.dag_id = 'bh_mark' AND r.run_id IN (?, ?) ORDER BY r.run_id, ti.task_id`,
      oldRuns,
    );
    expect(old.map((t) => [t.run_id, t.run_state, Number(t.callback_due), t.task_id, t.state, t.try_number])).toEqual([
      [oldRuns[0], "failed", 0, "a", "failed", 1],
      [oldRuns[0], "failed", 0, "b", "upstream_failed", 0],
      [oldRuns[1], "failed", 0, "a", "failed", 1],
      [oldRuns[1], "failed", 0, "b", "upstream_failed", 0],
    ]);
  });
});

describe("runs a backfill created and that were deleted since", () => {
  it("count as done (deleted), so the progress still reaches the total", async () => {
    const id = await backfill({ dag_id: "bh_gone", from_date: "2026-01-01", to_date: "2026-01-03" });
    const runs = await runsOf("bh_gone");
    expect(runs.map((r) => r.state)).toEqual(["success", "success", "success"]);
    const deleted = await h.app.inject({ method: "DELETE", url: `/api/v1/dags/bh_gone/dagRuns/${encodeURIComponent(runs[1]!.run_id)}` });
    expect(deleted.statusCode).toBe(204);
    const status = (await get(`/backfills/${id}`)).json();
    expect(status).toMatchObject({
      state: "completed",
      total_dates: 3,
      done: 3,
      failed: 0,
      counts: { pending: 0, queued: 0, running: 0, success: 2, failed: 0, skipped: 0, deleted: 1 },
    });
    const counted = Object.values(status.counts as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(counted).toBe(status.total_dates);
  });
});

describe("a backfill run's saga", () => {
  it("runs its compensations at the backfill's priority, like the run's other tasks, below every other run's", async () => {
    await backfill({ dag_id: "bh_saga", from_date: "2026-01-01", to_date: "2026-01-01" });
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, priority_weight FROM task_instance WHERE dag_id = 'bh_saga' ORDER BY task_id");
    expect(tis.map((t) => [t.task_id, t.state])).toEqual([
      ["charge", "success"],
      ["charge__compensate", "success"],
      ["ship", "failed"],
    ]);
    for (const t of tis) expect(Number(t.priority_weight)).toBeLessThan(BACKFILL_PRIORITY_FLOOR);
  });
});
