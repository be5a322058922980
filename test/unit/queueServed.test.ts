import { queueServedDep } from "../../scheduler/deps/queueServed.ts";

describe("queueServedDep", () => {
  it("passes while a live worker serves the task's queue", () => {
    expect(queueServedDep({ queue: "etl" }, { count: 2, queues: new Set(["default", "etl"]) })).toMatchObject({ dep: "queue", passed: true });
  });

  it("says no worker runs at all", () => {
    const status = queueServedDep({ queue: "default" }, { count: 0, queues: new Set() });
    expect(status).toMatchObject({ dep: "queue", passed: false });
    expect(status.reason).toBe('No worker is running (none heartbeated lately): the task stays queued until one serving queue "default" starts');
  });

  it("names the queues the live workers serve, and how to serve this one", () => {
    const status = queueServedDep({ queue: "gpu" }, { count: 2, queues: new Set(["etl", "default"]) });
    expect(status.passed).toBe(false);
    expect(status.reason).toBe('No live worker serves queue "gpu" (live workers serve "default", "etl"): start one with `baton worker --queues gpu`');
  });

  it("quotes a queue name the shell would split or expand, so the suggested command can be pasted as it is", () => {
    const live = { count: 1, queues: new Set(["default"]) };
    // was `baton worker --queues team: gpu/fast`: a worker serving "team:" and an unknown argument
    expect(queueServedDep({ queue: "team: gpu/fast" }, live).reason).toContain("start one with `baton worker --queues 'team: gpu/fast'`");
    expect(queueServedDep({ queue: "it's $HOME" }, live).reason).toContain("start one with `baton worker --queues 'it'\\''s $HOME'`");
    expect(queueServedDep({ queue: "team:gpu/fast-1.x" }, live).reason).toContain("start one with `baton worker --queues team:gpu/fast-1.x`");
  });
});
