// A backfill of a DAG whose file was removed (inactive) creates no runs, as creating a backfill of
// one is refused and Airflow schedules no run of an inactive DAG: its dates stay pending, and it
// goes on once the DAG is active again (or is cancelled). Store-level: no scheduler ticks, no worker.
import { rm } from "node:fs/promises";
import type { RowDataPacket } from "../../store/db.ts";
import { advanceBackfills } from "../../store/transitions/advanceBackfills.ts";
import { FakeClock } from "../../core/clock.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-06-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });
const SOURCE = dagSource(`export default dag({ id: "bf_inactive", schedule: "@daily", startDate: "2026-01-01" }, (t) => {
  t.task("work", async () => 1);
});`);
let file: string;

beforeAll(async () => {
  await h.start();
  file = await h.writeDag("inactive.ts", SOURCE);
  await h.run();
});
afterAll(() => h.stop());

async function dateStates(id: number): Promise<[string, number][]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, COUNT(*) AS n FROM backfill_date WHERE backfill_id = ? GROUP BY state ORDER BY state", [id]);
  return rows.map((r) => [r.state as string, Number(r.n)]);
}

it("creates no runs while its DAG is inactive, leaving its dates pending, and goes on once the DAG is back", async () => {
  const created = await h.app.inject({
    method: "POST",
    url: "/api/v1/backfills",
    payload: { dag_id: "bf_inactive", from_date: "2026-01-01", to_date: "2026-01-03", max_active_runs: 1 },
  });
  expect(created.statusCode).toBe(200);
  const id = created.json().id as number;
  expect((await advanceBackfills(h.db, clock.now())).created).toHaveLength(1);
  await h.db.pool.query("UPDATE dag_run SET state = 'success' WHERE backfill_id = ?", [id]);

  // The file goes: the DAG is inactive, and the backfill waits.
  await rm(file);
  await h.processor.scan();
  const [[dag]] = await h.db.pool.query<RowDataPacket[]>("SELECT is_active FROM dag WHERE dag_id = 'bf_inactive'");
  expect(Number(dag!.is_active)).toBe(0);
  const waiting = await advanceBackfills(h.db, clock.now());
  expect(waiting.created).toEqual([]);
  expect(await dateStates(id)).toEqual([["created", 1], ["pending", 2]]);
  const shown = await h.app.inject({ method: "GET", url: `/api/v1/backfills/${id}` });
  expect(shown.json()).toMatchObject({ state: "running", dates_left: ["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"] });

  // The file is back: the backfill goes on where it stopped.
  await h.writeDag("inactive.ts", SOURCE);
  await h.processor.scan();
  expect((await advanceBackfills(h.db, clock.now())).created).toHaveLength(1);
  expect(await dateStates(id)).toEqual([["created", 2], ["pending", 1]]);
});
