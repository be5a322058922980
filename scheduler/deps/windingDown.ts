import type { DepStatus } from "./dependsOnPast.ts";

/** A try of the run ended from outside (cancelled, timed out, marked, cleared) that its worker may still run. */
export interface WindingDownTry {
  taskId: string | null;
  tryNumber: number;
  /** The worker's host and pid, from its process row; null once that row is gone. */
  hostname: string | null;
  pid: number | null;
}

/**
 * A saga's compensation waits while any try of its run, ended from outside, may still be running
 * its code on a worker (inside its kill grace): undoing work that is still being done would let it
 * finish after the undo (store/transitions/abandonedTries.ts holds it; releaseScheduled queues it).
 * Passed when no such try is left. Only for compensation task instances (no state or scheduled).
 */
export function windingDownDep(tries: readonly WindingDownTry[]): DepStatus {
  const dep = "winding_down";
  if (tries.length === 0) return { dep, passed: true, reason: "no try of the run ended from outside is still winding down" };
  const named = tries.map((t) => {
    const where = t.hostname === null ? "a worker that no longer heartbeats" : `worker ${t.hostname}${t.pid === null ? "" : ` pid ${t.pid}`}`;
    return `${t.taskId === null ? "a task instance since deleted" : `"${t.taskId}"`} try ${t.tryNumber} on ${where}`;
  });
  return {
    dep,
    passed: false,
    reason:
      `a compensation starts only once the code it undoes has stopped: ${named.join(", ")} ` +
      `${tries.length === 1 ? "was" : "were"} ended from outside (cancelled, timed out, marked or cleared) and may still run until ` +
      "stopped after ctx.signal's abort or killed after the kill grace (or its worker is declared dead); queued then automatically",
  };
}
