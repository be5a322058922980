// GET /health asked the moment a process with a scheduler is up must not call that scheduler
// unhealthy: its first heartbeat used to be written only at the end of its first tick, so a load
// balancer or a script that waited for the port saw a null heartbeat. As Airflow's scheduler job
// records its heartbeat when it starts, Scheduler.start() resolves once the first one is written,
// and `baton standalone` (cli/services.ts) awaits it before the API listens.
import type { PoolConnection } from "mysql2/promise";
import { Harness } from "../helpers/harness.ts";

const h = new Harness({ worker: false });
let holder: PoolConnection | undefined;

beforeAll(async () => {
  await h.start();
});
afterAll(async () => {
  await holder?.query("UNLOCK TABLES").catch(() => undefined);
  holder?.release();
  await h.stop();
});

it("reports a scheduler healthy as soon as start() returned, before its first tick got anywhere", async () => {
  // The first tick's first statement reads dag_run: held here, the tick cannot finish (nor beat)
  // until the health answer is in, whatever the timing.
  holder = await h.db.pool.getConnection();
  await holder.query("LOCK TABLES dag_run WRITE");
  await h.scheduler.start();
  const res = await h.app.inject({ method: "GET", url: "/api/v1/health" });
  expect(res.statusCode).toBe(200);
  const scheduler = res.json().scheduler as { status: string; latest_scheduler_heartbeat: string | null };
  expect(scheduler.status).toBe("healthy");
  expect(scheduler.latest_scheduler_heartbeat).not.toBeNull();
  await holder.query("UNLOCK TABLES");
});
