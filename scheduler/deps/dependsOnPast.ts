import { TaskState } from "../../core/states.ts";

/** Airflow-style dependency status: whether a task may run, and if not, why (for humans). */
export interface DepStatus {
  dep: string;
  passed: boolean;
  reason: string;
}

const DONE_OK: readonly string[] = [TaskState.Success, TaskState.Skipped];

/**
 * depends_on_past / wait_for_downstream: the same task in the previous run must have succeeded
 * or been skipped; with waitForDownstream its direct downstream tasks in that run must be done
 * too. No previous run, or a previous run without this task, passes. Which run is the previous
 * one is store/queries/previousRun.ts's previousRunOf (the latest earlier logical date).
 */
export function dependsOnPastDep(input: {
  previousRunId: string | null;
  previousState: string | null | undefined;
  waitForDownstream: boolean;
  previousDownstreamStates: Record<string, string>;
}): DepStatus {
  const dep = "depends_on_past";
  if (input.previousRunId === null) return { dep, passed: true, reason: "this is the first run" };
  if (input.previousState === undefined || input.previousState === null) {
    return { dep, passed: true, reason: `the task did not exist in the previous run ${input.previousRunId}` };
  }
  if (!DONE_OK.includes(input.previousState)) {
    return { dep, passed: false, reason: `the task's state in the previous run ${input.previousRunId} is ${input.previousState}, not success or skipped` };
  }
  if (input.waitForDownstream) {
    const waiting = Object.entries(input.previousDownstreamStates).filter(([, state]) => !DONE_OK.includes(state));
    if (waiting.length > 0) {
      return {
        dep,
        passed: false,
        reason: `waiting for downstream tasks of the previous run ${input.previousRunId}: ${waiting.map(([id, s]) => `${id} (${s})`).join(", ")}`,
      };
    }
  }
  return { dep, passed: true, reason: `the task ended ${input.previousState} in the previous run ${input.previousRunId}` };
}
