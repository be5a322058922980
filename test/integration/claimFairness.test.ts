// Tries a claim cannot take must not hide the tries behind them: claimTasks reads candidates in
// priority order, and the tries of a DAG at its maxActiveTasks (or needing more pool slots than
// are free) would fill every read if the claim did not read again past them (head-of-line
// blocking). Store-level: claimTasks is called directly, no worker runs.
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false });

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
    "behind.ts": dagSource(`
export default dag({ id: "behind", maxActiveTasks: 5 }, (t) => {
  t.task("b0", async () => 0);
  t.task("b1", async () => 1);
});
`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "three", slots: 3 } })).statusCode).toBe(200);
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
});
