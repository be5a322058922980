import { createInterface } from "node:readline/promises";
import { InvalidArgumentError, type Command } from "commander";
import { BatonError } from "../../core/errors.ts";
import type { ApiClient } from "../client.ts";
import { printObject, printRows } from "../output.ts";
import { fetchAll, integerArg, listArg, withApi } from "./common.ts";

const enc = encodeURIComponent;
const MARKABLE = ["success", "failed", "skipped"] as const;
/** How often `tasks logs --follow` asks for more. */
const FOLLOW_POLL_MS = 1000;
/** Task instance states after which nothing more runs (a try or a clear would move it again). */
const FINAL = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);

interface TaskInstance {
  task_id: string;
  state: string | null;
  try_number: number;
  [key: string]: unknown;
}
interface LogChunk {
  content: string;
  continuation_token: string | null;
}
interface Reference {
  task_id: string;
  dag_id: string;
  dag_run_id: string;
  execution_date: string | null;
}
/** The answer of PATCH …/taskInstances/{task_id}: the states the mark's own transaction found and left. */
interface MarkAnswer extends Reference {
  state: string | null;
  new_state: string | null;
  dag_run_state: string;
}
interface StateFlags {
  dryRun?: boolean;
  upstream?: boolean;
  downstream?: boolean;
  past?: boolean;
  future?: boolean;
}
interface ClearAnswer {
  task_instances: { task_id: string; map_index: number; state: string | null; new_state: string | null }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tiPath(dagId: string, runId: string, taskId?: string): string {
  return `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances${taskId === undefined ? "" : `/${enc(taskId)}`}`;
}

/**
 * Prints a try's log chunk by chunk. Without follow: what is there now. With follow: polls with
 * the continuation token until the try has ended and was read to its end; then, when the try
 * was not given and the task goes on to another try (a retry), follows that one too.
 */
async function printLogs(client: ApiClient, dagId: string, runId: string, taskId: string, opts: { try?: number; follow?: boolean }): Promise<void> {
  const ti = () => client.call<TaskInstance>("GET", tiPath(dagId, runId, taskId));
  let tryNumber = opts.try ?? (await ti()).try_number;
  while (tryNumber < 1) {
    if (!opts.follow) throw new BatonError("BATON_LOG_NOT_FOUND", `task "${taskId}" has not started a try yet; use --follow to wait for it`);
    await sleep(FOLLOW_POLL_MS);
    tryNumber = (await ti()).try_number;
  }
  for (;;) {
    let token: string | undefined;
    for (;;) {
      const chunk = await client.call<LogChunk>("GET", `${tiPath(dagId, runId, taskId)}/logs/${tryNumber}`, { query: { token } });
      process.stdout.write(chunk.content);
      if (chunk.continuation_token === null) break;
      token = chunk.continuation_token;
      if (chunk.content === "") {
        if (!opts.follow) return;
        await sleep(FOLLOW_POLL_MS);
      }
    }
    if (!opts.follow || opts.try !== undefined) return;
    // The try ended: follow the next one, if the task goes on.
    for (;;) {
      const now = await ti();
      if (now.try_number > tryNumber) {
        tryNumber = now.try_number;
        process.stdout.write(`\n--- try ${tryNumber} ---\n`);
        break;
      }
      if (FINAL.has(now.state ?? "none")) return;
      await sleep(FOLLOW_POLL_MS);
    }
  }
}

interface ClearFlags {
  runId: string;
  taskIds?: string[];
  downstream?: boolean;
  upstream?: boolean;
  onlyFailed?: boolean;
  onlyRunning?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}

/** The task instances of a clear's answer with their states: before the clear, and with `after` the state the clear left. */
function clearTable(answer: ClearAnswer, after = false): string {
  const width = Math.max(7, ...answer.task_instances.map((c) => c.task_id.length));
  const lines = [`  ${"task_id".padEnd(width)}  ${after ? "state (before → after the clear)" : "state"}`];
  for (const c of answer.task_instances) {
    const before = c.state ?? "none";
    lines.push(`  ${c.task_id.padEnd(width)}  ${before}${after ? ` → ${c.new_state ?? "none"}` : ""}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * `baton tasks clear`: shows what the clear selects (a dry run), asks (unless --yes or
 * --dry-run), then clears and prints each task's new state: the one the clear left (the answer's
 * new_state), not a later read, by when workers may have run it already. Sets the exit code.
 */
async function tasksClear(client: ApiClient, dagId: string, flags: ClearFlags, output: "table" | "json"): Promise<void> {
  const body = {
    dag_run_id: flags.runId,
    ...(flags.taskIds?.length ? { task_ids: flags.taskIds } : {}),
    include_downstream: !!flags.downstream,
    include_upstream: !!flags.upstream,
    only_failed: !!flags.onlyFailed,
    only_running: !!flags.onlyRunning,
  };
  const url = `/dags/${enc(dagId)}/clearTaskInstances`;
  const plan = await client.call<ClearAnswer>("POST", url, { body: { ...body, dry_run: true } });
  const what = `run ${flags.runId} of ${dagId}`;
  if (flags.dryRun && output === "json") return printObject(plan as unknown as Record<string, unknown>, "json");
  if (plan.task_instances.length === 0) {
    process.stdout.write(`no task instance of ${what} matches; nothing to clear\n`);
    return;
  }
  if (flags.dryRun) {
    process.stdout.write(`would clear ${plan.task_instances.length} task instance(s) of ${what} (dry run, nothing changed):\n${clearTable(plan)}`);
    return;
  }
  if (!flags.yes) {
    process.stdout.write(`about to clear ${plan.task_instances.length} task instance(s) of ${what}:\n${clearTable(plan)}`);
    if (!process.stdin.isTTY) {
      process.stderr.write("baton: not a terminal, so not asking: pass --yes to clear, or --dry-run to only look\n");
      process.exitCode = 1;
      return;
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question("Clear them? [y/N] ");
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      process.stdout.write("cancelled; nothing was cleared\n");
      process.exitCode = 1;
      return;
    }
  }
  const done = await client.call<ClearAnswer>("POST", url, { body: { ...body, dry_run: false } });
  if (output === "json") return printObject(done as unknown as Record<string, unknown>, "json");
  process.stdout.write(`cleared ${done.task_instances.length} task instance(s) of ${what}:\n${clearTable(done, true)}`);
}

/**
 * `baton tasks state` with --upstream/--downstream/--past/--future/--dry-run: Airflow's
 * POST /dags/{dag_id}/updateTaskInstancesState, which marks the task with its relatives (and in
 * earlier or later runs) and answers the task instances it marked (or would mark).
 */
async function markMany(client: ApiClient, dagId: string, runId: string, taskId: string, newState: string, flags: StateFlags, output: "table" | "json"): Promise<void> {
  const body = {
    dag_run_id: runId,
    task_id: taskId,
    new_state: newState,
    include_upstream: !!flags.upstream,
    include_downstream: !!flags.downstream,
    include_past: !!flags.past,
    include_future: !!flags.future,
    dry_run: !!flags.dryRun,
  };
  const answer = await client.call<{ task_instances: Reference[] }>("POST", `/dags/${enc(dagId)}/updateTaskInstancesState`, { body });
  if (output === "json") return printObject(answer as unknown as Record<string, unknown>, "json");
  const n = answer.task_instances.length;
  if (flags.dryRun) process.stdout.write(`would mark ${n} task instance(s) of ${dagId} ${newState} (dry run, nothing changed)${n ? ":" : ""}\n`);
  else process.stdout.write(`marked ${n} task instance(s) of ${dagId} ${newState}${n ? ":" : ""}\n`);
  if (n) printRows(answer.task_instances as unknown as Record<string, unknown>[], ["dag_run_id", "task_id", "execution_date"]);
}

/** `baton tasks …`: list, show, deps, steps, reschedules, logs, state and clear, each through the REST API (so `--api-url` works too). */
export function registerTaskCommands(program: Command): void {
  const tasks = program.command("tasks").description("act on task instances");

  tasks
    .command("list <dag_id> <run_id>")
    .description("list the task instances of a run (quote '~' as run_id or dag_id to list across runs / DAGs)")
    .option("-s, --state <states>", "comma-separated states, e.g. failed,upstream_failed", listArg)
    .option("--limit <n>", "at most this many (default 1000)", integerArg)
    .action(async function (this: Command, dagId: string, runId: string, opts: { state?: string[]; limit?: number }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call<{ task_instances: TaskInstance[] }>("GET", tiPath(dagId, runId), { query: { state: opts.state, limit: opts.limit ?? 1000 } });
        const rows = page.task_instances.map((t) => (output === "json" ? t : { ...t, state: t.state ?? "none" }));
        const columns = dagId === "~" || runId === "~" ? ["dag_id", "dag_run_id", "task_id", "state", "try_number", "start_date", "duration"] : ["task_id", "state", "try_number", "start_date", "end_date", "duration", "hostname"];
        printRows(rows, columns, output);
      });
    });

  tasks
    .command("show <dag_id> <run_id> <task_id>")
    .description("one task instance: state, tries, times, host, pool, …")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string) {
      await withApi(this, async (client, { output }) => {
        const ti = await client.call<TaskInstance>("GET", tiPath(dagId, runId, taskId));
        printObject(output === "json" ? ti : { ...ti, state: ti.state ?? "none" }, output);
      });
    });

  tasks
    .command("deps <dag_id> <run_id> <task_id>")
    .alias("failed-deps")
    .description("why a waiting task instance is not running: its unmet dependencies (pool too small, previous run, queue no worker serves, signal)")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string) {
      await withApi(this, async (client, { output }) => {
        const { dependencies } = await client.call<{ dependencies: Record<string, unknown>[] }>("GET", `${tiPath(dagId, runId, taskId)}/dependencies`);
        if (output !== "json" && dependencies.length === 0) {
          process.stdout.write(`no unmet dependency known for ${taskId} of ${dagId}/${runId}\n`);
          return;
        }
        printRows(dependencies, ["name", "reason"], output);
      });
    });

  tasks
    .command("steps <dag_id> <run_id> <task_id>")
    .description("the durable steps (ctx.step) a task instance recorded, in order, with the try that ran each and its result")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string) {
      await withApi(this, async (client, { output }) => {
        const steps = await fetchAll<Record<string, unknown>>(client, `${tiPath(dagId, runId, taskId)}/steps`, "steps");
        const rows = output === "json" ? steps : steps.map((st) => (st.result_omitted ? { ...st, result: `(left out: ${st.result_bytes} bytes)` } : st));
        printRows(rows, ["name", "try_number", "recorded_at", "result_bytes", "result"], output);
      });
    });

  tasks
    .command("reschedules <dag_id> <run_id> <task_id>")
    .description("a reschedule-mode sensor's pokes that did not succeed: when each ran and when the next was due")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string) {
      await withApi(this, async (client, { output }) => {
        const pokes = await fetchAll<Record<string, unknown>>(client, `${tiPath(dagId, runId, taskId)}/reschedules`, "task_reschedules");
        printRows(pokes, ["try_number", "start_date", "end_date", "reschedule_date"], output);
      });
    });

  tasks
    .command("logs <dag_id> <run_id> <task_id>")
    .description("print a task's log (its latest try unless --try); --follow waits for more until the task ends")
    .option("--try <n>", "the try number", (v: string) => {
      const n = integerArg(v);
      if (n < 1) throw new InvalidArgumentError("must be at least 1");
      return n;
    })
    .option("-f, --follow", "keep printing as the task writes, until it ends")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string, opts: { try?: number; follow?: boolean }) {
      await withApi(this, (client) => printLogs(client, dagId, runId, taskId, opts));
    });

  tasks
    .command("state <dag_id> <run_id> <task_id> <new_state>")
    .description("mark a task instance success, failed or skipped; downstream tasks are decided and the run carries on or finishes")
    .option("-u, --upstream", "also mark the tasks upstream of it")
    .option("-d, --downstream", "also mark the tasks downstream of it")
    .option("--past", "also in the DAG's earlier runs")
    .option("--future", "also in the DAG's later runs")
    .option("--dry-run", "list what would be marked; change nothing")
    .action(async function (this: Command, dagId: string, runId: string, taskId: string, newState: string, opts: StateFlags) {
      if (!(MARKABLE as readonly string[]).includes(newState)) throw new BatonError("BATON_VALIDATION_FAILED", `new_state must be one of ${MARKABLE.join(", ")}, not "${newState}"`);
      if (opts.dryRun || opts.upstream || opts.downstream || opts.past || opts.future) {
        return withApi(this, (client, { output }) => markMany(client, dagId, runId, taskId, newState, opts, output));
      }
      // Printed from the PATCH's answer alone: the states its own transaction found and left. A read
      // before it may be stale by the time it marks; one after it may show what workers did since
      // (the downstream tasks it queued may have finished the run already).
      await withApi(this, async (client, { output }) => {
        const done = await client.call<MarkAnswer>("PATCH", tiPath(dagId, runId, taskId), { body: { new_state: newState, dry_run: false } });
        if (output === "json") return printObject(done as unknown as Record<string, unknown>, "json");
        const from = done.state ?? "none";
        const to = done.new_state ?? "none";
        if (from === to) process.stdout.write(`${taskId} of ${dagId}/${runId} is already ${to}; the run is ${done.dag_run_state}\n`);
        else process.stdout.write(`marked ${taskId} of ${dagId}/${runId}: ${from} → ${to}; the run is ${done.dag_run_state}\n`);
      });
    });

  tasks
    .command("clear <dag_id>")
    .description("clear task instances of a run (all of them unless narrowed) so they run again; the run goes back to running")
    .requiredOption("-r, --run-id <run_id>", "the run whose task instances to clear")
    .option("-t, --task-ids <ids>", "comma-separated task ids (default: every task of the run; --only-failed / --only-running keep those in that state)", listArg)
    .option("-d, --downstream", "also clear every task downstream of them")
    .option("-u, --upstream", "also clear every task upstream of them")
    .option("-f, --only-failed", "only failed and upstream_failed task instances")
    .option("--only-running", "only running task instances")
    .option("--dry-run", "print what would be cleared; change nothing")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async function (this: Command, dagId: string, flags: ClearFlags) {
      await withApi(this, (client, { output }) => tasksClear(client, dagId, flags, output));
    });
}
