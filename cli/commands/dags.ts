import type { Command } from "commander";
import { BatonError } from "../../core/errors.ts";
import type { ApiClient } from "../client.ts";
import { printObject, printRows, type OutputFormat } from "../output.ts";
import { loadCliConfig, openRuntime } from "../runtime.ts";
import { confirm, dateTimeArg, globalsOf, jsonObjectArg, listArg, printChange, withApi } from "./common.ts";

const enc = encodeURIComponent;
/** Page size when a command reads a whole list. */
const PAGE = 1000;

interface DagJson {
  dag_id: string;
  is_paused: boolean;
  schedule_interval: { value: string } | null;
  tags: { name: string }[];
  [key: string]: unknown;
}

/** Every page of a list endpoint (the API caps a page at 1000). */
async function readAll<T>(client: ApiClient, path: string, key: string, query: Record<string, string | number | boolean | string[] | undefined>): Promise<T[]> {
  const all: T[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await client.call<Record<string, unknown> & { total_entries: number }>("GET", path, { query: { ...query, limit: PAGE, offset } });
    const items = page[key] as T[];
    all.push(...items);
    if (items.length < PAGE || all.length >= page.total_entries) return all;
  }
}

/** A DAG as a table row: schedule and tags as text. */
function dagRow(d: DagJson): Record<string, unknown> {
  return { ...d, paused: d.is_paused ? "yes" : "no", schedule: d.schedule_interval?.value ?? "", tags: d.tags.map((t) => t.name).join(",") };
}

async function setPaused(client: ApiClient, dagId: string, paused: boolean, output: OutputFormat): Promise<void> {
  const dag = await client.call<DagJson>("PATCH", `/dags/${enc(dagId)}`, { body: { is_paused: paused } });
  if (output === "json") printObject(dag, "json");
  else process.stdout.write(`${paused ? "paused" : "unpaused"} DAG ${dagId}\n`);
}

/**
 * `baton dags pause-all|unpause-all <pattern>`: Airflow's bulk PATCH /dags, page by page. Prints the
 * DAGs it changed (those not already in that state); with --output json, the API's DAG objects.
 */
async function setAllPaused(client: ApiClient, pattern: string, paused: boolean, opts: { tags?: string[]; all?: boolean }, output: OutputFormat): Promise<void> {
  const filter = { tags: opts.tags, only_active: !opts.all };
  // What will change: the matching DAGs not yet in the wanted state ("~" matches every DAG).
  const before = await readAll<DagJson>(client, "/dags", "dags", { ...filter, dag_id_pattern: pattern === "~" ? undefined : pattern, paused: !paused });
  const changed = new Set(before.map((d) => d.dag_id));
  const after: DagJson[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await client.call<{ dags: DagJson[]; total_entries: number }>("PATCH", "/dags", {
      query: { ...filter, dag_id_pattern: pattern, update_mask: ["is_paused"], limit: PAGE, offset },
      body: { is_paused: paused },
    });
    after.push(...page.dags);
    if (page.dags.length < PAGE || after.length >= page.total_entries) break;
  }
  if (output === "json") return printRows(after, [], "json");
  const verb = paused ? "paused" : "unpaused";
  const rows = after.filter((d) => changed.has(d.dag_id));
  process.stdout.write(`${verb} ${rows.length} DAG(s) matching "${pattern}" (${after.length - rows.length} already ${verb})\n`);
  if (rows.length) printRows(rows.map(dagRow), ["dag_id", "paused", "schedule", "tags"]);
}

/** `baton dags …`: list, show, pause, unpause, trigger and delete through the REST API (so `--api-url` works); test in-process. */
export function registerDagsCommands(program: Command): void {
  const dags = program.command("dags").description("list, show, pause, trigger, delete and test DAGs; list their versions");

  dags
    .command("list")
    .description("list DAGs (active ones unless --all)")
    .option("--tags <tags>", "comma-separated: DAGs with any of these tags", listArg)
    .option("--pattern <text>", "dag_id contains this text (case-insensitive)")
    .option("--paused", "only paused DAGs")
    .option("--unpaused", "only DAGs that are not paused")
    .option("--all", "also DAGs whose file no longer defines them")
    .option("--order-by <field>", "dag_id (default), last_parsed_time or next_dagrun; prefix - for descending")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, opts: { tags?: string[]; pattern?: string; paused?: boolean; unpaused?: boolean; all?: boolean; orderBy?: string; json?: boolean }) {
      if (opts.paused && opts.unpaused) throw new BatonError("BATON_VALIDATION_FAILED", "give --paused or --unpaused, not both");
      await withApi(this, async (client, globals) => {
        const output = opts.json ? "json" : globals.output;
        const rows = await readAll<DagJson>(client, "/dags", "dags", {
          tags: opts.tags,
          dag_id_pattern: opts.pattern,
          paused: opts.paused ? true : opts.unpaused ? false : undefined,
          only_active: !opts.all,
          order_by: opts.orderBy,
        });
        printRows(output === "json" ? rows : rows.map(dagRow), ["dag_id", "paused", "schedule", "next_dagrun", "tags", "fileloc"], output);
      });
    });

  dags
    .command("show <dag_id>")
    .description("a DAG's details (from its latest version) and its tasks")
    .action(async function (this: Command, dagId: string) {
      await withApi(this, async (client, { output }) => {
        const details = await client.call<Record<string, unknown>>("GET", `/dags/${enc(dagId)}/details`);
        const { tasks } = await client.call<{ tasks: Record<string, unknown>[] }>("GET", `/dags/${enc(dagId)}/tasks`);
        if (output === "json") return printObject({ ...details, tasks }, "json");
        const d = details as unknown as DagJson & Record<string, unknown>;
        printObject({
          dag_id: d.dag_id,
          description: d.description,
          paused: d.is_paused ? "yes" : "no",
          active: d.is_active ? "yes" : "no",
          schedule: d.schedule_interval?.value ?? "",
          timezone: d.timezone,
          catchup: d.catchup,
          start_date: d.start_date,
          end_date: d.end_date,
          next_dagrun: d.next_dagrun,
          max_active_runs: d.max_active_runs,
          max_active_tasks: d.max_active_tasks,
          tags: d.tags.map((t) => t.name).join(","),
          owners: (d.owners as string[]).join(","),
          fileloc: d.fileloc,
          last_parsed_time: d.last_parsed_time,
          latest_version: d.latest_version,
          has_import_errors: d.has_import_errors,
        });
        process.stdout.write("\n");
        const rows = tasks.map((t) => ({ ...t, downstream: (t.downstream_task_ids as string[]).join(",") }));
        printRows(rows, ["task_id", "operator_name", "trigger_rule", "retries", "pool", "priority_weight", "downstream"]);
      });
    });

  dags
    .command("versions <dag_id> [dag_version]")
    .description("the DAG's stored versions, oldest first (runs are pinned to one; is_latest marks the current); with a version, its structure")
    .action(async function (this: Command, dagId: string, version: string | undefined) {
      await withApi(this, async (client, { output }) => {
        if (version === undefined) {
          const versions = await readAll<Record<string, unknown>>(client, `/dags/${enc(dagId)}/versions`, "dag_versions", {});
          // The whole version: `dags versions <dag_id> <dag_version>` takes it as printed here.
          return printRows(versions, ["dag_version", "created_at", "is_latest", "code_hash"], output, process.stdout, ["dag_version"]);
        }
        const one = await client.call<Record<string, unknown>>("GET", `/dags/${enc(dagId)}/versions/${enc(version)}`);
        if (output === "json") return printObject(one, "json");
        const { structure, ...rest } = one;
        printObject(rest);
        process.stdout.write(`\nstructure:\n${JSON.stringify(structure, null, 2)}\n`);
      });
    });

  for (const paused of [true, false]) {
    dags
      .command(`${paused ? "pause" : "unpause"} <dag_id>`)
      .description(paused ? "pause a DAG: no new runs start (queued ones wait)" : "unpause a DAG: its scheduled and queued runs start")
      .action(async function (this: Command, dagId: string) {
        await withApi(this, (client, { output }) => setPaused(client, dagId, paused, output));
      });
  }

  for (const paused of [true, false]) {
    dags
      .command(`${paused ? "pause-all" : "unpause-all"} <pattern>`)
      .description(`${paused ? "pause" : "unpause"} every DAG whose dag_id contains <pattern> (case-insensitive; '~' for all DAGs)`)
      .option("--tags <tags>", "comma-separated: only DAGs with any of these tags", listArg)
      .option("--all", "also DAGs whose file no longer defines them")
      .action(async function (this: Command, pattern: string, opts: { tags?: string[]; all?: boolean }) {
        await withApi(this, (client, { output }) => setAllPaused(client, pattern, paused, opts, output));
      });
  }

  dags
    .command("trigger <dag_id>")
    .description("create a manual run; the scheduler starts it")
    .option("-c, --conf <json>", "run configuration (JSON object)", jsonObjectArg)
    .option("-r, --run-id <run_id>", "explicit dag_run_id")
    .option("--logical-date <date>", "ISO 8601 date-time with an offset or Z, e.g. 2026-01-01T00:00:00Z (default: now)", dateTimeArg("--logical-date"))
    .option("--note <text>", "a note on the run")
    .action(async function (this: Command, dagId: string, opts: { conf?: Record<string, unknown>; runId?: string; logicalDate?: Date; note?: string }) {
      await withApi(this, async (client, { output }) => {
        const body = { conf: opts.conf ?? {}, dag_run_id: opts.runId, logical_date: opts.logicalDate?.toISOString(), note: opts.note };
        const run = await client.call<{ dag_run_id: string; state: string }>("POST", `/dags/${enc(dagId)}/dagRuns`, { body });
        if (output === "json") printObject(run, "json");
        else process.stdout.write(`created run ${run.dag_run_id} of ${dagId} (${run.state})\n`);
      });
    });

  dags
    .command("delete <dag_id>")
    .description("delete a DAG's runs, task instances, outputs, events and versions (not its log files); it comes back with no history if its file still defines it")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async function (this: Command, dagId: string, opts: { yes?: boolean }) {
      await withApi(this, async (client, { output }) => {
        if (!opts.yes) {
          const dag = await client.call<DagJson>("GET", `/dags/${enc(dagId)}`);
          const runs = await client.call<{ total_entries: number }>("GET", `/dags/${enc(dagId)}/dagRuns`, { query: { limit: 1 } });
          if (!(await confirm(`delete DAG ${dag.dag_id} and its ${runs.total_entries} run(s)?`, "cancelled; nothing was deleted"))) return;
        }
        await client.call("DELETE", `/dags/${enc(dagId)}`);
        printChange(output, `deleted DAG ${dagId}`, { dag_id: dagId, deleted: true });
      });
    });

  dags
    .command("test <dag_id>")
    .description("parse the DAG folder and run one run of the DAG in this process, printing each task's state (a failed one's error under it); --output json: the run and its task instances")
    .option("-c, --conf <json>", "run configuration (JSON object)", jsonObjectArg)
    .option("-d, --dags-folder <path>", "DAG folder (BATON_DAGS_FOLDER, default ./dags)")
    .action(async function (this: Command, dagId: string, opts: { conf?: Record<string, unknown>; dagsFolder?: string }) {
      const { output } = globalsOf(this);
      // Like standalone, it parses the folder and runs the DAG on its own: it may set a database up.
      const rt = await openRuntime(loadCliConfig({ dagsFolder: opts.dagsFolder }), { create: true });
      const { dagsTest } = await import("../dagsTest.ts");
      const code = await dagsTest(rt, dagId, opts.conf ?? {}, { output });
      await rt.db.close();
      process.exit(code);
    });
}
