// What a clear touches, as pure functions over a run's pinned structure and its task states
// (Airflow's DAG.partial_subset + DAG.clear filters). store/transitions/clearTasks.ts applies them.
import { branchSkips, type DagShape } from "../core/dagStructure.ts";
import { TaskState } from "../core/states.ts";
import { zeroCounts, type UpstreamCounts } from "./triggerRules.ts";

export interface ClearScope {
  includeUpstream?: boolean;
  includeDownstream?: boolean;
}

/**
 * The given tasks plus, transitively, their upstream and/or downstream tasks, in the
 * structure's topological order. Unknown ids are the caller's to reject.
 */
export function clearClosure(shape: DagShape, taskIds: Iterable<string>, scope: ClearScope = {}): string[] {
  const chosen = new Set<string>();
  const walk = (start: Iterable<string>, next: (taskId: string) => readonly string[]) => {
    const stack = [...start];
    while (stack.length > 0) {
      const id = stack.pop()!;
      for (const n of next(id)) {
        if (chosen.has(n)) continue;
        chosen.add(n);
        stack.push(n);
      }
    }
  };
  const roots = [...taskIds].filter((id) => shape.byId.has(id));
  for (const id of roots) chosen.add(id);
  if (scope.includeUpstream) walk(roots, (id) => shape.byId.get(id)?.upstream ?? []);
  if (scope.includeDownstream) walk(roots, (id) => shape.byId.get(id)?.downstream ?? []);
  return shape.dag.tasks.map((t) => t.taskId).filter((id) => chosen.has(id));
}

/**
 * Which current states a clear selects. Airflow: only_failed = failed or upstream_failed,
 * only_running = running; Airflow intersects the two (so both together select nothing), Baton
 * takes their union. Neither: every state.
 */
export function clearStateFilter(onlyFailed: boolean, onlyRunning: boolean): (state: string) => boolean {
  if (!onlyFailed && !onlyRunning) return () => true;
  return (state) =>
    (onlyFailed && (state === TaskState.Failed || state === TaskState.UpstreamFailed)) || (onlyRunning && state === TaskState.Running);
}

const COUNTER_OF_STATE: Record<string, keyof Omit<UpstreamCounts, "total">> = {
  [TaskState.Success]: "success",
  [TaskState.Skipped]: "skipped",
  [TaskState.Failed]: "failed",
  [TaskState.UpstreamFailed]: "upstreamFailed",
  [TaskState.Removed]: "removed",
};

/**
 * A task's upstream counts recomputed from its direct upstream tasks' current states (only
 * terminal states count, as settle counts them), for counters a clear invalidated.
 */
export function upstreamCountsOf(shape: DagShape, taskId: string, stateOf: (taskId: string) => string | undefined): UpstreamCounts {
  const upstream = shape.byId.get(taskId)?.upstream ?? [];
  const counts = zeroCounts(upstream.length);
  for (const up of upstream) {
    const counter = COUNTER_OF_STATE[stateOf(up) ?? TaskState.None];
    if (counter) counts[counter]++;
  }
  return counts;
}

/**
 * Skipped tasks a clear leaves skipped: those a branch or short-circuit that stays as it is
 * (succeeded, not cleared) decided to skip. Airflow's NotPreviouslySkippedDep: clearing them
 * alone would run what the branch did not follow (and leave the run inconsistent: a follower
 * succeeds while its join stays skipped). A branch skipped its direct downstream tasks it did
 * not return and that no followed task leads to; a short-circuit that returned false skipped
 * everything downstream of it.
 * `outputs`: the recorded output of each branch / short-circuit task that succeeded.
 */
export function skipsToKeep(
  shape: DagShape,
  cleared: ReadonlySet<string>,
  stateOf: (taskId: string) => string | undefined,
  outputs: ReadonlyMap<string, unknown>,
): Set<string> {
  const keep = new Set<string>();
  for (const decider of shape.dag.tasks) {
    if ((decider.kind !== "branch" && decider.kind !== "short_circuit") || cleared.has(decider.taskId)) continue;
    if (stateOf(decider.taskId) !== TaskState.Success || !outputs.has(decider.taskId)) continue;
    const output = outputs.get(decider.taskId);
    let skipped: string[];
    if (decider.kind === "branch") {
      const followed = (Array.isArray(output) ? output : [output]).filter((id): id is string => typeof id === "string");
      skipped = branchSkips(decider.downstream, followed, (id) => shape.byId.get(id)?.downstream ?? []);
    } else {
      if (output !== false) continue;
      skipped = clearClosure(shape, [decider.taskId], { includeDownstream: true }).filter((id) => id !== decider.taskId);
    }
    for (const id of skipped) if (cleared.has(id) && stateOf(id) === TaskState.Skipped) keep.add(id);
  }
  return keep;
}

/**
 * Whether a run's saga is over: its compensation ended (compensated / compensation_failed; a
 * cancel or timeout while compensating ends it compensation_failed), or the run ended while its
 * column still says "running" (written before endRuns set compensation_failed: kept resumable).
 */
export function sagaEnded(run: { state: string; compensation: string | null }): boolean {
  if (run.compensation == null) return false;
  return run.compensation !== "running" || run.state === "failed" || run.state === "success";
}

/**
 * What the tasks a clear names ask for in a saga: "compensations" (only `<task>__compensate`
 * tasks: run them again, resuming the compensation), "tasks" (none of them, or no names: the
 * run's own tasks, a new attempt once the saga ended) or "mixed" (both, which the caller refuses
 * or narrows: resuming the compensation and starting a new attempt exclude each other).
 */
export function sagaClearMode(shape: DagShape, namedTaskIds: readonly string[]): "tasks" | "compensations" | "mixed" {
  const named = namedTaskIds.filter((id) => shape.byId.has(id));
  const compensations = named.filter((id) => shape.byId.get(id)!.kind === "compensate").length;
  if (compensations === 0) return "tasks";
  return compensations === named.length ? "compensations" : "mixed";
}

/**
 * The compensations a clear may run again: those still owed (the task they undo succeeded and
 * they have not), whose state the clear's filter selects. One that succeeded is never run again
 * (a refund done twice), nor one skipped because its task never succeeded (nothing to undo). An
 * owed one left skipped was cut off by its run's end (cancel, timeout), not decided away: it
 * counts as failed, so a re-drive (only_failed) takes it with the failed one before it.
 */
export function clearableCompensations(
  shape: DagShape,
  stateOf: (taskId: string) => string | undefined,
  selects: (state: string) => boolean,
): Set<string> {
  const clearable = new Set<string>();
  for (const c of shape.compensations) {
    const state = stateOf(c.taskId);
    if (state === undefined || state === TaskState.Success || stateOf(c.compensates!) !== TaskState.Success) continue;
    if (selects(state === TaskState.Skipped ? TaskState.Failed : state)) clearable.add(c.taskId);
  }
  return clearable;
}
