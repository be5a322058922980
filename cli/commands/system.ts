import type { Command } from "commander";
import { printObject, printRows } from "../output.ts";
import { integerArg, withApi } from "./common.ts";

const enc = encodeURIComponent;

/** Read-only views that complete the CLI's parity with the API: health, workers, version, config, import errors, events, XCom. */
export function registerSystemCommands(program: Command): void {
  program
    .command("health")
    .description("the database, scheduler and workers as the API sees them; exits 1 when the database is unhealthy")
    .action(async function (this: Command) {
      await withApi(this, async (client, { output }) => {
        const answer = await client.raw("GET", "/health");
        const health = JSON.parse(answer.text) as Record<string, Record<string, unknown>>;
        if (output === "json") printObject(health, "json");
        else printRows(Object.entries(health).map(([component, v]) => ({ component, ...v })), ["component", "status", "latest_scheduler_heartbeat", "alive", "latest_worker_heartbeat"]);
        if (answer.status !== 200) process.exitCode = 1;
      });
    });

  program
    .command("workers")
    .description("worker processes that sent a heartbeat recently: host, queues, slots, tries running, alive")
    .option("--limit <n>", "at most this many (default 100)", integerArg)
    .action(async function (this: Command, opts: { limit?: number }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call("GET", "/workers", { query: { limit: opts.limit ?? 100 } });
        const workers = page.workers as Record<string, unknown>[];
        printRows(
          output === "json" ? workers : workers.map((w) => ({ ...w, queues: (w.queues as string[]).join(",") })),
          ["worker_id", "hostname", "pid", "queues", "concurrency", "running", "last_heartbeat", "alive"],
          output,
        );
      });
    });

  program
    .command("version")
    .description("the Baton version of the API (or of this checkout, without --api-url)")
    .action(async function (this: Command) {
      await withApi(this, async (client, { output }) => printObject(await client.call("GET", "/version"), output));
    });

  program
    .command("config")
    .description("the effective, non-secret configuration (admin)")
    .action(async function (this: Command) {
      await withApi(this, async (client, { output }) => {
        const config = (await client.call("GET", "/config")) as { sections: { name: string; options: { key: string; value: string }[] }[] };
        if (output === "json") return printObject(config, "json");
        printRows(config.sections.flatMap((s) => s.options.map((o) => ({ section: s.name, key: o.key, value: o.value }))), ["section", "key", "value"]);
      });
    });

  program
    .command("import-errors")
    .description("DAG files that failed to load, with the line and message")
    .action(async function (this: Command) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call("GET", "/importErrors", { query: { limit: 1000 } });
        printRows(page.import_errors, ["filename", "line", "code", "message", "timestamp"], output);
      });
    });

  program
    .command("events")
    .description("the event log: every state change of runs and task instances, and refused API requests (oldest first)")
    .option("--dag-id <dag_id>", "only this DAG")
    .option("--run-id <run_id>", "only this run")
    .option("--task-id <task_id>", "only this task")
    .option("--limit <n>", "at most this many (default 100)", integerArg)
    .option("--offset <n>", "skip this many", integerArg)
    .action(async function (this: Command, opts: { dagId?: string; runId?: string; taskId?: string; limit?: number; offset?: number }) {
      await withApi(this, async (client, { output }) => {
        const query = { dag_id: opts.dagId, dag_run_id: opts.runId, task_id: opts.taskId, limit: opts.limit ?? 100, offset: opts.offset };
        const page = await client.call("GET", "/eventLogs", { query });
        printRows(page.event_logs, ["event_log_id", "when", "event", "dag_id", "run_id", "task_id", "try_number", "from_state", "to_state", "owner", "extra"], output);
      });
    });

  program
    .command("xcom <dag_id> <run_id> <task_id> [key]")
    .description("a task's XCom entries, or one entry's value (key return_value is the task's output)")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string, key: string | undefined) {
      await withApi(this, async (client, { output }) => {
        const base = `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}/xcomEntries`;
        if (key === undefined) {
          const page = await client.call("GET", base, { query: { limit: 1000 } });
          return printRows(page.xcom_entries, ["key", "task_id", "map_index", "timestamp"], output);
        }
        const entry = await client.call("GET", `${base}/${enc(key)}`);
        if (output === "json") return printObject(entry, "json");
        process.stdout.write(`${JSON.stringify(entry.value, null, 2)}\n`);
      });
    });
}
