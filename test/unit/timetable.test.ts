import {
  dueDagRunInfo,
  manualDataInterval,
  nextDagRunInfo,
  parseDagDate,
  parseTimetable,
  TimetableError,
  type DagRunInfo,
  type Timetable,
} from "../../scheduler/timetable.ts";

const d = (iso: string) => new Date(iso);
const iso = (x: Date | null | undefined) => x?.toISOString() ?? null;
const HOUR = 3_600_000;

/** [logical date (= interval start), interval end] of a run, in ISO. */
const span = (info: DagRunInfo | null): string[] | null => (info ? [info.dataIntervalStart.toISOString(), info.dataIntervalEnd.toISOString()] : null);

/** Every run a scheduler creates for `tt` by `now`, oldest first, following nextDagRunInfo. */
function runsUntil(tt: Timetable, opts: { startDate: string | Date; now: string; catchup?: boolean; endDate?: string; timezone?: string }) {
  const tz = opts.timezone ?? (tt.kind === "cron" ? tt.timezone : "UTC");
  const q = {
    now: d(opts.now),
    catchup: opts.catchup ?? true,
    startDate: parseDagDate(opts.startDate, tz, "startDate"),
    endDate: opts.endDate ? parseDagDate(opts.endDate, tz, "endDate") : null,
  };
  const runs: string[][] = [];
  let last: { start: Date; end: Date } | null = null;
  for (let i = 0; i < 1000; i++) {
    const next: DagRunInfo | null = nextDagRunInfo(tt, { ...q, lastDataInterval: last });
    if (!next || next.runAfter.getTime() > q.now.getTime()) break;
    runs.push(span(next)!);
    last = { start: next.dataIntervalStart, end: next.dataIntervalEnd };
  }
  return runs;
}

function error(fn: () => unknown): TimetableError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TimetableError) return err;
    throw new Error(`expected a TimetableError, got ${String(err)}`);
  }
  throw new Error("expected a TimetableError, nothing was thrown");
}

describe("parseTimetable", () => {
  it("reads null/undefined as manual, @once, presets, cron and intervals", () => {
    expect(parseTimetable(null)).toEqual({ kind: "manual" });
    expect(parseTimetable(undefined)).toEqual({ kind: "manual" });
    expect(parseTimetable("@once")).toEqual({ kind: "once" });
    expect(parseTimetable("0 2 * * *", "Europe/Berlin")).toEqual({ kind: "cron", expression: "0 2 * * *", timezone: "Europe/Berlin" });
    expect(parseTimetable("0 0 * * MON")).toMatchObject({ kind: "cron", expression: "0 0 * * MON" });
    expect(parseTimetable("30m")).toEqual({ kind: "interval", everyMs: 30 * 60_000 });
    expect(parseTimetable("1h30m")).toEqual({ kind: "interval", everyMs: 90 * 60_000 });
    expect(parseTimetable("2d")).toEqual({ kind: "interval", everyMs: 48 * HOUR });
  });

  it.each([
    ["@hourly", "0 * * * *"],
    ["@daily", "0 0 * * *"],
    ["@midnight", "0 0 * * *"],
    ["@weekly", "0 0 * * 0"],
    ["@monthly", "0 0 1 * *"],
    ["@yearly", "0 0 1 1 *"],
    ["@annually", "0 0 1 1 *"],
  ])("maps the preset %s to %s", (preset, expression) => {
    expect(parseTimetable(preset, "UTC")).toEqual({ kind: "cron", expression, timezone: "UTC" });
  });

  it.each([
    ["@fortnightly", /not a known preset/],
    ["@Daily", /not a known preset/],
    ["61 * * * *", /not a valid cron expression.*minute/],
    ["* 25 * * *", /not a valid cron expression/],
    ["* * * *", /is not a 5-field cron expression/],
    ["0 0 * * * *", /has 6 fields: Baton's cron has 5 \(.*\), no seconds or year field/],
    ["0 0 * * * * 2030", /has 7 fields: Baton's cron has 5/],
    ["0 0 30 2 *", /never fires/],
    ["every day", /is not a 5-field cron expression/],
    ["5 minutes", /is not a 5-field cron expression/],
    ["5", /is not a 5-field cron expression/],
    ["0s", /interval of zero/],
    ["", /is not a 5-field cron expression/],
  ])("rejects the schedule %p with an error naming it", (schedule, message) => {
    const err = error(() => parseTimetable(schedule, "UTC"));
    expect(err.field).toBe("schedule");
    expect(err.value).toBe(schedule);
    expect(err.message).toContain(`schedule "${schedule}"`);
    expect(err.message).toMatch(message);
  });

  // What the README promises beyond plain fields (croner's extensions; croniter, Airflow's, has L and # too).
  it.each([
    ["0 0 L * *", ["2026-01-31", "2026-02-28"]], // last day of the month
    ["0 0 * * 5L", ["2026-01-30", "2026-02-27"]], // last Friday
    ["0 0 * * 5#2", ["2026-01-09", "2026-02-13"]], // second Friday
    ["0 0 15W * *", ["2026-01-15", "2026-02-16"]], // weekday nearest the 15th (Feb 15 is a Sunday)
    ["0 0 ? * 7", ["2026-01-04", "2026-01-11"]], // 7 is Sunday, ? is *
    ["0 0 1,15 * MON", ["2026-01-01", "2026-01-05"]], // day of month OR day of week, as in croniter
  ])("accepts %p: first logical dates %p", (schedule, days) => {
    const runs = runsUntil(parseTimetable(schedule, "UTC"), { startDate: "2026-01-01", now: "2026-06-01T00:00:00Z" });
    expect(runs.slice(0, 2).map((r) => r[0]!.slice(0, 10))).toEqual(days);
  });

  // Baton reads 5 fields only: croner's "exactly five, six, or seven space separated parts are required" misled.
  it("says which schedule forms Baton accepts for one that is none of them", () => {
    expect(error(() => parseTimetable("every day", "UTC")).message).toBe(
      'schedule "every day" is not a 5-field cron expression ("minute hour day-of-month month day-of-week", e.g. "0 2 * * *"), ' +
        'a preset (@once, @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually) or an interval (e.g. "30m")',
    );
  });

  it.each(["Mars/Olympus_Mons", "Europe/Pariss", "not a zone", ""])("rejects the unknown time zone %p naming it", (tz) => {
    const err = error(() => parseTimetable("@daily", tz));
    expect(err.field).toBe("timezone");
    expect(err.message).toContain(`timezone ${JSON.stringify(tz)}`);
    expect(err.message).toMatch(/not a known IANA time zone/);
  });

  it("checks the time zone even for a manual schedule", () => {
    expect(error(() => parseTimetable(null, "Nowhere/City")).field).toBe("timezone");
  });
});

describe("parseDagDate", () => {
  it("reads a date or date-time without offset in the DAG's time zone", () => {
    expect(iso(parseDagDate("2026-01-01", "UTC", "startDate"))).toBe("2026-01-01T00:00:00.000Z");
    expect(iso(parseDagDate("2026-01-01", "Europe/Berlin", "startDate"))).toBe("2025-12-31T23:00:00.000Z");
    expect(iso(parseDagDate("2026-07-01T09:15", "America/New_York", "startDate"))).toBe("2026-07-01T13:15:00.000Z");
    expect(iso(parseDagDate("2026-07-01 09:15:30.250", "America/New_York", "startDate"))).toBe("2026-07-01T13:15:30.250Z");
  });

  it("reads an instant with an offset, or a Date, as is", () => {
    expect(iso(parseDagDate("2026-01-01T00:00:00Z", "Europe/Berlin", "startDate"))).toBe("2026-01-01T00:00:00.000Z");
    expect(iso(parseDagDate("2026-01-01T00:00:00+05:30", "UTC", "startDate"))).toBe("2025-12-31T18:30:00.000Z");
    expect(iso(parseDagDate(new Date("2026-05-05T05:05:05Z"), "Asia/Tokyo", "endDate"))).toBe("2026-05-05T05:05:05.000Z");
  });

  it("puts a local time skipped by DST at the end of the gap and a repeated one at its first occurrence", () => {
    expect(iso(parseDagDate("2026-03-08T02:30", "America/New_York", "startDate"))).toBe("2026-03-08T07:00:00.000Z");
    expect(iso(parseDagDate("2026-11-01T01:30", "America/New_York", "startDate"))).toBe("2026-11-01T05:30:00.000Z");
    expect(iso(parseDagDate("2026-03-29T02:30", "Europe/Berlin", "startDate"))).toBe("2026-03-29T01:00:00.000Z");
    expect(iso(parseDagDate("2026-10-25T02:30", "Europe/Berlin", "startDate"))).toBe("2026-10-25T00:30:00.000Z");
  });

  it.each([["2026-02-30"], ["2026-13-01"], ["2026-01-01T24:00"], ["yesterday"], ["2026-01-01T00:00:00+99"], [""]])(
    "rejects %p naming the field and the value",
    (value) => {
      const err = error(() => parseDagDate(value, "UTC", "startDate"));
      expect(err.field).toBe("startDate");
      expect(err.message).toContain(`startDate "${value}"`);
    },
  );

  it("rejects values that are not dates or strings, and invalid Dates", () => {
    expect(error(() => parseDagDate(20260101, "UTC", "endDate")).message).toMatch(/endDate must be a Date or an ISO 8601 string/);
    expect(error(() => parseDagDate(new Date("nope"), "UTC", "endDate")).message).toMatch(/endDate is an invalid Date/);
  });
});

describe("nextDagRunInfo: cron in UTC", () => {
  const daily = parseTimetable("@daily", "UTC");
  const base = { startDate: d("2026-01-01T00:00:00Z"), endDate: null, catchup: true };

  it("first run: the first whole interval from startDate, created once it ends; logical date = start", () => {
    const info = nextDagRunInfo(daily, { ...base, lastDataInterval: null, now: d("2026-01-01T00:00:00Z") });
    expect(info).toEqual({
      logicalDate: d("2026-01-01T00:00:00Z"),
      dataIntervalStart: d("2026-01-01T00:00:00Z"),
      dataIntervalEnd: d("2026-01-02T00:00:00Z"),
      runAfter: d("2026-01-02T00:00:00Z"),
    });
  });

  it("aligns a startDate between fires to the next fire", () => {
    const info = nextDagRunInfo(daily, { ...base, startDate: d("2026-01-01T10:00:00Z"), lastDataInterval: null, now: d("2026-01-01T00:00:00Z") });
    expect(span(info)).toEqual(["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
  });

  it("catchup true: one run per missed interval, oldest first, only intervals that have ended", () => {
    expect(runsUntil(daily, { startDate: "2026-01-01", now: "2026-01-04T00:00:00Z" })).toEqual([
      ["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"],
      ["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"],
      ["2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"],
    ]);
    expect(runsUntil(daily, { startDate: "2026-01-01", now: "2026-01-03T23:59:59.999Z" })).toHaveLength(2);
  });

  it("catchup false: only the latest complete interval, on a boundary and between boundaries", () => {
    const q = { ...base, catchup: false, lastDataInterval: null };
    expect(span(nextDagRunInfo(daily, { ...q, now: d("2026-01-04T00:00:00Z") }))).toEqual(["2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"]);
    expect(span(nextDagRunInfo(daily, { ...q, now: d("2026-01-04T17:45:00Z") }))).toEqual(["2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"]);
    expect(runsUntil(daily, { startDate: "2026-01-01", now: "2026-01-04T17:45:00Z", catchup: false })).toEqual([
      ["2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"],
    ]);
  });

  it("catchup false after a gap jumps over the missed intervals; without a gap it continues", () => {
    const q = { ...base, catchup: false };
    const last = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-02T00:00:00Z") };
    expect(span(nextDagRunInfo(daily, { ...q, lastDataInterval: last, now: d("2026-01-10T05:00:00Z") }))).toEqual([
      "2026-01-09T00:00:00.000Z",
      "2026-01-10T00:00:00.000Z",
    ]);
    const info = nextDagRunInfo(daily, { ...q, lastDataInterval: last, now: d("2026-01-02T05:00:00Z") });
    expect(span(info)).toEqual(["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
    expect(info!.runAfter).toEqual(d("2026-01-03T00:00:00Z"));
  });

  it("catchup false with a startDate in the future waits for the first interval after it", () => {
    const info = nextDagRunInfo(daily, { ...base, catchup: false, startDate: d("2026-02-01T00:00:00Z"), lastDataInterval: null, now: d("2026-01-04T00:00:00Z") });
    expect(span(info)).toEqual(["2026-02-01T00:00:00.000Z", "2026-02-02T00:00:00.000Z"]);
  });

  it("catchup true continues from the last run and honours a startDate moved later", () => {
    const last = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-02T00:00:00Z") };
    expect(span(nextDagRunInfo(daily, { ...base, lastDataInterval: last, now: d("2026-03-01T00:00:00Z") }))).toEqual([
      "2026-01-02T00:00:00.000Z",
      "2026-01-03T00:00:00.000Z",
    ]);
    const moved = { ...base, startDate: d("2026-01-05T12:00:00Z") };
    expect(span(nextDagRunInfo(daily, { ...moved, lastDataInterval: last, now: d("2026-03-01T00:00:00Z") }))).toEqual([
      "2026-01-06T00:00:00.000Z",
      "2026-01-07T00:00:00.000Z",
    ]);
  });

  it("re-aligns after a schedule change to the new grid's last fire, when it falls after the last run's logical date", () => {
    // Daily at 00:00, then daily at 12:00: [Jan 4 12:00, Jan 5 12:00] overlaps the last run by 12 h (Airflow's _align_to_prev).
    const lastDaily = { start: d("2026-01-04T00:00:00Z"), end: d("2026-01-05T00:00:00Z") };
    expect(span(nextDagRunInfo(parseTimetable("0 12 * * *", "UTC"), { ...base, lastDataInterval: lastDaily, now: d("2026-01-05T10:00:00Z") }))).toEqual([
      "2026-01-04T12:00:00.000Z",
      "2026-01-05T12:00:00.000Z",
    ]);
  });

  it("after a switch to a coarser schedule, goes on from the last run's end: its logical date is not one a run already has", () => {
    // Re-aligned, hourly → twice a day would start at 00:00, the logical date of the 00:00 hourly
    // run: the scheduled run would be a duplicate, dropped, and 10:00-12:00 covered by no run.
    const twiceDaily = parseTimetable("0 0,12 * * *", "UTC");
    const runs: string[][] = [];
    let last: { start: Date; end: Date } | null = { start: d("2026-01-05T09:00:00Z"), end: d("2026-01-05T10:00:00Z") };
    for (let i = 0; i < 3; i++) {
      const next: DagRunInfo | null = nextDagRunInfo(twiceDaily, { ...base, lastDataInterval: last, now: d("2026-01-07T00:00:00Z") });
      runs.push(span(next)!);
      last = { start: next!.dataIntervalStart, end: next!.dataIntervalEnd };
    }
    expect(runs).toEqual([
      ["2026-01-05T10:00:00.000Z", "2026-01-05T12:00:00.000Z"],
      ["2026-01-05T12:00:00.000Z", "2026-01-06T00:00:00.000Z"],
      ["2026-01-06T00:00:00.000Z", "2026-01-06T12:00:00.000Z"],
    ]);
    // Daily → weekly (Sundays) after the Sunday run: the week that follows it, not the Sunday again.
    const sundayRun = { start: d("2026-01-04T00:00:00Z"), end: d("2026-01-05T00:00:00Z") };
    expect(span(nextDagRunInfo(parseTimetable("@weekly", "UTC"), { ...base, lastDataInterval: sundayRun, now: d("2026-01-05T00:00:00Z") }))).toEqual([
      "2026-01-05T00:00:00.000Z",
      "2026-01-11T00:00:00.000Z",
    ]);
    // A @once run covered no data (its interval is empty): daily after it re-aligns as Airflow does.
    const onceRun = { start: d("2026-01-10T08:00:00Z"), end: d("2026-01-10T08:00:00Z") };
    expect(span(nextDagRunInfo(parseTimetable("@daily", "UTC"), { ...base, lastDataInterval: onceRun, now: d("2026-01-12T00:00:00Z") }))).toEqual([
      "2026-01-10T00:00:00.000Z",
      "2026-01-11T00:00:00.000Z",
    ]);
    // Without catchup, a later complete interval still wins.
    expect(
      span(nextDagRunInfo(twiceDaily, { ...base, catchup: false, lastDataInterval: { start: d("2026-01-05T09:00:00Z"), end: d("2026-01-05T10:00:00Z") }, now: d("2026-01-06T13:00:00Z") })),
    ).toEqual(["2026-01-06T00:00:00.000Z", "2026-01-06T12:00:00.000Z"]);
  });

  it("endDate: no interval starting after it; an interval starting on it still runs", () => {
    expect(runsUntil(daily, { startDate: "2026-01-01", endDate: "2026-01-02", now: "2026-02-01T00:00:00Z" })).toEqual([
      ["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"],
      ["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"],
    ]);
    const q = { ...base, endDate: d("2026-01-02T00:00:00Z"), catchup: false, lastDataInterval: null };
    expect(nextDagRunInfo(daily, { ...q, now: d("2026-02-01T00:00:00Z") })).toBeNull();
  });

  it("returns null for a manual schedule or without a startDate", () => {
    expect(nextDagRunInfo(parseTimetable(null), { ...base, lastDataInterval: null, now: d("2026-02-01T00:00:00Z") })).toBeNull();
    expect(nextDagRunInfo(daily, { ...base, startDate: null, lastDataInterval: null, now: d("2026-02-01T00:00:00Z") })).toBeNull();
  });

  it.each([
    ["@hourly", "2026-01-01T05:30:00Z", ["2026-01-01T06:00:00.000Z", "2026-01-01T07:00:00.000Z"]],
    ["@weekly", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00.000Z", "2026-01-11T00:00:00.000Z"]], // Sundays
    ["@monthly", "2026-01-15T00:00:00Z", ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]],
    ["@yearly", "2026-01-01T00:00:01Z", ["2027-01-01T00:00:00.000Z", "2028-01-01T00:00:00.000Z"]],
    ["*/15 * * * *", "2026-01-01T00:07:00Z", ["2026-01-01T00:15:00.000Z", "2026-01-01T00:30:00.000Z"]],
    ["0 9-17 * * 1-5", "2026-01-02T17:00:00Z", ["2026-01-02T17:00:00.000Z", "2026-01-05T09:00:00.000Z"]], // Fri 17:00 → Mon 09:00
    ["30 4 1,15 * *", "2026-01-02T00:00:00Z", ["2026-01-15T04:30:00.000Z", "2026-02-01T04:30:00.000Z"]],
  ])("%s from startDate %s: first interval %p", (schedule, startDate, expected) => {
    const info = nextDagRunInfo(parseTimetable(schedule, "UTC"), { ...base, startDate: d(startDate), lastDataInterval: null, now: d("2026-01-01T00:00:00Z") });
    expect(span(info)).toEqual(expected);
    expect(info!.runAfter).toEqual(info!.dataIntervalEnd);
    expect(info!.logicalDate).toEqual(info!.dataIntervalStart);
  });
});

describe("nextDagRunInfo: @once", () => {
  const once = parseTimetable("@once");
  const q = { startDate: d("2026-01-10T08:00:00Z"), endDate: null, catchup: true, now: d("2026-01-01T00:00:00Z") };

  it("runs once at startDate with the empty interval [startDate, startDate], catchup or not", () => {
    for (const catchup of [true, false]) {
      expect(nextDagRunInfo(once, { ...q, catchup, lastDataInterval: null })).toEqual({
        logicalDate: d("2026-01-10T08:00:00Z"),
        dataIntervalStart: d("2026-01-10T08:00:00Z"),
        dataIntervalEnd: d("2026-01-10T08:00:00Z"),
        runAfter: d("2026-01-10T08:00:00Z"),
      });
    }
    expect(runsUntil(once, { startDate: "2026-01-10T08:00:00Z", now: "2027-01-01T00:00:00Z" })).toHaveLength(1);
  });

  it("never again after its run", () => {
    const last = { start: q.startDate, end: q.startDate };
    expect(nextDagRunInfo(once, { ...q, lastDataInterval: last, now: d("2027-01-01T00:00:00Z") })).toBeNull();
  });
});

describe("nextDagRunInfo: fixed intervals", () => {
  const every30m = parseTimetable("30m");

  it("catchup true: back-to-back intervals from startDate", () => {
    expect(runsUntil(every30m, { startDate: "2026-01-01T00:00:00Z", now: "2026-01-01T01:29:00Z" })).toEqual([
      ["2026-01-01T00:00:00.000Z", "2026-01-01T00:30:00.000Z"],
      ["2026-01-01T00:30:00.000Z", "2026-01-01T01:00:00.000Z"],
    ]);
  });

  it("catchup false: the latest complete interval on the startDate grid (no drift with the tick)", () => {
    const q = { startDate: d("2026-01-01T00:00:00Z"), endDate: null, catchup: false };
    expect(span(nextDagRunInfo(every30m, { ...q, lastDataInterval: null, now: d("2026-01-01T10:10:00.123Z") }))).toEqual([
      "2026-01-01T09:30:00.000Z",
      "2026-01-01T10:00:00.000Z",
    ]);
    const last = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-01T00:30:00Z") };
    expect(span(nextDagRunInfo(every30m, { ...q, lastDataInterval: last, now: d("2026-01-01T10:10:00Z") }))).toEqual([
      "2026-01-01T09:30:00.000Z",
      "2026-01-01T10:00:00.000Z",
    ]);
    const recent = { start: d("2026-01-01T09:30:00Z"), end: d("2026-01-01T10:00:00Z") };
    const info = nextDagRunInfo(every30m, { ...q, lastDataInterval: recent, now: d("2026-01-01T10:00:00.500Z") });
    expect(span(info)).toEqual(["2026-01-01T10:00:00.000Z", "2026-01-01T10:30:00.000Z"]);
  });

  it("is exact in every time zone: 1h30m across a DST change stays 90 minutes", () => {
    const tt = parseTimetable("1h30m", "America/New_York");
    const runs = runsUntil(tt, { startDate: "2026-03-08T00:00", timezone: "America/New_York", now: "2026-03-08T12:00:00Z" });
    for (const [start, end] of runs) expect(Date.parse(end!) - Date.parse(start!)).toBe(90 * 60_000);
    expect(runs[0]![0]).toBe("2026-03-08T05:00:00.000Z");
  });

  it("endDate bounds intervals", () => {
    expect(runsUntil(every30m, { startDate: "2026-01-01T00:00:00Z", endDate: "2026-01-01T00:59:00Z", now: "2026-01-02T00:00:00Z" })).toHaveLength(2);
  });
});

describe("dueDagRunInfo", () => {
  const daily = parseTimetable("@daily", "UTC");
  const stored = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-02T00:00:00Z") };
  const bounds = { startDate: d("2026-01-01T00:00:00Z"), endDate: null };

  it("catchup true: the stored interval itself", () => {
    expect(span(dueDagRunInfo(daily, stored, { ...bounds, catchup: true, now: d("2026-01-20T00:00:00Z") }))).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2026-01-02T00:00:00.000Z",
    ]);
  });

  it("catchup false: jumps a stale stored interval (unpause, outage) to the latest complete one", () => {
    expect(span(dueDagRunInfo(daily, stored, { ...bounds, catchup: false, now: d("2026-01-20T06:00:00Z") }))).toEqual([
      "2026-01-19T00:00:00.000Z",
      "2026-01-20T00:00:00.000Z",
    ]);
    expect(span(dueDagRunInfo(daily, stored, { ...bounds, catchup: false, now: d("2026-01-02T00:00:01Z") }))).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2026-01-02T00:00:00.000Z",
    ]);
    const every6h = parseTimetable("6h");
    const s6 = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-01T06:00:00Z") };
    expect(span(dueDagRunInfo(every6h, s6, { ...bounds, catchup: false, now: d("2026-01-03T07:00:00Z") }))).toEqual([
      "2026-01-03T00:00:00.000Z",
      "2026-01-03T06:00:00.000Z",
    ]);
  });

  it("catchup false after a switch to a coarser schedule: the stored run off the grid, not the taken date before it", () => {
    const twiceDaily = parseTimetable("0 0,12 * * *", "UTC");
    const bridge = { start: d("2026-01-05T10:00:00Z"), end: d("2026-01-05T12:00:00Z") };
    expect(span(dueDagRunInfo(twiceDaily, bridge, { ...bounds, catchup: false, now: d("2026-01-05T12:00:01Z") }))).toEqual([
      "2026-01-05T10:00:00.000Z",
      "2026-01-05T12:00:00.000Z",
    ]);
    expect(span(dueDagRunInfo(twiceDaily, bridge, { ...bounds, catchup: false, now: d("2026-01-06T13:00:00Z") }))).toEqual([
      "2026-01-06T00:00:00.000Z",
      "2026-01-06T12:00:00.000Z",
    ]);
  });

  it("catchup false past endDate: the last interval starting by endDate, not none (an outage or a pause across endDate)", () => {
    const endDate = d("2026-01-05T00:00:00Z");
    // The latest complete interval (Jan 31) starts after endDate; the one of Jan 5 is the latest that may run.
    expect(span(dueDagRunInfo(daily, stored, { startDate: bounds.startDate, endDate, catchup: false, now: d("2026-02-01T00:00:00Z") }))).toEqual([
      "2026-01-05T00:00:00.000Z",
      "2026-01-06T00:00:00.000Z",
    ]);
    // Down for a day after the last interval's end: that interval itself.
    const last = { start: endDate, end: d("2026-01-06T00:00:00Z") };
    expect(span(dueDagRunInfo(daily, last, { startDate: bounds.startDate, endDate, catchup: false, now: d("2026-01-07T03:00:00Z") }))).toEqual([
      "2026-01-05T00:00:00.000Z",
      "2026-01-06T00:00:00.000Z",
    ]);
    const every6h = parseTimetable("6h");
    const s6 = { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-01T06:00:00Z") };
    expect(span(dueDagRunInfo(every6h, s6, { ...bounds, endDate: d("2026-01-02T13:00:00Z"), catchup: false, now: d("2026-01-09T00:00:00Z") }))).toEqual([
      "2026-01-02T12:00:00.000Z",
      "2026-01-02T18:00:00.000Z",
    ]);
  });

  it("respects endDate and leaves @once alone", () => {
    const after = { start: d("2026-01-06T00:00:00Z"), end: d("2026-01-07T00:00:00Z") };
    expect(dueDagRunInfo(daily, after, { startDate: bounds.startDate, endDate: d("2026-01-05T00:00:00Z"), catchup: false, now: d("2026-02-01T00:00:00Z") })).toBeNull();
    expect(dueDagRunInfo(daily, { start: d("2026-01-06T00:00:00Z"), end: d("2026-01-07T00:00:00Z") }, { startDate: bounds.startDate, endDate: d("2026-01-05T00:00:00Z"), catchup: true, now: d("2026-02-01T00:00:00Z") })).toBeNull();
    const at = d("2026-01-01T08:00:00Z");
    expect(dueDagRunInfo(parseTimetable("@once"), { start: at, end: at }, { ...bounds, catchup: false, now: d("2026-03-01T00:00:00Z") })?.logicalDate).toEqual(at);
  });
});

describe("daylight saving time", () => {
  const local = (info: string[], tz: string) =>
    new Date(info[0]!).toLocaleString("sv-SE", { timeZone: tz, hour12: false }).replace(" ", "T").slice(0, 16);

  describe("America/New_York (2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST)", () => {
    const tz = "America/New_York";

    it("daily at 02:30: the nonexistent 02:30 on spring-forward day fires at 03:00 EDT", () => {
      const runs = runsUntil(parseTimetable("30 2 * * *", tz), { startDate: "2026-03-07", timezone: tz, now: "2026-03-10T12:00:00Z" });
      expect(runs).toEqual([
        ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z"], // 02:30 EST → 03:00 EDT: 22.5 h
        ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"], // 03:00 EDT → 02:30 EDT
        ["2026-03-09T06:30:00.000Z", "2026-03-10T06:30:00.000Z"],
      ]);
      expect(runs.map((r) => local(r, tz))).toEqual(["2026-03-07T02:30", "2026-03-08T03:00", "2026-03-09T02:30"]);
    });

    it("daily at 02:30 on fall-back day: 02:30 happens once (EST), the interval lasts 25 h", () => {
      const runs = runsUntil(parseTimetable("30 2 * * *", tz), { startDate: "2026-10-31", timezone: tz, now: "2026-11-02T12:00:00Z" });
      expect(runs).toEqual([
        ["2026-10-31T06:30:00.000Z", "2026-11-01T07:30:00.000Z"],
        ["2026-11-01T07:30:00.000Z", "2026-11-02T07:30:00.000Z"],
      ]);
    });

    it("daily at 01:30 on fall-back day: the repeated 01:30 fires once, at its first occurrence (EDT)", () => {
      const runs = runsUntil(parseTimetable("30 1 * * *", tz), { startDate: "2026-10-31", timezone: tz, now: "2026-11-03T12:00:00Z" });
      expect(runs).toEqual([
        ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z"],
        ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"], // 01:30 EDT → 01:30 EST the next day: 25 h
        ["2026-11-02T06:30:00.000Z", "2026-11-03T06:30:00.000Z"],
      ]);
    });

    it("hourly on spring-forward day: 01:00 EST is followed by 03:00 EDT, one hour later", () => {
      const runs = runsUntil(parseTimetable("@hourly", tz), { startDate: "2026-03-08T00:00", timezone: tz, now: "2026-03-08T09:00:00Z" });
      expect(runs.map((r) => local(r, tz))).toEqual([
        "2026-03-08T00:00",
        "2026-03-08T01:00",
        "2026-03-08T03:00",
        "2026-03-08T04:00",
      ]);
      for (const [start, end] of runs) expect(Date.parse(end!) - Date.parse(start!)).toBe(HOUR);
    });

    it("hourly on fall-back day: the repeated 01:00 hour fires twice (EDT, then EST)", () => {
      const runs = runsUntil(parseTimetable("@hourly", tz), { startDate: "2026-11-01T00:00", timezone: tz, now: "2026-11-01T08:00:00Z" });
      expect(runs.map((r) => r[0])).toEqual([
        "2026-11-01T04:00:00.000Z", // 00:00 EDT
        "2026-11-01T05:00:00.000Z", // 01:00 EDT
        "2026-11-01T06:00:00.000Z", // 01:00 EST
        "2026-11-01T07:00:00.000Z", // 02:00 EST
      ]);
      expect(runs.map((r) => local(r, tz))).toEqual(["2026-11-01T00:00", "2026-11-01T01:00", "2026-11-01T01:00", "2026-11-01T02:00"]);
      for (const [start, end] of runs) expect(Date.parse(end!) - Date.parse(start!)).toBe(HOUR);
    });

    it("@daily intervals last 23 h and 25 h on DST days, from local midnight to local midnight", () => {
      const spring = runsUntil(parseTimetable("@daily", tz), { startDate: "2026-03-08", timezone: tz, now: "2026-03-09T05:00:00Z" });
      expect(spring).toEqual([["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]]);
      const fall = runsUntil(parseTimetable("@daily", tz), { startDate: "2026-11-01", timezone: tz, now: "2026-11-02T05:00:00Z" });
      expect(fall).toEqual([["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]]);
    });
  });

  describe("Europe/Berlin (2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET)", () => {
    const tz = "Europe/Berlin";

    it("daily at 02:30: the nonexistent 02:30 on spring-forward day fires at 03:00 CEST", () => {
      const runs = runsUntil(parseTimetable("30 2 * * *", tz), { startDate: "2026-03-28", timezone: tz, now: "2026-03-31T12:00:00Z" });
      expect(runs).toEqual([
        ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z"],
        ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
        ["2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"],
      ]);
      expect(runs.map((r) => local(r, tz))).toEqual(["2026-03-28T02:30", "2026-03-29T03:00", "2026-03-30T02:30"]);
    });

    it("daily at 02:30 on fall-back day: the repeated 02:30 fires once, at its first occurrence (CEST)", () => {
      const runs = runsUntil(parseTimetable("30 2 * * *", tz), { startDate: "2026-10-24", timezone: tz, now: "2026-10-27T12:00:00Z" });
      expect(runs).toEqual([
        ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z"],
        ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"], // 25 h
        ["2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"],
      ]);
      expect(runs.filter((r) => r[0]!.startsWith("2026-10-25"))).toHaveLength(1);
    });

    it("hourly at :30 on spring-forward day: no 02:30 (it does not exist), intervals stay one hour", () => {
      const runs = runsUntil(parseTimetable("30 * * * *", tz), { startDate: "2026-03-29T01:00", timezone: tz, now: "2026-03-29T03:00:00Z" });
      expect(runs.map((r) => local(r, tz))).toEqual(["2026-03-29T01:30", "2026-03-29T03:30"]);
      for (const [start, end] of runs) expect(Date.parse(end!) - Date.parse(start!)).toBe(HOUR);
    });

    it("hourly at :30 on fall-back day: the repeated 02:30 fires twice (CEST, then CET)", () => {
      const runs = runsUntil(parseTimetable("30 * * * *", tz), { startDate: "2026-10-25T01:00", timezone: tz, now: "2026-10-25T03:00:00Z" });
      expect(runs.map((r) => r[0])).toEqual([
        "2026-10-24T23:30:00.000Z", // 01:30 CEST
        "2026-10-25T00:30:00.000Z", // 02:30 CEST
        "2026-10-25T01:30:00.000Z", // 02:30 CET
      ]);
      expect(runs.map((r) => local(r, tz))).toEqual(["2026-10-25T01:30", "2026-10-25T02:30", "2026-10-25T02:30"]);
    });

    it("catchup false across the change picks the latest complete local-time interval", () => {
      const info = nextDagRunInfo(parseTimetable("30 2 * * *", tz), {
        startDate: parseDagDate("2026-03-01", tz, "startDate"),
        endDate: null,
        catchup: false,
        lastDataInterval: null,
        now: d("2026-03-29T12:00:00Z"),
      });
      expect(span(info)).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z"]);
    });

    it("@daily: startDate \"2026-01-01\" means Berlin midnight, so the first logical date is 2026-01-01 local", () => {
      const runs = runsUntil(parseTimetable("@daily", tz), { startDate: "2026-01-01", timezone: tz, now: "2026-01-02T00:00:00Z" });
      expect(runs).toEqual([["2025-12-31T23:00:00.000Z", "2026-01-01T23:00:00.000Z"]]);
    });
  });
});

describe("manualDataInterval (Airflow's infer_manual_data_interval)", () => {
  const at = (tt: Timetable, when: string) => {
    const i = manualDataInterval(tt, d(when));
    return [iso(i.start), iso(i.end)];
  };
  it("covers the latest complete cron interval before the run", () => {
    expect(at(parseTimetable("@daily"), "2026-03-03T10:30:00Z")).toEqual(["2026-03-02T00:00:00.000Z", "2026-03-03T00:00:00.000Z"]);
    // On a fire: the interval that ends there.
    expect(at(parseTimetable("@daily"), "2026-03-03T00:00:00Z")).toEqual(["2026-03-02T00:00:00.000Z", "2026-03-03T00:00:00.000Z"]);
    expect(at(parseTimetable("0 */6 * * *"), "2026-03-03T13:00:00Z")).toEqual(["2026-03-03T06:00:00.000Z", "2026-03-03T12:00:00.000Z"]);
  });
  it("evaluates cron in the DAG's time zone, across a DST change", () => {
    // Berlin moved to summer time on 2026-03-29: that day is 23 hours long.
    expect(at(parseTimetable("@daily", "Europe/Berlin"), "2026-03-30T08:00:00Z")).toEqual(["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
  });
  it("ends a fixed interval at the run, and is zero-width without a recurring schedule", () => {
    expect(at(parseTimetable("30m"), "2026-03-03T10:00:00Z")).toEqual(["2026-03-03T09:30:00.000Z", "2026-03-03T10:00:00.000Z"]);
    expect(at(parseTimetable(null), "2026-03-03T10:00:00Z")).toEqual(["2026-03-03T10:00:00.000Z", "2026-03-03T10:00:00.000Z"]);
    expect(at(parseTimetable("@once"), "2026-03-03T10:00:00Z")).toEqual(["2026-03-03T10:00:00.000Z", "2026-03-03T10:00:00.000Z"]);
  });
});
