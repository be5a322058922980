import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../api/app.ts";
import { systemClock, type Clock } from "../../core/clock.ts";
import { createLogger, silentLogger, type Logger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
import { DagProcessor } from "../../parser/processor.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { Db, DbOptions, RowDataPacket } from "../../store/db.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { createTestDb, dropTestDb, waitFor } from "./db.ts";

export interface HarnessOptions {
  workers?: number;
  /** Options of the test database's Db (createTestDb). */
  db?: DbOptions;
  clock?: Clock;
  parseTimeoutMs?: number;
  /** Start a worker (default true). */
  worker?: boolean;
  /** After a timeout aborts ctx.signal, how long a task gets before its process is killed (Worker default: 10 s). */
  killGraceMs?: number;
  /** Worker heartbeat period (default 5 s); short in tests that wait for a heartbeat. */
  heartbeatMs?: number;
  isolation?: "warm" | "process";
  /** The worker's cap on a try's log (BATON_TASK_LOG_MAX_BYTES; Worker default: 100 MiB). */
  maxLogBytes?: number;
  /** How long a DAG's onSuccess/onFailure may run (Worker default: 60 s). */
  dagCallbackTimeoutMs?: number;
  /**
   * The scheduler's zombie timeout. Default: 30 s on the system clock; on a fake clock, 100 years,
   * because a test that jumps the clock would otherwise turn every running try into a zombie.
   */
  taskHeartbeatTimeoutMs?: number;
  /**
   * The scheduler ticks only when the test calls `h.scheduler.tick()`: no timer, and waking it
   * (run(), the API) does nothing. Default false: it ticks on its timer and when woken.
   */
  manualTicks?: boolean;
  /**
   * How trigger() names a run it is given no runId for. "api" (default): as the API names it,
   * `manual__<logical date>`. "numbered": `<dagId>_<n>`, n counting this harness's triggers, for
   * tests that look runs up by run_id alone (two DAGs' runs of one logical date share the API's id).
   */
  runIds?: "api" | "numbered";
}

/** A manual run for Harness.trigger to create. */
export interface TriggerOptions {
  /** The run's id (dag_run_id); default: as HarnessOptions.runIds says. */
  runId?: string;
  conf?: Record<string, unknown>;
  /** The run's logical date; default: the harness clock's now. */
  logicalDate?: string | Date;
  note?: string;
  /**
   * "api" (default): POST /api/v1/dags/{dagId}/dagRuns through inject, as a client triggers,
   * which wakes the scheduler. "store": the createDagRun transition itself at the harness clock's
   * now, with no request and no wake.
   */
  via?: "api" | "store";
  /** Then run one scheduler tick: it starts the run where the scheduler ticks only when told (manualTicks). */
  tick?: boolean;
}

/**
 * Baton's components in-process against a fresh database and a temporary DAG folder:
 * the same objects `baton standalone` wires together, with an API reached by inject().
 */
export class Harness {
  db!: Db;
  app!: FastifyInstance;
  processor!: DagProcessor;
  scheduler!: Scheduler;
  worker?: Worker;
  dagsFolder!: string;
  logsFolder!: string;
  cacheFolder!: string;
  readonly clock: Clock;
  readonly logger: Logger;
  private triggered = 0;

  constructor(private readonly options: HarnessOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = process.env.BATON_TEST_LOG ? createLogger("debug") : silentLogger;
  }

  async start(files: Record<string, string> = {}): Promise<this> {
    this.db = await createTestDb(this.options.db);
    const root = await mkdtemp(path.join(os.tmpdir(), "baton-test-"));
    this.dagsFolder = path.join(root, "dags");
    this.logsFolder = path.join(root, "logs");
    this.cacheFolder = path.join(root, "cache");
    await mkdir(this.dagsFolder, { recursive: true });
    for (const [name, source] of Object.entries(files)) await this.writeDag(name, source);
    this.processor = new DagProcessor(this.db, this.clock, this.logger, {
      dagsFolder: this.dagsFolder,
      parseTimeoutMs: this.options.parseTimeoutMs ?? 30_000,
      rescanIntervalMs: 60_000,
      pausedAtCreation: false,
      scratchFolder: path.join(this.cacheFolder, "parse"),
      poolSize: 2,
    });
    if (this.options.worker !== false) {
      this.worker = new Worker(this.db, this.clock, this.logger, {
        concurrency: this.options.workers ?? 2,
        queues: ["default"],
        logsFolder: this.logsFolder,
        cacheFolder: this.cacheFolder,
        killGraceMs: this.options.killGraceMs,
        heartbeatMs: this.options.heartbeatMs,
        isolation: this.options.isolation,
        maxLogBytes: this.options.maxLogBytes,
        dagCallbackTimeoutMs: this.options.dagCallbackTimeoutMs,
        onAbandonedReleased: () => this.scheduler?.wake(),
      });
    }
    this.scheduler = new Scheduler(this.db, this.clock, this.logger, {
      intervalMs: 100,
      taskHeartbeatTimeoutMs: this.options.taskHeartbeatTimeoutMs ?? (this.options.clock ? 100 * 365 * 86_400_000 : 30_000),
      onTasksQueued: () => this.worker?.wake(),
    });
    if (this.options.manualTicks) this.scheduler.wake = () => undefined;
    this.app = await buildApp({
      db: this.db,
      clock: this.clock,
      logger: this.logger,
      config: { logsFolder: this.logsFolder },
      auth: { mode: "off" },
      onRunCreated: () => this.scheduler.wake(),
      onTasksQueued: () => this.worker?.wake(),
    });
    return this;
  }

  async writeDag(name: string, source: string): Promise<string> {
    const file = path.join(this.dagsFolder, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, source);
    return file;
  }

  /** Parses the folder, then starts the scheduler and worker. */
  async run(): Promise<this> {
    await this.processor.scan();
    await this.worker?.start();
    await this.scheduler.start();
    return this;
  }

  /**
   * Creates a manual run of dagId and returns its run id; throws with the API's answer when it
   * refuses (a test that checks a refused trigger sends its own request).
   */
  async trigger(dagId: string, options: TriggerOptions = {}): Promise<string> {
    const { conf, note, via = "api", tick = false } = options;
    const runId = options.runId ?? (this.options.runIds === "numbered" ? `${dagId}_${++this.triggered}` : undefined);
    const logicalDate = options.logicalDate instanceof Date ? options.logicalDate.toISOString() : options.logicalDate;
    let created: string;
    if (via === "store") {
      const now = this.clock.now();
      const run = await createDagRun(this.db, now, {
        dagId,
        runId,
        runType: "manual",
        logicalDate: logicalDate === undefined ? now : new Date(logicalDate),
        conf: conf ?? {},
        note,
      });
      created = run.runId;
    } else {
      const url = `/api/v1/dags/${encodeURIComponent(dagId)}/dagRuns`;
      const payload = { dag_run_id: runId, conf, logical_date: logicalDate, note };
      const res = await this.app.inject({ method: "POST", url, payload: Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined)) });
      if (res.statusCode !== 200) throw new Error(`POST ${url}: ${res.statusCode} ${res.body}`);
      created = res.json().dag_run_id as string;
    }
    if (tick) await this.scheduler.tick();
    return created;
  }

  /** A run's state as stored; undefined when there is no such run. */
  async runState(dagId: string, runId: string): Promise<string | undefined> {
    const [rows] = await this.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return rows[0]?.state as string | undefined;
  }

  /** Waits until the run ended (success or failed) and returns which, failing after timeoutMs. */
  async runEnded(dagId: string, runId: string, timeoutMs = 20_000): Promise<string> {
    return waitFor(
      `run ${dagId}/${runId} to end`,
      async () => {
        const state = await this.runState(dagId, runId);
        return state === "success" || state === "failed" ? state : null;
      },
      timeoutMs,
    );
  }

  /** A try's whole log as the API serves it (stored text, then file); null when there is none. */
  async taskLog(dagId: string, runId: string, taskId: string, tryNumber: number): Promise<string | null> {
    const url = `/api/v1/dags/${encodeURIComponent(dagId)}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${encodeURIComponent(taskId)}/logs/${tryNumber}?full_content=true`;
    const res = await this.app.inject({ method: "GET", url });
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`);
    return res.body;
  }

  /** Every step runs even if one before it fails: a skipped one would leave timers, task processes or a pool alive in this Jest worker. */
  async stop(): Promise<void> {
    const failures: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | undefined) => {
      try {
        await fn();
      } catch (err) {
        failures.push(err);
      }
    };
    await step(() => this.app?.close());
    await step(() => this.scheduler?.stop());
    await step(() => this.processor?.stop());
    await step(() => this.worker?.stop(2000));
    await step(() => (this.db ? dropTestDb(this.db) : undefined));
    await step(() => (this.dagsFolder ? rm(path.dirname(this.dagsFolder), { recursive: true, force: true }) : undefined));
    if (failures.length > 0) throw failures[0];
  }
}

/** A DAG file's source importing the SDK by its package name, as users write it. */
export function dagSource(body: string): string {
  return `import { dag, SkipError, FailError } from "baton";\n${body}\n`;
}
