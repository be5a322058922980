import { TaskState } from "../core/states.ts";

/**
 * A finished run fails if any leaf task failed or was upstream_failed, and succeeds
 * otherwise (Airflow's DagRun.update_state); non-leaf failures handled by an `all_done`
 * leaf do not fail the run.
 */
export function runOutcome(leafStates: readonly string[]): "success" | "failed" {
  return leafStates.some((s) => s === TaskState.Failed || s === TaskState.UpstreamFailed) ? "failed" : "success";
}

/**
 * How a saga ended, from the states of its compensations and of the tasks they undo. A
 * compensation is owed when the task it undoes succeeded; the saga is "compensated" when every
 * owed compensation succeeded (by running, or marked success by an operator who undid it by hand),
 * "compensation_failed" otherwise: one failed (or was marked failed), or was skipped while owed
 * (a cancel or timeout cut it off, or an operator skipped it: nothing says it was undone). A
 * compensation whose task never succeeded had nothing to undo and does not count.
 */
export function compensationOutcome(
  compensations: readonly { taskId: string; compensates?: string | null }[],
  stateOf: (taskId: string) => string | undefined,
): "compensated" | "compensation_failed" {
  const undone = compensations.every((c) => !c.compensates || stateOf(c.compensates) !== TaskState.Success || stateOf(c.taskId) === TaskState.Success);
  return undone ? "compensated" : "compensation_failed";
}
