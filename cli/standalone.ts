import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../api/app.ts";
import type { Config } from "../core/config.ts";
import { Worker } from "../executor/worker.ts";
import { DagProcessor } from "../parser/processor.ts";
import { Scheduler } from "../scheduler/loop.ts";
import { clock, openRuntime, relative } from "./runtime.ts";

export interface StandaloneFlags {
  port?: number;
  host?: string;
  workers?: number;
  dagsFolder?: string;
}

/** Everything in one process: migrate, DAG processor, scheduler, API and local workers. */
export async function standalone(flags: StandaloneFlags): Promise<void> {
  const overrides: Partial<Config> = { port: flags.port, host: flags.host, workers: flags.workers, dagsFolder: flags.dagsFolder };
  const { config, db, logger } = await openRuntime(overrides);
  const log = logger.scope({ component: "standalone" });

  const processor = new DagProcessor(db, clock, logger.scope({ component: "dag-processor" }), {
    dagsFolder: config.dagsFolder,
    parseTimeoutMs: config.dagParseTimeoutMs,
    rescanIntervalMs: config.dagRescanIntervalMs,
    pausedAtCreation: config.dagsPausedAtCreation,
    scratchFolder: path.join(config.cacheFolder, "parse"),
  });
  const worker = new Worker(db, clock, logger.scope({ component: "worker" }), {
    concurrency: config.workers,
    queues: ["default"],
    hostname: os.hostname(),
    logsFolder: config.logsFolder,
    cacheFolder: config.cacheFolder,
  });
  const scheduler = new Scheduler(db, clock, logger.scope({ component: "scheduler" }), {
    intervalMs: config.schedulerIntervalMs,
    onTasksQueued: () => worker.wake(),
  });
  let app: FastifyInstance | undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal} received: finishing running tasks (up to ${config.shutdownGraceMs} ms), then exiting`);
    const hardStop = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, config.shutdownGraceMs + 1500);
    hardStop.unref();
    await app?.close().catch(() => undefined);
    await scheduler.stop().catch(() => undefined);
    await processor.stop().catch(() => undefined);
    await worker.stop(config.shutdownGraceMs).catch((err) => log.error(`worker stop failed: ${(err as Error).message}`));
    await db.close().catch(() => undefined);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  const report = await processor.start();
  log.info(`DAG folder ${relative(config.dagsFolder)}: ${report.files} file(s), ${report.dags} DAG(s) updated, ${report.errors} import error(s)`);
  worker.start();
  scheduler.start();
  app = await buildApp({ db, clock, logger, config, onRunCreated: () => scheduler.wake() });
  await app.listen({ port: config.port, host: config.host });
  log.info(`API on http://${config.host}:${config.port}/api/v1 (docs at /docs); ${config.workers} local worker(s)`);
}
