import { Command, InvalidArgumentError } from "commander";
import { migrate } from "../store/migrate.ts";
import { BatonError } from "../core/errors.ts";
import { removeLogs, runLogFolder } from "../core/logPaths.ts";
import { isConnectionError, isLoginError } from "../store/db.ts";
import { decimalValue, loadConfig, portValue } from "../core/config.ts";
import { ApiCallError } from "./client.ts";
import { registerTokenCommands } from "./commands/tokens.ts";
import { registerTaskCommands } from "./commands/tasks.ts";
import { registerOperationCommands } from "./commands/operations.ts";
import { registerSystemCommands } from "./commands/system.ts";
import { registerVariablesCommands } from "./commands/variables.ts";
import { registerConnectionsCommands } from "./commands/connections.ts";
import { registerDagsCommands } from "./commands/dags.ts";
import { registerRunsCommands } from "./commands/runs.ts";
import { dateTimeArg } from "./commands/common.ts";
import { registerBackfillCommands } from "./backfill.ts";
import { exitWith, explainDatabaseError, loadCliConfig, openRuntime } from "./runtime.ts";

/** A BatonError, not InvalidArgumentError: commander would print its help after it, not one line. */
const port = (name: string) => (value: string) => portValue(name, value);

/** Decimal digits only, as the environment variables: Number() read " " as 0 and "0x4" as 4. */
function integer(value: string): number {
  const n = decimalValue(value);
  if (n === undefined) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
}

const program = new Command()
  .name("baton")
  .description("Baton: an Airflow-style DAG scheduler for batch pipelines, backed by MySQL.")
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
  .option("-p, --port <port>", "API port, 0-65535 (BATON_PORT, default 8080)", port("--port"))
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
  .option("-c, --concurrency <n>", "task slots, 1 to 1024 (BATON_WORKERS, default 2)", integer)
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
  .option("-p, --port <port>", "API port, 0-65535 (BATON_PORT, default 8080)", port("--port"))
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
    const rt = await openRuntime(loadCliConfig(), { migrate: false, create: true });
    const applied = await migrate(rt.db, rt.logger.scope({ component: "migrate" }));
    process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
    await rt.db.close();
  });

db.command("clean")
  .description("delete finished runs older than a date, with their task instances, outputs, events and logs, in batches")
  .requiredOption("--before <date>", "runs that ended before it are deleted: ISO 8601 date-time with an offset or Z, e.g. 2026-01-01T00:00:00Z", dateTimeArg("--before"))
  .option("--dry-run", "count what would be deleted")
  .action(async (opts: { before: Date; dryRun?: boolean }) => {
    const rt = await openRuntime();
    const { cleanBefore } = await import("../store/maintenance.ts");
    const report = await cleanBefore(rt.db, opts.before, { dryRun: !!opts.dryRun });
    if (!opts.dryRun) {
      for (const r of report.deleted) await removeLogs(runLogFolder(rt.config.logsFolder, r), rt.logger);
    }
    process.stdout.write(`${opts.dryRun ? "would delete" : "deleted"} ${report.runs} run(s) and ${report.taskInstances} task instance(s)\n`);
    await rt.db.close();
  });

registerTokenCommands(program);
registerTaskCommands(program);
registerOperationCommands(program);
registerSystemCommands(program);
registerVariablesCommands(program);
registerConnectionsCommands(program);
registerDagsCommands(program);
registerRunsCommands(program);
registerBackfillCommands(program);

/** `baton dags trigger`: the words a user types to reach `command`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * Commander's own usage errors (an unknown option or command, a missing argument, an option's
 * parser refusing its value) as every other error: one line with its code, exit 1. They printed
 * `error: …` and the command's whole help after it, no code for a script to match. Set on each
 * command, which copies its parent's output settings only when it is created.
 */
function oneLineUsageErrors(command: Command): void {
  const hint = `(see '${commandPath(command)} --help')`;
  command.configureOutput({
    outputError: (text, write) => write(`baton: BATON_VALIDATION_FAILED: ${text.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")} ${hint}\n`),
  });
  for (const sub of command.commands) oneLineUsageErrors(sub);
}
oneLineUsageErrors(program);

// A reader that stops early (`baton tasks show … | head -5`) closes our stdout, and the next write
// fails with EPIPE: an 'error' event on the stream, which no try/catch below sees and which
// crashed the process with a stack trace. End quietly instead, with the status a shell reports
// for a CLI that SIGPIPE ended (128 + 13, what `seq 1 100000 | head -1` leaves in PIPESTATUS):
// Node ignores SIGPIPE, so the signal itself never comes.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(141);
    throw err;
  });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof BatonError || err instanceof ApiCallError) exitWith(`${err.code}: ${err.message}`);
  // Commander reports the errors of its own parsing (an option's parser throwing
  // InvalidArgumentError) itself; the same error thrown from inside an action (a check across
  // options, a positional argument parsed there) reaches here. Checked by code, as commander
  // brands its errors, not by class.
  const commanderCode = (err as { code?: unknown }).code;
  if (typeof commanderCode === "string" && commanderCode.startsWith("commander.")) {
    exitWith(`BATON_VALIDATION_FAILED: ${(err as Error).message}`, (err as { exitCode?: number }).exitCode || 1);
  }
  if (isConnectionError(err) || isLoginError(err)) {
    let url = "mysql://root@localhost:3306/baton";
    try {
      url = loadConfig().databaseUrl;
    } catch {
      // keep the default
    }
    exitWith(explainDatabaseError(url, err), 2);
  }
  throw err;
}
