import * as graphlib from "@dagrejs/graphlib";
import { Cron } from "croner";
import type { SerializedDag, SerializedTask } from "../core/dagStructure.ts";
import { parseDuration } from "../core/durations.ts";
import { InvalidDagError } from "../sdk/errors.ts";
import type { Dag, TaskDefaults } from "../sdk/types.ts";

/**
 * Turns a DAG object (from the user's bundle, possibly another copy of the SDK) into the
 * structure stored in dag_version. Throws InvalidDagError for cycles and invalid options.
 */
export function serializeDag(dag: Dag, fileloc: string): SerializedDag {
  const o = dag.options;
  const graph = new graphlib.Graph();
  for (const id of dag.tasks.keys()) graph.setNode(id);
  for (const task of dag.tasks.values()) for (const up of task.upstream) graph.setEdge(up, task.id);
  if (!graphlib.alg.isAcyclic(graph)) {
    const cycles = graphlib.alg.findCycles(graph).map((c) => [...c].reverse().concat(c[c.length - 1]!).join(" → "));
    throw new InvalidDagError("BATON_DAG_CYCLE", `dag "${dag.id}" has a cycle: ${cycles.join("; ")}`);
  }

  const timezone = o.timezone ?? "UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": timezone "${timezone}" is not a known IANA time zone`);
  }
  const schedule = o.schedule ?? null;
  if (schedule !== null) {
    if (typeof schedule !== "string") throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": schedule must be a string or null`);
    if (schedule.startsWith("@") ? !["@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"].includes(schedule) : !isInterval(schedule) && !isCron(schedule)) {
      throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": schedule "${schedule}" is not a valid cron expression, preset or interval`);
    }
  }

  const order = graphlib.alg.topsort(graph) as string[];
  const downstream = new Map<string, string[]>(order.map((id) => [id, []]));
  for (const task of dag.tasks.values()) for (const up of task.upstream) downstream.get(up)!.push(task.id);

  const defaults: TaskDefaults = o.defaultArgs ?? {};
  const ownWeight = new Map(order.map((id) => [id, dag.tasks.get(id)!.options.priorityWeight ?? defaults.priorityWeight ?? 1]));
  // Airflow's weight rules: "downstream" (default) weighs a task plus all its descendants,
  // "upstream" plus all its ancestors, "absolute" only itself.
  const reach = (ids: string[], next: (id: string) => Iterable<string>) => {
    const sets = new Map<string, Set<string>>();
    for (const id of ids) {
      const set = new Set<string>();
      for (const n of next(id)) {
        set.add(n);
        for (const nn of sets.get(n)!) set.add(nn);
      }
      sets.set(id, set);
    }
    return sets;
  };
  const descendants = reach([...order].reverse(), (id) => downstream.get(id)!);
  const rules = new Set(order.map((id) => dag.tasks.get(id)!.options.weightRule ?? defaults.weightRule ?? "downstream"));
  const ancestors = rules.has("upstream") ? reach(order, (id) => dag.tasks.get(id)!.upstream) : new Map<string, Set<string>>();

  const tasks: SerializedTask[] = order.map((id) => {
    const def = dag.tasks.get(id)!;
    const t = { ...defaults, ...def.options };
    const rule = t.weightRule ?? "downstream";
    let weight = ownWeight.get(id)!;
    if (rule !== "absolute") for (const d of (rule === "upstream" ? ancestors : descendants).get(id)!) weight += ownWeight.get(d)!;
    return {
      taskId: id,
      kind: def.kind ?? "task",
      upstream: [...def.upstream].sort(),
      downstream: downstream.get(id)!.sort(),
      triggerRule: t.triggerRule ?? "all_success",
      retries: t.retries ?? 0,
      retryDelayMs: parseDuration(t.retryDelay ?? "5m", "retryDelay"),
      retryExponentialBackoff: t.retryExponentialBackoff ?? false,
      maxRetryDelayMs: t.maxRetryDelay === undefined ? null : parseDuration(t.maxRetryDelay, "maxRetryDelay"),
      executionTimeoutMs: t.executionTimeout === undefined ? null : parseDuration(t.executionTimeout, "executionTimeout"),
      priorityWeight: Math.min(weight, 2_000_000_000),
      pool: t.pool ?? "default_pool",
      poolSlots: t.poolSlots ?? 1,
      queue: t.queue ?? "default",
      hasCompensate: typeof def.options.compensate === "function",
      description: def.options.description ?? null,
      definedAt: def.definedAt ?? null,
    };
  });

  return {
    dagId: dag.id,
    fileloc,
    description: o.description ?? null,
    schedule,
    timezone,
    startDate: o.startDate === undefined ? null : new Date(o.startDate).toISOString(),
    endDate: o.endDate === undefined ? null : new Date(o.endDate).toISOString(),
    catchup: o.catchup ?? false,
    maxActiveRuns: o.maxActiveRuns ?? 16,
    maxActiveTasks: o.maxActiveTasks ?? 16,
    tags: o.tags ?? [],
    owner: o.owner ?? "baton",
    isPausedUponCreation: o.isPausedUponCreation ?? null,
    params: o.params ?? {},
    tasks,
  };
}

function isInterval(schedule: string): boolean {
  try {
    return parseDuration(schedule) > 0;
  } catch {
    return false;
  }
}

function isCron(schedule: string): boolean {
  try {
    new Cron(schedule, { paused: true });
    return schedule.trim().split(/\s+/).length === 5;
  } catch {
    return false;
  }
}
