// `baton backfill create|status|pause|unpause|cancel`. The backfill runs inside the scheduler:
// this command records it and, unless --detach, follows its progress; closing the terminal
// does not stop it.
import cliProgress from "cli-progress";
import { BatonError } from "../core/errors.ts";
import type { ReprocessBehavior } from "../scheduler/backfillPlan.ts";
import { aliveSchedulers, backfillProgress, getBackfill, type BackfillProgress } from "../store/queries/backfills.ts";
import type { RowDataPacket } from "../store/db.ts";
import { controlBackfill, type BackfillAction } from "../store/transitions/controlBackfill.ts";
import { createBackfill, dryRunBackfill, type NewBackfill } from "../store/transitions/createBackfill.ts";
import { clock, type Runtime } from "./runtime.ts";

export interface CreateOptions {
  from: string;
  to: string;
  reprocess?: ReprocessBehavior;
  maxActiveRuns?: number;
  backwards?: boolean;
  conf?: Record<string, unknown>;
  dryRun?: boolean;
  detach?: boolean;
  force?: boolean;
  /** How often the progress bar polls the database (ms). */
  pollMs?: number;
}

const FINAL = new Set(["completed", "cancelled"]);
const out = (line: string) => process.stdout.write(`${line}\n`);

function summary(b: RowDataPacket, p: BackfillProgress): string {
  const skipped = Object.entries(p.skipped);
  const skippedText = skipped.length ? skipped.map(([reason, n]) => `${n} ${reason}`).join(", ") : "0";
  return (
    `backfill ${b.id} ${b.state}: ${b.total_dates} date(s): ${p.runs.success} succeeded, ${p.runs.failed} failed, ` +
    `${p.runs.queued + p.runs.running} active, ${p.pending} pending, skipped ${skippedText}`
  );
}

export async function backfillCreate(rt: Runtime, dagId: string, opts: CreateOptions): Promise<number> {
  const request: NewBackfill = {
    dagId,
    fromDate: opts.from,
    toDate: opts.to,
    reprocessBehavior: opts.reprocess ?? "none",
    maxActiveRuns: opts.maxActiveRuns ?? 10,
    runBackwards: !!opts.backwards,
    dagRunConf: opts.conf ?? {},
    force: !!opts.force,
  };
  if (opts.dryRun) {
    const plan = await dryRunBackfill(rt.db, request, rt.config.backfillMaxRuns);
    const counts = { create: 0, reprocess: 0, skip: 0 };
    out(`${"logical_date".padEnd(26)} ${"action".padEnd(10)} ${"reason".padEnd(10)} existing runs`);
    for (const d of plan.dates) {
      counts[d.decision.action]++;
      const reason = d.decision.action === "skip" ? d.decision.reason : "";
      out(`${d.logicalDate.toISOString().padEnd(26)} ${d.decision.action.padEnd(10)} ${reason.padEnd(10)} ${d.existingRuns.join(", ")}`);
    }
    out(`dry run: ${plan.dates.length} date(s): ${counts.create} to create, ${counts.reprocess} to re-run, ${counts.skip} to skip; nothing was written`);
    return 0;
  }
  const { id, totalDates } = await createBackfill(rt.db, clock.now(), request, rt.config.backfillMaxRuns);
  out(
    `backfill ${id} of ${dagId}: ${totalDates} date(s) (reprocess ${request.reprocessBehavior}, at most ${request.maxActiveRuns} active, ` +
      `${request.runBackwards ? "newest" : "oldest"} first)`,
  );
  if ((await aliveSchedulers(rt.db.pool, new Date(clock.now().getTime() - 30_000))) === 0) {
    process.stderr.write("baton: no scheduler is running: the backfill's runs are created by `baton scheduler` or `baton standalone`\n");
  }
  if (opts.detach) {
    out(`detached: follow it with \`baton backfill status ${id}\``);
    return 0;
  }
  return follow(rt, id, totalDates, opts.pollMs ?? 1000);
}

async function follow(rt: Runtime, id: number, total: number, pollMs: number): Promise<number> {
  const bar = new cliProgress.SingleBar(
    {
      format: `backfill ${id} [{bar}] {value}/{total} runs | {failed} failed | ETA: {eta_formatted}`,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { failed: 0 });
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSigint);
  try {
    for (;;) {
      const b = await getBackfill(rt.db.pool, id);
      if (!b) throw new BatonError("BATON_BACKFILL_NOT_FOUND", `backfill ${id} not found`);
      const p = await backfillProgress(rt.db.pool, id, 0);
      const skipped = Object.values(p.skipped).reduce((a, n) => a + n, 0);
      bar.update(p.runs.success + p.runs.failed + skipped, { failed: p.runs.failed });
      if (FINAL.has(b.state) || interrupted) {
        bar.stop();
        if (interrupted) out(`detached: backfill ${id} keeps running in the scheduler (\`baton backfill cancel ${id}\` stops it)`);
        else out(summary(b, p));
        return p.runs.failed > 0 ? 1 : 0;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

export async function backfillStatus(rt: Runtime, id: number, json: boolean): Promise<number> {
  const b = await getBackfill(rt.db.pool, id);
  if (!b) throw new BatonError("BATON_BACKFILL_NOT_FOUND", `backfill ${id} not found`);
  const p = await backfillProgress(rt.db.pool, id, 10);
  if (json) {
    out(JSON.stringify({ id: Number(b.id), dag_id: b.dag_id, state: b.state, total_dates: Number(b.total_dates), ...p }, null, 2));
    return 0;
  }
  out(`backfill ${b.id} of ${b.dag_id}: ${b.from_date.toISOString()} .. ${b.to_date.toISOString()} (reprocess ${b.reprocess_behavior}, at most ${b.max_active_runs} active)`);
  out(summary(b, p));
  if (p.datesLeft.length) out(`next dates: ${p.datesLeft.map((d) => d.toISOString()).join(", ")}${p.pending > p.datesLeft.length ? ", …" : ""}`);
  return 0;
}

export async function backfillControl(rt: Runtime, id: number, action: BackfillAction, force: boolean): Promise<number> {
  const { state, runsFailed } = await controlBackfill(rt.db, clock.now(), id, action, { force });
  out(`backfill ${id}: ${state}${runsFailed ? ` (${runsFailed} active run(s) failed)` : ""}`);
  return 0;
}
