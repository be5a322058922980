import os from "node:os";
import path from "node:path";
import { dagRunJson, taskInstanceJson } from "../api/serializers.ts";
import { Worker } from "../executor/worker.ts";
import type { DiscoverFs } from "../parser/discover.ts";
import { DagProcessor, unreadableCover } from "../parser/processor.ts";
import { Scheduler } from "../scheduler/loop.ts";
import type { RowDataPacket } from "../store/db.ts";
import { getDag, getDagRun, importErrorOfFile, listTaskInstances } from "../store/queries/read.ts";
import { createDagRun } from "../store/transitions/createDagRun.ts";
import { loadStructure } from "../store/versions.ts";
import type { OutputFormat } from "./output.ts";
import { clock, exitWith, type Runtime } from "./runtime.ts";
import { workerOptionsFromConfig } from "./workerOptions.ts";

/** How often the test run's row is read for an end another worker recorded. */
const RUN_POLL_MS = 500;

/** Lines of a failed task's error message printed under it; its log has the rest, with the stack. */
const ERROR_LINES = 5;

/**
 * A failed task's error under its line, as Airflow's `dags test` shows the failure: the error's class and
 * message (its first lines), then where the whole error and its stack are.
 */
export function failureLines(error: { name?: unknown; message?: unknown } | null, logsCommand: string): string[] {
  if (!error) return [];
  const message = String(error.message ?? "").split("\n");
  const head = [`${String(error.name ?? "Error")}: ${message[0]}`, ...message.slice(1, ERROR_LINES)];
  const more = message.length > ERROR_LINES ? ` (${message.length - ERROR_LINES} more line(s))` : "";
  return [...head, `full error${more} and stack: ${logsCommand}`];
}

/**
 * `baton dags test`: parses the DAG folder, runs one run of the DAG in this process
 * (scheduler + local workers) against the database, and prints each task's state.
 */
export async function dagsTest(
  { config, db, logger }: Runtime,
  dagId: string,
  conf: Record<string, unknown>,
  options: {
    /** Tests only: the folder walk's and the file reads' file system calls (root cannot get EACCES from a real one). */
    discoverFs?: Partial<DiscoverFs>;
    /** json: the run and its task instances as the API shows them (`runs show` without `signals`). */
    output?: OutputFormat;
  } = {},
): Promise<number> {
  const processor = new DagProcessor(db, clock, logger.scope({ component: "dag-processor" }), {
    dagsFolder: config.dagsFolder,
    parseTimeoutMs: config.dagParseTimeoutMs,
    rescanIntervalMs: config.dagRescanIntervalMs,
    pausedAtCreation: config.dagsPausedAtCreation,
    scratchFolder: path.join(config.cacheFolder, "parse"),
    discoverFs: options.discoverFs,
  });
  const scan = await processor.scan();
  await processor.stop();

  const dag = await getDag(db.pool, dagId);
  if (!dag) {
    const [errors] = await db.pool.query<RowDataPacket[]>("SELECT fileloc, line, message FROM import_error ORDER BY id LIMIT 3");
    const hint = errors.length ? `; import errors: ${errors.map((e) => `${e.fileloc}${e.line ? `:${e.line}` : ""}: ${String(e.message).split("\n")[0]}`).join(" | ")}` : "";
    exitWith(`BATON_DAG_NOT_FOUND: DAG "${dagId}" not found in ${config.dagsFolder}${hint}`);
  }
  // The file as it is now is what the author tests (Airflow's `dags test` loads it): its last
  // version that parsed would run code the file no longer holds, and report on it. A file this scan
  // could not read (itself, a folder or link above it, or an ignore file of such a folder) keeps
  // its DAGs on their last version, and any import error stored for it is as old: that comes first.
  const unreadable = unreadableCover(scan.unreadable, dag.fileloc as string);
  if (unreadable) {
    const detail = unreadable.message.startsWith(unreadable.code) ? unreadable.message : `${unreadable.code}: ${unreadable.message}`;
    exitWith(`BATON_DAGS_FOLDER_UNREADABLE: DAG "${dagId}" is defined in ${dag.fileloc}, which cannot be read now: ${detail.split("\n")[0]}`);
  }
  const broken = dag.has_import_errors ? await importErrorOfFile(db.pool, dag.fileloc as string) : undefined;
  if (broken) {
    const where = broken.line ? ` (line ${broken.line})` : "";
    exitWith(`${broken.code}: DAG "${dagId}" is defined in ${dag.fileloc}, which does not import now${where}: ${String(broken.message).split("\n")[0]}`);
  }
  // A paused DAG's run would wait in `queued` forever; say so instead of hanging.
  if (dag.is_paused) {
    exitWith(`DAG "${dagId}" is paused: unpause it (PATCH /api/v1/dags/${dagId} {"is_paused": false}) before testing it`);
  }
  const now = clock.now();
  const { id, runId } = await createDagRun(db, now, { dagId, runId: `test__${now.toISOString()}`, runType: "manual", logicalDate: now, conf });
  // Every queue the run's tasks name, as Airflow's `dags test` runs every task itself: serving only
  // `default` left a task on another queue queued for ever.
  const created = await getDagRun(db.pool, dagId, runId);
  const structure = await loadStructure(db.pool, created!.version_hash as string);
  const queues = [...new Set(["default", ...structure.tasks.map((t) => t.queue)])];
  let finished: (state: string) => void;
  const done = new Promise<string>((resolve) => (finished = resolve));
  const worker = new Worker(db, clock, logger.scope({ component: "worker" }), {
    concurrency: Math.max(1, config.workers),
    queues,
    hostname: os.hostname(),
    // The same settings as `baton worker` and `standalone` (BATON_XCOM_MAX_BYTES, BATON_TASK_KILL_GRACE, …).
    ...workerOptionsFromConfig(config),
    onRecorded: (r) => {
      const mine = r.runsFinished.find((f) => f.dagRunId === id);
      if (mine) finished(mine.state);
    },
  });
  // Another worker on this database (a standalone left running, a `baton worker`) may claim the
  // run's tasks and finish it: this worker then never records its end, so the run's row is read
  // too, until it ends (or is gone: deleted meanwhile).
  let poll: NodeJS.Timeout | undefined;
  const watch = async () => {
    try {
      const row = await getDagRun(db.pool, dagId, runId);
      if (!row) return finished("deleted");
      if (row.state === "success" || row.state === "failed") return finished(row.state as string);
    } catch {
      // a lost connection: read again at the next turn
    }
    poll = setTimeout(watch, RUN_POLL_MS);
  };
  poll = setTimeout(watch, RUN_POLL_MS);
  const scheduler = new Scheduler(db, clock, logger.scope({ component: "scheduler" }), {
    intervalMs: 200,
    // The zombie timeout every process shares: its worker beats within it (above), and another worker's tries are reaped by it.
    taskHeartbeatTimeoutMs: config.taskHeartbeatTimeoutMs,
    onTasksQueued: () => worker.wake(),
  });
  await worker.start();
  await scheduler.start();
  const state = await done;
  clearTimeout(poll);
  await scheduler.stop();
  await worker.stop(1000);

  const run = await getDagRun(db.pool, dagId, runId);
  if (!run) exitWith(`run ${runId} disappeared`);
  const rows = [];
  for (;;) {
    const page = await listTaskInstances(db.pool, id, { limit: 1000, offset: rows.length });
    rows.push(...page.rows);
    if (page.rows.length < 1000) break;
  }
  if (options.output === "json") {
    const document = { ...dagRunJson(run!), task_instances: rows.map((ti) => taskInstanceJson(ti, run!.logical_date)) };
    process.stdout.write(JSON.stringify(document, null, 2) + "\n");
    return state === "success" ? 0 : 1;
  }
  process.stdout.write(`run ${runId} of ${dagId}: ${state}\n`);
  for (const ti of rows) {
    const took = ti.duration === null ? "" : ` (${Number(ti.duration).toFixed(3)}s, try ${ti.try_number})`;
    process.stdout.write(`  ${String(ti.task_id).padEnd(32)} ${ti.state}${took}\n`);
    if (ti.state !== "failed" && ti.state !== "up_for_retry") continue;
    const { error } = taskInstanceJson(ti, run!.logical_date);
    const logs = `baton tasks logs ${dagId} '${runId}' ${ti.task_id}`;
    for (const line of failureLines(error, logs)) process.stdout.write(`      ${line}\n`);
  }
  return state === "success" ? 0 : 1;
}
