// A pool deleted while task instances wait in it: claims read existing pools only, so they wait
// until a pool of that name is created again. As Airflow's scheduler ("Tasks using non-existent
// pool … will not be scheduled"), Baton's says so once per pool name, not on every tick, and not
// on the claim path.
import type { Db, RowDataPacket } from "../../store/db.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import { capturingLogger } from "../helpers/logger.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false, manualTicks: true });

beforeAll(async () => {
  await h.start({
    "ghost.ts": dagSource(`export default dag({ id: "ghost_pool" }, (t) => { t.task("x", { pool: "ghost" }, async () => 1); });`),
    "fleeting.ts": dagSource(`export default dag({ id: "fleeting_pool" }, (t) => { t.task("x", { pool: "fleeting" }, async () => 1); });`),
  });
  for (const name of ["ghost", "fleeting"]) {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name, slots: 1 } })).statusCode).toBe(200);
  }
  await h.run();
});

afterAll(() => h.stop());

describe("tasks queued in a pool that does not exist", () => {
  it("make the scheduler warn once per pool name", async () => {
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/ghost" })).statusCode).toBe(204);
    for (const run of ["r1", "r2"]) {
      expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/ghost_pool/dagRuns", payload: { dag_run_id: run } })).statusCode).toBe(200);
    }
    const lines: string[] = [];
    const scheduler = new Scheduler(h.db, h.clock, capturingLogger(lines), { intervalMs: 60_000 });
    try {
      // The first tick starts the runs (their tasks queued) and then checks the pools.
      await scheduler.tick();
      const [[queued]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'ghost_pool' AND state = 'queued'");
      expect(Number(queued!.n)).toBe(2);
      const warnings = () => lines.filter((l) => l.includes("non-existent pool"));
      expect(warnings()).toHaveLength(1);
      // Later checks (every 30 s) say nothing new about the same pool.
      await scheduler.checkPools();
      await scheduler.checkPools();
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(/^warn: Tasks using non-existent pool "ghost" will not be scheduled: 2 queued task instance\(s\) wait/);
      expect(warnings()[0]).toContain('task "x" of DAG "ghost_pool"');
      expect(warnings()[0]).toContain("POST /api/v1/pools");
    } finally {
      await scheduler.stop();
    }
  });
});

/** A Db whose pool runs `before` (once) ahead of the first plain query matching `when`. */
function beforeQuery(real: Db, when: (sql: string) => boolean, before: () => Promise<unknown>): Db {
  let armed = true;
  const pool = new Proxy(real.pool, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "query") return typeof value === "function" ? value.bind(target) : value;
      return async (sql: unknown, params?: unknown) => {
        if (armed && typeof sql === "string" && when(sql)) {
          armed = false;
          await before();
        }
        return (value as (...args: unknown[]) => unknown).call(target, sql, params);
      };
    },
  });
  return { ...real, pool };
}

// The check lists the missing pools, then counts each one's queued tries. Tries claimed or moved on
// between the two reads leave nothing to warn about; the pool was nonetheless marked warned, so
// tries queued in it later were never warned about.
describe("a missing pool whose queued tasks moved on while it was checked", () => {
  it("is warned about when tasks wait in it again", async () => {
    expect((await h.app.inject({ method: "DELETE", url: "/api/v1/pools/fleeting" })).statusCode).toBe(204);
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/fleeting_pool/dagRuns", payload: { dag_run_id: "f1" } })).statusCode).toBe(200);
    await h.scheduler.tick();
    const setState = (from: string, to: string) =>
      h.db.pool.query("UPDATE task_instance SET state = ? WHERE dag_id = 'fleeting_pool' AND state = ?", [to, from]);
    const [[queued]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'fleeting_pool' AND state = 'queued'");
    expect(Number(queued!.n)).toBe(1);
    const lines: string[] = [];
    const db = beforeQuery(
      h.db,
      (sql) => sql.includes("state = 'queued' AND pool = ?"),
      () => setState("queued", "scheduled"),
    );
    const scheduler = new Scheduler(db, h.clock, capturingLogger(lines), { intervalMs: 60_000 });
    const warnings = () => lines.filter((l) => l.includes('non-existent pool "fleeting"'));
    try {
      await scheduler.checkPools();
      expect(warnings()).toHaveLength(0);
      // Queued again (a retry, a clear): now they wait, and the check says so, once.
      await setState("scheduled", "queued");
      await scheduler.checkPools();
      await scheduler.checkPools();
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(/^warn: Tasks using non-existent pool "fleeting" will not be scheduled: 1 queued task instance\(s\) wait/);
    } finally {
      await scheduler.stop();
    }
  });
});
