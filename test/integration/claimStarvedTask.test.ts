// A task at its maxActiveTisPerDag limit must not hide the lower-priority tries of its own DAG in
// the same pool and queue: a claim that turned one of its tries away reads on without that task
// (Airflow's starved_tasks in _executable_task_instances_to_queued). Before, the claim only read
// further down the same backlog, a few rows a read and MAX_READ_PASSES reads, so a backlog of ten
// queued `fetch` tries (higher priority, as "downstream" weights give an upstream task) kept every
// `transform` of that DAG waiting until it drained, `…/dependencies` naming nothing. Store-level:
// claimTasks is called directly, no worker runs.
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, dagDive } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

beforeAll(async () => {
  await h.start({
    "starve.ts": dagSource(`
export const one = dag({ id: "starve_one", maxActiveTasks: 100 }, (t) => {
  t.task("fetch", { maxActiveTisPerDag: 1, priorityWeight: 10, weightRule: "absolute" }, async () => 1);
  t.task("transform", { priorityWeight: 1, weightRule: "absolute" }, async () => 2);
});
export const two = dag({ id: "starve_two", maxActiveTasks: 100 }, (t) => {
  t.task("fetch", { maxActiveTisPerDag: 1, priorityWeight: 10, weightRule: "absolute" }, async () => 1);
  t.task("transform", { maxActiveTisPerDag: 1, priorityWeight: 5, weightRule: "absolute" }, async () => 2);
  t.task("load", { priorityWeight: 1, weightRule: "absolute" }, async () => 3);
});
`),
  });
  await h.run();
});

afterAll(() => h.stop());

const claim = (token: string, limit: number) => claimTasks(h.db, { now: new Date(), limit, queues: ["default"], hostname: "test", pid: 1, token });

async function queuedOf(dagId: string, taskId?: string): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND state = 'queued'${taskId ? " AND task_id = ?" : ""}`,
    taskId ? [dagId, taskId] : [dagId],
  );
  return Number(row!.n);
}

/** `extra` more queued instances of each listed task of the DAG's run (map indexes: the claim reads rows, not the structure). */
async function backlog(dagId: string, taskIds: string[], extra: number, runId?: string): Promise<void> {
  await h.db.pool.query(
    `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, pool, queue, priority_weight, max_active_tis_per_dag, queued_at)
     SELECT ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, seq, 'queued', ti.pool, ti.queue, ti.priority_weight, ti.max_active_tis_per_dag, NOW(6)
       FROM task_instance ti JOIN seq_1_to_${extra} ON TRUE WHERE ti.dag_id = ? AND ti.task_id IN (?) AND ti.map_index = -1${runId ? " AND ti.run_id = ?" : ""}`,
    runId ? [dagId, taskIds, runId] : [dagId, taskIds],
  );
}

it("claims a lower-priority task of the same DAG behind a backlog of a task at its maxActiveTisPerDag", async () => {
  expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/starve_one/dagRuns", payload: {} })).statusCode).toBe(200);
  await waitFor("fetch and transform queued", async () => (await queuedOf("starve_one")) === 2);
  await backlog("starve_one", ["fetch"], 10);
  expect(await queuedOf("starve_one", "fetch")).toBe(11);

  // The first claim takes one fetch (its limit), the next ones the transform behind the other ten.
  expect((await claim("starve-a", 1)).map((t) => t.taskId)).toEqual(["fetch"]);
  expect((await claim("starve-b", 1)).map((t) => t.taskId)).toEqual(["transform"]);
  expect(await claim("starve-c", 2)).toEqual([]);
  expect(await queuedOf("starve_one", "fetch")).toBe(10);
  await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'starve_one' AND state = 'queued'");
});

it("reads past two limited tasks' backlogs, one after the other, within one claim", async () => {
  expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/starve_two/dagRuns", payload: {} })).statusCode).toBe(200);
  await waitFor("fetch, transform and load queued", async () => (await queuedOf("starve_two")) === 3);
  await backlog("starve_two", ["fetch", "transform"], 10);

  // fetch, then transform, each at its limit of 1, and load behind their twenty queued tries.
  expect((await claim("starve-d", 2)).map((t) => t.taskId)).toEqual(["fetch", "transform"]);
  expect((await claim("starve-e", 1)).map((t) => t.taskId)).toEqual(["load"]);
  expect(await claim("starve-f", 1)).toEqual([]);
  expect(await queuedOf("starve_two")).toBe(20);
  await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'starve_two' AND state = 'queued'");
});

it("leaves out only the tries at their own limit: one of the same task with a higher limit (another version's) is claimed", async () => {
  expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/starve_one/dagRuns", payload: { dag_run_id: "versions" } })).statusCode).toBe(200);
  await waitFor("fetch and transform queued", async () => (await queuedOf("starve_one")) === 2);
  await backlog("starve_one", ["fetch"], 10, "versions");
  // One fetch as a run of a version limiting it to 3 would have it, behind the others, ahead of transform.
  await h.db.pool.query("UPDATE task_instance SET max_active_tis_per_dag = 3, priority_weight = 5 WHERE dag_id = 'starve_one' AND task_id = 'fetch' AND run_id = 'versions' AND map_index = 10");

  // The first test's fetch still runs: the ten tries limited to 1 are at their limit, that one is not.
  const [[running]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'starve_one' AND task_id = 'fetch' AND state = 'running'");
  expect(Number(running!.n)).toBe(1);
  expect((await claim("starve-g", 1)).map((t) => `${t.runId}.${t.taskId}.${t.mapIndex}`)).toEqual(["versions.fetch.10"]);
  expect((await claim("starve-h", 1)).map((t) => `${t.runId}.${t.taskId}`)).toEqual(["versions.transform"]);
  expect(await claim("starve-i", 1)).toEqual([]);
  expect(await queuedOf("starve_one", "fetch")).toBe(10);
  await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'starve_one' AND state = 'queued'");
});

it("keeps the per-DAG dive on ix_ti_dag_pool, a range in claim order, with starved tasks left out", async () => {
  const dive = dagDive("starve_two", "default_pool", "default", { priority: 10, id: 5 }, 4, [], new Map([["fetch", 1], ["transform", 1]]));
  expect(dive.sql).toMatch(/NOT \(/);
  const [[plan]] = await h.db.pool.query<RowDataPacket[]>(`EXPLAIN ${dive.sql}`, dive.params);
  expect(plan!.key).toBe("ix_ti_dag_pool");
  expect(plan!.type).toBe("range");
  expect(String(plan!.Extra)).not.toMatch(/filesort|temporary/);
});
