import { branchSkips } from "../core/dagStructure.ts";
import type { Dag } from "../sdk/types.ts";

/** Direct downstream task ids of `taskId`. */
export function downstreamOf(dag: Dag, taskId: string): string[] {
  return [...dag.tasks.values()].filter((t) => t.upstream.has(taskId)).map((t) => t.id);
}

/**
 * Airflow's branch and short-circuit semantics: a branch follows the direct downstream tasks
 * it returns and skips the others (but not one also downstream of a followed task: a join is left
 * to its trigger rule); a short-circuit returning false(y) skips every task
 * downstream of it, whatever their trigger rules.
 */
export function decideSkips(dag: Dag, taskId: string, kind: string, returned: unknown): { output: unknown; skipTasks: string[] } {
  const direct = downstreamOf(dag, taskId);
  if (kind === "short_circuit") {
    if (returned) return { output: true, skipTasks: [] };
    const all = new Set<string>();
    const stack = [...direct];
    while (stack.length) {
      const id = stack.pop()!;
      if (all.has(id)) continue;
      all.add(id);
      stack.push(...downstreamOf(dag, id));
    }
    return { output: false, skipTasks: [...all].sort() };
  }
  const chosen = (Array.isArray(returned) ? returned : returned === null || returned === undefined ? [] : [returned]).map((c) =>
    typeof c === "string" ? c : (c as { id?: unknown })?.id,
  );
  const invalid = chosen.filter((id) => typeof id !== "string" || !direct.includes(id));
  if (invalid.length > 0) {
    throw Object.assign(
      new Error(`branch "${taskId}" returned ${JSON.stringify(invalid)}, which are not its direct downstream tasks (${direct.join(", ") || "none"})`),
      { nonRetryable: true },
    );
  }
  return { output: chosen, skipTasks: branchSkips(direct, chosen as string[], (id) => downstreamOf(dag, id)) };
}

