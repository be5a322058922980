// Backfill tries are told by priority alone (claims, the hand-off gate): below
// BACKFILL_PRIORITY_FLOOR is a backfill try, at or above it an ordinary one. So the effective
// weights (after weight rules) of both kinds of run must never overlap once a backfill run's are
// lowered by BACKFILL_PRIORITY_OFFSET, and both must fit priority_weight (INT).
import { clampPriorityWeight, EFFECTIVE_PRIORITY_WEIGHT_MAX, EFFECTIVE_PRIORITY_WEIGHT_MIN, MAX_INT, PRIORITY_WEIGHT_MAX, PRIORITY_WEIGHT_MIN } from "../../core/dagLimits.ts";
import { RunType } from "../../core/states.ts";
import { BACKFILL_PRIORITY_FLOOR } from "../../store/transitions/claimTasks.ts";
import { taskPriority } from "../../store/transitions/startRuns.ts";

const isBackfill = (priority: number) => priority < BACKFILL_PRIORITY_FLOOR;
const INT_MIN = -MAX_INT - 1;

describe("priority weights and backfill tries", () => {
  it("keeps every ordinary try at or above the floor and every backfill try below it, within INT", () => {
    for (const weight of [EFFECTIVE_PRIORITY_WEIGHT_MIN, -1, 0, 1, EFFECTIVE_PRIORITY_WEIGHT_MAX]) {
      for (const runType of [RunType.Manual, RunType.Scheduled]) expect(isBackfill(taskPriority(runType, weight))).toBe(false);
      expect(isBackfill(taskPriority(RunType.Backfill, weight))).toBe(true);
      for (const runType of [RunType.Manual, RunType.Backfill]) {
        expect(taskPriority(runType, weight)).toBeGreaterThanOrEqual(INT_MIN);
        expect(taskPriority(runType, weight)).toBeLessThanOrEqual(MAX_INT);
      }
    }
  });

  it("keeps declared weights well inside the effective range", () => {
    expect(PRIORITY_WEIGHT_MAX).toBeLessThanOrEqual(EFFECTIVE_PRIORITY_WEIGHT_MAX);
    expect(PRIORITY_WEIGHT_MIN).toBeGreaterThanOrEqual(EFFECTIVE_PRIORITY_WEIGHT_MIN);
  });

  it("clamps effective weights into the range", () => {
    expect(clampPriorityWeight(-600_000_000)).toBe(EFFECTIVE_PRIORITY_WEIGHT_MIN);
    expect(clampPriorityWeight(600_000_000)).toBe(EFFECTIVE_PRIORITY_WEIGHT_MAX);
    expect(clampPriorityWeight(-3)).toBe(-3);
  });

  // A DAG version serialized before the range was narrowed may hold a weight outside it.
  it("clamps a stored weight outside the range when it becomes a try's priority", () => {
    expect(isBackfill(taskPriority(RunType.Scheduled, -1_000_000_000))).toBe(false);
    expect(isBackfill(taskPriority(RunType.Manual, -700_000_000))).toBe(false);
    expect(isBackfill(taskPriority(RunType.Backfill, 2_000_000_000))).toBe(true);
    expect(isBackfill(taskPriority(RunType.Backfill, 700_000_000))).toBe(true);
  });
});
