// A DAG at its maxActiveTasks must not hide other DAGs' queued tries from claims: claimTasks
// reads candidates in priority order, and the tries of a DAG that has no room left would fill
// every read if they were not excluded there (head-of-line blocking). Store-level: claimTasks
// is called directly, no worker runs.
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
    "behind.ts": dagSource(`
export default dag({ id: "behind", maxActiveTasks: 5 }, (t) => {
  t.task("b0", async () => 0);
  t.task("b1", async () => 1);
});
`),
  });
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
});
