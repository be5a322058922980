// A paused DAG starts no new task (its backfill runs' tries still run), so its queued tries stay
// queued, often for long. They must not hide other DAGs' tries behind them: claimTasks reads a
// pool's tries in priority order a few at a time (candidateLimit of its free slots, at most
// MAX_READ_PASSES reads), so a backlog of a paused DAG ahead of everything in a small pool filled
// every read and no claim took anything. Store-level: rows are written here and claimTasks is
// called directly, no worker runs.
import { openDb, type BatchTx, type Db, type RowDataPacket, type Statement } from "../../store/db.ts";
import { BACKFILL_PRIORITY_FLOOR, claimTasks } from "../../store/transitions/claimTasks.ts";
import { BACKFILL_PRIORITY_OFFSET } from "../../store/transitions/startRuns.ts";
import { PRIORITY_WEIGHT_MIN } from "../../core/dagLimits.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

/** A DAG of one task of priority `priority` in `pool`. */
const oneTask = (dagId: string, pool: string, priority: number, tasks = 1) =>
  `export const ${dagId} = dag({ id: "${dagId}" }, (t) => {
  for (let i = 0; i < ${tasks}; i++) t.task("t" + i, { pool: "${pool}", weightRule: "absolute", priorityWeight: ${priority} }, async () => i);
});`;

beforeAll(async () => {
  await h.start({
    "paused.ts": dagSource(
      [
        oneTask("pz_a", "pz_one", 100),
        oneTask("pz_q", "pz_one", 1),
        oneTask("pz_b", "pz_bf", 100),
        oneTask("pz_c", "default_pool", 100),
        oneTask("pz_r", "default_pool", 1, 3),
        oneTask("pz_d", "pz_two", 100),
        oneTask("pz_s", "pz_two", 1),
        // Six tasks of the lowest declared weight in a chain: the first one's effective weight
        // (downstream: its own plus its descendants') sums to 6 × the lowest.
        `export const pz_n = dag({ id: "pz_n" }, (t) => {
  let up = t.task("t0", { pool: "pz_neg", priorityWeight: ${PRIORITY_WEIGHT_MIN} }, async () => 0);
  for (let i = 1; i < 6; i++) up = t.task("t" + i, { pool: "pz_neg", priorityWeight: ${PRIORITY_WEIGHT_MIN}, upstream: [up] }, async () => i);
});`,
      ].join("\n"),
    ),
  });
  for (const [name, slots] of [["pz_one", 1], ["pz_bf", 1], ["pz_two", 2], ["pz_neg", 1]] as const) {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name, slots } })).statusCode).toBe(200);
  }
  await h.run();
});

// Each test's paused backlog stays queued: cleared, so no later claim reads it.
afterEach(async () => {
  await h.db.pool.query("DELETE FROM task_instance WHERE dag_id LIKE 'pz\\_%' AND state = 'queued'");
});

afterAll(async () => {
  await h.stop();
});

async function queuedOf(dagId: string): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND state = 'queued'", [dagId]);
  return Number(row!.n);
}

/** Triggers a run of each DAG and waits for their tries to be queued. */
async function queue(tries: Record<string, number>): Promise<void> {
  for (const dagId of Object.keys(tries)) {
    expect((await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: {} })).statusCode).toBe(200);
  }
  for (const [dagId, n] of Object.entries(tries)) await waitFor(`${n} tries of ${dagId} queued`, async () => (await queuedOf(dagId)) === n);
}

/** `n` more queued tries in the run of dagId's queued try t0, at `priority` (the claim reads rows, not the DAG's structure). */
async function addTries(dagId: string, n: number, priority: number, taskId: string): Promise<void> {
  await h.db.pool.query(
    `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, pool, priority_weight, queued_at)
     SELECT ti.dag_run_id, ti.dag_id, ti.run_id, ?, seq, 'queued', ti.pool, ?, NOW(6)
       FROM task_instance ti JOIN seq_0_to_999 ON seq < ? WHERE ti.dag_id = ? AND ti.task_id = 't0'`,
    [taskId, priority, n, dagId],
  );
}

const pause = async (dagId: string) => {
  expect((await h.app.inject({ method: "PATCH", url: `/api/v1/dags/${dagId}`, payload: { is_paused: true } })).statusCode).toBe(200);
};

const request = (token: string, limit: number) => ({ now: new Date(), limit, queues: ["default"], hostname: "test", pid: 1, token });
const names = (tasks: { dagId: string; taskId: string }[]) => tasks.map((t) => `${t.dagId}.${t.taskId}`).sort();

/** A backfill run's try of a task of priority 100 (startRuns' taskPriority). */
const BACKFILL_PRIORITY = 100 - BACKFILL_PRIORITY_OFFSET;

/** The Db, with every statement a claim sends written down. */
function recording(db: Db, sent: Statement[]): Db {
  const wrap = (btx: BatchTx): BatchTx => ({
    get conn() {
      return btx.conn;
    },
    get conditionalCommit() {
      return btx.conditionalCommit;
    },
    run: (s) => (sent.push(...s), btx.run(s)),
    commit: (s) => (sent.push(...(s ?? [])), btx.commit(s)),
    runCommittingIf: (s, condition, then, otherwise) => (sent.push(...s, condition, ...(then ?? []), ...(otherwise ? [otherwise] : [])), btx.runCommittingIf(s, condition, then, otherwise)),
    rollback: () => btx.rollback(),
  });
  return { ...db, batchTx: (fn) => db.batchTx((btx) => fn(wrap(btx))) };
}

describe("claims and paused DAGs", () => {
  it("claims another DAG's try in a 1-slot pool behind 50 queued tries of a paused DAG", async () => {
    await queue({ pz_a: 1, pz_q: 1 });
    await addTries("pz_a", 49, 100, "more");
    await pause("pz_a");
    const claimed = await claimTasks(h.db, request("worker-a", 1));
    expect(names(claimed)).toEqual(["pz_q.t0"]);
    expect(await queuedOf("pz_a")).toBe(50);
  });

  it("still claims a paused DAG's backfill tries queued behind its other tries", async () => {
    expect(BACKFILL_PRIORITY).toBeLessThan(BACKFILL_PRIORITY_FLOOR);
    await queue({ pz_b: 1 });
    await addTries("pz_b", 49, 100, "more");
    await addTries("pz_b", 2, BACKFILL_PRIORITY, "history");
    await pause("pz_b");
    const claimed = await claimTasks(h.db, request("worker-b", 1));
    expect(claimed.map((t) => [t.dagId, t.taskId, t.backfill])).toEqual([["pz_b", "history", true]]);
    expect(await queuedOf("pz_b")).toBe(51);
  });

  it("claims other DAGs' tries in default_pool behind 1,000 queued tries of a paused DAG", async () => {
    await queue({ pz_c: 1, pz_r: 3 });
    await addTries("pz_c", 999, 100, "more");
    await pause("pz_c");
    const claimed = await claimTasks(h.db, request("worker-c", 8));
    expect(names(claimed)).toEqual(["pz_r.t0", "pz_r.t1", "pz_r.t2"]);
    expect(await queuedOf("pz_c")).toBe(1000);
  });

  it("reads a bounded number of rows past 1,000 queued tries of a paused DAG, its backfill tries by an index dive", async () => {
    await queue({ pz_d: 1, pz_s: 1 });
    await addTries("pz_d", 999, 100, "more");
    await addTries("pz_d", 1, BACKFILL_PRIORITY, "history");
    await pause("pz_d");
    // One connection, so the claim's index reads show in this session's handler counters.
    const single = openDb(h.db.url, { connectionLimit: 1 });
    const sent: Statement[] = [];
    try {
      const handlerReads = async () => {
        const [rows] = await single.pool.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler_read_%'");
        return rows.reduce((sum, r) => sum + Number(r.Value), 0);
      };
      const before = await handlerReads();
      const claimed = await claimTasks(recording(single, sent), request("worker-d", 2));
      expect(names(claimed)).toEqual(["pz_d.history", "pz_s.t0"]);
      // Walking the backlog would read 1,000 rows and more.
      expect((await handlerReads()) - before).toBeLessThan(200);
    } finally {
      await single.close();
    }
    // Each per-DAG read, and each search of a DAG's next try (the paused DAG's: its backfill
    // tries), dives on ix_ti_dag_pool: a range or a ref, never the whole index.
    const perDag = sent.filter((s) => s.sql.includes("FORCE INDEX (ix_ti_dag_pool)"));
    expect(perDag.filter((s) => s.sql.includes("UNION ALL"))).toHaveLength(1);
    expect(perDag.filter((s) => s.sql.includes("FOR UPDATE SKIP LOCKED")).length).toBeGreaterThan(0);
    for (const s of perDag) {
      const [plan] = await h.db.pool.query<RowDataPacket[]>(`EXPLAIN ${s.sql}`, s.params);
      const dives = plan.filter((p) => p.key === "ix_ti_dag_pool");
      expect(dives.length).toBe(s.sql.includes("UNION ALL") ? 2 : 1);
      for (const p of dives) expect(["range", "ref"]).toContain(p.type);
    }
    expect(await queuedOf("pz_d")).toBe(1000);
  });

  it("does not take an ordinary try of a very negative effective weight for a backfill try", async () => {
    await queue({ pz_n: 1 });
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT priority_weight FROM task_instance WHERE dag_id = 'pz_n' AND task_id = 't0'");
    expect(Number(row!.priority_weight)).toBeGreaterThanOrEqual(BACKFILL_PRIORITY_FLOOR);
    await pause("pz_n");
    expect(await claimTasks(h.db, request("worker-n", 1))).toEqual([]);
    expect(await queuedOf("pz_n")).toBe(1);
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/pz_n", payload: { is_paused: false } })).statusCode).toBe(200);
    const claimed = await claimTasks(h.db, request("worker-n", 1));
    expect(claimed.map((t) => [t.dagId, t.taskId, t.backfill])).toEqual([["pz_n", "t0", false]]);
  });
});
