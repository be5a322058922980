// advanceBackfills reads a backfill's dates in windows of about twice the runs it may still
// create, and goes on to the next window while dates are skipped: one call skips a long stretch
// of dates that already have runs and still creates the runs it has room for. Store-level: no
// scheduler ticks, no worker.
import type { RowDataPacket } from "../../store/db.ts";
import { advanceBackfills } from "../../store/transitions/advanceBackfills.ts";
import { FakeClock } from "../../core/clock.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-06-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });

beforeAll(async () => {
  await h.start({
    "windows.ts": dagSource(`export default dag({ id: "bf_windows", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("work", async () => 1);
});`),
  });
  await h.run();
});
afterAll(() => h.stop());

const day = (n: number) => new Date(Date.UTC(2026, 0, n));

it("skips 40 dates that have runs and creates the 2 it has room for, in one call", async () => {
  const [[dag]] = await h.db.pool.query<RowDataPacket[]>("SELECT latest_version_hash FROM dag WHERE dag_id = 'bf_windows'");
  // Runs on Jan 1–40 (manual ones: the backfill must skip their dates with reprocess "none").
  for (let n = 1; n <= 40; n++) {
    await h.db.pool.query(
      `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end, conf, external_trigger, queued_at)
       VALUES ('bf_windows', ?, ?, 'manual', 'success', ?, ?, ?, '{}', 1, ?)`,
      [`manual__${n}`, dag!.latest_version_hash, day(n), day(n), day(n + 1), clock.now()],
    );
  }
  const created = await h.app.inject({
    method: "POST",
    url: "/api/v1/backfills",
    payload: { dag_id: "bf_windows", from_date: "2026-01-01", to_date: "2026-02-14", max_active_runs: 2 },
  });
  expect(created.statusCode).toBe(200);
  const id = created.json().id as number;

  const result = await advanceBackfills(h.db, clock.now());
  expect(result.skipped).toBe(40);
  expect(result.created.map((c) => c.runId)).toEqual([`backfill__${day(41).toISOString()}__${id}`, `backfill__${day(42).toISOString()}__${id}`]);
  const [dates] = await h.db.pool.query<RowDataPacket[]>("SELECT state, COUNT(*) AS n FROM backfill_date WHERE backfill_id = ? GROUP BY state ORDER BY state", [id]);
  expect(dates.map((d) => [d.state, Number(d.n)])).toEqual([
    ["created", 2],
    ["pending", 3],
    ["skipped", 40],
  ]);
  const [[backfill]] = await h.db.pool.query<RowDataPacket[]>("SELECT next_ordinal FROM backfill WHERE id = ?", [id]);
  expect(Number(backfill!.next_ordinal)).toBe(42);
});
