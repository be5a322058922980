import { InvalidArgumentError, type Command } from "commander";
import { decimalValue } from "../../core/config.ts";
import { poolNameProblem } from "../../core/dagLimits.ts";
import { printObject, printRows } from "../output.ts";
import { integerArg, listArg, parsedArg, printChange, withApi } from "./common.ts";

const enc = encodeURIComponent;

/** A pool name as the API and DAG files take it (core/dagLimits.ts), checked before any request. */
function poolNameArg(value: string): string {
  const problem = poolNameProblem("name", value);
  if (problem !== null) throw new InvalidArgumentError(problem.replace(/^name /, ""));
  return value;
}

/** A pool's slots: a non-negative integer, or -1 for no limit (as the API takes them). */
function slotsArg(value: string): number {
  // Decimal digits only, as every number option (integerArg): Number() took "" as 0 and "0x10" as 16.
  const n = value.trim() === "-1" ? -1 : decimalValue(value);
  if (n === undefined) throw new InvalidArgumentError("must be a non-negative integer, or -1 for no limit");
  return n;
}

/** pools, signal and dead-letters: each one API call, so `--api-url` works for them too. */
type RedriveAnswer = {
  redriven: number;
  dead_letters: { task_instance_id: number; dag_id: string; dag_run_id: string; task_id: string; skipped: string | null }[];
  /** Absent from an API older than this CLI. */
  remaining?: number;
  /** Absent from an API older than this CLI. */
  not_dead_letters?: { task_instance_id: number; dag_id: string | null; dag_run_id: string | null; task_id: string | null; state: string | null; reason: string }[];
};

/** The words after an id's not_dead_letters reason (api/routes/deadLetters.ts NotDeadLetter). */
function notDeadLetterWhy(reason: string, state: string | null): string {
  switch (reason) {
    case "not_found":
      return "no task instance has this id";
    case "other_dag":
      return "it is of another DAG than --dag-id";
    case "not_failed":
      return `its state is ${state ?? "none"}`;
    case "failed_by_operator":
      return "a cancel or a mark failed it: clear it to run it again";
    case "compensating":
      return "its run's saga handles its failure";
    case "replaced":
      return "a backfill replaced its run";
    case "changed":
      return "it failed after the re-drive read the dead letters: re-drive it again";
    default:
      return state === null ? "" : `its state is ${state}`;
  }
}

/**
 * What `dead-letters redrive` prints: the count re-driven, then each chosen dead letter that was
 * not, and why, then each id given with --ids that was no dead letter, and why, then how many
 * dead letters the batch left.
 */
export function redriveSummary(result: RedriveAnswer, dryRun: boolean): string {
  const lines = [`${dryRun ? "would re-drive" : "re-drove"} ${result.redriven} task instance(s)`];
  for (const l of result.dead_letters) {
    if (l.skipped !== null) lines.push(`skipped task instance ${l.task_instance_id} ("${l.task_id}" of run "${l.dag_run_id}" of DAG "${l.dag_id}"): ${l.skipped}`);
  }
  for (const n of result.not_dead_letters ?? []) {
    const which = n.task_id === null ? "" : ` ("${n.task_id}" of run "${n.dag_run_id}" of DAG "${n.dag_id}")`;
    const why = notDeadLetterWhy(n.reason, n.state);
    lines.push(`not a dead letter: task instance ${n.task_instance_id}${which}: ${n.reason}${why ? ` (${why})` : ""}`);
  }
  if (result.remaining) {
    // A dry run again would answer the same batch (it re-drives nothing); a batch that left some
    // is a full one, so its size is the server's limit.
    lines.push(
      dryRun
        ? `${result.remaining} more dead letter(s) beyond this batch: a re-drive takes at most ${result.dead_letters.length.toLocaleString("en")} at a time`
        : `${result.remaining} more dead letter(s) left: run it again for the rest`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The ids of `--ids` a re-drive (or a dry run) did not re-drive, in the order given, once each:
 * every one but the dead letters it chose and did not skip (an id of no dead letter, one skipped).
 */
export function idsNotRedriven(ids: readonly number[], result: RedriveAnswer): number[] {
  const redriven = new Set(result.dead_letters.filter((l) => l.skipped === null).map((l) => l.task_instance_id));
  return [...new Set(ids)].filter((id) => !redriven.has(id));
}

export function registerOperationCommands(program: Command): void {
  const pools = program.command("pools").description("list, create, resize and delete pools (changes need an admin token remotely)");
  pools
    .command("list")
    .description("list pools with their slots")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, opts: { json?: boolean }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call("GET", "/pools", { query: { limit: 1000 } });
        printRows(page.pools, ["name", "slots", "occupied_slots", "open_slots", "description"], opts.json ? "json" : output);
      });
    });
  pools
    .command("show <name>")
    .description("one pool")
    .action(async function (this: Command, name: string) {
      parsedArg("name", name, poolNameArg);
      await withApi(this, async (client, { output }) => printObject(await client.call("GET", `/pools/${enc(name)}`), output));
    });
  pools
    .command("set <name> <slots>")
    .description("create a pool, or change its slots (-1: no limit)")
    .option("--description <text>", "what the pool protects")
    .action(async function (this: Command, name: string, slots: string, opts: { description?: string }) {
      parsedArg("name", name, poolNameArg);
      const n = parsedArg("slots", slots, slotsArg);
      await withApi(this, async (client, { output }) => {
        const exists = (await client.raw("GET", `/pools/${enc(name)}`)).status === 200;
        const body = { slots: n, ...(opts.description === undefined ? {} : { description: opts.description }) };
        const pool = exists ? await client.call("PATCH", `/pools/${enc(name)}`, { body }) : await client.call("POST", "/pools", { body: { name, ...body } });
        if (output === "json") printObject(pool, "json");
        else process.stdout.write(`pool ${name}: ${n === -1 ? "unlimited slots" : `${n} slot(s)`}\n`);
      });
    });
  pools
    .command("delete <name>")
    .description("delete a pool (default_pool cannot be deleted)")
    .action(async function (this: Command, name: string) {
      parsedArg("name", name, poolNameArg);
      await withApi(this, async (client, { output }) => {
        await client.call("DELETE", `/pools/${enc(name)}`);
        printChange(output, `deleted pool ${name}`, { name, deleted: true });
      });
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
    .action(async function (this: Command, dagId: string, runId: string, name: string, opts: { payload?: unknown; signalId?: string }) {
      await withApi(this, async (client, { output }) => {
        const body = { ...(opts.payload === undefined ? {} : { payload: opts.payload }), ...(opts.signalId === undefined ? {} : { signal_id: opts.signalId }) };
        const sent = await client.call("POST", `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/signals/${enc(name)}`, { body });
        if (output === "json") return printObject(sent, "json");
        const what = sent.duplicate ? "already received" : sent.delivered_to ? `delivered to ${sent.delivered_to}` : "stored until a task waits for it";
        process.stdout.write(`signal ${name} for ${dagId}/${runId}: ${what}\n`);
      });
    });

  const deadLetters = program.command("dead-letters").description("task instances that exhausted their retries, across DAGs");
  deadLetters
    .command("list")
    .description("task instances that failed with no try left, newest first, with their error")
    .option("--dag-id <dag_id>", "only this DAG")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, opts: { dagId?: string; json?: boolean }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call("GET", "/deadLetters", { query: { dag_id: opts.dagId, limit: 1000 } });
        printRows(page.dead_letters, ["task_instance_id", "dag_id", "dag_run_id", "task_id", "try_number", "error_class", "error_message"], opts.json ? "json" : output);
      });
    });
  deadLetters
    .command("redrive")
    .description("clear dead letters (and their downstream tasks) so they run again")
    .option("--dag-id <dag_id>", "every dead letter of this DAG")
    .option("--ids <ids>", "comma-separated task instance ids", (v: string) => listArg(v).map(integerArg))
    .option("--dry-run", "list what would be re-driven")
    .action(async function (this: Command, opts: { dagId?: string; ids?: number[]; dryRun?: boolean }) {
      if (!opts.dagId && !opts.ids) throw new InvalidArgumentError("give --dag-id or --ids");
      await withApi(this, async (client, { output }) => {
        const body = { ...(opts.dagId ? { dag_id: opts.dagId } : {}), ...(opts.ids ? { task_instance_ids: opts.ids } : {}), dry_run: !!opts.dryRun };
        const result = await client.call("POST", "/deadLetters/redrive", { body });
        if (output === "json") printObject(result, "json");
        else process.stdout.write(redriveSummary(result, !!opts.dryRun));
        // The API answers 200 for a re-drive that left some named ids alone; a script must still see it.
        const left = opts.ids ? idsNotRedriven(opts.ids, result) : [];
        if (left.length > 0) {
          const given = new Set(opts.ids).size;
          process.stderr.write(`baton: ${left.length} of the ${given} --ids ${opts.dryRun ? "would not be" : "were not"} re-driven: ${left.join(", ")}\n`);
          process.exitCode = 1;
        }
      });
    });
}
