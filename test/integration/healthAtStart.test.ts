// GET /health asked the moment a process with a scheduler is up must not call that scheduler
// unhealthy: its first heartbeat used to be written only at the end of its first tick, so a load
// balancer or a script that waited for the port saw a null heartbeat. As Airflow's scheduler job
// records its heartbeat when it starts, Scheduler.start() resolves once the first one is written,
// and `baton standalone` (cli/services.ts) awaits it before the API listens.
import type { PoolConnection } from "mysql2/promise";
import os from "node:os";
import path from "node:path";
import { systemClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
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

it("counts a worker alive as soon as its start() returned, while its task processes still boot", async () => {
  // A worker that prestarts its children registered only once they answered (up to
  // CHILD_BOOT_WAIT_MS): /health asked meanwhile said workers unhealthy, alive 0. The request is
  // answered in milliseconds, long before a forked Node process boots and answers its ping.
  const worker = new Worker(h.db, systemClock, silentLogger, {
    concurrency: 2,
    queues: ["default"],
    logsFolder: path.join(os.tmpdir(), "baton-health-at-start"),
    cacheFolder: path.join(os.tmpdir(), "baton-health-at-start"),
    prestartChildren: true,
  });
  await worker.start();
  try {
    const res = await h.app.inject({ method: "GET", url: "/api/v1/health" });
    expect(res.statusCode).toBe(200);
    expect(res.json().workers).toMatchObject({ status: "healthy", alive: 1 });
  } finally {
    await worker.stop(0);
  }
});
