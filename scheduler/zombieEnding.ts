// What a reaped zombie try leaves behind besides its state and the callback it owes
// (scheduler/owedCallbacks.ts): the line that ends its log. Pure: reapZombies (store/transitions)
// writes it in the reaping transaction.
import { formatDuration } from "../core/durations.ts";
import type { OwedCallback } from "./owedCallbacks.ts";

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

/** The line a scheduler appends to a reaped try's log, dated by its clock (`now`). */
export function zombieLogLine(now: Date, z: ZombieTry, timeoutMs: number, callback: OwedCallback | null): string {
  const silent = formatDuration(now.getTime() - z.heartbeatAt.getTime());
  return (
    `[${now.toISOString()}] ERROR - the worker ${workerName(z)} stopped heartbeating at ${z.heartbeatAt.toISOString()}; ` +
    `the try was marked ${z.state} by the scheduler (zombie: no heartbeat for ${silent}, over the ${formatDuration(timeoutMs)} timeout)` +
    (callback ? `; its ${callback} callback runs on a live worker` : "") +
    " (BATON_TASK_ZOMBIE)\n"
  );
}
