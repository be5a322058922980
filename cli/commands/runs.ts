import type { Command } from "commander";
import { BatonError } from "../../core/errors.ts";
import { printObject, printRows } from "../output.ts";
import type { ApiClient } from "../client.ts";
import { confirm, fetchAll, integerArg, listArg, printChange, withApi } from "./common.ts";

const enc = encodeURIComponent;

function runPath(dagId: string, runId?: string): string {
  return `/dags/${enc(dagId)}/dagRuns${runId === undefined ? "" : `/${enc(runId)}`}`;
}

/** The states `runs state` can set (PATCH …/dagRuns/{run_id}). */
const SETTABLE = ["success", "failed", "queued"] as const;

const RUN_COLUMNS = ["dag_run_id", "state", "run_type", "logical_date", "start_date", "end_date"];
/** A signal as a table row (GET …/dagRuns/{id}/signals): the payload last, as it may be long. */
const SIGNAL_COLUMNS = ["name", "signal_id", "received_at", "delivered_to", "delivered_at", "payload"];

/** Every signal a run received, in arrival order (all pages; `name` keeps one signal name). */
function runSignals(client: ApiClient, dagId: string, runId: string, name?: string): Promise<Record<string, unknown>[]> {
  return fetchAll<Record<string, unknown>>(client, `${runPath(dagId, runId)}/signals`, "signals", { name });
}

/** `baton runs …`: list, show, cancel, mark and delete DAG runs through the REST API (so `--api-url` works too). */
export function registerRunsCommands(program: Command): void {
  const runs = program.command("runs").description("list, show, cancel, mark, annotate and delete DAG runs; list their signals");

  runs
    .command("list <dag_id>")
    .description("a DAG's runs, newest first ('~' for every DAG)")
    .option("-s, --state <states>", "comma-separated run states: queued, running, success, failed", listArg)
    .option("--limit <n>", "at most this many (default 100)", integerArg)
    .option("--order-by <field>", "id, dag_run_id, state, execution_date, start_date, end_date, ...; prefix - for descending (default -id)")
    .action(async function (this: Command, dagId: string, opts: { state?: string[]; limit?: number; orderBy?: string }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call<{ dag_runs: Record<string, unknown>[] }>("GET", runPath(dagId), {
          query: { state: opts.state, limit: opts.limit ?? 100, order_by: opts.orderBy ?? "-id" },
        });
        printRows(page.dag_runs, dagId === "~" ? ["dag_id", ...RUN_COLUMNS] : RUN_COLUMNS, output);
      });
    });

  runs
    .command("show <dag_id> <run_id>")
    .description("a run, the states of its task instances and the signals it received")
    .action(async function (this: Command, dagId: string, runId: string) {
      await withApi(this, async (client, { output }) => {
        const run = await client.call<Record<string, unknown>>("GET", runPath(dagId, runId));
        // Every page: a run may hold more task instances than one page (1,000), and the first alone left the rest out.
        const task_instances = await fetchAll<Record<string, unknown>>(client, `${runPath(dagId, runId)}/taskInstances`, "task_instances");
        const signals = await runSignals(client, dagId, runId);
        if (output === "json") return printObject({ ...run, task_instances, signals }, "json");
        printObject(run);
        process.stdout.write("\n");
        printRows(
          task_instances.map((t) => ({ ...t, state: t.state ?? "none" })),
          ["task_id", "state", "try_number", "start_date", "end_date", "duration"],
        );
        // Only a run that received signals gets the section: most runs wait for none.
        if (signals.length === 0) return;
        process.stdout.write("\nsignals:\n");
        printRows(signals, SIGNAL_COLUMNS);
      });
    });

  runs
    .command("signals <dag_id> <run_id>")
    .description("the signals a run received, in arrival order, with the task each was delivered to (none yet: kept for the first that waits)")
    .option("--name <name>", "only signals of this name")
    .action(async function (this: Command, dagId: string, runId: string, opts: { name?: string }) {
      await withApi(this, async (client, { output }) => printRows(await runSignals(client, dagId, runId, opts.name), SIGNAL_COLUMNS, output));
    });

  runs
    .command("cancel <dag_id> <run_id>")
    .description("end a queued or running run as failed: running tasks are aborted, the rest skipped")
    .option("--compensate", "first undo the tasks that succeeded (their compensate functions, in reverse order)")
    .action(async function (this: Command, dagId: string, runId: string, opts: { compensate?: boolean }) {
      await withApi(this, async (client, { output }) => {
        const body = { state: "failed", ...(opts.compensate ? { compensate: true } : {}) };
        const run = await client.call<{ state: string; compensation: string | null }>("PATCH", runPath(dagId, runId), { body });
        if (output === "json") return printObject(run, "json");
        const compensating = run.compensation === "running" ? " (compensating the tasks that succeeded)" : "";
        process.stdout.write(`cancelled run ${runId} of ${dagId}: ${run.state}${compensating}\n`);
      });
    });

  runs
    .command("state <dag_id> <run_id> <new_state>")
    .description("mark a run success (its unfinished and failed tasks too), failed (as cancel) or queued (every task runs again)")
    .action(async function (this: Command, dagId: string, runId: string, newState: string) {
      if (!(SETTABLE as readonly string[]).includes(newState)) throw new BatonError("BATON_VALIDATION_FAILED", `new_state must be one of ${SETTABLE.join(", ")}, not "${newState}"`);
      await withApi(this, async (client, { output }) => {
        // Printed from the PATCH's answer alone: the states its own transaction found and left. A read
        // before it may be stale by the time it marks; the run may have moved on since (re-queued, finished).
        const run = await client.call<{ state: string; previous_state: string }>("PATCH", runPath(dagId, runId), { body: { state: newState } });
        printChange(output, `marked run ${runId} of ${dagId}: ${run.previous_state} → ${run.state}`, run);
      });
    });

  runs
    .command("note <dag_id> <run_id> [note]")
    .description("set a run's note (what the UI shows beside it), or remove it with --clear")
    .option("--clear", "remove the note")
    .action(async function (this: Command, dagId: string, runId: string, note: string | undefined, opts: { clear?: boolean }) {
      if ((note === undefined) === !opts.clear) throw new BatonError("BATON_VALIDATION_FAILED", "give the note, or --clear to remove it (not both)");
      await withApi(this, async (client, { output }) => {
        const run = await client.call<{ note: string | null }>("PATCH", `${runPath(dagId, runId)}/setNote`, { body: { note: opts.clear ? null : note } });
        printChange(output, run.note === null ? `removed the note of run ${runId} of ${dagId}` : `noted run ${runId} of ${dagId}: ${run.note}`, run);
      });
    });

  runs
    .command("delete <dag_id> <run_id>")
    .description("delete a run with its task instances, outputs and events (not its log files); refused while a task of it runs")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async function (this: Command, dagId: string, runId: string, opts: { yes?: boolean }) {
      await withApi(this, async (client, { output }) => {
        if (!opts.yes) {
          const run = await client.call<{ state: string }>("GET", runPath(dagId, runId));
          if (!(await confirm(`delete run ${runId} of ${dagId} (${run.state}) and its task instances?`, "cancelled; nothing was deleted"))) return;
        }
        await client.call("DELETE", runPath(dagId, runId));
        printChange(output, `deleted run ${runId} of ${dagId}`, { dag_id: dagId, dag_run_id: runId, deleted: true });
      });
    });
}
