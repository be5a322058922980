import type { TryError } from "../store/transitions/finishTries.ts";

/** What the worker sends a child to run one try. Dates travel as ISO strings. */
export interface RunTryMessage {
  tiId: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  maxTries: number;
  /** task_instance.key_epoch: from 1 on, ctx.idempotencyKey and step keys end with `:e<n>` (idempotencyKeyOf). */
  keyEpoch: number;
  logicalDate: string | null;
  dataIntervalStart: string | null;
  dataIntervalEnd: string | null;
  conf: Record<string, unknown>;
  params: Record<string, unknown>;
  upstreamOutputs: Record<string, unknown>;
  /** For a compensation task: the task whose `compensate` function it runs. */
  compensates: string | null;
  /** Durable steps recorded by earlier tries of this task instance (or earlier pokes of this try). */
  steps: Record<string, unknown>;
  /** Cap on the JSON size of the output and of each step's result. */
  maxValueBytes: number;
  /**
   * The worker's Clock minus the wall clock (0 but for a fake clock in tests), taken when it sends
   * the try: sensors measure time against the worker's Clock. An offset, not the Clock's time, so
   * the message's transit (a cold child starting up) does not move the child's time back.
   */
  clockOffsetMs: number;
  /** Sensors: when the first poke happened (ISO; null before any poke of the task instance) and how many pokes were rescheduled. */
  firstPokeAt: string | null;
  pokeCount: number;
  bundlePath: string;
  logPath: string;
  /** What the try's log keeps of its output (BATON_TASK_LOG_MAX_BYTES, executor/tryLog.ts); 0: no limit. */
  maxLogBytes: number;
}

export interface TryOutcome {
  /** reschedule: a reschedule-mode sensor poked without success; deferred: waits for a signal. */
  outcome: "success" | "failed" | "skipped" | "reschedule" | "deferred";
  /** How long until a rescheduled sensor pokes again. */
  rescheduleInMs?: number;
  output?: unknown;
  error?: TryError;
  /** Tasks a successful branch / short-circuit task decided to skip. */
  skipTasks?: string[];
  /** The try's whole log when it stayed short (executor/tryLog.ts); stored in task_log with the outcome. */
  log?: string;
  /** An error went uncaught in the process (executor/child.ts): it must run nothing more. Not part of the try's result. */
  retire?: boolean;
}

/** How long a task's or a DAG's callback may run before it is given up on (logged as failed). */
export const CALLBACK_TIMEOUT_MS = 60_000;

/**
 * A try the worker ended (execution timeout, or its process died) whose own process could not
 * run its onRetry / onFailure: run it in another child with the try's message, `error` being
 * the worker's (BATON_TASK_TIMEOUT, BATON_WORKER_CHILD_EXITED).
 */
export interface EndedTryCallbackMessage {
  task: RunTryMessage;
  error: TryError;
  /**
   * The callback to run, as whoever ended the try decided (a scheduler that reaped it as a
   * zombie: executor/tryCallbacks.ts); absent, the child decides from the try and maxTries.
   */
  callback?: "onRetry" | "onFailure";
  /**
   * Keep the callback's lines in memory and answer them (they go to the try's stored log, served
   * after its file) instead of appending them to the try's file: the try ran on another host.
   */
  inlineLog?: boolean;
}

/** The child's answer to an EndedTryCallbackMessage. */
export interface EndedTryCallbackResult {
  /** false: the callback outlived CALLBACK_TIMEOUT_MS and still runs in that process. */
  finished: boolean;
  /** With inlineLog: what the callback logged (undefined if it outgrew memory and went to the file). */
  log?: string;
  /** An error went uncaught in the process: it must run nothing more. */
  retire?: boolean;
}

/**
 * Child → worker: the try's outcome is decided and this process runs its callbacks; should it
 * die or be killed from now on, the worker must not run them again.
 */
export interface TryCallbacks {
  type: "tryCallbacks";
}

/** A DAG-level callback for a run that ended; run by the worker that recorded the end. */
export interface DagCallbackMessage {
  dagId: string;
  runId: string;
  state: "success" | "failed";
  logicalDate: string | null;
  conf: Record<string, unknown>;
  bundlePath: string;
  logPath: string;
  /** The cap on the log file, as on a try's log (BATON_TASK_LOG_MAX_BYTES; 0: none). */
  maxLogBytes: number;
  /** How long the callback may run (default CALLBACK_TIMEOUT_MS; tests shorten it). */
  timeoutMs?: number;
}

/**
 * Child → worker: a sensor's first poke (of a task instance that had none yet) starts now. The
 * worker stores it at once and answers with a FirstPokeAck; the child pokes only then, so a
 * worker killed before storing it leaves no poke behind (the retry's first poke is the first).
 * The worker also keeps it with the try's outcome or hand-back (whatever ends the try: a failed
 * poke, a timeout, its process dying), so the sensor's timeout counts from it across retries too.
 */
export interface SensorFirstPoke {
  type: "sensorFirstPoke";
  reqId: number;
  /** The worker's Clock (ISO). */
  at: string;
}
/**
 * Worker → child: the first poke was stored, or could not be (stored: false — fenced, or a
 * database error; the worker still holds it for the try's outcome): the child pokes either way.
 */
export interface FirstPokeAck {
  type: "firstPokeAck";
  reqId: number;
  stored: boolean;
}

/** Child → worker: a durable step completed; the worker records it and answers with a StepAck. */
export interface StepPut {
  type: "stepPut";
  reqId: number;
  name: string;
  valueText: string;
}
export interface StepAck {
  type: "stepAck";
  reqId: number;
  status: "recorded" | "fenced" | "exists" | "error";
  value?: unknown;
  message?: string;
}

/** Child → worker: a task reads a variable or a connection (ctx.variables, ctx.connection); answered by a SecretReply. */
export interface SecretGet {
  type: "secretGet";
  reqId: number;
  kind: "variable" | "connection";
  key: string;
}
export interface SecretReply {
  type: "secretReply";
  reqId: number;
  /** Variable: its value (undefined when there is none). Connection: its fields (undefined when there is none). */
  value?: string | TaskConnectionFields;
  /** The lookup failed (database error, undecryptable secret). */
  error?: string;
  /** The failure's stable code when Baton gave it one (BATON_CONFIG_INVALID: sealed with another key). */
  code?: string;
}
/** A connection as a task receives it, password included. */
export interface TaskConnectionFields {
  connectionId: string;
  connType: string;
  description: string | null;
  host: string | null;
  login: string | null;
  password: string | null;
  schema: string | null;
  port: number | null;
  extra: string | null;
}
