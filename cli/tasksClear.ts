import { createInterface } from "node:readline/promises";
import { clearTasks, type ClearRequest, type ClearResult } from "../store/transitions/clearTasks.ts";
import { VersionCache } from "../store/versions.ts";
import { clock, type Runtime } from "./runtime.ts";

export interface TasksClearFlags {
  runId: string;
  taskIds?: string[];
  downstream?: boolean;
  upstream?: boolean;
  onlyFailed?: boolean;
  onlyRunning?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}

function table(result: ClearResult, withAfter: boolean): string {
  const width = Math.max(7, ...result.cleared.map((c) => c.taskId.length));
  const lines = [`  ${"task_id".padEnd(width)}  ${withAfter ? "state (before → after)" : "state"}`];
  for (const c of result.cleared) {
    lines.push(`  ${c.taskId.padEnd(width)}  ${c.previousState}${withAfter ? ` → ${c.state}` : ""}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * `baton tasks clear`: shows what the clear selects, asks (unless --yes or --dry-run), then
 * clears in one transaction and prints each task's new state. Returns the exit code.
 */
export async function tasksClear(rt: Runtime, dagId: string, flags: TasksClearFlags): Promise<number> {
  const versions = new VersionCache(rt.db.pool);
  const shapeOf = (hash: string) => versions.shape(hash);
  const request: ClearRequest = {
    dagId,
    runId: flags.runId,
    taskIds: flags.taskIds,
    includeDownstream: !!flags.downstream,
    includeUpstream: !!flags.upstream,
    onlyFailed: !!flags.onlyFailed,
    onlyRunning: !!flags.onlyRunning,
  };
  const plan = await clearTasks(rt.db, clock.now(), { ...request, dryRun: true }, shapeOf);
  const what = `run ${flags.runId} of ${dagId}`;
  if (plan.cleared.length === 0) {
    process.stdout.write(`no task instance of ${what} matches; nothing to clear\n`);
    return 0;
  }
  if (flags.dryRun) {
    process.stdout.write(`would clear ${plan.cleared.length} task instance(s) of ${what} (dry run, nothing changed):\n${table(plan, false)}`);
    return 0;
  }
  if (!flags.yes) {
    process.stdout.write(`about to clear ${plan.cleared.length} task instance(s) of ${what}:\n${table(plan, false)}`);
    if (!process.stdin.isTTY) {
      process.stderr.write("baton: not a terminal, so not asking: pass --yes to clear, or --dry-run to only look\n");
      return 1;
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question("Clear them? [y/N] ");
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      process.stdout.write("cancelled; nothing was cleared\n");
      return 1;
    }
  }
  const done = await clearTasks(rt.db, clock.now(), request, shapeOf);
  process.stdout.write(`cleared ${done.cleared.length} task instance(s) of ${what}; the run is ${done.runState}:\n${table(done, true)}`);
  return 0;
}
