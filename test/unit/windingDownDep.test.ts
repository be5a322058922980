import { windingDownDep } from "../../scheduler/deps/windingDown.ts";

describe("windingDownDep: a compensation waits for the tries of its run ended from outside", () => {
  it("holds it while one may still run, and names it and its worker", () => {
    const dep = windingDownDep([{ taskId: "ship", tryNumber: 2, hostname: "w1", pid: 42 }]);
    expect(dep).toMatchObject({ dep: "winding_down", passed: false });
    expect(dep.reason).toContain(`"ship" try 2 on worker w1 pid 42 was ended from outside`);
  });
  it("says when the worker's process row is gone, or the task instance was deleted", () => {
    const { reason } = windingDownDep([
      { taskId: "ship", tryNumber: 1, hostname: null, pid: null },
      { taskId: null, tryNumber: 3, hostname: "w2", pid: null },
    ]);
    expect(reason).toContain(`"ship" try 1 on a worker that no longer heartbeats, a task instance since deleted try 3 on worker w2 were ended`);
  });
  it("passes when none is left", () => {
    expect(windingDownDep([]).passed).toBe(true);
  });
});
