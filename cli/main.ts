import { Command, InvalidArgumentError } from "commander";
import { createDagRun } from "../store/transitions/createDagRun.ts";
import { listDags } from "../store/queries/read.ts";
import { migrate } from "../store/migrate.ts";
import { BatonError } from "../core/errors.ts";
import { taskLogPath } from "../core/logPaths.ts";
import { isConnectionError } from "../store/db.ts";
import { loadConfig } from "../core/config.ts";
import { ApiCallError } from "./client.ts";
import { clock, exitWith, explainDatabaseError, openRuntime } from "./runtime.ts";

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
}

function jsonObject(value: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(value);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return parsed;
  } catch {
    throw new InvalidArgumentError(`must be a JSON object, e.g. '{"rows": 10}'`);
  }
}

const program = new Command()
  .name("baton")
  .description("Baton: an Airflow-style DAG scheduler for batch pipelines, backed by MySQL.")
  .showHelpAfterError()
  .option("--api-url <url>", "talk to a Baton API (token from BATON_API_TOKEN) instead of the database (BATON_API_URL)")
  .option("-o, --output <format>", "table (default) or json", (v: string) => {
    if (v !== "table" && v !== "json") throw new InvalidArgumentError('must be "table" or "json"');
    return v;
  })
  .addHelpText(
    "after",
    `
Configuration comes from the environment (BATON_DATABASE_URL, BATON_DAGS_FOLDER, BATON_PORT,
BATON_HOST, BATON_WORKERS, ...; see the README); flags override it.

Examples:
  $ baton standalone                      # scheduler + API + workers on ./dags
  $ baton dags trigger example_etl --conf '{"rows": 10}'
  $ baton dags test order_fulfillment     # run once in this process, print task states`,
  );

program
  .command("standalone")
  .description("migrate, then run the DAG processor, scheduler, API and local workers in one process")
  .option("-p, --port <port>", "API port (BATON_PORT, default 8080)", integer)
  .option("-H, --host <host>", "API host (BATON_HOST, default 127.0.0.1)")
  .option("-w, --workers <n>", "local worker processes (BATON_WORKERS, default 2)", integer)
  .option("-d, --dags-folder <path>", "DAG folder (BATON_DAGS_FOLDER, default ./dags)")
  .action(async (opts) => (await import("./standalone.ts")).standalone(opts));

const services = (name: string, roles: import("./services.ts").Roles) => async (opts: Record<string, unknown>) =>
  (await import("./services.ts")).runServices(name, roles, opts);

program
  .command("scheduler")
  .description("run a scheduler: starts queued runs and re-queues due retries (run several for HA)")
  .action(services("scheduler", { scheduler: true }));

program
  .command("worker")
  .description("run a worker: claims queued tasks from MySQL and runs them in a pool of child processes")
  .option("-c, --concurrency <n>", "task slots (BATON_WORKERS, default 2)", integer)
  .option("-q, --queues <names>", "comma-separated queues to serve (default: default)", (v: string) => v.split(",").map((q) => q.trim()).filter(Boolean))
  .option("--hostname <name>", "hostname recorded on the tasks it runs (default: this host's)")
  .option("--isolation <mode>", 'warm (default: reuse task processes) or process (a fresh process per try)', (v: string) => {
    if (v !== "warm" && v !== "process") throw new InvalidArgumentError('must be "warm" or "process"');
    return v;
  })
  .action((opts) => services("worker", { worker: true })({ ...opts, workers: opts.concurrency }));

program
  .command("api")
  .description("run the REST API")
  .option("-p, --port <port>", "API port (BATON_PORT, default 8080)", integer)
  .option("-H, --host <host>", "API host (BATON_HOST, default 127.0.0.1)")
  .action(services("api", { api: true }));

program
  .command("dag-processor")
  .description("watch the DAG folder and store parsed DAG versions and import errors")
  .option("-d, --dags-folder <path>", "DAG folder (BATON_DAGS_FOLDER, default ./dags)")
  .action(services("dag-processor", { dagProcessor: true }));

const db = program.command("db").description("database maintenance");
db.command("migrate")
  .description("create the database if missing and apply pending migrations")
  .action(async () => {
    const rt = await openRuntime({}, { migrate: false });
    const applied = await migrate(rt.db, rt.logger.scope({ component: "migrate" }));
    process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
    await rt.db.close();
  });

db.command("clean")
  .description("delete finished runs older than a date, with their task instances, outputs, events and logs, in batches")
  .requiredOption("--before <date>", "ISO date: runs that ended before it are deleted")
  .option("--dry-run", "count what would be deleted")
  .action(async (opts) => {
    const before = new Date(opts.before);
    if (Number.isNaN(before.getTime())) exitWith(`BATON_INVALID_DATE: --before "${opts.before}" is not a date (e.g. 2026-01-01)`);
    const rt = await openRuntime();
    const { cleanBefore } = await import("../store/maintenance.ts");
    const report = await cleanBefore(rt.db, before, { dryRun: !!opts.dryRun });
    if (!opts.dryRun) {
      const { rm } = await import("node:fs/promises");
      const path = await import("node:path");
      for (const r of report.deleted) {
        const folder = path.dirname(path.dirname(taskLogPath(rt.config.logsFolder, { dagId: r.dagId, runId: r.runId, taskId: "x", tryNumber: 1 })));
        await rm(folder, { recursive: true, force: true });
      }
    }
    process.stdout.write(`${opts.dryRun ? "would delete" : "deleted"} ${report.runs} run(s) and ${report.taskInstances} task instance(s)\n`);
    await rt.db.close();
  });

const dags = program.command("dags").description("list, trigger and test DAGs");
dags
  .command("list")
  .description("list active DAGs")
  .option("--json", "print JSON")
  .action(async (opts) => {
    const rt = await openRuntime();
    const { rows } = await listDags(rt.db.pool, { limit: 1000, offset: 0, onlyActive: true });
    if (opts.json) process.stdout.write(JSON.stringify(rows.map((r) => ({ dag_id: r.dag_id, is_paused: !!r.is_paused, fileloc: r.fileloc })), null, 2) + "\n");
    else {
      process.stdout.write(`${"dag_id".padEnd(32)} ${"paused".padEnd(7)} fileloc\n`);
      for (const r of rows) process.stdout.write(`${String(r.dag_id).padEnd(32)} ${(r.is_paused ? "yes" : "no").padEnd(7)} ${r.fileloc}\n`);
    }
    await rt.db.close();
  });

dags
  .command("trigger <dag_id>")
  .description("create a manual run; the scheduler starts it")
  .option("-c, --conf <json>", "run configuration (JSON object)", jsonObject)
  .option("-r, --run-id <run_id>", "explicit dag_run_id")
  .action(async (dagId: string, opts) => {
    const rt = await openRuntime();
    const now = clock.now();
    const { runId } = await createDagRun(rt.db, now, { dagId, runId: opts.runId, runType: "manual", logicalDate: now, conf: opts.conf ?? {} });
    process.stdout.write(`created run ${runId} of ${dagId}\n`);
    await rt.db.close();
  });

dags
  .command("test <dag_id>")
  .description("parse the DAG folder and run one run of the DAG in this process, printing each task's state")
  .option("-c, --conf <json>", "run configuration (JSON object)", jsonObject)
  .option("-d, --dags-folder <path>", "DAG folder (BATON_DAGS_FOLDER, default ./dags)")
  .action(async (dagId: string, opts) => {
    const rt = await openRuntime({ dagsFolder: opts.dagsFolder });
    const { dagsTest } = await import("./dagsTest.ts");
    const code = await dagsTest(rt, dagId, opts.conf ?? {});
    await rt.db.close();
    process.exit(code);
  });

const tasks = program.command("tasks").description("act on task instances");
tasks
  .command("clear <dag_id>")
  .description("clear task instances of a run so they run again; the run goes back to running")
  .requiredOption("-r, --run-id <run_id>", "the run whose task instances to clear")
  .option("-t, --task-ids <ids>", "comma-separated task ids (all tasks when omitted, with --only-failed or --only-running)", (v: string) =>
    v.split(",").map((id) => id.trim()).filter(Boolean),
  )
  .option("-d, --downstream", "also clear every task downstream of them")
  .option("-u, --upstream", "also clear every task upstream of them")
  .option("-f, --only-failed", "only failed and upstream_failed task instances")
  .option("--only-running", "only running task instances")
  .option("--dry-run", "print what would be cleared; change nothing")
  .option("-y, --yes", "do not ask for confirmation")
  .action(async (dagId: string, opts) => {
    const rt = await openRuntime();
    const { tasksClear } = await import("./tasksClear.ts");
    const code = await tasksClear(rt, dagId, opts);
    await rt.db.close();
    process.exit(code);
  });

program
  .command("signal <dag_id> <dag_run_id> <name>")
  .description("send a signal to a run: the task waiting for it resumes with the payload (kept until one waits)")
  .option("-p, --payload <json>", "the payload (any JSON)", (v: string) => {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw new InvalidArgumentError("must be JSON, e.g. '{\"signedBy\": \"ana\"}'");
    }
  })
  .option("--signal-id <id>", "idempotency id: sending the same id twice delivers once")
  .action(async (dagId: string, runId: string, name: string, opts) => {
    const rt = await openRuntime();
    const { sendSignal } = await import("../store/transitions/signals.ts");
    const { VersionCache } = await import("../store/versions.ts");
    const versions = new VersionCache(rt.db.pool);
    const result = await sendSignal(rt.db, clock.now(), { dagId, runId, name, signalId: opts.signalId, payload: opts.payload }, (h) => versions.shape(h));
    const what = result.duplicate ? "already received" : result.deliveredTo ? `delivered to ${result.deliveredTo}` : "stored until a task waits for it";
    process.stdout.write(`signal ${name} for ${dagId}/${runId}: ${what}\n`);
    await rt.db.close();
  });

const deadLetters = program.command("dead-letters").description("task instances that exhausted their retries, across DAGs");
deadLetters
  .command("list")
  .option("--dag-id <dag_id>", "only this DAG")
  .option("--json", "print JSON")
  .action(async (opts) => {
    const rt = await openRuntime();
    const { listDeadLetters } = await import("../store/queries/deadLetters.ts");
    const { rows } = await listDeadLetters(rt.db.pool, { dagId: opts.dagId }, { limit: 1000, offset: 0 });
    if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    for (const r of opts.json ? [] : rows) {
      const error = JSON.parse(r.error ?? "null") as { name?: string; message?: string } | null;
      process.stdout.write(`${r.id}\t${r.dag_id}/${r.run_id}/${r.task_id}\ttry ${r.try_number}\t${error?.name ?? ""}: ${error?.message ?? ""}\n`);
    }
    await rt.db.close();
  });
deadLetters
  .command("redrive")
  .description("clear dead letters (and their downstream tasks) so they run again")
  .option("--dag-id <dag_id>", "every dead letter of this DAG")
  .option("--ids <ids>", "comma-separated task instance ids", (v: string) => v.split(",").map((x) => integer(x.trim())))
  .option("--dry-run", "list what would be re-driven")
  .action(async (opts) => {
    if (!opts.dagId && !opts.ids) exitWith("BATON_VALIDATION_FAILED: give --dag-id or --ids");
    const rt = await openRuntime();
    const { redriveDeadLetters } = await import("../store/transitions/redriveDeadLetters.ts");
    const { VersionCache } = await import("../store/versions.ts");
    const versions = new VersionCache(rt.db.pool);
    const { redriven } = await redriveDeadLetters(rt.db, clock.now(), { dagId: opts.dagId, ids: opts.ids }, !!opts.dryRun, (h) => versions.shape(h));
    process.stdout.write(`${opts.dryRun ? "would re-drive" : "re-drove"} ${redriven} task instance(s)\n`);
    await rt.db.close();
  });

const pools = program.command("pools").description("list, create, resize and delete pools");
pools
  .command("list")
  .description("list pools with their slots")
  .option("--json", "print JSON")
  .action(async (opts) => {
    const rt = await openRuntime();
    const { listPools } = await import("../store/pools.ts");
    const { rows } = await listPools(rt.db.pool, { limit: 1000, offset: 0 });
    if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    else {
      process.stdout.write(`${"name".padEnd(32)} ${"slots".padStart(6)} ${"used".padStart(6)}  description\n`);
      for (const p of rows) process.stdout.write(`${p.name.padEnd(32)} ${String(p.slots).padStart(6)} ${String(p.occupied_slots).padStart(6)}  ${p.description ?? ""}\n`);
    }
    await rt.db.close();
  });
pools
  .command("set <name> <slots>")
  .description("create a pool, or change its slots")
  .option("--description <text>", "what the pool protects")
  .action(async (name: string, slots: string, opts) => {
    const n = integer(slots);
    const rt = await openRuntime();
    const { createPool, getPool, updatePool } = await import("../store/pools.ts");
    if (await getPool(rt.db.pool, name)) await updatePool(rt.db.pool, name, { slots: n, description: opts.description });
    else await createPool(rt.db, { name, slots: n, description: opts.description });
    process.stdout.write(`pool ${name}: ${n} slot(s)\n`);
    await rt.db.close();
  });
pools
  .command("delete <name>")
  .description("delete a pool (default_pool cannot be deleted)")
  .action(async (name: string) => {
    const rt = await openRuntime();
    const { deletePool } = await import("../store/pools.ts");
    if (!(await deletePool(rt.db.pool, name))) exitWith(`BATON_POOL_NOT_FOUND: pool "${name}" not found`);
    process.stdout.write(`deleted pool ${name}\n`);
    await rt.db.close();
  });

function backfillId(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) exitWith(`BATON_VALIDATION_FAILED: backfill id must be a positive integer, got "${value}"`);
  return n;
}

const backfill = program.command("backfill").description("replay a date range of a scheduled DAG; the scheduler creates the runs");
backfill
  .command("create <dag_id>")
  .description("create a backfill and follow its progress (runs are created by the scheduler, so closing this does not stop it)")
  .requiredOption("--from <date>", "first logical date, inclusive (ISO 8601; without an offset: the DAG's time zone)")
  .requiredOption("--to <date>", "last logical date, inclusive")
  .option("--reprocess <behavior>", "dates that already have a run: none (skip, default), failed (re-run failed ones), completed (re-run all)", (v: string) => {
    if (v !== "none" && v !== "failed" && v !== "completed") throw new InvalidArgumentError('must be "none", "failed" or "completed"');
    return v;
  })
  .option("--max-active-runs <n>", "runs queued or running at once (default 10)", (v: string) => {
    const n = integer(v);
    if (n < 1) throw new InvalidArgumentError("must be at least 1");
    return n;
  })
  .option("--backwards", "newest date first")
  .option("-c, --conf <json>", "conf of every run (JSON object)", jsonObject)
  .option("--dry-run", "list the dates and what would happen to each; write nothing")
  .option("--detach", "return once the backfill is recorded")
  .option("--force", "allow more runs than BATON_BACKFILL_MAX_RUNS")
  .action(async (dagId: string, opts) => {
    const rt = await openRuntime();
    const { backfillCreate } = await import("./backfill.ts");
    const code = await backfillCreate(rt, dagId, opts);
    await rt.db.close();
    process.exit(code);
  });
backfill
  .command("status <id>")
  .description("show a backfill's runs per state and the dates left")
  .option("--json", "print JSON")
  .action(async (id: string, opts) => {
    const rt = await openRuntime();
    const { backfillStatus } = await import("./backfill.ts");
    await backfillStatus(rt, backfillId(id), !!opts.json);
    await rt.db.close();
  });
for (const action of ["pause", "unpause", "cancel"] as const) {
  const cmd = backfill
    .command(`${action} <id>`)
    .description(
      action === "pause"
        ? "stop creating runs (active runs go on)"
        : action === "unpause"
          ? "resume creating runs"
          : "stop creating runs; active runs finish (or fail them with --force)",
    );
  if (action === "cancel") cmd.option("--force", "fail the backfill's queued and running runs now");
  cmd.action(async (id: string, opts) => {
    const rt = await openRuntime();
    const { backfillControl } = await import("./backfill.ts");
    await backfillControl(rt, backfillId(id), action, !!opts.force);
    await rt.db.close();
  });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof BatonError || err instanceof ApiCallError) exitWith(`${err.code}: ${err.message}`);
  if (isConnectionError(err)) {
    let url = "mysql://root@127.0.0.1:3306/baton";
    try {
      url = loadConfig().databaseUrl;
    } catch {
      // keep the default
    }
    exitWith(explainDatabaseError(url, err), 2);
  }
  const code = (err as { code?: string }).code;
  if (code === "EADDRINUSE") exitWith(`the API port is already in use (${(err as Error).message}); set BATON_PORT or --port`, 2);
  throw err;
}
