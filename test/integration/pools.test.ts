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

// Tasks that wait in their pools: "closed" has no slot, so its tasks stay queued; "parked"
// holds a signal wait, deferred until the signal comes.
const WAITING = dagSource(`
export default dag({ id: "pool_waiting" }, (t) => {
  t.task("q1", { pool: "closed" }, async () => 1);
  t.task("q2", { pool: "closed", poolSlots: 2 }, async () => 2);
  t.waitForSignal("w", { signal: "go", pool: "parked" });
});
`);

// Holds a slot of "again" until the file named by conf.release exists.
const HOLDING = dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "pool_again" }, (t) => {
  t.task("hold", { pool: "again" }, async (ctx) => {
    while (!existsSync(String(ctx.conf.release)) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
    return 1;
  });
});
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
    await h.start({ "pooled.ts": POOLED, "needs_pool.ts": NEEDS_POOL, "limited.ts": LIMITED, "waiting.ts": WAITING, "again.ts": HOLDING });
    for (const payload of [
      { name: "small", slots: 2, description: "two at a time" },
      { name: "closed", slots: 0 },
      { name: "parked", slots: 3 },
      { name: "again", slots: 1 },
    ]) {
      const created = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload });
      expect(created.statusCode).toBe(200);
    }
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

  it("a pool deleted and created again while its tasks run counts their slots at once, not after the next reconcile", async () => {
    const release = `/tmp/baton-pool-again-${process.pid}-${Date.now()}`;
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/pool_again/dagRuns", payload: { conf: { release } } });
    const runId = res.json().dag_run_id as string;
    const stateOf = async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'pool_again' AND run_id = ?", [runId]);
      return rows[0]?.state as string | undefined;
    };
    try {
      await waitFor("the task to hold its slot", async () => (await stateOf()) === "running", 20_000);
      expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/again" })).statusCode).toBe(204);
      const created = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "again", slots: 1 } });
      expect(created.statusCode).toBe(200);
      // Its one slot is taken: no other task of the pool may start beside the running one.
      expect(created.json()).toMatchObject({ name: "again", slots: 1, occupied_slots: 1, running_slots: 1, open_slots: 0 });
    } finally {
      const { writeFileSync, rmSync } = await import("node:fs");
      writeFileSync(release, "");
      await waitFor("the task to end", async () => (await stateOf()) === "success", 20_000);
      rmSync(release, { force: true });
    }
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/again" })).json()).toMatchObject({ occupied_slots: 0, open_slots: 1 });
  });

  it("counts the slots of queued, scheduled and deferred task instances per pool", async () => {
    const fresh = (await h.app.inject({ method: "GET", url: "/api/v1/pools/closed" })).json();
    expect(fresh).toMatchObject({ queued_slots: 0, scheduled_slots: 0, deferred_slots: 0 });
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/pool_waiting/dagRuns", payload: { dag_run_id: "waiting_run" } });
    expect(res.statusCode).toBe(200);
    await waitFor("q1, q2 queued and w deferred", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE run_id = 'waiting_run' ORDER BY task_id");
      return rows.map((r) => `${r.task_id}:${r.state}`).join() === "q1:queued,q2:queued,w:deferred";
    }, 20_000);

    // q1 takes one slot and q2 two: the pool's queued slots are their sum.
    const closed = await h.app.inject({ method: "GET", url: "/api/v1/pools/closed" });
    expect(closed.json()).toEqual({
      name: "closed",
      slots: 0,
      occupied_slots: 0,
      running_slots: 0,
      queued_slots: 3,
      scheduled_slots: 0,
      deferred_slots: 0,
      open_slots: 0,
      description: null,
    });
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/parked" })).json()).toMatchObject({ queued_slots: 0, deferred_slots: 1, open_slots: 3 });

    // The list page shows the same numbers for each of its pools.
    const list = (await h.app.inject({ method: "GET", url: "/api/v1/pools?limit=1000" })).json().pools as Record<string, unknown>[];
    const byName = Object.fromEntries(list.map((p) => [p.name, p]));
    expect(byName.closed).toEqual(closed.json());
    expect(byName.parked).toMatchObject({ deferred_slots: 1, queued_slots: 0 });
    expect(byName.default_pool).toMatchObject({ queued_slots: 0, deferred_slots: 0, scheduled_slots: 0 });
    // Paged past them, a page counts only its own pools.
    const page = (await h.app.inject({ method: "GET", url: "/api/v1/pools?limit=1&offset=0" })).json();
    expect(page.pools).toEqual([byName[list[0]!.name as string]]);

    // The signal lets w finish: no pool counts it any more.
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/pool_waiting/dagRuns/waiting_run/signals/go", payload: { payload: 1 } })).statusCode).toBe(200);
    await waitFor("parked to have no deferred slot", async () => (await h.app.inject({ method: "GET", url: "/api/v1/pools/parked" })).json().deferred_slots === 0, 20_000);
    // Opening the closed pool runs its tasks: nothing stays queued.
    expect((await h.app.inject({ method: "PATCH", url: "/api/v1/pools/closed", payload: { slots: 3 } })).statusCode).toBe(200);
    await waitFor("closed to have no queued slot", async () => (await h.app.inject({ method: "GET", url: "/api/v1/pools/closed" })).json().queued_slots === 0, 20_000);
  });

  it("orders pools by name or slots, as Airflow's order_by, and rejects other fields", async () => {
    const names = async (orderBy: string) =>
      ((await h.app.inject({ method: "GET", url: `/api/v1/pools?order_by=${orderBy}` })).json().pools as { name: string; slots: number }[]).map((p) => `${p.name}:${p.slots}`);
    const byName = await names("name");
    expect(byName).toEqual([...byName].sort());
    expect(await names("-name")).toEqual([...byName].reverse());
    const bySlots = await names("-slots");
    const slotsOf = (x: string) => Number(x.split(":")[1]);
    expect(bySlots.map(slotsOf)).toEqual([...bySlots.map(slotsOf)].sort((a, b) => b - a));
    expect(bySlots[0]).toBe("default_pool:128");
    for (const bad of ["occupied_slots", "description", "-", "name;DROP TABLE pool"]) {
      const res = await h.app.inject({ method: "GET", url: `/api/v1/pools?order_by=${encodeURIComponent(bad)}` });
      expect({ bad, status: res.statusCode, code: res.json().code }).toEqual({ bad, status: 400, code: "BATON_VALIDATION_FAILED" });
    }
  });

  it("PATCH applies only the fields named by update_mask", async () => {
    const masked = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/parked?update_mask=description", payload: { slots: 99, description: "signals wait here" } });
    expect(masked.statusCode).toBe(200);
    expect(masked.json()).toMatchObject({ slots: 3, description: "signals wait here" });
    const both = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/parked?update_mask=slots,description", payload: { slots: 4, description: "four" } });
    expect(both.json()).toMatchObject({ slots: 4, description: "four" });
    const unknownField = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/parked?update_mask=occupied_slots", payload: { slots: 5 } });
    expect(unknownField.statusCode).toBe(400);
    expect(unknownField.json().detail).toContain("occupied_slots");
    const missing = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/parked?update_mask=slots", payload: { description: "no slots given" } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().detail).toContain("body.slots");
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/parked" })).json()).toMatchObject({ slots: 4, description: "four" });
  });

  it("manages pools over the API with problem JSON for bad input", async () => {
    const list = await h.app.inject({ method: "GET", url: "/api/v1/pools" });
    expect(list.json().pools.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["default_pool", "small"]));
    expect(list.json().pools.find((p: { name: string }) => p.name === "default_pool").slots).toBe(128);

    const dup = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "small", slots: 3 } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().code).toBe("BATON_POOL_EXISTS");
    const bad = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "x", slots: -2 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toContain("slots");
    const patched = await h.app.inject({ method: "PATCH", url: "/api/v1/pools/small", payload: { slots: 5 } });
    expect(patched.json()).toMatchObject({ slots: 5, open_slots: 5 });
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/default_pool" })).json().code).toBe("BATON_POOL_PROTECTED");
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/nope" })).json().code).toBe("BATON_POOL_NOT_FOUND");
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/later" })).statusCode).toBe(204);
  });
});
