import { TaskState, tryEnded } from "../../core/states.ts";

describe("tryEnded: whether a try's log is complete", () => {
  it("an earlier try has ended whatever the state", () => {
    for (const state of Object.values(TaskState)) expect(tryEnded(1, 2, state)).toBe(true);
  });

  it("the row's try is under way only while it runs or is deferred", () => {
    const underWay = Object.values(TaskState).filter((state) => !tryEnded(2, 2, state));
    expect(underWay.sort()).toEqual([TaskState.Deferred, TaskState.Running].sort());
  });

  it("a failed try whose retry waits or is queued has ended (a retry keeps its number until claimed)", () => {
    for (const state of [TaskState.UpForRetry, TaskState.Scheduled, TaskState.Queued]) expect(tryEnded(1, 1, state)).toBe(true);
  });

  it("a sensor's poke (the try after the row's, its number given back) is under way until the task ends", () => {
    for (const state of [TaskState.UpForReschedule, TaskState.Queued, TaskState.Scheduled]) expect(tryEnded(2, 1, state)).toBe(false);
    for (const state of [TaskState.Success, TaskState.Failed, TaskState.UpForRetry]) expect(tryEnded(2, 1, state)).toBe(true);
  });
});
