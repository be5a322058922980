import { backfillRoom, backfillRunId, decideBackfillDate, planBackfillDates, type ExistingRun } from "../../scheduler/backfillPlan.ts";
import { nextDagRunInfo, parseTimetable } from "../../scheduler/timetable.ts";

const d = (iso: string) => new Date(iso);
const isoDates = (dates: { logicalDate: Date }[]) => dates.map((x) => x.logicalDate.toISOString());

describe("planBackfillDates", () => {
  const daily = parseTimetable("@daily", "UTC");
  // Clock far past every range, unless a test says otherwise: every interval has ended.
  const range = (from: string, to: string, dagStartDate: string | null = "2020-01-01", now = "+275760-09-13T00:00:00Z") => ({
    from: d(from),
    to: d(to),
    dagStartDate: dagStartDate ? d(dagStartDate) : null,
    now: d(now),
  });

  it("lists every logical date in [from, to], both inclusive, with its data interval", () => {
    const { dates, truncated } = planBackfillDates(daily, range("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"), { limit: 100, backwards: false });
    expect(truncated).toBe(false);
    expect(dates.map((x) => [x.logicalDate.toISOString(), x.dataIntervalStart.toISOString(), x.dataIntervalEnd.toISOString()])).toEqual([
      ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"],
      ["2026-01-02T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"],
      ["2026-01-03T00:00:00.000Z", "2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"],
    ]);
  });

  it("aligns an unaligned from to the next fire, and ignores the DAG's startDate for cron", () => {
    const { dates } = planBackfillDates(daily, range("2019-12-30T12:00:00Z", "2020-01-01T06:00:00Z"), { limit: 100, backwards: false });
    expect(isoDates(dates)).toEqual(["2019-12-31T00:00:00.000Z", "2020-01-01T00:00:00.000Z"]);
  });

  it("backwards: newest first", () => {
    const { dates } = planBackfillDates(daily, range("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"), { limit: 100, backwards: true });
    expect(isoDates(dates)).toEqual(["2026-01-03T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]);
  });

  it("stops one past the limit and says so; exactly the limit is fine", () => {
    const r = range("2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z");
    expect(planBackfillDates(daily, r, { limit: 10, backwards: false })).toMatchObject({ truncated: false });
    const over = planBackfillDates(daily, r, { limit: 9, backwards: false });
    expect(over.truncated).toBe(true);
    expect(over.dates).toHaveLength(10);
    expect(planBackfillDates(daily, r, { limit: 8, backwards: false }).dates).toHaveLength(9);
  });

  it("refuses a range of millennia from a sample, without walking every date", () => {
    const r = range("2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z");
    const plan = planBackfillDates(daily, r, { limit: 100_000, backwards: false });
    expect(plan.truncated).toBe(true);
    // A walk would have returned the first 100,001 dates; the sample is all that was computed.
    expect(plan.dates.length).toBeLessThanOrEqual(65);
    // Just over the limit, where the estimate cannot tell, the walk still decides exactly.
    const year = range("2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z");
    expect(planBackfillDates(daily, year, { limit: 365, backwards: false })).toMatchObject({ truncated: false });
    expect(planBackfillDates(daily, year, { limit: 364, backwards: false })).toMatchObject({ truncated: true });
  });

  it("an interval schedule stays on the grid anchored at the DAG's startDate", () => {
    const every6h = parseTimetable("6h", "UTC");
    const { dates } = planBackfillDates(every6h, range("2026-01-01T01:00:00Z", "2026-01-01T18:00:00Z", "2025-12-31T03:00:00Z"), { limit: 100, backwards: false });
    expect(isoDates(dates)).toEqual(["2026-01-01T03:00:00.000Z", "2026-01-01T09:00:00.000Z", "2026-01-01T15:00:00.000Z"]);
    expect(dates[0]!.dataIntervalEnd.toISOString()).toBe("2026-01-01T09:00:00.000Z");
  });

  it("follows DST in the DAG's time zone (a 23-hour day)", () => {
    const berlin = parseTimetable("0 0 * * *", "Europe/Berlin");
    const { dates } = planBackfillDates(berlin, range("2026-03-28T00:00:00Z", "2026-03-29T23:00:00Z"), { limit: 100, backwards: false });
    expect(isoDates(dates)).toEqual(["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
    expect(dates[0]!.dataIntervalEnd.getTime() - dates[0]!.dataIntervalStart.getTime()).toBe(23 * 3_600_000);
  });

  it("@once: its startDate when in range; manual: nothing; reversed range: nothing", () => {
    const once = parseTimetable("@once", "UTC");
    expect(isoDates(planBackfillDates(once, range("2019-01-01T00:00:00Z", "2021-01-01T00:00:00Z"), { limit: 10, backwards: false }).dates)).toEqual([
      "2020-01-01T00:00:00.000Z",
    ]);
    expect(planBackfillDates(once, range("2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"), { limit: 10, backwards: false }).dates).toEqual([]);
    expect(planBackfillDates(parseTimetable(null), range("2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"), { limit: 10, backwards: false }).dates).toEqual([]);
    expect(planBackfillDates(daily, range("2022-01-01T00:00:00Z", "2021-01-01T00:00:00Z"), { limit: 10, backwards: false }).dates).toEqual([]);
  });

  it.each([
    ["0 * * * *", "Europe/Berlin", "2026-10-24T20:00:00Z", "2026-10-25T04:00:00Z"],
    ["30 1 * * *", "America/New_York", "2026-03-01T00:00:00Z", "2026-03-15T00:00:00Z"],
    ["@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"],
  ])("%s in %s: the same intervals as the scheduler's nextDagRunInfo chain (DST included)", (schedule, tz, from, to) => {
    const tt = parseTimetable(schedule, tz);
    const { dates } = planBackfillDates(tt, range(from, to, null), { limit: 1000, backwards: false });
    const chained = [];
    const q = { startDate: d(from), endDate: d(to), catchup: true, now: d(to) };
    for (let info = nextDagRunInfo(tt, { ...q, lastDataInterval: null }); info; ) {
      chained.push(info);
      info = nextDagRunInfo(tt, { ...q, lastDataInterval: { start: info.dataIntervalStart, end: info.dataIntervalEnd } });
    }
    expect(dates.length).toBeGreaterThan(1);
    expect(dates).toEqual(chained);
  });

  it("leaves out dates whose data interval has not ended by now, and names the first of them", () => {
    // @daily at 2026-01-10T12:00Z: Jan 9 ended at Jan 10 00:00; Jan 10 is open until Jan 11.
    const r = range("2026-01-08T00:00:00Z", "2026-01-13T00:00:00Z", null, "2026-01-10T12:00:00Z");
    const plan = planBackfillDates(daily, r, { limit: 100, backwards: false });
    expect(isoDates(plan.dates)).toEqual(["2026-01-08T00:00:00.000Z", "2026-01-09T00:00:00.000Z"]);
    expect(plan.firstOpen).toMatchObject({ logicalDate: d("2026-01-10T00:00:00Z"), dataIntervalEnd: d("2026-01-11T00:00:00Z") });
    expect(isoDates(planBackfillDates(daily, r, { limit: 100, backwards: true }).dates)).toEqual(["2026-01-09T00:00:00.000Z", "2026-01-08T00:00:00.000Z"]);
    // An interval that ends exactly now has ended (the scheduler creates its run at that instant).
    const exact = planBackfillDates(daily, { ...r, now: d("2026-01-10T00:00:00Z") }, { limit: 100, backwards: false });
    expect(isoDates(exact.dates)).toEqual(["2026-01-08T00:00:00.000Z", "2026-01-09T00:00:00.000Z"]);
    // Every date open: nothing to plan, and the first open one.
    const future = planBackfillDates(daily, range("2026-01-10T00:00:00Z", "2026-01-13T00:00:00Z", null, "2026-01-10T12:00:00Z"), { limit: 100, backwards: false });
    expect(future).toMatchObject({ dates: [], truncated: false, firstOpen: { logicalDate: d("2026-01-10T00:00:00Z") } });
    // Every date ended: none open.
    expect(planBackfillDates(daily, range("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", null, "2026-01-10T12:00:00Z"), { limit: 100, backwards: false }).firstOpen).toBeNull();
    // An interval schedule too, and a far `to` is measured up to now, not refused as too large.
    const every6h = parseTimetable("6h", "UTC");
    const sixHourly = planBackfillDates(every6h, range("2026-01-10T00:00:00Z", "9999-12-31T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-10T12:00:00Z"), { limit: 10, backwards: false });
    expect({ dates: isoDates(sixHourly.dates), truncated: sixHourly.truncated }).toEqual({ dates: ["2026-01-10T00:00:00.000Z", "2026-01-10T06:00:00.000Z"], truncated: false });
    expect(sixHourly.firstOpen?.logicalDate).toEqual(d("2026-01-10T12:00:00Z"));
  });

  // How long it takes is a benchmark's business (npm test asserts no timings): this checks
  // ten years come out whole, one interval after the other, none missing or repeated.
  it("plans ten years of daily dates, each interval starting where the previous one ended", () => {
    const { dates } = planBackfillDates(daily, range("2016-01-01T00:00:00Z", "2025-12-28T00:00:00Z"), { limit: 100_000, backwards: false });
    expect(dates).toHaveLength(3650);
    expect(dates[0]!.logicalDate.toISOString()).toBe("2016-01-01T00:00:00.000Z");
    expect(dates.at(-1)!.logicalDate.toISOString()).toBe("2025-12-28T00:00:00.000Z");
    const gaps = dates.slice(1).filter((x, i) => x.dataIntervalStart.getTime() !== dates[i]!.dataIntervalEnd.getTime());
    expect(gaps).toEqual([]);
  });
});

describe("decideBackfillDate", () => {
  const run = (id: number, state: string, replaced = false): ExistingRun => ({ id, state, replaced });

  it.each(["none", "failed", "completed"] as const)("%s: no run → create", (reprocess) => {
    expect(decideBackfillDate(reprocess, [])).toEqual({ action: "create" });
    expect(decideBackfillDate(reprocess, [run(1, "failed", true)])).toEqual({ action: "create" });
  });

  it.each(["none", "failed", "completed"] as const)("%s: a queued or running run (even a replaced one) → skip in_flight", (reprocess) => {
    expect(decideBackfillDate(reprocess, [run(1, "running")])).toEqual({ action: "skip", reason: "in_flight" });
    expect(decideBackfillDate(reprocess, [run(1, "queued")])).toEqual({ action: "skip", reason: "in_flight" });
    expect(decideBackfillDate(reprocess, [run(1, "running", true), run(2, "failed")])).toEqual({ action: "skip", reason: "in_flight" });
  });

  it("none: an existing finished run → skip exists", () => {
    expect(decideBackfillDate("none", [run(1, "failed")])).toEqual({ action: "skip", reason: "exists" });
    expect(decideBackfillDate("none", [run(1, "success")])).toEqual({ action: "skip", reason: "exists" });
  });

  it("failed: re-runs only when the latest current run failed", () => {
    expect(decideBackfillDate("failed", [run(1, "failed")])).toEqual({ action: "reprocess", replace: [1] });
    expect(decideBackfillDate("failed", [run(1, "success")])).toEqual({ action: "skip", reason: "succeeded" });
    expect(decideBackfillDate("failed", [run(3, "failed"), run(1, "success")])).toEqual({ action: "reprocess", replace: [1, 3] });
    expect(decideBackfillDate("failed", [run(1, "failed"), run(3, "success")])).toEqual({ action: "skip", reason: "succeeded" });
  });

  it("completed: re-runs any finished date, replacing every current run", () => {
    expect(decideBackfillDate("completed", [run(2, "success"), run(1, "failed", true)])).toEqual({ action: "reprocess", replace: [2] });
  });
});

describe("backfillRoom and backfillRunId", () => {
  it("never lets active runs exceed maxActiveRuns", () => {
    expect(backfillRoom(3, 0, 100)).toBe(3);
    expect(backfillRoom(3, 2, 100)).toBe(1);
    expect(backfillRoom(3, 5, 100)).toBe(0);
    expect(backfillRoom(500, 0, 100)).toBe(100);
  });

  it("names runs by date and backfill", () => {
    expect(backfillRunId(7, d("2026-01-01T00:00:00Z"))).toBe("backfill__2026-01-01T00:00:00.000Z__7");
  });
});
