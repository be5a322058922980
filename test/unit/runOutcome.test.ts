import { TERMINAL_TASK_STATES, TaskState } from "../../core/states.ts";
import { runOutcome } from "../../scheduler/runOutcome.ts";

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
