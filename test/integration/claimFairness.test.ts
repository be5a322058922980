// Tries a claim cannot take must not hide the tries behind them: claimTasks reads candidates in
// priority order, and the tries of a DAG at its maxActiveTasks (or needing more pool slots than
// are free) would fill every read if the claim did not read again past them (head-of-line
// blocking). Store-level: claimTasks is called directly, no worker runs.
import type { RowDataPacket } from "../../store/db.ts";
import { openDb, type RowDataPacket as Row } from "../../store/db.ts";
import { RUNNING_RUNS_DAGS, claimTasks } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

const MANY_DAGS = 40;
const manyDagId = (i: number) => `many_${String(i).padStart(2, "0")}`;

beforeAll(async () => {
  await h.start({
    "crowded.ts": dagSource(`
export default dag({ id: "crowded", maxActiveTasks: 1 }, (t) => {
  for (let i = 0; i < 60; i++) t.task("c" + String(i).padStart(2, "0"), { priorityWeight: 10 }, async () => i);
});
`),
    "slots.ts": dagSource(`
export default dag({ id: "slots", maxActiveTasks: 100 }, (t) => {
  for (let i = 0; i < 6; i++) t.task("big" + i, { pool: "three", poolSlots: 2, priorityWeight: 50 }, async () => i);
  t.task("small", { pool: "three", priorityWeight: 40 }, async () => 0);
});
`),
    "flood.ts": dagSource(`
export default dag({ id: "flood", maxActiveTasks: 2 }, (t) => {
  t.task("seed", { priorityWeight: 30 }, async () => 0);
});
`),
    "late.ts": dagSource(`
export default dag({ id: "late", maxActiveTasks: 5 }, (t) => {
  t.task("low", { priorityWeight: 1 }, async () => 0);
  t.task("high", { priorityWeight: 20 }, async () => 0);
});
`),
    "throttled.ts": dagSource(`
export default dag({ id: "throttled", maxActiveTasks: 100000 }, (t) => {
  t.task("call", { pool: "tiny", priorityWeight: 90 }, async () => 0);
});
`),
    // More DAGs than one per-DAG read takes (DAGS_PER_READ, 32), one try each, behind a gate
    // DAG at its limit with tries ahead of theirs.
    "many.ts": dagSource(`
export const gate = dag({ id: "many_gate", maxActiveTasks: 1 }, (t) => {
  for (let i = 0; i < 20; i++) t.task("g" + i, { priorityWeight: 300 }, async () => i);
});
${Array.from({ length: MANY_DAGS }, (_, i) => `export const m${i} = dag({ id: "${manyDagId(i)}" }, (t) => { t.task("m", { priorityWeight: 200 }, async () => 0); });`).join("\n")}
`),
    // Tries needing more slots than their pool has in all (never claimable), more than a claim's
    // reads of a 1-slot pool take, ahead of another DAG's try in that pool.
    "oversized.ts": dagSource(`
export const huge = dag({ id: "huge" }, (t) => {
  for (let i = 0; i < 12; i++) t.task("h" + i, { pool: "single", queue: "solo", poolSlots: 5, priorityWeight: 100 }, async () => i);
});
export const modest = dag({ id: "modest" }, (t) => { t.task("m", { pool: "single", queue: "solo", priorityWeight: 1 }, async () => 0); });
`),
    "behind.ts": dagSource(`
export default dag({ id: "behind", maxActiveTasks: 5 }, (t) => {
  t.task("b0", async () => 0);
  t.task("b1", async () => 1);
});
`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "three", slots: 3 } })).statusCode).toBe(200);
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "tiny", slots: 1 } })).statusCode).toBe(200);
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "single", slots: 1 } })).statusCode).toBe(200);
  await h.run();
});

afterAll(async () => {
  await h.stop();
});

async function queuedOf(dagId: string): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND state = 'queued'", [dagId]);
  return Number(row!.n);
}

const request = (token: string, limit: number) => ({ now: new Date(), limit, queues: ["default"], hostname: "test", pid: 1, token });

describe("claims and full pools", () => {
  it("never reads the queued tries of a full pool, however many", async () => {
    // 3,000 queued tries in a 1-slot pool that is full, ahead of everything in priority order.
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/throttled/dagRuns", payload: {} })).statusCode).toBe(200);
    await waitFor("throttled's call queued", async () => (await queuedOf("throttled")) === 1);
    await h.db.pool.query(
      `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, pool, priority_weight, queued_at)
       SELECT ti.dag_run_id, ti.dag_id, ti.run_id, 'call', seq, 'queued', 'tiny', 90, NOW(6)
         FROM task_instance ti JOIN seq_0_to_2998 ON TRUE WHERE ti.dag_id = 'throttled'`,
    );
    await h.db.pool.query("UPDATE pool SET occupied_slots = slots WHERE name = 'tiny'");
    // One connection, so the claim's index reads show in this session's handler counters.
    const single = openDb(h.db.url, { connectionLimit: 1 });
    try {
      const readNext = async () => {
        const [rows] = await single.pool.query<Row[]>("SHOW SESSION STATUS LIKE 'Handler_read_next'");
        return Number(rows[0]!.Value);
      };
      const before = await readNext();
      expect(await claimTasks(single, request("worker-p", 4))).toEqual([]);
      expect((await readNext()) - before).toBeLessThan(300);
    } finally {
      await single.close();
      await h.db.pool.query("UPDATE pool SET occupied_slots = 0 WHERE name = 'tiny'");
      await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'throttled'");
    }
    expect(await queuedOf("throttled")).toBe(0);
  });
});

describe("claims and maxActiveTasks", () => {
  it("claims another DAG's tries behind many queued tries of a DAG at its limit", async () => {
    for (const dagId of ["crowded", "behind"]) {
      expect((await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: {} })).statusCode).toBe(200);
    }
    await waitFor("60 + 2 queued tries", async () => (await queuedOf("crowded")) === 60 && (await queuedOf("behind")) === 2);

    // The first claim takes crowded's one allowed try (highest priority) and behind's two.
    const first = await claimTasks(h.db, request("worker-a", 3));
    expect(first.map((t) => t.dagId).sort()).toEqual(["behind", "behind", "crowded"]);

    // crowded is at its limit with 59 tries queued ahead of anything else: a claim finds nothing of it.
    const second = await claimTasks(h.db, request("worker-b", 3));
    expect(second).toEqual([]);
    expect(await queuedOf("crowded")).toBe(59);
  });

  it("claims other DAGs' tries behind a backlog of a DAG at its limit far longer than a read walks", async () => {
    // 5,000 queued tries of one run of flood (its seed plus rows written here: the claim reads
    // rows, not the DAG's structure), all ahead of late's two tries in priority order.
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/flood/dagRuns", payload: {} })).statusCode).toBe(200);
    await waitFor("flood's seed queued", async () => (await queuedOf("flood")) === 1);
    await h.db.pool.query(
      `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, priority_weight, queued_at)
       SELECT ti.dag_run_id, ti.dag_id, ti.run_id, 'seed', seq, 'queued', 30, NOW(6)
         FROM task_instance ti JOIN seq_0_to_4998 ON TRUE WHERE ti.dag_id = 'flood'`,
    );
    expect(await queuedOf("flood")).toBe(5000);
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/late/dagRuns", payload: {} })).statusCode).toBe(200);
    await waitFor("late's 2 tries queued", async () => (await queuedOf("late")) === 2);

    // flood takes its 2 allowed tries; late's tries come next, highest priority first.
    const first = await claimTasks(h.db, request("worker-e", 3));
    expect(first.map((t) => `${t.dagId}.${t.taskId}`)).toEqual(["flood.seed", "flood.seed", "late.high"]);
    const second = await claimTasks(h.db, request("worker-f", 3));
    expect(second.map((t) => `${t.dagId}.${t.taskId}`)).toEqual(["late.low"]);
    expect(await queuedOf("flood")).toBe(4998);
    await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'flood' AND state = 'queued'");
  });

  it("lists the DAGs of running runs for per-DAG reads index-only on ix_dag_run_state_dag, without a temporary table", async () => {
    const [[plan]] = await h.db.pool.query<RowDataPacket[]>(`EXPLAIN ${RUNNING_RUNS_DAGS}`);
    expect(plan!.key).toBe("ix_dag_run_state_dag");
    expect(String(plan!.Extra)).toMatch(/Using index/);
    expect(String(plan!.Extra)).not.toMatch(/temporary/);
  });

  it("claims a try that fits its pool behind tries needing more slots than are free", async () => {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/slots/dagRuns", payload: {} })).statusCode).toBe(200);
    await waitFor("7 queued tries", async () => (await queuedOf("slots")) === 7);
    const first = await claimTasks(h.db, request("worker-c", 1));
    expect(first.map((t) => t.taskId)).toEqual(["big0"]);
    // 1 slot left: the five 2-slot tries ahead do not fit, the 1-slot one behind them does.
    const second = await claimTasks(h.db, request("worker-d", 1));
    expect(second.map((t) => t.taskId)).toEqual(["small"]);
    const [[pool]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'three'");
    expect(Number(pool!.occupied_slots)).toBe(3);
  });

  it("claims a try behind however many tries needing more slots than their pool has in all", async () => {
    // They wait for ever (until the pool grows): a claim that only read past them a few at a time
    // never reached the try behind them in a 1-slot pool, so nothing else ever ran there.
    for (const dagId of ["huge", "modest"]) expect((await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: {} })).statusCode).toBe(200);
    await waitFor("12 + 1 queued tries", async () => (await queuedOf("huge")) === 12 && (await queuedOf("modest")) === 1);
    // Their own queue: no other DAG's backlog in this file makes the claim read per DAG anyway.
    const claimed = await claimTasks(h.db, { ...request("worker-o", 1), queues: ["solo"] });
    expect(claimed.map((t) => `${t.dagId}.${t.taskId}`)).toEqual(["modest.m"]);
    expect(await queuedOf("huge")).toBe(12);
    await h.db.pool.query("DELETE FROM task_instance WHERE dag_id = 'huge' AND state = 'queued'");
  });

  it("reads a queue named twice once: each try claimed once, its slots counted once", async () => {
    const occupied = async () => {
      const [[pool]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'default_pool'");
      return Number(pool!.occupied_slots);
    };
    const before = await occupied();
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/behind/dagRuns", payload: { dag_run_id: "twice" } })).statusCode).toBe(200);
    await waitFor("behind's 2 new tries queued", async () => (await queuedOf("behind")) === 2);
    const claimed = await claimTasks(h.db, { ...request("worker-g", 10), queues: ["default", "default"] });
    expect(claimed.map((t) => `${t.runId}.${t.taskId}`).sort()).toEqual(["twice.b0", "twice.b1"]);
    expect((await occupied()) - before).toBe(2);
  });
});

describe("claims and many DAGs", () => {
  it("reads the DAGs whose tries were queued first when more wait than one per-DAG read takes, not the first by name", async () => {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/many_gate/dagRuns", payload: {} })).statusCode).toBe(200);
    await waitFor("the gate's 20 tries queued", async () => (await queuedOf("many_gate")) === 20);
    // Last by name first: the oldest tries belong to the DAGs a name-ordered read reaches last.
    for (let i = MANY_DAGS - 1; i >= 0; i--) {
      expect((await h.app.inject({ method: "POST", url: `/api/v1/dags/${manyDagId(i)}/dagRuns`, payload: {} })).statusCode).toBe(200);
    }
    const queuedMany = async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT dag_id FROM task_instance WHERE dag_id LIKE 'many\\_%' AND dag_id <> 'many_gate' AND state = 'queued' ORDER BY id");
      return rows.map((r) => r.dag_id as string);
    };
    await waitFor(`${MANY_DAGS} DAGs' tries queued`, async () => (await queuedMany()).length === MANY_DAGS);
    const oldestFour = (await queuedMany()).slice(0, 4).sort();
    // Not vacuous: a read of the first 32 DAGs by name would not even see these.
    expect(oldestFour.every((d) => d >= manyDagId(32))).toBe(true);

    try {
      // The gate takes its one allowed try, then its other 19 fill the pool read ahead of everything:
      // the claim turns to per-DAG reads and must reach the four tries queued first.
      const claimed = await claimTasks(h.db, request("worker-m", 5));
      expect(claimed.filter((t) => t.dagId === "many_gate")).toHaveLength(1);
      expect(claimed.filter((t) => t.dagId !== "many_gate").map((t) => t.dagId).sort()).toEqual(oldestFour);
    } finally {
      await h.db.pool.query("DELETE FROM task_instance WHERE dag_id LIKE 'many\\_%' AND state = 'queued'");
    }
  });
});
