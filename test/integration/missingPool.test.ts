// A pool deleted while task instances wait in it: claims read existing pools only, so they wait
// until a pool of that name is created again. As Airflow's scheduler ("Tasks using non-existent
// pool … will not be scheduled"), Baton's says so once per pool name, not on every tick, and not
// on the claim path.
import type { Logger } from "../../core/logger.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ worker: false, manualTicks: true });

function capturingLogger(lines: string[]): Logger {
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  const logger: Logger = { debug: () => undefined, info: at("info"), warn: at("warn"), error: at("error"), scope: () => logger };
  return logger;
}

beforeAll(async () => {
  await h.start({
    "ghost.ts": dagSource(`export default dag({ id: "ghost_pool" }, (t) => { t.task("x", { pool: "ghost" }, async () => 1); });`),
  });
  expect((await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "ghost", slots: 1 } })).statusCode).toBe(200);
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
