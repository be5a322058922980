// 1,000 runs waiting on a signal cost no worker slot: a 2-slot worker keeps running other
// DAGs promptly meanwhile, and once the signals arrive every run finishes.
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const RUNS = 1000;
const BATCH = 50;

const DAGS = dagSource(`
export const waiter = dag({ id: "waiter", schedule: null, maxActiveRuns: ${RUNS * 2} }, (t) => {
  const approved = t.waitForSignal("wait_approval", { signal: "approved" });
  t.task("record", { upstream: [approved] }, async (ctx) => ctx.get(approved).n);
});

export const busy = dag({ id: "busy", schedule: null }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", async (ctx) => ctx.get(a) + 1);
  a.then(b);
});
`);

/** Runs `fn` over items, `size` at a time. */
async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

describe(`${RUNS} runs waiting on signals, worker pool of 2`, () => {
  const h = new Harness({ workers: 2 });
  beforeAll(async () => {
    await h.start({ "many.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const count = async (sql: string, params: unknown[] = []) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(sql, params);
    return Number(rows[0]!.n);
  };

  it("waits hold no slot, other DAGs run promptly, and every run ends success once signalled", async () => {
    const started = Date.now();
    const runIds = await inBatches(
      Array.from({ length: RUNS }, (_, i) => `wait-${i}`),
      BATCH,
      async (runId) => {
        const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/waiter/dagRuns", payload: { dag_run_id: runId } });
        expect(res.statusCode).toBe(200);
        return runId;
      },
    );
    if (process.env.BATON_TEST_TIMING) console.log(`triggered in ${Date.now() - started} ms`);
    await waitFor(
      `all ${RUNS} waits to be deferred`,
      async () => (await count("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'waiter' AND task_id = 'wait_approval' AND state = 'deferred'")) === RUNS,
      45_000,
      100,
    );
    const deferredAfter = Date.now() - started;

    // Nothing holds a slot: no running task, no pool slot occupied, while 1,000 runs are open.
    expect(await count("SELECT COUNT(*) AS n FROM task_instance WHERE state = 'running'")).toBe(0);
    expect(await count("SELECT occupied_slots AS n FROM pool WHERE name = 'default_pool'")).toBe(0);
    expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'waiter' AND state = 'running'")).toBe(RUNS);

    // Another DAG's run goes through at once, several times over.
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/busy/dagRuns", payload: {} });
      const runId = res.json().dag_run_id as string;
      await waitFor(
        "the busy run to succeed",
        async () => (await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'busy' AND run_id = ? AND state = 'success'", [runId])) === 1,
        5_000,
      );
      expect(Date.now() - t0).toBeLessThan(5_000);
    }

    // The signals, through the API, in parallel batches; each resumes its run's wait.
    const t1 = Date.now();
    const answers = await inBatches(runIds, BATCH, async (runId) => {
      const n = Number(runId.slice("wait-".length));
      const res = await h.app.inject({
        method: "POST",
        url: `/api/v1/dags/waiter/dagRuns/${runId}/signals/approved`,
        payload: { payload: { n }, signal_id: `approve-${n}` },
      });
      expect(res.statusCode).toBe(200);
      return res.json().delivered_to as string | null;
    });
    expect(answers.every((a) => a === "wait_approval")).toBe(true);
    if (process.env.BATON_TEST_TIMING) console.log(`signalled in ${Date.now() - t1} ms`);
    await waitFor(
      `all ${RUNS} runs to succeed`,
      async () => (await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'waiter' AND state = 'success'")) === RUNS,
      45_000,
      200,
    );
    expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'waiter' AND state <> 'success'")).toBe(0);
    const [outputs] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n, SUM(CAST(x.value AS UNSIGNED)) AS total FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.dag_id = 'waiter' AND x.task_id = 'record'",
    );
    expect(Number(outputs[0]!.n)).toBe(RUNS);
    expect(Number(outputs[0]!.total)).toBe((RUNS * (RUNS - 1)) / 2);
    // BATON_TEST_TIMING=1 prints the phases (≈ 15 s to defer 1,000, ≈ 20 s to signal and finish them on a quiet 2-core box).
    if (process.env.BATON_TEST_TIMING) console.log(`deferred ${RUNS} in ${deferredAfter} ms; signalled and finished in ${Date.now() - t1} ms`);
  }, 150_000);
});
