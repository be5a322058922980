import { planDueRuns, type DueDag } from "../../scheduler/dueRuns.ts";
import { parseTimetable } from "../../scheduler/timetable.ts";

const d = (iso: string) => new Date(iso);
const days = (plan: ReturnType<typeof planDueRuns>) => plan.create.map((r) => r.logicalDate.toISOString().slice(0, 10));
const options = { maxPerDag: 16, recheckMs: 5000 };

const dag = (over: Partial<DueDag> = {}): DueDag => ({
  timetable: parseTimetable("@daily", "UTC"),
  stored: { start: d("2026-01-01T00:00:00Z"), end: d("2026-01-02T00:00:00Z") },
  startDate: d("2026-01-01T00:00:00Z"),
  endDate: null,
  catchup: true,
  maxActiveRuns: 16,
  activeRuns: 0,
  ...over,
});

describe("planDueRuns", () => {
  const now = d("2026-01-04T06:00:00Z");

  it("catchup: every due interval oldest first, then the next one with its runAfter", () => {
    const plan = planDueRuns(dag(), now, options);
    expect(days(plan)).toEqual(["2026-01-01", "2026-01-02", "2026-01-03"]);
    expect(plan.next?.logicalDate).toEqual(d("2026-01-04T00:00:00Z"));
    expect(plan.createAfter).toEqual(d("2026-01-05T00:00:00Z"));
  });

  it("no catchup: only the latest complete interval", () => {
    const plan = planDueRuns(dag({ catchup: false }), now, options);
    expect(days(plan)).toEqual(["2026-01-03"]);
    expect(plan.createAfter).toEqual(d("2026-01-05T00:00:00Z"));
  });

  it("maxActiveRuns: creates only up to the room left and re-checks after recheckMs", () => {
    const plan = planDueRuns(dag({ maxActiveRuns: 3, activeRuns: 1 }), now, options);
    expect(days(plan)).toEqual(["2026-01-01", "2026-01-02"]);
    expect(plan.next?.logicalDate).toEqual(d("2026-01-03T00:00:00Z"));
    expect(plan.createAfter).toEqual(new Date(now.getTime() + 5000));
    const full = planDueRuns(dag({ maxActiveRuns: 2, activeRuns: 2 }), now, options);
    expect(full.create).toEqual([]);
    expect(full.next?.logicalDate).toEqual(d("2026-01-01T00:00:00Z"));
    expect(full.createAfter).toEqual(new Date(now.getTime() + 5000));
  });

  it("maxPerDag: stops early but stays due, so the next pass goes on", () => {
    const plan = planDueRuns(dag(), now, { ...options, maxPerDag: 2 });
    expect(days(plan)).toEqual(["2026-01-01", "2026-01-02"]);
    expect(plan.createAfter).toEqual(d("2026-01-04T00:00:00Z"));
  });

  it("endDate and @once end the schedule: next and createAfter null", () => {
    const ended = planDueRuns(dag({ endDate: d("2026-01-02T00:00:00Z") }), now, options);
    expect(days(ended)).toEqual(["2026-01-01", "2026-01-02"]);
    expect([ended.next, ended.createAfter]).toEqual([null, null]);
    const at = d("2026-01-02T08:00:00Z");
    const once = planDueRuns(dag({ timetable: parseTimetable("@once"), stored: { start: at, end: at }, startDate: at }), now, options);
    expect(once.create.map((r) => r.runAfter)).toEqual([at]);
    expect([once.next, once.createAfter]).toEqual([null, null]);
  });

  it("nothing due yet: creates nothing and keeps the stored run", () => {
    const plan = planDueRuns(dag(), d("2026-01-01T12:00:00Z"), options);
    expect(plan.create).toEqual([]);
    expect(plan.createAfter).toEqual(d("2026-01-02T00:00:00Z"));
  });
});
