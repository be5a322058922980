import * as graphlib from "@dagrejs/graphlib";
import { compensationId, type SerializedDag, type SerializedTask } from "../core/dagStructure.ts";
import { MAX_ID_LENGTH, clampPriorityWeight, dagOptionProblem, durationProblem, taskOptionProblem } from "../core/dagLimits.ts";
import { parseDuration } from "../core/durations.ts";
import { parseDagDate, parseTimetable } from "../scheduler/timetable.ts";
import { InvalidDagError } from "../sdk/errors.ts";
import type { Dag, EdgeDefinition, TaskDefaults } from "../sdk/types.ts";

/**
 * Turns a DAG object (from the user's bundle, possibly another copy of the SDK) into the
 * structure stored in dag_version. Throws InvalidDagError for cycles and invalid options.
 */
export function serializeDag(dag: Dag, fileloc: string): SerializedDag {
  const o = dag.options;
  const graph = new graphlib.Graph();
  for (const id of dag.tasks.keys()) graph.setNode(node(id));
  for (const task of dag.tasks.values()) for (const up of task.upstream) graph.setEdge(node(up), node(task.id));
  const order = topologicalOrder(graph)?.map(taskIdOf);
  if (!order) {
    const cycles = findCycles(graph).map((c) => [...c].reverse().concat(c[c.length - 1]!).map(taskIdOf).join(" → "));
    throw new InvalidDagError("BATON_DAG_CYCLE", `dag "${dag.id}" has a cycle: ${cycles.join("; ")}`, cycleClosedBy(dag)?.definedAt);
  }

  // Checked again here, not only by dag(): the DAG may come from another copy of the SDK, and
  // what does not fit its column must be an import error, not a failing INSERT later.
  const dagProblem = dagOptionProblem(o);
  if (dagProblem) throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": ${dagProblem}`);
  for (const [where, options] of [["defaultArgs", o.defaultArgs ?? {}] as const, ...[...dag.tasks.values()].map((t) => [`task "${t.id}"`, t.options] as const)]) {
    const problem = taskOptionProblem(options);
    if (problem) throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}" ${where}: ${problem}`);
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
    // The scheduler's own reader, so whatever is accepted here can be scheduled.
    try {
      parseTimetable(schedule, timezone);
    } catch (err) {
      throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": ${(err as Error).message}`);
    }
  }
  let startDate: Date | null = null;
  let endDate: Date | null = null;
  try {
    // A date without an offset ("2026-01-01") is read in the DAG's time zone, as in Airflow.
    if (o.startDate !== undefined && o.startDate !== null) startDate = parseDagDate(o.startDate, timezone, "startDate");
    if (o.endDate !== undefined && o.endDate !== null) endDate = parseDagDate(o.endDate, timezone, "endDate");
  } catch (err) {
    throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": ${(err as Error).message}`);
  }
  if (schedule !== null && startDate === null) {
    throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": startDate is required with schedule "${schedule}" (e.g. startDate: "2026-01-01")`);
  }
  if (startDate && endDate && startDate.getTime() > endDate.getTime()) {
    throw new InvalidDagError(
      "BATON_INVALID_DAG",
      `dag "${dag.id}": startDate ${JSON.stringify(o.startDate)} is after endDate ${JSON.stringify(o.endDate)}`,
    );
  }

  const downstream = new Map<string, string[]>(order.map((id) => [id, []]));
  for (const task of dag.tasks.values()) for (const up of task.upstream) downstream.get(up)!.push(task.id);

  const defaults: TaskDefaults = o.defaultArgs ?? {};
  const ownWeight = order.map((id) => dag.tasks.get(id)!.options.priorityWeight ?? defaults.priorityWeight ?? 1);
  const position = new Map(order.map((id, i) => [id, i]));
  // Airflow's weight rules: "downstream" (default) weighs a task plus all its descendants,
  // "upstream" plus all its ancestors, "absolute" only itself. Each task's descendants (or
  // ancestors) are a bit set over `order`, made only for a task that has any: with a Set of ids per
  // task, a chain held n²/2 entries (a 10,000-task chain took 1.6 GB; now 12.5 MB).
  const words = Math.ceil(order.length / 32);
  const reach = (ids: string[], next: (id: string) => Iterable<string>) => {
    const sets = new Map<string, Uint32Array>();
    for (const id of ids) {
      let set: Uint32Array | undefined;
      for (const n of next(id)) {
        set ??= new Uint32Array(words);
        const at = position.get(n)!;
        set[at >>> 5]! |= 1 << (at & 31);
        const beyond = sets.get(n);
        if (beyond) for (let w = 0; w < words; w++) set[w]! |= beyond[w]!;
      }
      if (set) sets.set(id, set);
    }
    return sets;
  };
  const weightOf = (set: Uint32Array | undefined) => {
    let sum = 0;
    if (set) {
      for (let w = 0; w < words; w++) {
        const bits = set[w]!;
        if (bits === 0) continue;
        for (let b = 0; b < 32; b++) if ((bits >>> b) & 1) sum += ownWeight[(w << 5) + b]!;
      }
    }
    return sum;
  };
  const descendants = reach([...order].reverse(), (id) => downstream.get(id)!);
  const rules = new Set(order.map((id) => dag.tasks.get(id)!.options.weightRule ?? defaults.weightRule ?? "downstream"));
  const ancestors = rules.has("upstream") ? reach(order, (id) => dag.tasks.get(id)!.upstream) : new Map<string, Uint32Array>();

  const tasks: SerializedTask[] = order.map((id, i) => {
    const def = dag.tasks.get(id)!;
    const t = { ...defaults, ...def.options };
    const rule = t.weightRule ?? "downstream";
    let weight = ownWeight[i]!;
    if (rule !== "absolute") weight += weightOf((rule === "upstream" ? ancestors : descendants).get(id));
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
      // A sum over many tasks: clamped into the column's range (as Airflow clamps to its INT).
      priorityWeight: clampPriorityWeight(weight),
      pool: t.pool ?? "default_pool",
      poolSlots: t.poolSlots ?? 1,
      queue: t.queue ?? "default",
      ...(t.maxActiveTisPerDag != null ? { maxActiveTisPerDag: t.maxActiveTisPerDag } : {}),
      hasCompensate: typeof def.options.compensate === "function",
      // waitForDownstream implies dependsOnPast, as in Airflow.
      dependsOnPast: t.dependsOnPast === true || t.waitForDownstream === true,
      waitForDownstream: t.waitForDownstream === true,
      isolation: t.isolation ?? "warm",
      sensor: def.sensor
        ? { mode: def.sensor.mode, pokeIntervalMs: def.sensor.pokeIntervalMs, timeoutMs: def.sensor.timeoutMs, softFail: def.sensor.softFail, exponentialBackoff: def.sensor.exponentialBackoff }
        : null,
      signal: def.signal ? { ...def.signal } : null,
      callbacks: { onRetry: typeof t.onRetry === "function", onFailure: typeof t.onFailure === "function" },
      description: def.options.description ?? null,
      definedAt: def.definedAt ?? null,
    };
  });

  // Saga: one compensation task per task with `compensate`, chained in reverse topological order
  // (the last task to run is undone first). Each runs with all_done, so a compensation that
  // fails does not stop the ones after it; created only when a run fails (see finishRun).
  const compensable = tasks.filter((t) => t.hasCompensate).reverse();
  compensable.forEach((t, i) => {
    const id = compensationId(t.taskId);
    if (id.length > MAX_ID_LENGTH) {
      throw new InvalidDagError(
        "BATON_INVALID_DAG",
        `dag "${dag.id}": task "${t.taskId}" has compensate, so its id must be at most ${MAX_ID_LENGTH - (id.length - t.taskId.length)} characters (its compensation task "${id}" would be longer than ${MAX_ID_LENGTH})`,
      );
    }
    if (dag.tasks.has(id)) throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": task id "${id}" is reserved for the compensation of "${t.taskId}"`);
    tasks.push({
      ...t,
      taskId: id,
      kind: "compensate",
      compensates: t.taskId,
      upstream: i > 0 ? [compensationId(compensable[i - 1]!.taskId)] : [],
      downstream: i < compensable.length - 1 ? [compensationId(compensable[i + 1]!.taskId)] : [],
      triggerRule: "all_done",
      hasCompensate: false,
      // It runs the original's compensate with the DAG's defaultArgs only (executor/child.ts findTask).
      callbacks: { onRetry: typeof defaults.onRetry === "function", onFailure: typeof defaults.onFailure === "function" },
      dependsOnPast: false,
      waitForDownstream: false,
      sensor: null,
      signal: null,
      executionTimeoutMs: t.executionTimeoutMs,
      description: `undoes ${t.taskId}`,
    });
  });

  // Every duration is added to now into a DATETIME somewhere. Those parsed here went through
  // parseDuration, which bounds them; sensors' and signals' come in milliseconds from the SDK
  // that built the DAG, which may be another copy than this one.
  const tooLong = tasks
    .map((t) => {
      const problem =
        durationProblem("pokeInterval", t.sensor?.pokeIntervalMs) ?? durationProblem("timeout", t.sensor?.timeoutMs) ?? durationProblem("timeout", t.signal?.timeoutMs);
      return problem && `task "${t.taskId}": ${problem}`;
    })
    .find((p) => p);
  if (tooLong) throw new InvalidDagError("BATON_INVALID_DAG", `dag "${dag.id}": ${tooLong}`);

  return {
    dagId: dag.id,
    fileloc,
    description: o.description ?? null,
    schedule,
    timezone,
    startDate: startDate ? startDate.toISOString() : null,
    endDate: endDate ? endDate.toISOString() : null,
    catchup: o.catchup ?? false,
    maxActiveRuns: o.maxActiveRuns ?? 16,
    maxActiveTasks: o.maxActiveTasks ?? 16,
    dagrunTimeoutMs: o.dagrunTimeout === undefined ? null : parseDuration(o.dagrunTimeout, "dagrunTimeout"),
    tags: o.tags ?? [],
    owner: o.owner ?? "baton",
    isPausedUponCreation: o.isPausedUponCreation ?? null,
    callbacks: { onSuccess: typeof o.onSuccess === "function", onFailure: typeof o.onFailure === "function" },
    params: o.params ?? {},
    tasks,
  };
}

/**
 * A task id as a graphlib node name. graphlib keeps nodes in plain objects and asks `id in nodes`:
 * a task named "constructor" or "toString" was taken for a node it already had (the DAG failed as
 * a cycle), and one named "__proto__" wrote to Object.prototype, breaking every file the parser
 * child loaded after it. Each id but an array index gets a prefix no task id has; an array index
 * ("1", "20") is never a prototype's name and keeps its place in graphlib's order (integer keys
 * first, ascending), so the order of every task, and each version's hash, stay as they were.
 */
const NODE_PREFIX = "\u0002";
const ARRAY_INDEX = /^(0|[1-9][0-9]{0,9})$/;
function node(taskId: string): string {
  return ARRAY_INDEX.test(taskId) && Number(taskId) < 2 ** 32 - 1 ? taskId : NODE_PREFIX + taskId;
}
function taskIdOf(nodeName: string): string {
  return nodeName.startsWith(NODE_PREFIX) ? nodeName.slice(NODE_PREFIX.length) : nodeName;
}

/**
 * graphlib's topsort, in the same order (a version's hash covers its tasks' order), without its
 * recursion: that went one call deep per task of a chain, and a chain of a few thousand tasks
 * overflowed the stack ("Maximum call stack size exceeded" as the DAG's import error). Depth-first
 * from each sink in graphlib's node order, visiting predecessors in its order; each task after its
 * upstream tasks. Null when the graph has a cycle.
 */
export function topologicalOrder(graph: graphlib.Graph): string[] | null {
  const order: string[] = [];
  const done = new Set<string>();
  const onPath = new Set<string>();
  for (const sink of graph.sinks()) {
    if (done.has(sink)) continue;
    const path: { node: string; preds: string[]; next: number }[] = [{ node: sink, preds: graph.predecessors(sink) ?? [], next: 0 }];
    onPath.add(sink);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      if (top.next < top.preds.length) {
        const pred = top.preds[top.next++]!;
        if (onPath.has(pred)) return null;
        if (done.has(pred)) continue;
        onPath.add(pred);
        path.push({ node: pred, preds: graph.predecessors(pred) ?? [], next: 0 });
      } else {
        path.pop();
        onPath.delete(top.node);
        done.add(top.node);
        order.push(top.node);
      }
    }
  }
  // A cycle with no sink downstream of it is reached from no sink.
  return order.length === graph.nodeCount() ? order : null;
}

/**
 * graphlib's findCycles (Tarjan's strongly connected components of more than one task, or of one
 * with an edge to itself), in the same order and each component in the same order, without its
 * recursion: that went one call deep per task of a cycle, and a chain of a few thousand tasks
 * closed into a loop gave "Maximum call stack size exceeded" as the import error, not the cycle.
 */
export function findCycles(graph: graphlib.Graph): string[][] {
  let next = 0;
  const stack: string[] = [];
  const seen = new Map<string, { index: number; lowlink: number; onStack: boolean }>();
  const components: string[][] = [];
  const visit = (v: string) => {
    seen.set(v, { index: next, lowlink: next, onStack: true });
    next++;
    stack.push(v);
    return { node: v, successors: graph.successors(v) ?? [], at: 0 };
  };
  for (const root of graph.nodes()) {
    if (seen.has(root)) continue;
    const path = [visit(root)];
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const entry = seen.get(top.node)!;
      if (top.at < top.successors.length) {
        const w = top.successors[top.at++]!;
        const other = seen.get(w);
        if (!other) path.push(visit(w));
        else if (other.onStack) entry.lowlink = Math.min(entry.lowlink, other.index);
        continue;
      }
      path.pop();
      if (path.length > 0) {
        const parent = seen.get(path[path.length - 1]!.node)!;
        parent.lowlink = Math.min(parent.lowlink, entry.lowlink);
      }
      if (entry.lowlink === entry.index) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          seen.get(w)!.onStack = false;
          component.push(w);
        } while (w !== top.node);
        components.push(component);
      }
    }
  }
  return components.filter((c) => c.length > 1 || graph.hasEdge(c[0]!, c[0]!));
}

/**
 * The edge whose declaration first made the DAG cyclic: the last of the shortest cyclic prefix of
 * its edges in declaration order (a prefix of an acyclic prefix is acyclic, so a binary search
 * finds it in log(edges) graph checks). Undefined when the DAG does not list its edges.
 */
export function cycleClosedBy(dag: Dag): EdgeDefinition | undefined {
  const edges = dag.edges;
  if (!edges) return undefined;
  // Kahn's algorithm over the first n edges, on plain maps: a graphlib graph built for each of the
  // log(edges) checks took 5 s in all for a 20,000-task chain closed into a loop.
  const cyclic = (n: number) => {
    const targets = new Map<string, string[]>();
    const indegree = new Map<string, number>();
    for (const { from, to } of edges.slice(0, n)) {
      if (!targets.has(from)) targets.set(from, []);
      targets.get(from)!.push(to);
      if (!indegree.has(from)) indegree.set(from, 0);
      indegree.set(to, (indegree.get(to) ?? 0) + 1);
    }
    const ready = [...indegree].filter(([, d]) => d === 0).map(([id]) => id);
    let sorted = 0;
    while (ready.length > 0) {
      sorted++;
      for (const to of targets.get(ready.pop()!) ?? []) {
        const left = indegree.get(to)! - 1;
        indegree.set(to, left);
        if (left === 0) ready.push(to);
      }
    }
    return sorted < indegree.size;
  };
  if (!cyclic(edges.length)) return undefined;
  let [acyclic, isCyclic] = [0, edges.length];
  while (isCyclic - acyclic > 1) {
    const mid = Math.floor((acyclic + isCyclic) / 2);
    if (cyclic(mid)) isCyclic = mid;
    else acyclic = mid;
  }
  return edges[isCyclic - 1];
}
