import { TERMINAL_TASK_STATES, TaskState } from "../../core/states.ts";
import { compensationOutcome, runOutcome } from "../../scheduler/runOutcome.ts";

describe("runOutcome (Airflow's DagRun.update_state over leaf tasks)", () => {
  it.each([
    [["success"], "success"],
    [["success", "success"], "success"],
    [["skipped"], "success"],
    [["success", "skipped"], "success"],
    [["removed"], "success"],
    [["success", "removed", "skipped"], "success"],
    [["failed"], "failed"],
    [["upstream_failed"], "failed"],
    [["success", "failed"], "failed"],
    [["skipped", "upstream_failed"], "failed"],
    [["success", "skipped", "removed", "failed"], "failed"],
  ] as [string[], string][])("leaves %j → %s", (leaves, expected) => {
    expect(runOutcome(leaves)).toBe(expected);
  });

  it("ignores failures of non-leaf tasks handled by an all_done leaf (only leaves are passed)", () => {
    // extract failed, cleanup (all_done) succeeded: the caller passes only the leaf.
    expect(runOutcome([TaskState.Success])).toBe("success");
  });

  it("fails whatever the position of the failed leaf", () => {
    const leaves = Array.from({ length: 50 }, () => TaskState.Success as string);
    for (let i = 0; i < leaves.length; i += 7) {
      const copy = [...leaves];
      copy[i] = TaskState.Failed;
      expect(runOutcome(copy)).toBe("failed");
    }
  });

  it("is success for no leaves (nothing failed)", () => {
    expect(runOutcome([])).toBe("success");
  });

  it("decides only on failed and upstream_failed among the terminal states", () => {
    for (const state of TERMINAL_TASK_STATES) {
      const failing = state === TaskState.Failed || state === TaskState.UpstreamFailed;
      expect([state, runOutcome([TaskState.Success, state])]).toEqual([state, failing ? "failed" : "success"]);
    }
  });
});

describe("compensationOutcome (how a saga ended)", () => {
  const compensations = [
    { taskId: "charge__compensate", compensates: "charge" },
    { taskId: "reserve__compensate", compensates: "reserve" },
  ];
  const outcome = (states: Record<string, string>) => compensationOutcome(compensations, (id) => states[id]);

  it("is compensated when every owed compensation succeeded", () => {
    expect(outcome({ charge: "success", reserve: "success", charge__compensate: "success", reserve__compensate: "success" })).toBe("compensated");
  });

  it("ignores compensations of tasks that did not succeed (nothing to undo)", () => {
    expect(outcome({ charge: "failed", reserve: "success", charge__compensate: "skipped", reserve__compensate: "success" })).toBe("compensated");
    expect(outcome({ charge: "upstream_failed", reserve: "failed", charge__compensate: "failed", reserve__compensate: "skipped" })).toBe("compensated");
  });

  it.each(["failed", "skipped", "none", "queued", "running", "up_for_retry"])("an owed compensation %s is not undone: compensation_failed", (state) => {
    expect(outcome({ charge: "success", reserve: "success", charge__compensate: state, reserve__compensate: "success" })).toBe("compensation_failed");
  });

  it("no compensations: compensated", () => {
    expect(compensationOutcome([], () => undefined)).toBe("compensated");
  });
});
