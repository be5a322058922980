// `baton backfill create|list|status|pause|unpause|cancel`, through the REST API (/backfills), so
// `--api-url` works too. The backfill runs inside the scheduler: `create` records it and, unless
// --detach, follows its progress by polling GET /backfills/{id}; closing the terminal does not stop it.
import { InvalidArgumentError, type Command } from "commander";
import { decimalValue } from "../core/config.ts";
import { BatonError } from "../core/errors.ts";
import type { ApiClient } from "./client.ts";
import { dagDateArg, integerArg, jsonObjectArg, printChange, withApi } from "./commands/common.ts";
import { printObject, printRows, type OutputFormat } from "./output.ts";

type Reprocess = "none" | "failed" | "completed";

export interface CreateOptions {
  from: string;
  to: string;
  reprocess?: Reprocess;
  maxActiveRuns?: number;
  backwards?: boolean;
  conf?: Record<string, unknown>;
  dryRun?: boolean;
  detach?: boolean;
  force?: boolean;
  /** How often the follow loop polls the API (ms). */
  pollMs?: number;
}

/** GET /backfills/{id} (and the answer of create, pause, unpause, cancel). */
interface BackfillDetail {
  id: number;
  dag_id: string;
  from_date: string;
  to_date: string;
  reprocess_behavior: Reprocess;
  max_active_runs: number;
  run_backwards: boolean;
  state: string;
  total_dates: number;
  counts: Record<"pending" | "queued" | "running" | "success" | "failed" | "skipped", number> & { deleted?: number };
  skipped_by_reason: Record<string, number>;
  done: number;
  failed: number;
  dates_left_total: number;
  dates_left: string[];
  /** Why a running or cancelling backfill makes no progress (its DAG is inactive), null otherwise. */
  waiting_reason?: string | null;
  waiting_message?: string | null;
  [key: string]: unknown;
}

/** POST /backfills with dry_run. */
interface BackfillPlan {
  total_dates: number;
  dates: { logical_date: string; action: "create" | "reprocess" | "skip"; reason: string | null; existing_runs: string[] }[];
}

const FINAL = new Set(["completed", "cancelled"]);
/** How many of the next dates `status` prints. */
const DATES_SHOWN = 10;
const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(b: BackfillDetail): string {
  const skipped = Object.entries(b.skipped_by_reason);
  const skippedText = skipped.length ? skipped.map(([reason, n]) => `${n} ${reason}`).join(", ") : "0";
  return (
    `backfill ${b.id} ${b.state}: ${b.total_dates} date(s): ${b.counts.success} succeeded, ${b.counts.failed} failed, ` +
    `${b.counts.queued + b.counts.running} active, ${b.counts.pending} pending, skipped ${skippedText}` +
    (b.counts.deleted ? `, ${b.counts.deleted} run(s) deleted since` : "")
  );
}

function backfillId(value: string): number {
  const n = decimalValue(value);
  if (n === undefined || n < 1) throw new BatonError("BATON_VALIDATION_FAILED", `backfill id must be a positive integer, got "${value}"`);
  return n;
}

export async function backfillCreate(client: ApiClient, dagId: string, opts: CreateOptions, output: OutputFormat): Promise<void> {
  const body = {
    dag_id: dagId,
    from_date: opts.from,
    to_date: opts.to,
    reprocess_behavior: opts.reprocess ?? "none",
    max_active_runs: opts.maxActiveRuns ?? 10,
    run_backwards: !!opts.backwards,
    dag_run_conf: opts.conf ?? {},
    force: !!opts.force,
  };
  if (opts.dryRun) {
    const plan = await client.call<BackfillPlan>("POST", "/backfills", { body: { ...body, dry_run: true } });
    if (output === "json") return printObject(plan as unknown as Record<string, unknown>, "json");
    const counts = { create: 0, reprocess: 0, skip: 0 };
    out(`${"logical_date".padEnd(26)} ${"action".padEnd(10)} ${"reason".padEnd(10)} existing runs`);
    for (const d of plan.dates) {
      counts[d.action]++;
      out(`${d.logical_date.padEnd(26)} ${d.action.padEnd(10)} ${(d.reason ?? "").padEnd(10)} ${d.existing_runs.join(", ")}`.trimEnd());
    }
    out(`dry run: ${plan.dates.length} date(s): ${counts.create} to create, ${counts.reprocess} to re-run, ${counts.skip} to skip; nothing was written`);
    return;
  }
  const created = await client.call<BackfillDetail>("POST", "/backfills", { body });
  if (output !== "json") {
    out(
      `backfill ${created.id} of ${dagId}: ${created.total_dates} date(s) (reprocess ${created.reprocess_behavior}, at most ${created.max_active_runs} active, ` +
        `${created.run_backwards ? "newest" : "oldest"} first)`,
    );
  }
  // /health is public, so this works with any token; it says whether a scheduler heartbeated lately.
  const health = await client.raw("GET", "/health");
  try {
    if ((JSON.parse(health.text) as { scheduler?: { status?: string } }).scheduler?.status !== "healthy") {
      process.stderr.write("baton: no scheduler is running: the backfill's runs are created by `baton scheduler` or `baton standalone`\n");
    }
  } catch {
    // not JSON: say nothing
  }
  if (opts.detach) {
    if (output === "json") printObject(created, "json");
    else out(`detached: follow it with \`baton backfill status ${created.id}\``);
    return;
  }
  const last = await follow(client, created, opts.pollMs ?? 1000, output);
  if (last.failed > 0) process.exitCode = 1;
}

/**
 * Polls GET /backfills/{id} until the backfill is final or Ctrl-C: a progress bar on a terminal,
 * a line every few seconds otherwise (cli-progress's noTTYOutput); silent under --output json,
 * which prints the last answer at the end.
 */
async function follow(client: ApiClient, first: BackfillDetail, pollMs: number, output: OutputFormat): Promise<BackfillDetail> {
  const id = first.id;
  const cliProgress = output === "json" ? undefined : (await import("cli-progress")).default;
  const bar = cliProgress
    ? new cliProgress.SingleBar(
        {
          format: `backfill ${id} [{bar}] {value}/{total} runs | {failed} failed | ETA: {eta_formatted}`,
          hideCursor: true,
          noTTYOutput: true,
          notTTYSchedule: 5000,
          etaBuffer: 50,
          // Redrawn even unchanged: a waiting message printed on a terminal clears its line.
          forceRedraw: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(first.total_dates, 0, { failed: 0 });
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSigint);
  // Why the backfill makes no progress (its DAG is inactive), as last said: the bar alone would stall silently.
  let waiting: string | null = null;
  try {
    for (let b = first; ; ) {
      const now = b.waiting_message ?? null;
      if (bar && now !== waiting && !(now === null && FINAL.has(b.state))) {
        const said =
          now !== null
            ? `backfill ${id} waits: ${now}`
            : b.state === "running" || b.state === "cancelling"
              ? `backfill ${id} goes on: DAG "${b.dag_id}" is active again`
              : `backfill ${id} no longer waits for its DAG: it is ${b.state}`;
        // On its own line: on a terminal the bar's line is cleared first, and the bar is redrawn below it.
        process.stderr.write(`${process.stderr.isTTY ? "\r\x1b[2K" : ""}${said}\n`);
      }
      waiting = now;
      bar?.update(b.done, { failed: b.failed });
      if (FINAL.has(b.state) || interrupted) {
        bar?.stop();
        if (output === "json") printObject(b, "json");
        else if (interrupted) out(`detached: backfill ${id} keeps running in the scheduler (\`baton backfill cancel ${id}\` stops it)`);
        else out(summary(b));
        return b;
      }
      await sleep(pollMs);
      b = await client.call<BackfillDetail>("GET", `/backfills/${id}`);
    }
  } finally {
    bar?.stop();
    process.removeListener("SIGINT", onSigint);
  }
}

export async function backfillStatus(client: ApiClient, id: number, output: OutputFormat): Promise<void> {
  const b = await client.call<BackfillDetail>("GET", `/backfills/${id}`);
  if (output === "json") return printObject(b, "json");
  out(`backfill ${b.id} of ${b.dag_id}: ${b.from_date} .. ${b.to_date} (reprocess ${b.reprocess_behavior}, at most ${b.max_active_runs} active)`);
  out(summary(b));
  if (b.waiting_message) out(`waiting: ${b.waiting_message}`);
  const next = b.dates_left.slice(0, DATES_SHOWN);
  if (next.length) out(`next dates: ${next.join(", ")}${b.dates_left_total > next.length ? ", …" : ""}`);
}

/** `baton backfill …`: create (and follow), list, status, pause, unpause and cancel through the API. */
export function registerBackfillCommands(program: Command): void {
  const backfill = program.command("backfill").description("replay a date range of a scheduled DAG; the scheduler creates the runs");
  backfill
    .command("create <dag_id>")
    .description("create a backfill and follow its progress (runs are created by the scheduler, so closing this does not stop it)")
    .requiredOption("--from <date>", "first logical date, inclusive (ISO 8601; without an offset: the DAG's time zone)", dagDateArg("--from"))
    .requiredOption("--to <date>", "last logical date, inclusive (not before --from, --backwards too)", dagDateArg("--to"))
    .option("--reprocess <behavior>", "dates that already have a run: none (skip, default), failed (re-run failed ones), completed (re-run all)", (v: string) => {
      if (v !== "none" && v !== "failed" && v !== "completed") throw new InvalidArgumentError('must be "none", "failed" or "completed"');
      return v;
    })
    .option("--max-active-runs <n>", "runs queued or running at once (default 10)", (v: string) => {
      const n = integerArg(v);
      if (n < 1) throw new InvalidArgumentError("must be at least 1");
      return n;
    })
    .option("--backwards", "newest date first")
    .option("-c, --conf <json>", "conf of every run (JSON object)", jsonObjectArg)
    .option("--dry-run", "list the dates and what would happen to each; write nothing")
    .option("--detach", "return once the backfill is recorded")
    .option("--force", "allow more runs than BATON_BACKFILL_MAX_RUNS")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, dagId: string, opts: CreateOptions & { json?: boolean }) {
      await withApi(this, (client, { output }) => backfillCreate(client, dagId, opts, opts.json ? "json" : output));
    });
  backfill
    .command("list")
    .description("backfills, oldest first")
    .option("--dag-id <dag_id>", "only this DAG's")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, opts: { dagId?: string; json?: boolean }) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call<{ backfills: Record<string, unknown>[] }>("GET", "/backfills", { query: { dag_id: opts.dagId, limit: 1000 } });
        printRows(page.backfills, ["id", "dag_id", "state", "from_date", "to_date", "total_dates", "created_at", "waiting_reason"], opts.json ? "json" : output);
      });
    });
  backfill
    .command("status <id>")
    .description("show a backfill's runs per state and the dates left")
    .option("--json", "print JSON (same as --output json)")
    .action(async function (this: Command, id: string, opts: { json?: boolean }) {
      const backfillNo = backfillId(id);
      await withApi(this, (client, { output }) => backfillStatus(client, backfillNo, opts.json ? "json" : output));
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
    cmd.action(async function (this: Command, id: string, opts: { force?: boolean }) {
      const backfillNo = backfillId(id);
      await withApi(this, async (client, { output }) => {
        const force = action === "cancel" && !!opts.force;
        // The runs the forced cancel failed, as its own transaction counted them: not a count of
        // failed runs read before and after it, which takes in runs that failed meanwhile.
        const b = await client.call<BackfillDetail & { runs_failed: number }>("POST", `/backfills/${backfillNo}/${action}`, { body: force ? { force: true } : {} });
        printChange(output, `backfill ${backfillNo}: ${b.state}${b.runs_failed > 0 ? ` (${b.runs_failed} active run(s) failed)` : ""}`, b);
      });
    });
  }
}
