import { TaskState } from "../core/states.ts";

/**
 * A finished run fails if any leaf task failed or was upstream_failed, and succeeds
 * otherwise (Airflow's DagRun.update_state); non-leaf failures handled by an `all_done`
 * leaf do not fail the run.
 */
export function runOutcome(leafStates: readonly string[]): "success" | "failed" {
  return leafStates.some((s) => s === TaskState.Failed || s === TaskState.UpstreamFailed) ? "failed" : "success";
}
