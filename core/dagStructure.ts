import type { TaskKind, TriggerRule } from "../sdk/types.ts";

/**
 * The serialized shape of one DAG version, as stored in dag_version.structure. Produced by
 * the parser from user code; read by the scheduler and workers, which never run that code
 * to make decisions.
 */
export interface SerializedTask {
  taskId: string;
  /** "branch" and "short_circuit" tasks may skip their downstream tasks when they succeed;
   *  "compensate" tasks are created only when a run fails, to undo the task in `compensates`. */
  kind: TaskKind | "compensate";
  compensates?: string | null;
  upstream: string[];
  downstream: string[];
  triggerRule: TriggerRule;
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
  executionTimeoutMs: number | null;
  /** Effective weight after Airflow's weight rule (`downstream`: own + all descendants). */
  priorityWeight: number;
  pool: string;
  poolSlots: number;
  queue: string;
  /**
   * At most this many instances of the task running at once across its DAG's runs (Airflow's
   * max_active_tis_per_dag). Absent: no limit (never written as null, so structures without the
   * option stay as they were). Copied to task_instance.max_active_tis_per_dag when the task
   * instance is created, where claims read it.
   */
  maxActiveTisPerDag?: number;
  hasCompensate: boolean;
  dependsOnPast: boolean;
  isolation: "warm" | "process";
  /** For sensors: how they poke (the poke function itself stays in the bundle). */
  sensor: { mode: "poke" | "reschedule"; pokeIntervalMs: number; timeoutMs: number; softFail: boolean; exponentialBackoff: boolean } | null;
  /** For waitForSignal tasks: the signal they wait for and what their timeout does. */
  signal: { name: string; timeoutMs: number | null; onTimeout: "fail" | "skip" | "succeed" } | null;
  waitForDownstream: boolean;
  /**
   * Whether the task has onRetry / onFailure, so a try the scheduler ended (a reaped zombie, a
   * timed-out signal wait) owes one only if so (scheduler/owedCallbacks.ts).
   * Absent in versions parsed before it was recorded (their code is unchanged, so not parsed again).
   */
  callbacks?: { onRetry: boolean; onFailure: boolean };
  description: string | null;
  definedAt: string | null;
}

export interface SerializedDag {
  dagId: string;
  fileloc: string;
  description: string | null;
  schedule: string | null;
  timezone: string;
  startDate: string | null;
  endDate: string | null;
  catchup: boolean;
  maxActiveRuns: number;
  maxActiveTasks: number;
  /** A running run older than this is failed (Airflow's dagrun_timeout); null: no limit. */
  dagrunTimeoutMs: number | null;
  tags: string[];
  owner: string;
  isPausedUponCreation: boolean | null;
  /** Whether the DAG defines onSuccess / onFailure, so workers only start a callback when there is one. */
  callbacks: { onSuccess: boolean; onFailure: boolean };
  params: Record<string, unknown>;
  /** Topologically sorted: every task comes after its upstream tasks. */
  tasks: SerializedTask[];
}

/** Index over a structure for the hot path: look-ups by task id, leaves. */
export interface DagShape {
  readonly dag: SerializedDag;
  readonly byId: ReadonlyMap<string, SerializedTask>;
  readonly leaves: readonly string[];
  /** Compensation tasks in the order they run (reverse topological order of what they undo). */
  readonly compensations: readonly SerializedTask[];
}

/** When a run (re)started at `startedAt` is failed by its dagrunTimeout (timeoutRuns); null: never. */
export function runTimeoutAt(dag: Pick<SerializedDag, "dagrunTimeoutMs">, startedAt: Date): Date | null {
  return dag.dagrunTimeoutMs == null ? null : new Date(startedAt.getTime() + dag.dagrunTimeoutMs);
}

export function shapeOf(dag: SerializedDag): DagShape {
  const byId = new Map(dag.tasks.map((t) => [t.taskId, t]));
  // Compensation tasks only exist once a run fails; they never decide its outcome.
  const leaves = dag.tasks.filter((t) => t.downstream.length === 0 && t.kind !== "compensate").map((t) => t.taskId);
  const compensations = dag.tasks.filter((t) => t.kind === "compensate");
  return { dag, byId, leaves, compensations };
}

/** Tasks whose outputs a task may read: its direct upstream, and for a compensation the task it undoes. */
export function taskInputs(task: SerializedTask | undefined): string[] {
  if (!task) return [];
  return task.compensates ? [...task.upstream, task.compensates] : task.upstream;
}

/** The synthetic task that undoes `taskId` (saga compensation). */
export function compensationId(taskId: string): string {
  return `${taskId}__compensate`;
}

/**
 * The tasks a branch skips: its direct downstream tasks it did not follow, except those also
 * downstream of a task it followed (Airflow's skip_all_except: a join below both the branch and
 * a chosen task is left to its trigger rule, never skipped by the branch).
 */
export function branchSkips(direct: readonly string[], followed: readonly string[], downstreamOf: (taskId: string) => readonly string[]): string[] {
  const reached = new Set<string>();
  const stack = [...followed];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    stack.push(...downstreamOf(id));
  }
  return direct.filter((id) => !reached.has(id));
}
