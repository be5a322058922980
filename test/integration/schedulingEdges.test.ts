// Scheduling at the edges, end to end on a fake clock: a timetable changed by a new version of the
// file, an endDate passed while the scheduler was away. Real MariaDB, no worker: only the dag_run
// rows matter.
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-01-05T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false });

const dagFile = (id: string, options: string) => dagSource(`export default dag({ id: "${id}", ${options} }, (t) => {
  t.task("noop", async () => 1);
});`);

/** Scheduled runs as [logical date, interval start, interval end], by logical date. */
async function scheduled(dagId: string): Promise<string[][]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT logical_date, data_interval_start, data_interval_end FROM dag_run WHERE dag_id = ? AND run_type = 'scheduled' ORDER BY logical_date",
    [dagId],
  );
  return rows.map((r) => [r.logical_date, r.data_interval_start, r.data_interval_end].map((x: Date) => x.toISOString()));
}

beforeAll(() => h.start(), 60_000);
afterAll(() => h.stop());

describe("a schedule changed between versions", () => {
  it("hourly → twice a day: the next run covers from the last hourly run's end, none is dropped as a duplicate", async () => {
    await h.writeDag("switch.ts", dagFile("sw_coarser", `schedule: "@hourly", startDate: "2026-01-05", catchup: true, maxActiveRuns: 100`));
    await h.processor.scan();
    clock.set("2026-01-05T10:00:00Z");
    await h.scheduler.tick();
    expect(await scheduled("sw_coarser")).toHaveLength(10); // 00:00 … 09:00

    await h.writeDag("switch.ts", dagFile("sw_coarser", `schedule: "0 0,12 * * *", startDate: "2026-01-05", catchup: true, maxActiveRuns: 100`));
    await h.processor.scan();
    clock.set("2026-01-06T13:00:00Z");
    await h.scheduler.tick();
    const runs = await scheduled("sw_coarser");
    expect(runs.slice(10)).toEqual([
      ["2026-01-05T10:00:00.000Z", "2026-01-05T10:00:00.000Z", "2026-01-05T12:00:00.000Z"],
      ["2026-01-05T12:00:00.000Z", "2026-01-05T12:00:00.000Z", "2026-01-06T00:00:00.000Z"],
      ["2026-01-06T00:00:00.000Z", "2026-01-06T00:00:00.000Z", "2026-01-06T12:00:00.000Z"],
    ]);
    // The intervals tile: each starts where the one before it ended.
    for (let i = 1; i < runs.length; i++) expect(runs[i]![1]).toBe(runs[i - 1]![2]);
  });
});

describe("endDate passed while the scheduler was away", () => {
  it("catchup false: the last interval starting by endDate still runs, once", async () => {
    clock.set("2026-01-05T00:00:00Z");
    await h.writeDag("ending.ts", dagFile("ed_latest", `schedule: "@daily", startDate: "2026-01-01", endDate: "2026-01-10", catchup: false`));
    await h.processor.scan();
    await h.scheduler.tick();
    expect((await scheduled("ed_latest")).map((r) => r[0])).toEqual(["2026-01-04T00:00:00.000Z"]);

    clock.set("2026-01-20T00:00:00Z"); // no tick from Jan 5 to Jan 20
    await h.scheduler.tick();
    await h.scheduler.tick();
    expect((await scheduled("ed_latest")).map((r) => r[0])).toEqual(["2026-01-04T00:00:00.000Z", "2026-01-10T00:00:00.000Z"]);
    const [[dag]] = await h.db.pool.query<RowDataPacket[]>("SELECT next_dagrun, next_dagrun_create_after FROM dag WHERE dag_id = 'ed_latest'");
    expect([dag!.next_dagrun, dag!.next_dagrun_create_after]).toEqual([null, null]);
  });
});
