// GET …/taskInstances/{task_id}/dependencies on a queued task a worker could take but does not:
// its DAG is paused, runs maxActiveTasks tries already, or its pool's slots are in use. Airflow
// names these (DagUnpausedDep, DagTISlotsAvailableDep, PoolSlotsAvailableDep); the list was empty.
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

beforeAll(async () => {
  await h.start({
    "room.ts": dagSource(`
export const busyDag = dag({ id: "room_busy", maxActiveTasks: 1 }, (t) => {
  t.task("a", async () => 1);
  t.task("b", async () => 2);
});
export const busyPool = dag({ id: "room_pool", maxActiveTasks: 16 }, (t) => {
  t.task("a", { pool: "room_one", priorityWeight: 10 }, async () => 1);
  t.task("b", { pool: "room_one" }, async () => 2);
});
export const paused = dag({ id: "room_paused" }, (t) => {
  t.task("a", async () => 1);
});
`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "room_one", slots: 1 } })).statusCode).toBe(200);
  await h.run();
});

afterAll(() => h.stop());

async function queued(dagId: string, runId: string, n: number): Promise<void> {
  await waitFor(`${n} queued tasks of ${dagId}`, async () => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND run_id = ? AND state = 'queued'", [dagId, runId]);
    return Number(row!.n) === n;
  });
}

async function claimOne(dagId: string, runId: string): Promise<string> {
  const claimed = await claimTasks(h.db, { now: new Date(), limit: 1, queues: ["default"], hostname: "test", pid: 1, token: "room-test" });
  expect(claimed).toHaveLength(1);
  expect(claimed[0]).toMatchObject({ dagId, runId });
  return claimed[0]!.taskId;
}

async function dependencies(dagId: string, runId: string, taskId: string): Promise<Record<string, string>> {
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${runId}/taskInstances/${taskId}/dependencies` });
  expect(res.statusCode).toBe(200);
  return Object.fromEntries((res.json() as { dependencies: { name: string; reason: string }[] }).dependencies.map((d) => [d.name, d.reason]));
}

describe("dependencies of a queued task a worker could take", () => {
  it("names a DAG that runs maxActiveTasks tries already", async () => {
    const runId = await h.trigger("room_busy");
    await queued("room_busy", runId, 2);
    const running = await claimOne("room_busy", runId);
    const other = running === "a" ? "b" : "a";
    const deps = await dependencies("room_busy", runId, other);
    expect(deps.max_active_tasks).toContain("The maximum number of running tasks (1) for this task's DAG 'room_busy' has been reached");
    expect(deps.pool_open_slots).toBeUndefined();
    expect(deps.dag_paused).toBeUndefined();
    // The running one waits for nothing.
    expect(await dependencies("room_busy", runId, running)).toEqual({});
  });

  it("names a pool whose slots are in use", async () => {
    const runId = await h.trigger("room_pool");
    await queued("room_pool", runId, 2);
    expect(await claimOne("room_pool", runId)).toBe("a");
    const deps = await dependencies("room_pool", runId, "b");
    expect(deps.pool_open_slots).toContain("Not scheduling since there are 0 open slots in pool room_one and require 1 pool slots");
    expect(deps.max_active_tasks).toBeUndefined();
  });

  it("names a paused DAG", async () => {
    const runId = await h.trigger("room_paused");
    await queued("room_paused", runId, 1);
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/room_paused", payload: { is_paused: true } })).statusCode).toBe(200);
    const deps = await dependencies("room_paused", runId, "a");
    expect(deps.dag_paused).toContain("Task's DAG 'room_paused' is paused");
    expect(await claimTasks(h.db, { now: new Date(), limit: 1, queues: ["default"], hostname: "test", pid: 1, token: "room-test" })).toEqual([]);
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/room_paused", payload: { is_paused: false } })).statusCode).toBe(200);
    expect((await dependencies("room_paused", runId, "a")).dag_paused).toBeUndefined();
  });
});
