import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../api/app.ts";
import type { Config } from "../core/config.ts";
import { Worker } from "../executor/worker.ts";
import { DagProcessor } from "../parser/processor.ts";
import { Scheduler } from "../scheduler/loop.ts";
import { isLoopbackHost, trustProxyWarning } from "../core/config.ts";
import { hostnameProblem, queueNameProblem } from "../core/dagLimits.ts";
import { describeDatabaseUrl } from "../store/db.ts";
import type { Server } from "node:http";
import { checkListenHost, listenError, type Listener } from "./listen.ts";
import { startMetricsListener } from "./metricsListener.ts";
import { announceAdminToken, ensureAdminToken } from "./adminToken.ts";
import { clock, exitWith, loadCliConfig, openRuntime, relative } from "./runtime.ts";
import { workerOptionsFromConfig } from "./workerOptions.ts";

/** Which of Baton's services this process runs: all of them for `standalone`, one for the others. */
export interface Roles {
  dagProcessor?: boolean;
  scheduler?: boolean;
  worker?: boolean;
  api?: boolean;
}

/** The most task slots (task processes) one worker runs: more is a typo or a fork bomb, not a bigger host. */
export const MAX_WORKER_SLOTS = 1024;

export interface ServiceFlags {
  port?: number;
  host?: string;
  workers?: number;
  dagsFolder?: string;
  queues?: string[];
  hostname?: string;
  isolation?: "warm" | "process";
}

/**
 * Starts the given services against one database, wires in-process wake-ups between them
 * (trigger → scheduler → worker), and stops them gracefully on SIGTERM/SIGINT: a second
 * signal exits at once.
 */
export async function runServices(name: string, roles: Roles, flags: ServiceFlags): Promise<void> {
  const overrides: Partial<Config> = { port: flags.port, host: flags.host, workers: flags.workers, dagsFolder: flags.dagsFolder };
  const listenerOf = (config: Config): Listener | undefined =>
    roles.api
      ? { what: "API", host: config.host, port: config.port, settings: "BATON_HOST/BATON_PORT or --host/--port" }
      : config.metricsPort > 0
        ? { what: "metrics", host: config.metricsHost, port: config.metricsPort, settings: "BATON_METRICS_HOST/BATON_METRICS_PORT" }
        : undefined;
  // Loaded once: the checks below and the runtime read the same configuration.
  const config = loadCliConfig(overrides);
  if (roles.worker && config.workers < 1) {
    // It would register as a live worker and never run a task.
    exitWith(`BATON_CONFIG_INVALID: a worker needs at least one task slot (BATON_WORKERS / --concurrency), got ${config.workers}; to run no tasks on this host, run \`baton scheduler\` and \`baton api\` instead`, 1);
  }
  if (roles.worker && config.workers > MAX_WORKER_SLOTS) {
    // Each slot is a task process, all started at once before signals are heard: 99999999 forked until the host gave out.
    exitWith(`BATON_CONFIG_INVALID: a worker has at most ${MAX_WORKER_SLOTS} task slots (BATON_WORKERS / --concurrency; each is a task process), got ${config.workers}; run more \`baton worker\` processes instead`, 1);
  }
  if (roles.worker && flags.queues !== undefined && flags.queues.length === 0) {
    exitWith("BATON_CONFIG_INVALID: --queues names no queue; give comma-separated queue names, or leave it out to serve `default`", 1);
  }
  // A queue no DAG may name (core/dagLimits.ts): never served, and a newline would split the log line naming it.
  for (const queue of roles.worker ? (flags.queues ?? []) : []) {
    const problem = queueNameProblem("queue", queue);
    if (problem !== null) exitWith(`BATON_CONFIG_INVALID: --queues: ${problem}`, 1);
  }
  if (roles.worker) {
    const problem = hostnameProblem("--hostname", flags.hostname);
    if (problem !== null) exitWith(`BATON_CONFIG_INVALID: ${problem}`, 1);
  }
  const listener = listenerOf(config);
  if (listener) await checkListenHost(listener);
  // The services set Baton up: they create a missing database (the commands that only use one do not).
  const { db, logger } = await openRuntime(config, { create: true });
  const listening = <T>(start: Promise<T>): Promise<T> =>
    start.catch((err: unknown) => {
      throw (listener && listenError(err, listener)) ?? err;
    });
  const log = logger.scope({ component: name });
  log.info(`database: ${describeDatabaseUrl(config.databaseUrl)}`);
  if (roles.api && config.auth === "off" && !isLoopbackHost(config.host)) {
    await db.close();
    exitWith(`BATON_CONFIG_INVALID: BATON_AUTH=off is only allowed on a loopback host; ${config.host} is reachable from other machines (turn auth on or bind 127.0.0.1)`, 2);
  }
  const trustWarning = roles.api ? trustProxyWarning(config.trustProxy) : undefined;
  if (trustWarning) log.warn(trustWarning);
  if (roles.api && config.auth === "on") announceAdminToken(await ensureAdminToken(db, config, clock.now()), log);

  const processor = roles.dagProcessor
    ? new DagProcessor(db, clock, logger.scope({ component: "dag-processor" }), {
        dagsFolder: config.dagsFolder,
        parseTimeoutMs: config.dagParseTimeoutMs,
        rescanIntervalMs: config.dagRescanIntervalMs,
        reparseIntervalMs: config.dagReparseIntervalMs,
        pausedAtCreation: config.dagsPausedAtCreation,
        scratchFolder: path.join(config.cacheFolder, "parse"),
      })
    : undefined;
  const worker = roles.worker
    ? new Worker(db, clock, logger.scope({ component: "worker" }), {
        concurrency: config.workers,
        queues: flags.queues?.length ? flags.queues : ["default"],
        hostname: flags.hostname ?? os.hostname(),
        ...workerOptionsFromConfig(config),
        // Within the hard stop below (the grace + 1.5 s): a database that does not answer is reported, not waited for.
        stopRecordTimeoutMs: 1000,
        // A finished run frees a place under maxActiveRuns (or a backfill's limit): start the next now.
        onRecorded: (r) => {
          if (r.runsFinished.length > 0) scheduler?.wake();
        },
        // A cancelled try's process ended: the compensations it held back are queued now.
        onAbandonedReleased: () => scheduler?.wake(),
        isolation: flags.isolation,
        prestartChildren: true,
      })
    : undefined;
  const scheduler = roles.scheduler
    ? new Scheduler(db, clock, logger.scope({ component: "scheduler" }), {
        intervalMs: config.schedulerIntervalMs,
        taskHeartbeatTimeoutMs: config.taskHeartbeatTimeoutMs,
        onTasksQueued: () => worker?.wake(),
      })
    : undefined;
  let app: FastifyInstance | undefined;
  let metricsServer: Server | undefined;

  let stoppingSince = 0;
  const shutdown = async (signal: string) => {
    if (stoppingSince) {
      // `npm start` + Ctrl-C delivers the signal twice at once (terminal and npm); only a
      // deliberate second signal forces the exit.
      if (Date.now() - stoppingSince < 1000) return;
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stoppingSince = Date.now();
    log.info(`${signal} received: ${worker ? `finishing running tasks (up to ${config.shutdownGraceMs} ms), then ` : ""}exiting`);
    const hardStop = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, config.shutdownGraceMs + 1500);
    hardStop.unref();
    await app?.close().catch(() => undefined);
    metricsServer?.close();
    await scheduler?.stop().catch(() => undefined);
    await processor?.stop().catch(() => undefined);
    await worker?.stop(config.shutdownGraceMs).catch((err) => log.error(`worker stop failed: ${(err as Error).message}`));
    await db.close().catch(() => undefined);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  if (processor) {
    const report = await processor.start();
    // A signal during the first scan: shutdown() is already stopping everything, start nothing more.
    if (stoppingSince) return;
    // A failed first scan is logged by the processor, which scans again at every rescan interval.
    if (report) log.info(`DAG folder ${relative(config.dagsFolder)}: ${report.files} file(s), ${report.dags} DAG(s) updated, ${report.errors} import error(s)`);
  }
  await worker?.start();
  // Its first heartbeat is stored before the API listens: /health never reports it unhealthy for having just started.
  await scheduler?.start();
  if (roles.api) {
    const server = await buildApp({ db, clock, logger, config, auth: { mode: config.auth }, requestLog: true, onRunCreated: () => scheduler?.wake(), onTasksQueued: () => worker?.wake() });
    if (stoppingSince) {
      await server.close().catch(() => undefined);
      return;
    }
    app = server;
    await listening(app.listen({ port: config.port, host: config.host }));
    log.info(`UI on http://${config.host}:${config.port}/, API on http://${config.host}:${config.port}/api/v1 (docs at /docs)${config.auth === "off" ? "; auth is OFF (BATON_AUTH=off)" : ""}`);
  }
  if (!roles.api && config.metricsPort > 0) {
    metricsServer = await listening(startMetricsListener(db, config.metricsHost, config.metricsPort));
    log.info(`metrics on http://${config.metricsHost}:${config.metricsPort}/metrics`);
  }
  if (worker) log.info(`${config.workers} worker slot(s) on queue(s) ${(flags.queues?.length ? flags.queues : ["default"]).join(", ")}`);
}
