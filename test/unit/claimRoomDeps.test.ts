// scheduler/deps/claimRoom.ts: why a queued try a worker could take waits (paused DAG, maxActiveTasks, maxActiveTisPerDag, pool in use).
import { claimRoomDeps, type ClaimRoom, type ClaimRoomInput } from "../../scheduler/deps/claimRoom.ts";

const ti: ClaimRoomInput = { dagId: "d", taskId: "t", maxActiveTisPerDag: null, backfill: false, pool: "p", poolSlots: 2 };
const roomy: ClaimRoom = { paused: false, maxActiveTasks: 16, running: 3, pool: { slots: 8, occupied: 4 } };
const failed = (room: ClaimRoom, t = ti) => claimRoomDeps(t, room).filter((d) => !d.passed);

describe("claimRoomDeps", () => {
  it("passes a try with room everywhere", () => {
    expect(failed(roomy)).toEqual([]);
    expect(claimRoomDeps(ti, roomy).map((d) => d.dep)).toEqual(["dag_paused", "max_active_tasks", "pool_open_slots"]);
  });

  it("names a paused DAG, except for a backfill's try, which runs while it is paused", () => {
    expect(failed({ ...roomy, paused: true })).toEqual([{ dep: "dag_paused", passed: false, reason: expect.stringContaining("Task's DAG 'd' is paused") }]);
    expect(failed({ ...roomy, paused: true }, { ...ti, backfill: true })).toEqual([]);
  });

  it("names a DAG at maxActiveTasks in Airflow's words, and passes one below it", () => {
    expect(failed({ ...roomy, running: 16 })).toEqual([
      { dep: "max_active_tasks", passed: false, reason: expect.stringContaining("The maximum number of running tasks (16) for this task's DAG 'd' has been reached") },
    ]);
    expect(failed({ ...roomy, running: 15 })).toEqual([]);
  });

  it("names a task at its maxActiveTisPerDag in Airflow's words, passes one below it, and says nothing of a task without one", () => {
    const limited = { ...ti, maxActiveTisPerDag: 2 };
    expect(failed({ ...roomy, taskRunning: 2 }, limited)).toEqual([
      { dep: "max_active_tis_per_dag", passed: false, reason: expect.stringContaining("The max task concurrency has been breached: 2 instances of task 't' run across DAG 'd''s runs") },
    ]);
    expect(failed({ ...roomy, taskRunning: 1 }, limited)).toEqual([]);
    expect(claimRoomDeps(limited, { ...roomy, taskRunning: 1 }).map((d) => d.dep)).toEqual(["dag_paused", "max_active_tasks", "max_active_tis_per_dag", "pool_open_slots"]);
    expect(failed({ ...roomy, taskRunning: 5 })).toEqual([]);
  });

  it("names a pool with too few open slots, never fewer than 0, and leaves a pool too small in all to poolSlotsDep", () => {
    expect(failed({ ...roomy, pool: { slots: 8, occupied: 7 } })).toEqual([
      { dep: "pool_open_slots", passed: false, reason: expect.stringContaining("Not scheduling since there are 1 open slots in pool p and require 2 pool slots") },
    ]);
    // Occupied past the size (slots shrunk while tries run): 0 open, not negative.
    expect(failed({ ...roomy, pool: { slots: 2, occupied: 5 } })[0]!.reason).toContain("there are 0 open slots");
    expect(failed({ ...roomy, pool: { slots: 6, occupied: 4 } })).toEqual([]);
    expect(failed({ ...roomy, pool: { slots: 1, occupied: 1 } })).toEqual([]);
    expect(failed({ ...roomy, pool: { slots: -1, occupied: 500 } })).toEqual([]);
    expect(failed({ ...roomy, pool: undefined })).toEqual([]);
  });

  it("lists every reason that holds at once", () => {
    expect(failed({ paused: true, maxActiveTasks: 1, running: 1, pool: { slots: 2, occupied: 2 } }).map((d) => d.dep)).toEqual(["dag_paused", "max_active_tasks", "pool_open_slots"]);
  });
});
