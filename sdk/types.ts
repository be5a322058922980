import type { Duration, DurationString, DurationUnit } from "../core/durations.ts";

export type { Duration, DurationString, DurationUnit };

export const TRIGGER_RULES = [
  "all_success",
  "all_failed",
  "all_done",
  "all_done_min_one_success",
  "all_skipped",
  "one_success",
  "one_failed",
  "one_done",
  "none_failed",
  "none_failed_min_one_success",
  "none_skipped",
  "always",
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/** What a task knows about itself while it runs. */
export interface TaskContext {
  readonly dagId: string;
  readonly runId: string;
  readonly taskId: string;
  /**
   * This try's number, from 1. The log's "Starting try N of M" counts the same way: the last
   * try a task gets has `tryNumber === maxTries + 1`.
   */
  readonly tryNumber: number;
  /**
   * The task's `retries` (Airflow's `max_tries`, as the API's `max_tries` shows): the tries
   * after the first, not the total. With `retries: 2` it is 2, the log says "of 3", and the
   * third and last try has `tryNumber === 3`. `ctx.tryNumber > ctx.maxTries` is the last try.
   */
  readonly maxTries: number;
  readonly logicalDate: Date | null;
  readonly dataInterval: { start: Date | null; end: Date | null };
  readonly conf: Record<string, unknown>;
  readonly params: Record<string, unknown>;
  /** Fires when the task times out or its run is cancelled. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /**
   * `dag:run:task:map_index`, stable across the retries and clears of this task instance: use it
   * to deduplicate side effects. Once a saga's compensation undid the task, a new attempt that
   * does it again gets a new key (`…:e1`, `…:e2`): that is a new effect. A compensation's key
   * follows its task's.
   */
  readonly idempotencyKey: string;
  /** The output of a direct upstream task, as JSON gave it back (Jsonified: a Date is its ISO string). */
  get<T>(ref: TaskRef<T>): Jsonified<T>;
  /** Marks the task skipped (throws a SkipError). */
  skip(reason?: string): never;
  /**
   * A durable step: its result is recorded when it completes, and a later try of this task
   * instance returns the recorded result instead of running `fn` again. The result must be
   * JSON-serializable, and is returned as JSON reads it, the first time too. `name` is unique in
   * the task: calling it twice in one try (a loop) fails the task. `idempotencyKey` is the task's
   * followed by `:<name>`, stable for this step as the task's is.
   */
  step<T>(name: string, fn: (step: { idempotencyKey: string }) => T | Promise<T>): Promise<Jsonified<Awaited<T>>>;
  /**
   * Airflow's Variables, set with `POST /api/v1/variables` or `baton variables set`, read when
   * called (not cached). The value of a variable whose key looks sensitive (password, secret,
   * token, api_key, …) is replaced by "***" wherever the task logs it.
   */
  readonly variables: TaskVariables;
  /**
   * A connection by id, password included; throws an error with code BATON_CONNECTION_NOT_FOUND
   * when there is none. Its password and sensitive extra values are replaced by "***" wherever
   * the task logs them.
   */
  connection(connectionId: string): Promise<Connection>;
}

export interface TaskVariables {
  /** The variable's value, or `fallback` (default undefined) when it is not set. */
  get(key: string): Promise<string | undefined>;
  get(key: string, fallback: string): Promise<string>;
  /** The variable's value parsed as JSON, or `fallback` when it is not set; throws when it is not JSON. */
  getJson<T = unknown>(key: string): Promise<T | undefined>;
  getJson<T = unknown>(key: string, fallback: T): Promise<T>;
}

/** A connection as a task sees it (Airflow's Connection, camelCase). */
export interface Connection {
  readonly connectionId: string;
  readonly connType: string;
  readonly description: string | null;
  readonly host: string | null;
  readonly login: string | null;
  readonly password: string | null;
  readonly schema: string | null;
  readonly port: number | null;
  /** `extra` parsed from its JSON ({} when unset): Airflow's extra_dejson. */
  readonly extra: Record<string, unknown>;
}

export interface TaskLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export type TaskFn<T> = (ctx: TaskContext) => T | Promise<T>;

/** Options shared by tasks and a DAG's `defaultArgs`. */
export interface TaskDefaults {
  retries?: number;
  retryDelay?: Duration;
  retryExponentialBackoff?: boolean;
  maxRetryDelay?: Duration;
  executionTimeout?: Duration;
  triggerRule?: TriggerRule;
  /** Higher runs first: an integer from -100,000,000 to 100,000,000; summed per weightRule, clamped to ±499,999,999. */
  priorityWeight?: number;
  /** How priorityWeight adds up, as in Airflow: "downstream" (default), "upstream" or "absolute". */
  weightRule?: "downstream" | "upstream" | "absolute";
  pool?: string;
  poolSlots?: number;
  queue?: string;
  /**
   * At most this many instances of the task run at once, across all runs of its DAG (backfills'
   * too): Airflow's max_active_tis_per_dag, to rate-limit a task that calls an external API. An
   * integer from 1; null (the default): no limit, also to undo a limit set in defaultArgs.
   */
  maxActiveTisPerDag?: number | null;
  /** "process": run each try in a fresh process (memory-leaky or native code); default "warm" reuses processes. */
  isolation?: "warm" | "process";
  /** Only once the same task succeeded (or was skipped) in the previous run (Airflow's depends_on_past). */
  dependsOnPast?: boolean;
  /** Like dependsOnPast, and the previous run's direct downstream tasks of this task are done too. */
  waitForDownstream?: boolean;
  /** Run by the worker after a successful try; an error here is logged, never changes the task's state. */
  onSuccess?: (ctx: TaskContext, output: unknown) => unknown;
  /** Run by the worker after the last failed try. */
  onFailure?: (ctx: TaskContext, error: Error) => unknown;
  /** Run by the worker after a failed try that will be retried. */
  onRetry?: (ctx: TaskContext, error: Error) => unknown;
}

/** What a DAG-level callback knows about the run that just ended. */
export interface RunCallbackContext {
  readonly dagId: string;
  readonly runId: string;
  readonly state: "success" | "failed";
  readonly logicalDate: Date | null;
  readonly conf: Record<string, unknown>;
  readonly log: TaskLogger;
}

export interface TaskOptions extends TaskDefaults {
  upstream?: TaskRef<unknown>[];
  /** Undo for this task's side effects, run when the run fails (saga). */
  compensate?: (ctx: TaskContext) => unknown | Promise<unknown>;
  description?: string;
}

/** A handle on a task in the DAG under construction; `T` is its output type. */
/**
 * A value as `JSON.parse(JSON.stringify(value))` gives it back: how task outputs (ctx.get) and step
 * results (ctx.step) reach the code that reads them, the first time too. A Date (anything with
 * toJSON) becomes what toJSON returns, `undefined` and functions become null (at the top or in an
 * array) or are left out (as properties), a Map, Set or RegExp is written as `{}`, a bigint cannot be
 * stored at all (never).
 */
export type Jsonified<T> = unknown extends T
  ? T
  : T extends { toJSON(): infer R }
    ? Jsonified<R>
    : T extends string | number | boolean | null
      ? T
      : T extends bigint
        ? never
        : T extends undefined | void | symbol | ((...args: never[]) => unknown)
          ? null
          : T extends readonly unknown[]
            ? number extends T["length"]
              ? Jsonified<T[number]>[]
              : { -readonly [K in keyof T]: Jsonified<T[K]> }
            : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown> | WeakMap<object, unknown> | WeakSet<object> | RegExp
              ? Record<string, never>
              : T extends object
                ? JsonifiedObject<T>
                : never;

/** Keys JSON.stringify writes: not symbols, not function-valued properties. */
type KeptKey<T, K extends keyof T> = K extends symbol ? never : Exclude<T[K], undefined> extends (...args: never[]) => unknown ? never : K;

/**
 * An object's properties as JSON gives them back: one whose value may be undefined may be missing
 * (JSON.stringify leaves it out), so it is optional, even where it was declared `a: T | undefined`.
 */
type JsonifiedObject<T> = Flat<
  { [K in keyof T as undefined extends T[K] ? never : KeptKey<T, K>]: Jsonified<T[K]> } & {
    [K in keyof T as undefined extends T[K] ? KeptKey<T, K> : never]?: Jsonified<Exclude<T[K], undefined>>;
  }
>;

/** One object type instead of an intersection, so editors show `{ a: …; b?: … }`. */
type Flat<T> = { [K in keyof T]: T[K] };

export interface TaskRef<T> {
  readonly id: string;
  /** Makes `next` run after this task; returns `next` so chains read left to right. */
  then<N extends TaskRef<unknown> | TaskRef<unknown>[]>(next: N): N;
  /** Phantom field carrying the output type for `ctx.get`. */
  readonly __output?: T;
}

export interface DagOptions {
  id: string;
  description?: string;
  schedule?: string | null;
  timezone?: string;
  startDate?: string | Date;
  endDate?: string | Date;
  catchup?: boolean;
  maxActiveRuns?: number;
  maxActiveTasks?: number;
  /** A run still running this long after it started is failed; its unfinished tasks end. */
  dagrunTimeout?: Duration;
  tags?: string[];
  owner?: string;
  isPausedUponCreation?: boolean;
  params?: Record<string, unknown>;
  defaultArgs?: TaskDefaults;
  /** Run by a worker when a run of this DAG succeeds; errors are logged only. */
  onSuccess?: (ctx: RunCallbackContext) => unknown;
  /** Run by a worker when a run of this DAG fails; errors are logged only. */
  onFailure?: (ctx: RunCallbackContext) => unknown;
}

/** What a branch task returns: the direct downstream task(s) to follow; the others are skipped. */
export type BranchChoice = TaskRef<unknown> | string | (TaskRef<unknown> | string)[] | null | undefined;

export interface DagBuilder {
  task<T>(id: string, fn: TaskFn<T>): TaskRef<Awaited<T>>;
  task<T>(id: string, options: TaskOptions, fn: TaskFn<T>): TaskRef<Awaited<T>>;
  /** Airflow's BranchPythonOperator: follow the returned direct downstream task(s), skip the rest. */
  branch(id: string, fn: TaskFn<BranchChoice>): TaskRef<string[]>;
  branch(id: string, options: TaskOptions, fn: TaskFn<BranchChoice>): TaskRef<string[]>;
  /** Airflow's ShortCircuitOperator: when fn returns false(y), every downstream task is skipped. */
  shortCircuit(id: string, fn: TaskFn<unknown>): TaskRef<boolean>;
  shortCircuit(id: string, options: TaskOptions, fn: TaskFn<unknown>): TaskRef<boolean>;
  /**
   * Airflow's sensors: poke until a condition holds; its output is the poke's value (or true).
   * `T` comes from the options: a built-in sensor's output (fileSensor: string[], …) or the
   * `value` a `poke` answers with.
   */
  sensor<T = unknown>(id: string, options: SensorOptions<T>): TaskRef<T>;
  /** Waits, holding no worker slot, until the run receives the named signal; its output is the payload. */
  waitForSignal<T = unknown>(id: string, options: WaitForSignalOptions): TaskRef<T>;
}

export type TaskKind = "task" | "branch" | "short_circuit" | "sensor" | "wait_for_signal";

/** What a poke answers: true / { done: true, value } when the condition holds; false to wait. */
export type PokeResult<T = unknown> = boolean | { done: boolean; value?: T } | null | undefined;

/** A sensor's options; `T` is its output (the `value` its poke answers with). */
export interface SensorOptions<T = unknown> extends TaskOptions {
  poke: (ctx: TaskContext) => PokeResult<T> | Promise<PokeResult<T>>;
  /** Time between pokes (default "60s"). */
  pokeInterval?: Duration;
  /** Counted from the first poke, across reschedules (default "7d"). */
  timeout?: Duration;
  /** "poke" (default) holds its worker slot between pokes; "reschedule" releases it. */
  mode?: "poke" | "reschedule";
  /** On timeout the task is skipped instead of failed. */
  softFail?: boolean;
  /** pokeInterval doubles after each poke (capped by the timeout left). */
  exponentialBackoff?: boolean;
}

export interface WaitForSignalOptions extends Omit<TaskOptions, "onSuccess"> {
  /** The signal's name, as sent to POST …/dagRuns/{run}/signals/{name}. */
  signal: string;
  /** How long to wait (default: forever). */
  timeout?: Duration;
  /** When the timeout fires: fail (default), skip, or succeed with a null payload. */
  onTimeout?: "fail" | "skip" | "succeed";
}

/** Sensor and signal settings, as the DAG holds them. */
export interface SensorSpec {
  poke: SensorOptions["poke"];
  pokeIntervalMs: number;
  timeoutMs: number;
  mode: "poke" | "reschedule";
  softFail: boolean;
  exponentialBackoff: boolean;
}
export interface SignalSpec {
  name: string;
  timeoutMs: number | null;
  onTimeout: "fail" | "skip" | "succeed";
}

/** A task as the DAG holds it; read by the parser and the executor, never by users. */
export interface TaskDefinition {
  readonly id: string;
  readonly kind: TaskKind;
  readonly sensor?: SensorSpec;
  readonly signal?: SignalSpec;
  readonly fn: TaskFn<unknown>;
  readonly options: TaskOptions;
  readonly upstream: Set<string>;
  readonly definedAt?: string;
}

/** A dependency as declared: `from` runs before `to`. */
export interface EdgeDefinition {
  readonly from: string;
  readonly to: string;
  /** "file:line" of the then() call or of the task whose `upstream` names `from`. */
  readonly definedAt?: string;
}

export interface Dag {
  readonly id: string;
  readonly options: DagOptions;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** "file:line" of the dag() call, for error messages. */
  readonly definedAt?: string;
  /** Every dependency in the order it was declared (a DAG from an older SDK copy may lack it): a cycle is reported where it closed. */
  readonly edges?: readonly EdgeDefinition[];
}
