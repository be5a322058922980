// Backfill end to end on a fake clock: dry run, bad input, reprocess behaviors, backwards order,
// max_active_runs at every instant, in-flight dates never doubled, pause/unpause/cancel (and
// force), paused DAGs, and no collision between scheduled and backfill runs on one date.
// The scheduler ticks only when a test calls tick(); real MariaDB, real workers.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildApp } from "../../api/app.ts";
import { FakeClock } from "../../core/clock.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { createBackfill } from "../../store/transitions/createBackfill.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const clock = new FakeClock("2026-04-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, workers: 4, heartbeatMs: 300, killGraceMs: 500 });
let releaseDir: string;

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const day = (n: number, month = "01") => `2026-${month}-${String(n).padStart(2, "0")}T00:00:00.000Z`;

const post = (url: string, payload?: Record<string, unknown>) =>
  h.app.inject(payload === undefined ? { method: "POST", url: `/api/v1${url}` } : { method: "POST", url: `/api/v1${url}`, payload });
const get = (url: string) => h.app.inject({ method: "GET", url: `/api/v1${url}` });

async function create(body: Record<string, unknown>): Promise<number> {
  const res = await post("/backfills", body);
  expect(res.statusCode).toBe(200);
  return res.json().id;
}

async function backfillRuns(id: number): Promise<RowDataPacket[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT id, run_id, run_type, state, logical_date, queued_at, start_date, end_date, conf FROM dag_run WHERE backfill_id = ? ORDER BY id",
    [id],
  );
  return rows;
}

async function activeOf(id: number): Promise<number> {
  return (await backfillRuns(id)).filter((r) => r.state === "queued" || r.state === "running").length;
}

async function release(dateIso: string): Promise<void> {
  await writeFile(path.join(releaseDir, dateIso.slice(0, 10)), "go");
}

/** A tick one second later, so runs created by it never share an instant with earlier ends. */
async function tick() {
  clock.advance(1000);
  return h.scheduler.tick();
}

/** Ticks until the backfill is completed or cancelled, asserting max_active_runs after each tick
 *  and waiting for its active runs to end before the next one. */
async function drive(id: number, maxActive: number): Promise<void> {
  for (let i = 0; i < 60; i++) {
    await tick();
    expect(await activeOf(id)).toBeLessThanOrEqual(maxActive);
    const state = (await get(`/backfills/${id}`)).json().state;
    if (state === "completed" || state === "cancelled") return;
    await waitFor(`backfill ${id}'s runs to end`, async () => (await activeOf(id)) === 0, 20_000);
  }
  throw new Error(`backfill ${id} did not finish`);
}

/** Ticks until the backfill is completed: for dependsOnPast runs, which wait for a tick to release them. */
async function driveTicking(id: number): Promise<void> {
  await waitFor(`backfill ${id} to complete`, async () => {
    await tick();
    return (await get(`/backfills/${id}`)).json().state === "completed";
  }, 20_000);
}

/**
 * The most runs of a backfill active (queued or running) at once. There is no event log on this
 * branch to replay, so it is computed from the runs' own timestamps: a run is active from its
 * queued_at to its end_date, both inclusive (conservative: a run ending at the instant another is
 * created counts as overlapping it; tick() moves the clock on, so that never happens by accident).
 * If an event_log table exists (migration 0010, being added meanwhile), it is replayed as well.
 */
async function maxActiveEver(id: number): Promise<number> {
  const runs = await backfillRuns(id);
  let max = 0;
  for (const r of runs) {
    const at = (r.queued_at as Date).getTime();
    const active = runs.filter((o) => (o.queued_at as Date).getTime() <= at && (o.end_date === null || (o.end_date as Date).getTime() >= at)).length;
    max = Math.max(max, active);
  }
  const [tables] = await h.db.pool.query<RowDataPacket[]>("SHOW TABLES LIKE 'event_log'");
  if (tables.length > 0) {
    const [events] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT e.from_state, e.to_state FROM event_log e JOIN dag_run r ON r.id = e.dag_run_id
        WHERE e.kind = 'run' AND r.backfill_id = ? ORDER BY e.id`,
      [id],
    );
    const isActive = (s: string | null) => (s === "queued" || s === "running" ? 1 : 0);
    let active = 0;
    for (const e of events) {
      active += isActive(e.to_state) - isActive(e.from_state);
      max = Math.max(max, active);
    }
  }
  return max;
}

async function counts(): Promise<number[]> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT (SELECT COUNT(*) FROM backfill) AS b, (SELECT COUNT(*) FROM backfill_date) AS d, (SELECT COUNT(*) FROM dag_run) AS r, (SELECT COUNT(*) FROM task_instance) AS t",
  );
  return [Number(row!.b), Number(row!.d), Number(row!.r), Number(row!.t)];
}

beforeAll(async () => {
  await h.start();
  releaseDir = path.join(path.dirname(h.dagsFolder), "release");
  await mkdir(releaseDir, { recursive: true });
  await h.writeDag(
    "quick.ts",
    dagSource(`export default dag({ id: "bf_quick", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("work", async (ctx) => {
    if (ctx.conf.failEven && ctx.logicalDate.getUTCDate() % 2 === 0) throw new FailError("even day");
    return ctx.logicalDate.toISOString();
  });
});`),
  );
  await h.writeDag(
    "held.ts",
    `import { existsSync } from "node:fs";
import { dag } from "baton";
export default dag({ id: "bf_held", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("hold", async (ctx) => {
    const file = ${JSON.stringify(releaseDir)} + "/" + ctx.logicalDate.toISOString().slice(0, 10);
    await new Promise((resolve, reject) => {
      const timer = setInterval(() => { if (existsSync(file)) { clearInterval(timer); resolve(undefined); } }, 20);
      ctx.signal.addEventListener("abort", () => { clearInterval(timer); reject(new Error("aborted")); });
    });
    return "released";
  });
});
`,
  );
  await h.writeDag(
    "sched.ts",
    dagSource(`export default dag({ id: "bf_sched", schedule: "@daily", startDate: "2026-01-01", catchup: true, isPausedUponCreation: true }, (t) => {
  t.task("noop", async () => 1);
});`),
  );
  await h.writeDag(
    "past.ts",
    dagSource(`export default dag({ id: "bf_past", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("load", { dependsOnPast: true }, async (ctx) => {
    if (ctx.conf.failDay === ctx.logicalDate.getUTCDate()) throw new FailError("failing day " + ctx.conf.failDay);
    return ctx.logicalDate.toISOString();
  });
});`),
  );
  await h.writeDag(
    "open.ts",
    dagSource(`export default dag({ id: "bf_open", schedule: "@daily", startDate: "2026-04-01", catchup: false, isPausedUponCreation: true }, (t) => {
  t.task("noop", async () => 1);
});`),
  );
  await h.writeDag(
    "mondays.ts",
    dagSource(`export default dag({ id: "bf_mondays", schedule: "0 0 * * 1", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => { t.task("noop", async () => 1); });`),
  );
  await h.writeDag("one.ts", dagSource(`export default dag({ id: "bf_one", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => { t.task("noop", async () => 1); });`));
  await h.writeDag("once.ts", dagSource(`export default dag({ id: "bf_once", schedule: "@once", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => { t.task("noop", async () => 1); });`));
  await h.writeDag("manual.ts", dagSource(`export default dag({ id: "bf_manual", schedule: null }, (t) => { t.task("noop", async () => 1); });`));
  await h.writeDag(
    "minutely.ts",
    dagSource(`export default dag({ id: "bf_minutely", schedule: "1m", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => { t.task("noop", async () => 1); });`),
  );
  await h.run();
}, 60_000);

afterAll(async () => {
  // Let every held task go, so the worker stops at once.
  for (let m = 1; m <= 3; m++) for (let d = 1; d <= 12; d++) await release(day(d, `0${m}`));
  await h.stop();
}, 30_000);

describe("backfill", () => {
  it("bad input: reversed range, no schedule, unknown DAG, bad date, over the max runs without force", async () => {
    const before = await counts();
    const problem = async (body: Record<string, unknown>) => {
      const res = await post("/backfills", body);
      return [res.statusCode, res.json().code];
    };
    expect(await problem({ dag_id: "bf_quick", from_date: "2026-01-05", to_date: "2026-01-01" })).toEqual([400, "BATON_BACKFILL_INVALID_RANGE"]);
    expect(await problem({ dag_id: "bf_manual", from_date: "2026-01-01", to_date: "2026-01-05" })).toEqual([400, "BATON_BACKFILL_NO_SCHEDULE"]);
    // As Airflow: no backfill of a non-periodic schedule; dependsOnPast tasks need oldest first and a reprocess behavior.
    for (const dryRun of [false, true]) {
      const past = { dag_id: "bf_past", from_date: "2026-01-01", to_date: "2026-01-05", dry_run: dryRun };
      expect(await problem({ dag_id: "bf_once", from_date: "2025-12-01", to_date: "2026-01-05", dry_run: dryRun })).toEqual([400, "BATON_BACKFILL_NO_SCHEDULE"]);
      expect(await problem({ ...past, reprocess_behavior: "failed", run_backwards: true })).toEqual([400, "BATON_BACKFILL_INVALID_DIRECTION"]);
      expect(await problem({ ...past, reprocess_behavior: "completed", run_backwards: true })).toEqual([400, "BATON_BACKFILL_INVALID_DIRECTION"]);
      expect(await problem(past)).toEqual([400, "BATON_BACKFILL_INVALID_REPROCESS"]);
      expect(await problem({ ...past, reprocess_behavior: "none" })).toEqual([400, "BATON_BACKFILL_INVALID_REPROCESS"]);
    }
    const pastForwards = await post("/backfills", { dag_id: "bf_past", from_date: "2026-01-01", to_date: "2026-01-05", reprocess_behavior: "failed", dry_run: true });
    expect(pastForwards.statusCode).toBe(200);
    expect(await problem({ dag_id: "nope", from_date: "2026-01-01", to_date: "2026-01-05" })).toEqual([404, "BATON_DAG_NOT_FOUND"]);
    // A past range holding no date of the schedule (Tuesday to Thursday of a Monday DAG): Airflow's "No runs to create".
    for (const dryRun of [false, true]) {
      expect(await problem({ dag_id: "bf_mondays", from_date: "2026-01-06", to_date: "2026-01-08", dry_run: dryRun })).toEqual([400, "BATON_BACKFILL_NO_DATES"]);
    }
    const mondays = await post("/backfills", { dag_id: "bf_mondays", from_date: "2026-01-06", to_date: "2026-01-08" });
    expect(mondays.json().detail).toContain('no logical date of "0 0 * * 1" from 2026-01-06T00:00:00.000Z to 2026-01-08T00:00:00.000Z');
    expect(await problem({ dag_id: "bf_quick", from_date: "yesterday", to_date: "2026-01-05" })).toEqual([400, "BATON_VALIDATION_FAILED"]);
    expect(await problem({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-05", max_active_runs: 0 })).toEqual([400, "BATON_VALIDATION_FAILED"]);
    expect(await problem({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-05", reprocess_behavior: "all" })).toEqual([400, "BATON_VALIDATION_FAILED"]);
    // The default maximum (100,000): 70 days of a one-minute interval is 100,800 runs.
    const big = { dag_id: "bf_minutely", from_date: "2026-01-01", to_date: "2026-03-11T23:59:00Z" };
    expect(await problem(big)).toEqual([400, "BATON_BACKFILL_TOO_LARGE"]);
    const forced = await post("/backfills", { ...big, force: true, dry_run: true });
    expect(forced.statusCode).toBe(200);
    expect(forced.json().total_dates).toBe(100_800);
    // A configured maximum (BATON_BACKFILL_MAX_RUNS).
    const small = await buildApp({ db: h.db, clock, logger: h.logger, config: { logsFolder: h.logsFolder, backfillMaxRuns: 5 }, auth: { mode: "off" } });
    try {
      const over = await small.inject({ method: "POST", url: "/api/v1/backfills", payload: { dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-06" } });
      expect([over.statusCode, over.json().code]).toEqual([400, "BATON_BACKFILL_TOO_LARGE"]);
      expect(over.json().detail).toContain("more than 5 runs");
      const exact = await small.inject({ method: "POST", url: "/api/v1/backfills", payload: { dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-05", dry_run: true } });
      expect(exact.statusCode).toBe(200);
    } finally {
      await small.close();
    }
    expect((await get("/backfills/999999")).json().code).toBe("BATON_BACKFILL_NOT_FOUND");
    expect((await post("/backfills/999999/pause")).statusCode).toBe(404);
    expect(await counts()).toEqual(before);
  });

  it("runs a paused DAG's dates oldest first; reprocess none skips every date that has a run", async () => {
    const id = await create({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-06", dag_run_conf: { failEven: true }, max_active_runs: 3 });
    await drive(id, 3);
    const runs = await backfillRuns(id);
    expect(runs.map((r) => iso(r.logical_date))).toEqual([1, 2, 3, 4, 5, 6].map((d) => day(d)));
    expect(runs.map((r) => r.state)).toEqual(["success", "failed", "success", "failed", "success", "failed"]);
    expect(runs.every((r) => r.run_type === "backfill" && JSON.parse(r.conf).failEven === true)).toBe(true);
    expect(runs[0]!.run_id).toBe(`backfill__${day(1)}__${id}`);
    expect(await maxActiveEver(id)).toBeLessThanOrEqual(3);
    const [[dag]] = await h.db.pool.query<RowDataPacket[]>("SELECT is_paused FROM dag WHERE dag_id = 'bf_quick'");
    expect(dag!.is_paused).toBe(1);
    const [scheduled] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE dag_id = 'bf_quick' AND run_type <> 'backfill'");
    expect(scheduled).toEqual([]);
    const detail = (await get(`/backfills/${id}`)).json();
    expect(detail).toMatchObject({ state: "completed", total_dates: 6, done: 6, failed: 3, dates_left_total: 0, dates_left: [] });
    expect(detail.counts).toEqual({ pending: 0, queued: 0, running: 0, success: 3, failed: 3, skipped: 0, deleted: 0 });

    const none = await create({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-06" });
    await drive(none, 10);
    expect(await backfillRuns(none)).toEqual([]);
    expect((await get(`/backfills/${none}`)).json()).toMatchObject({ state: "completed", done: 6, skipped_by_reason: { exists: 6 } });
  });

  it("dry run lists each date and what would happen, and writes nothing", async () => {
    const before = await counts();
    const res = await post("/backfills", { dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-07", reprocess_behavior: "failed", run_backwards: true, dry_run: true });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ dry_run: true, total_dates: 7 });
    expect(body.dates.map((d: Record<string, unknown>) => [d.logical_date, d.action, d.reason])).toEqual([
      [day(7), "create", null],
      [day(6), "reprocess", null],
      [day(5), "skip", "succeeded"],
      [day(4), "reprocess", null],
      [day(3), "skip", "succeeded"],
      [day(2), "reprocess", null],
      [day(1), "skip", "succeeded"],
    ]);
    expect(body.dates[1].existing_runs).toEqual([expect.stringMatching(/^backfill__2026-01-06/)]);
    expect(body.dates[1].data_interval_end).toBe(day(7));
    expect(await counts()).toEqual(before);
  });

  it("reprocess failed, backwards: re-runs only the failed dates, newest first, keeping the old runs as replaced history", async () => {
    const id = await create({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-06", reprocess_behavior: "failed", run_backwards: true, max_active_runs: 1 });
    await drive(id, 1);
    const runs = await backfillRuns(id);
    expect(runs.map((r) => [iso(r.logical_date), r.state])).toEqual([
      [day(6), "success"],
      [day(4), "success"],
      [day(2), "success"],
    ]);
    expect(await maxActiveEver(id)).toBe(1);
    const [replaced] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT logical_date, state FROM dag_run WHERE dag_id = 'bf_quick' AND replaced_by_backfill_id = ? ORDER BY logical_date",
      [id],
    );
    expect(replaced.map((r) => [iso(r.logical_date), r.state])).toEqual([2, 4, 6].map((d) => [day(d), "failed"]));
    expect((await get(`/backfills/${id}`)).json().skipped_by_reason).toEqual({ succeeded: 3 });
  });

  it("reprocess completed re-runs every date in range", async () => {
    const id = await create({ dag_id: "bf_quick", from_date: "2026-01-01", to_date: "2026-01-03", reprocess_behavior: "completed" });
    await drive(id, 10);
    expect((await backfillRuns(id)).map((r) => [iso(r.logical_date), r.state])).toEqual([1, 2, 3].map((d) => [day(d), "success"]));
    // Still one current automated run per date.
    const [current] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT logical_date, COUNT(*) AS n FROM dag_run WHERE dag_id = 'bf_quick' AND replaced_by_backfill_id IS NULL GROUP BY logical_date HAVING n > 1",
    );
    expect(current).toEqual([]);
  });

  it("dependsOnPast: a re-run of a failed date waits on the date before it, not on the failed run it replaces", async () => {
    const first = await create({ dag_id: "bf_past", from_date: "2026-01-01", to_date: "2026-01-02", reprocess_behavior: "failed", dag_run_conf: { failDay: 2 } });
    await driveTicking(first);
    expect((await backfillRuns(first)).map((r) => [iso(r.logical_date), r.state])).toEqual([
      [day(1), "success"],
      [day(2), "failed"],
    ]);
    // Day 2 is re-run (its failed run marked replaced) and day 3 runs after it.
    const second = await create({ dag_id: "bf_past", from_date: "2026-01-01", to_date: "2026-01-03", reprocess_behavior: "failed" });
    await driveTicking(second);
    expect((await backfillRuns(second)).map((r) => [iso(r.logical_date), r.state])).toEqual([
      [day(2), "success"],
      [day(3), "success"],
    ]);
    const [tis] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT t.state FROM task_instance t JOIN dag_run r ON r.id = t.dag_run_id WHERE r.backfill_id = ? ORDER BY r.logical_date",
      [second],
    );
    expect(tis.map((t) => t.state)).toEqual(["success", "success"]);
  });

  it("never has more than max_active_runs active, and refills as runs end", async () => {
    const id = await create({ dag_id: "bf_held", from_date: "2026-01-01", to_date: "2026-01-06", max_active_runs: 2 });
    expect((await tick()).backfillRunsCreated).toBe(2);
    await waitFor("two held runs running", async () => (await backfillRuns(id)).filter((r) => r.state === "running").length === 2);
    for (let i = 0; i < 3; i++) expect((await tick()).backfillRunsCreated).toBe(0);
    let detail = (await get(`/backfills/${id}`)).json();
    expect(detail).toMatchObject({ state: "running", dates_left_total: 4, dates_left: [3, 4, 5, 6].map((d) => day(d)) });
    expect(detail.counts).toMatchObject({ running: 2, pending: 4 });
    for (let d = 1; d <= 6; d++) {
      await release(day(d));
      await waitFor(`the run of day ${d} to succeed`, async () => (await backfillRuns(id)).find((r) => iso(r.logical_date) === day(d))?.state === "success");
      const created = (await tick()).backfillRunsCreated;
      expect(created).toBe(d <= 4 ? 1 : 0);
      expect(await activeOf(id)).toBeLessThanOrEqual(2);
    }
    await tick();
    detail = (await get(`/backfills/${id}`)).json();
    expect(detail).toMatchObject({ state: "completed", done: 6, failed: 0 });
    expect((await backfillRuns(id)).map((r) => iso(r.logical_date))).toEqual([1, 2, 3, 4, 5, 6].map((d) => day(d)));
    expect(await maxActiveEver(id)).toBe(2);
  });

  it("a date with a run in progress is never doubled, whatever the reprocess behavior", async () => {
    // Runs of Jan 10 and 11 in progress: manual ones (a second backfill could not start while a first one ran).
    const manual = [];
    for (const d of [10, 11]) manual.push(await h.trigger("bf_held", { logicalDate: day(d), runId: `held_${d}` }));
    await tick();
    const second = await create({ dag_id: "bf_held", from_date: "2026-01-10", to_date: "2026-01-12", reprocess_behavior: "completed" });
    await tick();
    expect((await backfillRuns(second)).map((r) => iso(r.logical_date))).toEqual([day(12)]);
    expect((await get(`/backfills/${second}`)).json().skipped_by_reason).toEqual({ in_flight: 2 });
    for (const d of [10, 11, 12]) await release(day(d));
    for (const runId of manual) {
      // The DAG is paused: its manual runs wait queued; cancel them.
      expect((await h.app.inject({ method: "PATCH", url: `/api/v1/dags/bf_held/dagRuns/${runId}`, payload: { state: "failed" } })).statusCode).toBe(200);
    }
    await drive(second, 10);
    const [dup] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT logical_date FROM dag_run WHERE dag_id = 'bf_held' AND replaced_by_backfill_id IS NULL GROUP BY logical_date HAVING COUNT(*) > 1",
    );
    expect(dup).toEqual([]);
  });

  it("refuses a second backfill of a DAG while one is unfinished (running, paused or cancelling), as Airflow does", async () => {
    const first = await create({ dag_id: "bf_one", from_date: "2026-01-01", to_date: "2026-01-03", max_active_runs: 1 });
    const before = await counts();
    for (const state of ["running", "paused"]) {
      if (state === "paused") expect((await post(`/backfills/${first}/pause`)).json().state).toBe("paused");
      const second = await post("/backfills", { dag_id: "bf_one", from_date: "2026-01-05", to_date: "2026-01-06" });
      expect([state, second.statusCode, second.json().code]).toEqual([state, 409, "BATON_BACKFILL_ALREADY_RUNNING"]);
      expect(second.json().detail).toContain(`backfill ${first} (${state})`);
    }
    // The common refusal is decided before the create transaction: no date is written (and
    // rolled back) for it. Transactions opened are counted through a Db that records them.
    let txs = 0;
    const counting: Db = { ...h.db, tx: (fn) => (txs++, h.db.tx(fn)) };
    const request = { dagId: "bf_one", fromDate: "2026-01-05", toDate: "2026-01-06", reprocessBehavior: "none", maxActiveRuns: 10, runBackwards: false, dagRunConf: {}, force: false } as const;
    await expect(createBackfill(counting, clock.now(), request, 1000)).rejects.toMatchObject({ code: "BATON_BACKFILL_ALREADY_RUNNING" });
    expect(txs).toBe(0);
    // A dry run writes nothing and still answers; another DAG's backfill is not held back.
    expect((await post("/backfills", { dag_id: "bf_one", from_date: "2026-01-05", to_date: "2026-01-06", dry_run: true })).statusCode).toBe(200);
    expect(await counts()).toEqual(before);
    expect((await post(`/backfills/${first}/cancel`)).json().state).toBe("cancelled");
    // Two at once: exactly one is created.
    const both = await Promise.all([1, 2].map(() => post("/backfills", { dag_id: "bf_one", from_date: "2026-01-05", to_date: "2026-01-06" })));
    expect(both.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const made = both.find((r) => r.statusCode === 200)!.json().id as number;
    expect((await get("/backfills?dag_id=bf_one")).json().backfills.map((b: { id: number }) => b.id)).toEqual([first, made]);
    await drive(made, 10);
    // Once it completed, the next one may start.
    const next = await create({ dag_id: "bf_one", from_date: "2026-01-07", to_date: "2026-01-07" });
    await drive(next, 10);
  });

  it("pause stops new runs, unpause resumes, cancel lets active runs finish and skips the rest", async () => {
    const id = await create({ dag_id: "bf_held", from_date: "2026-02-01", to_date: "2026-02-05", max_active_runs: 1 });
    expect((await tick()).backfillRunsCreated).toBe(1);
    const paused = await post(`/backfills/${id}/pause`);
    expect(paused.json()).toMatchObject({ state: "paused", is_paused: true, runs_failed: 0 });
    expect((await post(`/backfills/${id}/pause`)).statusCode).toBe(200); // idempotent
    await release(day(1, "02"));
    await waitFor("the first run to end", async () => (await activeOf(id)) === 0);
    expect((await tick()).backfillRunsCreated).toBe(0);
    expect((await post(`/backfills/${id}/unpause`)).json().state).toBe("running");
    expect((await tick()).backfillRunsCreated).toBe(1);

    const cancelled = await post(`/backfills/${id}/cancel`);
    expect(cancelled.json()).toMatchObject({ state: "cancelling", dates_left_total: 0, skipped_by_reason: { cancelled: 3 }, runs_failed: 0 });
    expect((await tick()).backfillRunsCreated).toBe(0);
    expect((await post(`/backfills/${id}/unpause`)).json().code).toBe("BATON_BACKFILL_FINISHED");
    const running = (await backfillRuns(id)).find((r) => r.state === "running" || r.state === "queued")!;
    expect(iso(running.logical_date)).toBe(day(2, "02"));
    await release(day(2, "02"));
    await waitFor("the second run to succeed", async () => (await activeOf(id)) === 0);
    await tick();
    const detail = (await get(`/backfills/${id}`)).json();
    expect(detail).toMatchObject({ state: "cancelled", done: 5 });
    expect(detail.counts).toMatchObject({ success: 2, skipped: 3 });
    expect(detail.completed_at).not.toBeNull();
    expect((await post(`/backfills/${id}/cancel`)).json().code).toBe("BATON_BACKFILL_FINISHED");
  });

  it("cancel with force fails the active runs through endRuns", async () => {
    const id = await create({ dag_id: "bf_held", from_date: "2026-03-01", to_date: "2026-03-03", max_active_runs: 2 });
    await tick();
    const heldTis = async () =>
      (
        await h.db.pool.query<RowDataPacket[]>(
          "SELECT t.state, t.error FROM task_instance t JOIN dag_run r ON r.id = t.dag_run_id WHERE r.backfill_id = ? ORDER BY t.id",
          [id],
        )
      )[0];
    await waitFor("two held tasks running", async () => (await heldTis()).filter((t) => t.state === "running").length === 2);
    const res = await post(`/backfills/${id}/cancel`, { force: true });
    expect(res.json()).toMatchObject({ state: "cancelled", failed: 2, skipped_by_reason: { cancelled: 1 }, runs_failed: 2 });
    const tis = await heldTis();
    expect(tis.map((t) => [t.state, JSON.parse(t.error).code])).toEqual([
      ["failed", "BATON_DAG_RUN_CANCELLED"],
      ["failed", "BATON_DAG_RUN_CANCELLED"],
    ]);
    expect((await tick()).backfillRunsCreated).toBe(0);
  });

  it("scheduled and backfill runs never share a logical date", async () => {
    // Backfill days 3-5 first (the DAG is paused: no scheduled run yet).
    const id = await create({ dag_id: "bf_sched", from_date: "2026-01-03", to_date: "2026-01-05" });
    await drive(id, 10);
    // Unpaused with catchup, the scheduler creates days 1..(now-1) but skips the backfilled dates.
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/bf_sched", payload: { is_paused: false } })).statusCode).toBe(200);
    clock.set("2026-04-02T00:00:00Z");
    await h.scheduler.tick();
    await h.scheduler.tick();
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT logical_date, GROUP_CONCAT(run_type) AS types, COUNT(*) AS n FROM dag_run WHERE dag_id = 'bf_sched' AND logical_date < '2026-01-08' GROUP BY logical_date ORDER BY logical_date",
    );
    expect(rows.map((r) => [iso(r.logical_date), r.types, Number(r.n)])).toEqual([
      [day(1), "scheduled", 1],
      [day(2), "scheduled", 1],
      [day(3), "backfill", 1],
      [day(4), "backfill", 1],
      [day(5), "backfill", 1],
      [day(6), "scheduled", 1],
      [day(7), "scheduled", 1],
    ]);
    // The key itself: a scheduled run on a backfilled date is refused.
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE backfill_id = ? LIMIT 1", [id]);
    await expect(
      h.db.pool.query(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, queued_at) VALUES ('bf_sched', 'x', ?, 'scheduled', 'queued', ?, ?)`,
        [run!.version_hash, run!.logical_date, clock.now()],
      ),
    ).rejects.toMatchObject({ code: "ER_DUP_ENTRY" });
    await h.app.inject({ method: "PATCH", url: "/api/v1/dags/bf_sched", payload: { is_paused: true } });
    const list = (await get("/backfills?dag_id=bf_sched")).json();
    expect(list).toMatchObject({ total_entries: 1, backfills: [{ id, dag_id: "bf_sched", state: "completed" }] });
  });

  it("CLI: dry run, a clear error with its code, create --detach and status", async () => {
    const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
    env.BATON_DATABASE_URL = h.db.url;
    env.BATON_LOG_LEVEL = "error";
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), "backfill", ...args], { cwd: ROOT, env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      });
    const [dry, bad, badBackwards, backwards] = await Promise.all([
      cli("create", "bf_quick", "--from", "2026-01-06", "--to", "2026-01-07", "--reprocess", "failed", "--dry-run"),
      cli("create", "bf_quick", "--from", "2026-01-07", "--to", "2026-01-06"),
      cli("create", "bf_quick", "--from", "2026-01-07", "--to", "2026-01-06", "--backwards"),
      cli("create", "bf_past", "--from", "2026-01-01", "--to", "2026-01-03", "--reprocess", "failed", "--backwards"),
    ]);
    expect(backwards.code).toBe(1);
    expect(backwards.stderr.trim()).toMatch(/^baton: BATON_BACKFILL_INVALID_DIRECTION: DAG "bf_past" has tasks with dependsOnPast \(load\)/);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`${day(7)}   create`);
    expect(dry.stdout).toContain("dry run: 2 date(s): 1 to create, 0 to re-run, 1 to skip; nothing was written");
    expect(bad.code).toBe(1);
    // It named only the API's run_backwards, and a reversed range with --backwards is refused too: say both, and that
    // the range stays from <= to.
    const reversed =
      "baton: BATON_BACKFILL_INVALID_RANGE: from_date 2026-01-07T00:00:00.000Z is after to_date 2026-01-06T00:00:00.000Z: " +
      "the range is from_date <= to_date (--from <= --to) in either direction; to process newest first, keep it so and set " +
      "run_backwards: true (--backwards)";
    expect({ code: bad.code, stderr: bad.stderr.trim() }).toEqual({ code: 1, stderr: reversed });
    expect({ code: badBackwards.code, stderr: badBackwards.stderr.trim() }).toEqual({ code: 1, stderr: reversed });

    const detached = await cli("create", "bf_quick", "--from", "2026-01-07", "--to", "2026-01-08", "--max-active-runs", "1", "--detach");
    expect(detached.code).toBe(0);
    const id = Number(/backfill (\d+) of bf_quick: 2 date\(s\)/.exec(detached.stdout)?.[1]);
    expect(id).toBeGreaterThan(0);
    await drive(id, 1);
    const status = await cli("status", String(id));
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`backfill ${id} completed: 2 date(s): 2 succeeded, 0 failed`);
  }, 90_000); // six CLI processes, each 1–5 s to start (tsx) on a busy machine

  // Last: it moves the clock to April 10.
  it("covers only dates whose data interval has ended; refuses a range with none; the scheduler runs the rest", async () => {
    clock.set("2026-04-10T12:00:00Z");
    const before = await counts();
    // @daily: April 9 ended at April 10 00:00; April 10 is open until April 11.
    const dry = await post("/backfills", { dag_id: "bf_open", from_date: "2026-04-08", to_date: "2026-04-13", dry_run: true });
    expect(dry.statusCode).toBe(200);
    expect(dry.json().dates.map((d: Record<string, unknown>) => d.logical_date)).toEqual([day(8, "04"), day(9, "04")]);
    for (const [from, to] of [
      ["2026-04-11", "2026-04-13"], // wholly in the future
      ["2026-04-10", "2026-04-13"], // from in the past, but every interval still open
      ["2026-04-10T18:00:00Z", "2026-04-10T20:00:00Z"], // no date at all, in the future
    ]) {
      for (const dryRun of [false, true]) {
        const res = await post("/backfills", { dag_id: "bf_open", from_date: from, to_date: to, dry_run: dryRun });
        expect([from, dryRun, res.statusCode, res.json().code]).toEqual([from, dryRun, 400, "BATON_BACKFILL_FUTURE_DATES"]);
      }
    }
    expect(await counts()).toEqual(before);

    const id = await create({ dag_id: "bf_open", from_date: "2026-04-08", to_date: "2026-04-13" });
    expect((await get(`/backfills/${id}`)).json().total_dates).toBe(2);
    await drive(id, 10);
    expect((await backfillRuns(id)).map((r) => [iso(r.logical_date), r.state])).toEqual([
      [day(8, "04"), "success"],
      [day(9, "04"), "success"],
    ]);
    // April 10's interval ends: the scheduler creates its scheduled run, nothing holds its date.
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/bf_open", payload: { is_paused: false } })).statusCode).toBe(200);
    clock.set("2026-04-11T00:00:05Z");
    await h.scheduler.tick();
    await h.app.inject({ method: "PATCH", url: "/api/v1/dags/bf_open", payload: { is_paused: true } });
    const [runs] = await h.db.pool.query<RowDataPacket[]>("SELECT run_type, logical_date FROM dag_run WHERE dag_id = 'bf_open' ORDER BY logical_date");
    expect(runs.map((r) => [r.run_type, iso(r.logical_date)])).toEqual([
      ["backfill", day(8, "04")],
      ["backfill", day(9, "04")],
      ["scheduled", day(10, "04")],
    ]);
  });
});
