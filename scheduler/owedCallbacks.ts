// The task callback a try owes when the scheduler, not the try's own process, ended it: a reaped
// zombie (reapZombies) or a signal wait that timed out (signals.ts). Pure: those transitions write
// the owed row in their transaction; a worker runs the callback (executor/tryCallbacks.ts).
import type { SerializedTask } from "../core/dagStructure.ts";

export type OwedCallback = "onRetry" | "onFailure";

/**
 * The task callback a try the scheduler ended owes, as its own process would have run it after a
 * failure: onRetry when it is retried, onFailure when not. Only when the version says the task
 * has it; a version parsed before tasks recorded their callbacks (`callbacks` absent) owes it
 * anyway, and the worker's child finds out (a task without one runs nothing). A task its version
 * does not know owes nothing: there is no code to run.
 */
export function owedCallback(spec: Pick<SerializedTask, "callbacks"> | undefined, state: "up_for_retry" | "failed"): OwedCallback | null {
  if (!spec) return null;
  const name: OwedCallback = state === "up_for_retry" ? "onRetry" : "onFailure";
  return spec.callbacks?.[name] === false ? null : name;
}
