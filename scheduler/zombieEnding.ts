// What a reaped zombie try leaves behind besides its state: the line that ends its log, and the
// task callback it owes. Pure: reapZombies (store/transitions) writes both in the reaping
// transaction; a worker runs the callback (executor/tryCallbacks.ts).
import type { SerializedTask } from "../core/dagStructure.ts";
import { formatDuration } from "../core/durations.ts";

export type ZombieCallback = "onRetry" | "onFailure";

export interface ZombieTry {
  hostname: string | null;
  pid: number | null;
  heartbeatAt: Date;
  state: "up_for_retry" | "failed";
}

/** "host pid N", as the reason names the worker. */
export function workerName(z: Pick<ZombieTry, "hostname" | "pid">): string {
  return `${z.hostname ?? "unknown host"}${z.pid ? ` pid ${z.pid}` : ""}`;
}

/**
 * The task callback a reaped try owes, as its own process would have run it after a failure:
 * onRetry when it is retried, onFailure when not. Only when the version says the task has it;
 * a version parsed before tasks recorded their callbacks (`callbacks` absent) owes it anyway,
 * and the worker's child finds out (a task without one runs nothing). A task its version does
 * not know owes nothing: there is no code to run.
 */
export function owedCallback(spec: Pick<SerializedTask, "callbacks"> | undefined, state: ZombieTry["state"]): ZombieCallback | null {
  if (!spec) return null;
  const name: ZombieCallback = state === "up_for_retry" ? "onRetry" : "onFailure";
  return spec.callbacks?.[name] === false ? null : name;
}

/** The line a scheduler appends to a reaped try's log, dated by its clock (`now`). */
export function zombieLogLine(now: Date, z: ZombieTry, timeoutMs: number, callback: ZombieCallback | null): string {
  const silent = formatDuration(now.getTime() - z.heartbeatAt.getTime());
  return (
    `[${now.toISOString()}] ERROR - the worker ${workerName(z)} stopped heartbeating at ${z.heartbeatAt.toISOString()}; ` +
    `the try was marked ${z.state} by the scheduler (zombie: no heartbeat for ${silent}, over the ${formatDuration(timeoutMs)} timeout)` +
    (callback ? `; its ${callback} callback runs on a live worker` : "") +
    " (BATON_TASK_ZOMBIE)\n"
  );
}
