import type { TriggerRule } from "../sdk/types.ts";

/** How many direct upstream tasks ended in each terminal state. */
export interface UpstreamCounts {
  total: number;
  success: number;
  skipped: number;
  failed: number;
  upstreamFailed: number;
  removed: number;
}

/**
 * ready: queue the task now. wait: not decided yet. skip / upstream_failed: the rule can
 * no longer be met, and the task ends in that state (Airflow's flag_upstream_failed).
 */
export type TriggerDecision = "ready" | "wait" | "skipped" | "upstream_failed";

export function zeroCounts(total: number): UpstreamCounts {
  return { total, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 };
}

/**
 * Rules that keep waiting as long as every upstream task that ended succeeded (or was removed)
 * and some have not ended: their decision is "wait" on exactly that region of counts (unit-tested
 * over it). finishTries commits a fan-in's upstream try in one round trip when its downstream
 * task has one of these rules and SQL confirms its counters are still in that region.
 */
export const RULES_WAITING_ON_SUCCESSES: readonly TriggerRule[] = [
  "all_success",
  "all_done",
  "all_done_min_one_success",
  "none_failed",
  "none_failed_min_one_success",
  "none_skipped",
  "one_failed",
];

/**
 * Airflow's trigger rules over direct upstream states (airflow/ti_deps/deps/trigger_rule_dep.py),
 * including early decisions: `one_failed` fires on the first failure, `one_success` on the
 * first success, and `always` at once. A task without upstream tasks is always ready.
 *
 * Two deliberate departures from that file: a `removed` upstream neither helps nor blocks
 * (Airflow's handling for mapped task instances; a non-mapped task there would wait forever),
 * and `all_done_min_one_success` counts skipped upstreams as done, as Airflow's documentation
 * and 3.1 release notes define it (its trigger_rule_dep.py skips the task on any skipped
 * upstream instead, reported as apache/airflow#59925).
 */
export function evaluateTriggerRule(rule: TriggerRule, c: UpstreamCounts): TriggerDecision {
  if (c.total === 0 || rule === "always") return "ready";
  const failedAny = c.failed + c.upstreamFailed;
  const done = c.success + c.skipped + c.failed + c.upstreamFailed + c.removed;
  const allDone = done >= c.total;

  switch (rule) {
    case "all_success":
      if (failedAny > 0) return "upstream_failed";
      if (c.skipped > 0) return "skipped";
      return c.success + c.removed >= c.total ? "ready" : "wait";
    case "all_failed":
      if (c.success > 0 || c.skipped > 0) return "skipped";
      return allDone ? "ready" : "wait";
    case "all_done":
      return allDone ? "ready" : "wait";
    case "all_done_min_one_success":
      if (!allDone) return "wait";
      if (c.success > 0) return "ready";
      return c.skipped === done ? "skipped" : "upstream_failed";
    case "all_skipped":
      if (c.success > 0 || failedAny > 0) return "skipped";
      return allDone ? "ready" : "wait";
    case "one_success":
      if (c.success > 0) return "ready";
      if (!allDone) return "wait";
      return c.skipped === done ? "skipped" : "upstream_failed";
    case "one_failed":
      if (failedAny > 0) return "ready";
      return allDone ? "skipped" : "wait";
    case "one_done":
      if (c.success + c.failed > 0) return "ready";
      return allDone ? "skipped" : "wait";
    case "none_failed":
      if (failedAny > 0) return "upstream_failed";
      return allDone ? "ready" : "wait";
    case "none_failed_min_one_success":
      if (failedAny > 0) return "upstream_failed";
      if (!allDone) return "wait";
      return c.success > 0 ? "ready" : "skipped";
    case "none_skipped":
      if (c.skipped > 0) return "skipped";
      return allDone ? "ready" : "wait";
    default: {
      const unknown: never = rule;
      throw new Error(`unknown trigger rule ${String(unknown)}`);
    }
  }
}
