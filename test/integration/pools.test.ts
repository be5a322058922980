import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const POOLED = dagSource(`
export default dag({ id: "pooled" }, (t) => {
  for (let i = 0; i < 6; i++) {
    t.task("p" + i, { pool: "small" }, async () => {
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 250));
      return { start, end: Date.now() };
    });
  }
});
`);

const LIMITED = dagSource(`
export default dag({ id: "limited", maxActiveTasks: 2 }, (t) => {
  for (let i = 0; i < 6; i++) {
    t.task("m" + i, async () => {
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 250));
      return { start, end: Date.now() };
    });
  }
});
`);

const NEEDS_POOL = dagSource(`
export default dag({ id: "needs_pool" }, (t) => { t.task("x", { pool: "later" }, async () => 1); });
`);

/** The largest number of [start, end) intervals that overlap at one instant. */
function maxOverlap(spans: { start: number; end: number }[]): number {
  const events = spans.flatMap((s) => [[s.start, 1], [s.end, -1]] as [number, number][]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let max = 0;
  for (const [, delta] of events) max = Math.max(max, (current += delta));
  return max;
}

describe("pools", () => {
  const h = new Harness({ workers: 4 });
  beforeAll(async () => {
    await h.start({ "pooled.ts": POOLED, "needs_pool.ts": NEEDS_POOL, "limited.ts": LIMITED });
    const created = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "small", slots: 2, description: "two at a time" } });
    expect(created.statusCode).toBe(200);
    await h.run();
  });
  afterAll(() => h.stop());

  it("never runs more tasks of a pool at once than it has slots, and frees them all afterwards", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/pooled/dagRuns", payload: {} });
    const runId = res.json().dag_run_id as string;
    await waitFor("pooled run to succeed", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ? AND dag_id = 'pooled'", [runId]);
      return rows[0]?.state === "success";
    }, 20_000);
    const [xcoms] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.run_id = ? AND r.dag_id = 'pooled'",
      [runId],
    );
    const spans = xcoms.map((x) => JSON.parse(x.value) as { start: number; end: number });
    expect(spans).toHaveLength(6);
    expect(maxOverlap(spans)).toBe(2);
    const pool = await h.app.inject({ method: "GET", url: "/api/v1/pools/small" });
    expect(pool.json()).toMatchObject({ name: "small", slots: 2, occupied_slots: 0, open_slots: 2 });
  });

  it("never runs more of a DAG's tasks at once than its maxActiveTasks", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/limited/dagRuns", payload: {} });
    const runId = res.json().dag_run_id as string;
    await waitFor("limited run to succeed", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ? AND dag_id = 'limited'", [runId]);
      return rows[0]?.state === "success";
    }, 20_000);
    const [xcoms] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.run_id = ? AND r.dag_id = 'limited'",
      [runId],
    );
    const spans = xcoms.map((x) => JSON.parse(x.value) as { start: number; end: number });
    expect(spans).toHaveLength(6);
    expect(maxOverlap(spans)).toBe(2);
  });

  it("a DAG using a pool that does not exist is an import error until the pool is created", async () => {
    const errors = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
    const entry = errors.json().import_errors.find((e: { filename: string }) => e.filename.endsWith("needs_pool.ts"));
    expect(entry).toMatchObject({ code: "BATON_POOL_NOT_FOUND" });
    expect(entry.message).toContain('pool "later"');
    expect((await h.app.inject({ method: "GET", url: "/api/v1/dags/needs_pool" })).statusCode).toBe(404);

    expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "later", slots: 1 } })).statusCode).toBe(200);
    await h.processor.scan();
    expect((await h.app.inject({ method: "GET", url: "/api/v1/dags/needs_pool" })).statusCode).toBe(200);
  });

  it("manages pools over the API with problem JSON for bad input", async () => {
    const list = await h.app.inject({ method: "GET", url: "/api/v1/pools" });
    expect(list.json().pools.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["default_pool", "small"]));
    expect(list.json().pools.find((p: { name: string }) => p.name === "default_pool").slots).toBe(128);

    const dup = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "small", slots: 3 } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().code).toBe("BATON_POOL_EXISTS");
    const bad = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "x", slots: -1 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toContain("slots");
    const patched = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/small", payload: { slots: 5 } });
    expect(patched.json()).toMatchObject({ slots: 5, open_slots: 5 });
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/default_pool" })).json().code).toBe("BATON_POOL_PROTECTED");
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/nope" })).json().code).toBe("BATON_POOL_NOT_FOUND");
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/later" })).statusCode).toBe(204);
  });
});
