// A warm task-runner process: imports DAG bundles (cached per version), runs one try at a
// time, writes its log file, and answers with the outcome. It never touches the database.
import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { StringDecoder } from "node:string_decoder";
import { format } from "node:util";
import { serveRequests } from "../core/childProcess.ts";
import { beforeDeadline } from "../core/concurrency.ts";
import type { Dag, RunCallbackContext, SensorSpec, TaskContext, TaskDefinition, TaskOptions, TaskRef, Jsonified } from "../sdk/types.ts";
import { isDag } from "../sdk/dag.ts";
import { formatDuration } from "../core/durations.ts";
import { FailError, SkipError } from "../sdk/errors.ts";
import { decideSkips } from "./branching.ts";
import { taskSecrets } from "./taskSecrets.ts";
import { SecretMasker } from "../core/sensitive.ts";
import { stepIdempotencyKey } from "../core/stepKey.ts";
import { abortableSleep } from "../core/timers.ts";
import { TryLog } from "./tryLog.ts";
import {
  CALLBACK_TIMEOUT_MS,
  type DagCallbackMessage,
  type EndedTryCallbackMessage,
  type FirstPokeAck,
  type EndedTryCallbackResult,
  type RunTryMessage,
  type SensorFirstPoke,
  type StepAck,
  type StepPut,
  type TryCallbacks,
  type TryOutcome,
} from "./protocol.ts";

// Packages the SDK loads at run time (mysql2 for SQL sensors) come from Baton's installation,
// not from the bundle's folder in the cache.
(globalThis as { __batonRequire?: NodeRequire }).__batonRequire = createRequire(import.meta.url);
// Tells the SDK it runs tasks here, not for the DAG processor: no definition sites to capture.
(globalThis as { __batonTaskRunner?: boolean }).__batonTaskRunner = true;

const bundles = new Map<string, Promise<Record<string, unknown>>>();
let current: AbortController | undefined;
/** The error the worker records for the running try, once its executionTimeout aborted it. */
let timedOut: NonNullable<TryOutcome["error"]> | undefined;
/** Why the running try is no longer its worker's (cancelled, marked, cleared, reaped), once it aborted it: its result is discarded. */
let abandoned: string | undefined;
/** Secrets the current try fetched (ctx.variables, ctx.connection): "***" in its log. */
const masker = new SecretMasker();

function loadBundle(bundlePath: string): Promise<Record<string, unknown>> {
  let loaded = bundles.get(bundlePath);
  if (!loaded) {
    loaded = import(pathToFileURL(bundlePath).href);
    loaded.catch(() => bundles.delete(bundlePath));
    bundles.set(bundlePath, loaded);
  }
  return loaded;
}

/** JSON text of a value, or a non-retryable error when it cannot be stored (not JSON, over the cap). */
function serializeCapped(value: unknown, what: string, capBytes: number): string {
  let text: string;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (err) {
    throw Object.assign(new Error(`${what} is not JSON-serializable: ${(err as Error).message}`), { nonRetryable: true });
  }
  // JSON has no text for a function or a symbol (nor for what a toJSON turns into one).
  if (text === undefined) {
    const kind = typeof value;
    throw Object.assign(new Error(`${what} is ${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}: not JSON-serializable (return JSON data: an object, an array, a string, a number, a boolean or null)`), {
      nonRetryable: true,
    });
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > capBytes) {
    throw Object.assign(
      new Error(`${what} is ${bytes} bytes, over the ${capBytes}-byte cap (BATON_XCOM_MAX_BYTES): keep large data in external storage (files, object storage) and return a reference to it`),
      { nonRetryable: true },
    );
  }
  return text;
}

const stepAcks = new Map<number, (ack: StepAck) => void>();
const firstPokeAcks = new Map<number, (ack: FirstPokeAck) => void>();
let nextStepRequest = 1;
process.on("message", (raw) => {
  const ack = raw as StepAck | FirstPokeAck;
  if (ack?.type === "stepAck") {
    stepAcks.get(ack.reqId)?.(ack);
    stepAcks.delete(ack.reqId);
  } else if (ack?.type === "firstPokeAck") {
    firstPokeAcks.get(ack.reqId)?.(ack);
    firstPokeAcks.delete(ack.reqId);
  }
});

/**
 * ctx.step: a step recorded by an earlier try returns its recorded value; otherwise it runs,
 * and the worker records the result (fenced by this try's claim) before the task goes on.
 */
async function runStep(
  m: RunTryMessage,
  called: Set<string>,
  taskKey: string,
  name: string,
  fn: (step: { idempotencyKey: string }) => unknown,
  line: (level: string, args: unknown[]) => void,
  ended: () => boolean,
): Promise<unknown> {
  // Called by code the task left running (a forEach(async …) it did not wait for): the worker now
  // records steps for the try it runs next, another task's, so this one must not send any.
  const over = () =>
    Object.assign(
      new Error(`ctx.step("${name}"): try ${m.tryNumber} of ${m.dagId}.${m.taskId} (run ${m.runId}) has ended, so its steps cannot be recorded any more (await every ctx.step before the task returns)`),
      { nonRetryable: true },
    );
  if (ended()) throw over();
  if (typeof name !== "string" || name.length === 0 || name.length > 255) {
    throw Object.assign(new Error(`ctx.step(name, fn): name must be a string of 1-255 characters, got ${JSON.stringify(name)}`), { nonRetryable: true });
  }
  if (name.endsWith(" ")) {
    // task_step's key compares with PAD SPACE: "a " would be the step "a" and return its result.
    throw Object.assign(new Error(`ctx.step(name, fn): name must not end with a space, got ${JSON.stringify(name)}`), { nonRetryable: true });
  }
  if (typeof fn !== "function") throw Object.assign(new Error(`ctx.step("${name}", fn): fn must be a function`), { nonRetryable: true });
  if (called.has(name)) {
    // Even with the same function: a loop's closures have one source, and answering each turn
    // with the first turn's recorded result would silently skip the others' work.
    throw Object.assign(
      new Error(`ctx.step("${name}") was already called in this try: step names must be unique in a task (in a loop, name each turn's step, e.g. \`${name}_\${i}\`)`),
      { nonRetryable: true },
    );
  }
  called.add(name);
  if (Object.prototype.hasOwnProperty.call(m.steps, name)) {
    line("INFO", [`Step "${name}": recorded by an earlier try, not run again`]);
    return m.steps[name];
  }
  const value = await fn({ idempotencyKey: stepIdempotencyKey(taskKey, name) });
  const valueText = serializeCapped(value, `the result of step "${name}"`, m.maxValueBytes);
  if (ended()) throw over();
  const ack = await new Promise<StepAck>((resolve) => {
    const reqId = nextStepRequest++;
    stepAcks.set(reqId, resolve);
    const put: StepPut = { type: "stepPut", reqId, name, valueText };
    process.send?.(put);
  });
  if (ack.status === "fenced") throw new Error(`step "${name}" could not be recorded: this try no longer owns the task instance`);
  if (ack.status === "error") throw new Error(`step "${name}" could not be recorded: ${ack.message}`);
  if (ack.status === "exists") {
    // Recorded before, by a try whose steps this one was not given: it ran again, and the
    // recorded result wins (what a retry sees), not the one it just computed.
    recordIn(m.steps, name, ack.value);
    line("WARNING", [`Step "${name}" ran again: an earlier try had recorded it; its recorded result is used`]);
    return ack.value;
  }
  const recorded = JSON.parse(valueText);
  recordIn(m.steps, name, recorded);
  line("INFO", [`Step "${name}" recorded`]);
  return recorded;
}

/**
 * Keeps a step's result for the rest of the try (a poke-mode sensor's later pokes) as an own
 * property: `steps[name] = value` would set the prototype for the step "__proto__", and the next
 * poke would run it again.
 */
function recordIn(steps: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(steps, name, { value, writable: true, enumerable: true, configurable: true });
}

/** Thrown by a reschedule-mode sensor's loop: the try ends without using up a try. */
class RescheduleRequest extends Error {
  constructor(readonly inMs: number) {
    super("reschedule");
  }
}

/**
 * Pokes until the condition holds (returns its value), the timeout passes (counted from the
 * first poke, across reschedules and retries: FailError, or SkipError with softFail), or, in reschedule
 * mode, after one unsuccessful poke (returns when to poke next). A poke that throws fails
 * the try, which is retried per the task's retry policy.
 */
async function runSensor(
  sensor: SensorSpec,
  ctx: TaskContext,
  m: RunTryMessage,
  line: (level: string, args: unknown[]) => void,
  calledSteps: Set<string>,
): Promise<{ value: unknown } | { rescheduleInMs: number }> {
  // Time as the worker's Clock sees it (a fake clock in tests), advancing with real time here.
  const now = () => Date.now() + m.clockOffsetMs;
  const firstPoke = m.firstPokeAt ? new Date(m.firstPokeAt).getTime() : now();
  if (!m.firstPokeAt && process.send) {
    // Told at once, not with the outcome: a try whose process is killed or dies has none. And
    // stored before it happens: a worker killed between this message and its UPDATE would
    // otherwise lose a poke that ran, and the timeout would count from a later one. One round
    // trip per sensor task instance, before its first poke only. An abort (execution timeout)
    // while the worker stores it ends the try here, as it would end a poke's wait.
    const reqId = nextStepRequest++;
    const aborted = () => new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener("abort", () => resolve(), { once: true })));
    await Promise.race([
      new Promise<FirstPokeAck>((resolve) => {
        firstPokeAcks.set(reqId, resolve);
        const told: SensorFirstPoke = { type: "sensorFirstPoke", reqId, at: new Date(firstPoke).toISOString() };
        process.send!(told);
      }),
      aborted(),
    ]);
    if (ctx.signal.aborted) {
      firstPokeAcks.delete(reqId);
      throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(String(ctx.signal.reason));
    }
  }
  for (let pokes = m.pokeCount; ; pokes++) {
    // Each poke calls its steps afresh: a step recorded at an earlier poke returns its result.
    calledSteps.clear();
    const answer = await sensor.poke(ctx);
    if (answer === true) return { value: true };
    if (answer && typeof answer === "object" && answer.done) return { value: answer.value === undefined ? true : answer.value };
    // Airflow takes any truthy answer for done (a falsy one waits, here too); read as "not yet", a JavaScript DAG's `return 1` or
    // `return files` would wait unseen until the timeout. The same code would answer the same way
    // on a retry: failed at once.
    if (answer && !(typeof answer === "object" && "done" in answer)) {
      let shown: string;
      try {
        shown = JSON.stringify(answer)?.slice(0, 200) ?? String(answer);
      } catch {
        shown = String(answer);
      }
      throw new FailError(`the sensor's poke returned ${shown} (${Array.isArray(answer) ? "an array" : typeof answer}): return true or { done: true, value } when the condition holds, false to poke again`);
    }
    const elapsed = now() - firstPoke;
    if (elapsed >= sensor.timeoutMs) {
      const message = `sensor timed out: its condition did not hold within ${formatDuration(sensor.timeoutMs)} of the first poke`;
      if (sensor.softFail) throw new SkipError(message);
      throw Object.assign(new FailError(message), { code: "BATON_SENSOR_TIMEOUT" });
    }
    const interval = Math.min(
      sensor.exponentialBackoff ? sensor.pokeIntervalMs * 2 ** Math.min(pokes, 20) : sensor.pokeIntervalMs,
      Math.max(1, sensor.timeoutMs - elapsed),
    );
    line("INFO", [`Poke ${pokes + 1}: condition not met`]);
    // The worker's transaction dates the next poke from its own clock: now + this delay.
    if (sensor.mode === "reschedule") return { rescheduleInMs: interval };
    await abortableSleep(interval, ctx.signal);
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(String(ctx.signal.reason));
  }
}

/**
 * An exception thrown outside the await chain of a task's code (in a timer, an event handler),
 * or a promise rejection nothing handles. Node would end the process, and the worker would only
 * learn "child process exited (code 1)", the error itself going to its stderr. Instead, what
 * awaits the code running now (guarded: the task's function, or a callback) fails with it, as
 * if it had thrown it, and the process runs nothing more after the request it serves (`tainted`:
 * its state may be broken; the answer says retire, and the worker replaces it).
 */
class Uncaught extends Error {
  constructor(
    readonly kind: "uncaught exception" | "unhandled rejection",
    readonly reason: unknown,
  ) {
    super(kind);
  }
}

/** Rejects what awaits the user code running now; undefined between guarded calls. */
let crash: ((err: Uncaught) => void) | undefined;
/** An error went uncaught in this process: it must not be given another request. */
let tainted = false;

/**
 * A request whose user code runs (a try, a callback). Code it leaves running after it ended (a
 * timer a task did not clear, an interval) keeps it as its async context: what it does then is
 * told apart from what the request served now does, and never charged to it.
 */
interface Scope {
  what: string;
  ended: boolean;
}
const scopes = new AsyncLocalStorage<Scope>();
/** The request this process serves now. */
let active: Scope | undefined;
/** stdout and stderr as the process started with them: a try's capture (captureOutput) does not take what is written there. */
const originalWrite = { out: process.stdout.write, err: process.stderr.write };
const stderrWrite = (text: string) => originalWrite.err.call(process.stderr, text);

function served<T>(what: string, run: () => Promise<T>): Promise<T> {
  const scope: Scope = { what, ended: false };
  active = scope;
  return scopes.run(scope, run).finally(() => {
    scope.ended = true;
    if (active === scope) active = undefined;
  });
}

/** Runs user code so that an error it leaves uncaught (Uncaught) fails it. */
function guarded<T>(run: () => T | Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Cleared as it settles: an error that goes uncaught after must not vanish into it.
    const fail = (err: unknown) => {
      if (crash === fail) crash = undefined;
      reject(err);
    };
    crash = fail;
    Promise.resolve()
      .then(run)
      .then((value) => {
        if (crash === fail) crash = undefined;
        resolve(value);
      }, fail);
  });
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? (reason.stack ?? `${reason.name}: ${reason.message}`) : format(reason);
}

function onUncaught(kind: Uncaught["kind"], reason: unknown): void {
  // The task's code listens too (its own handler, an error reporter's): it handles it, as Node lets it.
  if (process.listenerCount(kind === "uncaught exception" ? "uncaughtException" : "unhandledRejection") > 1) return;
  tainted = true;
  const origin = scopes.getStore();
  if (origin?.ended) {
    // Left running by a request that ended: not the fault of the one served now, which goes on.
    stderrWrite(
      `${kind} in task process ${process.pid}, in code that ${origin.what} left running after it ended ` +
        `(it fails nothing; the process is replaced${active ? ` once ${active.what} ends` : ""}): ${describeReason(reason)}\n`,
    );
    if (!active) process.exit(1);
    return;
  }
  if (crash) return crash(new Uncaught(kind, reason));
  // A try runs, between its guarded parts (its outcome is decided): its log says so.
  if (currentLog) return currentLog.write(`[${new Date().toISOString()}] ERROR - ${kind} in the task's process: ${describeReason(reason)}\n`);
  // Nothing runs: what Node would do.
  stderrWrite(`${kind} in task process ${process.pid}: ${describeReason(reason)}\n`);
  process.exit(1);
}
process.on("uncaughtException", (err) => onUncaught("uncaught exception", err));
process.on("unhandledRejection", (reason) => onUncaught("unhandled rejection", reason));

/**
 * Runs a callback, bounded in time; its failure is logged and never changes the outcome (of the
 * task, or of the run for a DAG's callback: `whose`).
 * Resolves false when the callback was still running at the deadline.
 */
async function runCallback(
  name: string,
  call: () => unknown,
  closing: (level: string, args: unknown[]) => void,
  whose: "task" | "run" = "task",
  timeoutMs = CALLBACK_TIMEOUT_MS,
): Promise<boolean> {
  let settled = false;
  try {
    await beforeDeadline(guarded(call).finally(() => (settled = true)), timeoutMs, `did not finish within ${timeoutMs / 1000} s`);
  } catch (thrown) {
    const err = thrown instanceof Uncaught ? thrown.reason : thrown;
    const how = thrown instanceof Uncaught ? ` (an ${thrown.kind} in its process)` : "";
    closing("ERROR", [`${name} callback failed${how} (the ${whose}'s state is unchanged): ${(err as Error)?.stack ?? String(err)}`]);
  }
  return settled;
}

/**
 * The task callback a try's outcome calls for, if the task has it: onSuccess after a success;
 * onRetry or onFailure after a failure, as the retry policy will decide.
 */
function taskCallback(options: TaskOptions, ctx: TaskContext, result: TryOutcome, m: RunTryMessage): { name: string; call: () => unknown } | undefined {
  if (result.outcome === "success" && options.onSuccess) return { name: "onSuccess", call: () => options.onSuccess!(ctx, result.output) };
  if (result.outcome !== "failed" || !result.error) return undefined;
  const error = Object.assign(new Error(result.error.message), { name: result.error.name, code: result.error.code });
  const willRetry = !result.error.nonRetryable && m.tryNumber <= m.maxTries;
  if (willRetry && options.onRetry) return { name: "onRetry", call: () => options.onRetry!(ctx, error) };
  if (!willRetry && options.onFailure) return { name: "onFailure", call: () => options.onFailure!(ctx, error) };
  return undefined;
}

function errorOf(err: unknown): NonNullable<TryOutcome["error"]> {
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; nonRetryable?: unknown };
    return {
      name: e.name,
      code: typeof e.code === "string" ? e.code : undefined,
      message: e.message,
      stack: e.stack,
      nonRetryable: e.nonRetryable === true,
    };
  }
  return { name: "Error", message: `non-Error thrown: ${format(err)}` };
}

/**
 * A task's code runs from its DAG's bundle in the worker's cache: local modules are found only if
 * the bundler saw their path, i.e. a string literal (or a template literal starting with ./ or
 * ../, which bundles every file it can match). An import() of a path computed at run time is
 * left as is and resolves next to the bundle, where nothing is: say so instead of leaving the
 * user with a path in a cache folder they never wrote.
 */
function explainUnbundledImport(error: NonNullable<TryOutcome["error"]>, bundlePath: string): void {
  if (error.code !== "ERR_MODULE_NOT_FOUND" && error.code !== "MODULE_NOT_FOUND") return;
  if (!bundlePath || !error.message.includes(path.dirname(bundlePath) + path.sep)) return;
  const original = error.message;
  error.message +=
    ` (the task runs from its DAG's bundle in ${path.dirname(bundlePath)}: an import() or require() whose path is computed at run time is` +
    " not bundled with the DAG file; name local modules with a string literal, or a template literal starting with ./ or ../)";
  // The try's log shows the stack: it carries the explanation too.
  if (error.stack?.includes(original)) error.stack = error.stack.replace(original, error.message);
}

/** The task a try runs, as its DAG's bundle defines it (a compensation task runs its original's `compensate`). */
async function findTask(m: RunTryMessage): Promise<{ dag: Dag; task: TaskDefinition }> {
  const module = await loadBundle(m.bundlePath);
  const dag = Object.values(module).find((v): v is Dag => isDag(v) && v.id === m.dagId);
  if (!dag) throw Object.assign(new Error(`DAG "${m.dagId}" is not exported by its bundle`), { nonRetryable: true });
  const original = m.compensates ? dag.tasks.get(m.compensates) : undefined;
  const task = original?.options.compensate
    ? { ...original, id: m.taskId, kind: "task" as const, fn: original.options.compensate, upstream: new Set([original.id]), options: {} }
    : dag.tasks.get(m.taskId);
  if (!task) throw Object.assign(new Error(`task "${m.taskId}" is not in DAG "${m.dagId}"`), { nonRetryable: true });
  return { dag, task };
}

/**
 * ctx.idempotencyKey: one intended effect of the task instance, the same across its tries and
 * plain clears. From its first new saga attempt after a compensation undid it (key_epoch 1+),
 * `:e<n>` follows: that effect is gone, redoing it is a new one (a compensation carries the
 * epoch of the task it undoes). Epoch 0 adds nothing, so keys from before the epoch stay as they were.
 */
function idempotencyKeyOf(m: RunTryMessage): string {
  const key = `${m.dagId}:${m.runId}:${m.taskId}:${m.mapIndex}`;
  return m.keyEpoch > 0 ? `${key}:e${m.keyEpoch}` : key;
}

/** The ctx a try's task function and its callbacks get. */
function taskContext(
  m: RunTryMessage,
  upstream: ReadonlySet<string>,
  signal: AbortSignal,
  step: TaskContext["step"],
  line: (level: string, args: unknown[]) => void,
): TaskContext {
  return {
    dagId: m.dagId,
    runId: m.runId,
    taskId: m.taskId,
    tryNumber: m.tryNumber,
    maxTries: m.maxTries,
    logicalDate: m.logicalDate ? new Date(m.logicalDate) : null,
    dataInterval: { start: m.dataIntervalStart ? new Date(m.dataIntervalStart) : null, end: m.dataIntervalEnd ? new Date(m.dataIntervalEnd) : null },
    conf: m.conf,
    params: { ...m.params, ...m.conf },
    signal,
    idempotencyKey: idempotencyKeyOf(m),
    log: {
      debug: (...a) => line("DEBUG", a),
      info: (...a) => line("INFO", a),
      warn: (...a) => line("WARNING", a),
      error: (...a) => line("ERROR", a),
    },
    get<T>(ref: TaskRef<T>): Jsonified<T> {
      const id = typeof ref === "string" ? ref : ref?.id;
      if (!upstream.has(id)) throw new Error(`ctx.get("${id}"): only direct upstream tasks of "${m.taskId}" can be read`);
      // Outputs reach here parsed from their stored JSON, as a plain object: an upstream that returned
      // nothing has no own key, and its id may be one of Object.prototype's names.
      return (Object.hasOwn(m.upstreamOutputs, id) ? m.upstreamOutputs[id] : undefined) as Jsonified<T>;
    },
    skip(reason?: string): never {
      throw new SkipError(reason);
    },
    step,
    ...taskSecrets(masker),
  };
}

/**
 * Sends everything the process prints to `log`, with the secrets fetched meanwhile masked;
 * returns the function that restores stdout and stderr.
 */
function captureOutput(log: TryLog): () => void {
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  // One decoder per stream: a character split across two writes is joined, not replaced by U+FFFD.
  const decoders = { out: new StringDecoder("utf8"), err: new StringDecoder("utf8") };
  const capture = (stream: "out" | "err", decoder: StringDecoder) => (chunk: unknown, encoding?: unknown, cb?: unknown) => {
    // Printed by code a request that ended left running (an interval a task did not clear): not
    // this try's. It goes where it goes between tries, the worker's output.
    if (scopes.getStore()?.ended) {
      const target = stream === "out" ? process.stdout : process.stderr;
      return (originalWrite[stream] as (...a: unknown[]) => boolean).call(target, chunk, encoding, cb);
    }
    const text = typeof chunk === "string" ? chunk : decoder.write(Buffer.from(chunk as Uint8Array));
    log.write(masker.size === 0 ? text : masker.mask(text));
    const callback = typeof encoding === "function" ? encoding : cb;
    if (typeof callback === "function") callback();
    return true;
  };
  process.stdout.write = capture("out", decoders.out) as typeof process.stdout.write;
  process.stderr.write = capture("err", decoders.err) as typeof process.stderr.write;
  return () => {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  };
}

/** The log of the try running now: saved synchronously if a task ends the process. */
let currentLog: TryLog | undefined;
process.on("exit", () => currentLog?.flushSync());

/**
 * A log's two writers, each writing `[time] LEVEL - message` with the secrets fetched masked: `line`
 * for what the task or callback logs (ctx.log), kept up to the log's cap (BATON_TASK_LOG_MAX_BYTES);
 * `closing` for Baton's lines saying how it ended, kept past the cap.
 */
function logWriters(log: TryLog): { line: (level: string, args: unknown[]) => void; closing: (level: string, args: unknown[]) => void } {
  const text = (level: string, args: unknown[]) => masker.mask(`[${new Date().toISOString()}] ${level} - ${format(...args)}\n`);
  return { line: (level, args) => log.write(text(level, args)), closing: (level, args) => log.writeClosing(text(level, args)) };
}

async function runTry(m: RunTryMessage): Promise<TryOutcome> {
  // A rescheduled sensor's first poke is stored with its outcome; its later pokes go to the file.
  const log = new TryLog(m.logPath, { toFile: m.pokeCount > 0, maxBytes: m.maxLogBytes });
  currentLog = log;
  masker.clear();
  const { line, closing } = logWriters(log);
  // Everything the task prints lands in its try's log file, with the secrets it fetched masked.
  const restoreOutput = captureOutput(log);
  const controller = new AbortController();
  current = controller;
  timedOut = undefined;
  abandoned = undefined;
  let result: TryOutcome;
  let hooks: { options: TaskOptions; ctx: TaskContext } | undefined;
  // The step names this try's code called: a name is unique in a task, and in each poke of a sensor.
  const calledSteps = new Set<string>();
  /** The try has reported, or is about to: its steps can no longer be recorded. */
  let ended = false;
  try {
    result = await guarded(async (): Promise<TryOutcome> => {
      line("INFO", [`Starting try ${m.tryNumber} of ${m.maxTries + 1}: ${m.dagId}.${m.taskId} run ${m.runId}`]);
      const found = await findTask(m);
      const dag = found.dag;
      let task = found.task;
      const step: TaskContext["step"] = (name, fn) => runStep(m, calledSteps, idempotencyKeyOf(m), name, fn, line, () => ended) as never;
      const ctx = taskContext(m, task.upstream, controller.signal, step, line);
      hooks = { options: { ...dag.options.defaultArgs, ...task.options }, ctx };
      if (task.kind === "sensor" && task.sensor) {
        const poked = await runSensor(task.sensor, ctx, m, line, calledSteps);
        if ("rescheduleInMs" in poked) throw new RescheduleRequest(poked.rescheduleInMs);
        task = { ...task, fn: () => poked.value };
      }
      let output = await task.fn(ctx);
      let skipTasks: string[] | undefined;
      if (task.kind === "branch" || task.kind === "short_circuit") {
        ({ output, skipTasks } = decideSkips(dag, task.id, task.kind, output));
        if (skipTasks.length > 0) closing("INFO", [`Skipping downstream tasks: ${skipTasks.join(", ")}`]);
      }
      let normalized: unknown;
      if (output !== undefined) {
        normalized = JSON.parse(serializeCapped(output, "the task's return value", m.maxValueBytes));
      }
      closing("INFO", ["Task succeeded"]);
      return { outcome: "success", output: normalized, skipTasks };
    });
  } catch (thrown) {
    const err = thrown instanceof Uncaught ? thrown.reason : thrown;
    const error = errorOf(err);
    explainUnbundledImport(error, m.bundlePath);
    // The error is stored with the try and shown by the API: no fetched secret in it either.
    error.message = masker.mask(error.message);
    if (error.stack) error.stack = masker.mask(error.stack);
    if (err instanceof RescheduleRequest) {
      closing("INFO", [`Condition not met; the sensor pokes again in ${formatDuration(err.inMs)} (its worker slot is released meanwhile)`]);
      result = { outcome: "reschedule", rescheduleInMs: err.inMs };
    } else if (error.code === "BATON_TASK_SKIPPED") {
      closing("INFO", [`Task skipped: ${error.message}`]);
      result = { outcome: "skipped" };
    } else {
      closing("ERROR", [`Task failed${thrown instanceof Uncaught ? ` (an ${thrown.kind} in its process)` : ""}: ${error.stack ?? error.message}`]);
      result = { outcome: "failed", error };
    }
  }
  // Set by the abort handler meanwhile (TypeScript cannot see that).
  const reached = timedOut as NonNullable<TryOutcome["error"]> | undefined;
  if (reached && result.outcome !== "skipped") {
    // Its executionTimeout was reached: the worker records it failed with BATON_TASK_TIMEOUT,
    // retryable, whatever it did after the abort. Its callback follows that (onRetry or
    // onFailure), not onSuccess for a task that returned, nor onFailure for a FailError.
    if (result.outcome === "failed" && result.error) result.error.nonRetryable = false;
    else {
      closing("ERROR", [`Task failed: ${reached.message} (it ${result.outcome === "success" ? "returned" : "ended"} after ctx.signal was aborted)`]);
      result = { outcome: "failed", error: { ...reached } };
    }
  }
  try {
    const callback = hooks && taskCallback(hooks.options, hooks.ctx, result, m);
    // Set by the abort handler meanwhile. Its result is discarded: its outcome is not what the task
    // instance records (a mark, a cancel), and a reaped try's callback is owed elsewhere.
    const gone = abandoned as string | undefined;
    if (callback && gone) closing("WARNING", [`${callback.name} callback not run: ${gone}`]);
    else if (callback) {
      // This process runs the try's callback: should it die or be killed meanwhile, the worker
      // must not run it again.
      const taken: TryCallbacks = { type: "tryCallbacks" };
      process.send?.(taken);
      await runCallback(callback.name, callback.call, closing);
    }
  } finally {
    current = undefined;
    ended = true;
    restoreOutput();
  }
  // The outcome is reported only once the log is on disk or travels with it, so a reader
  // never sees a cut log.
  const text = await log.end();
  currentLog = undefined;
  if (text !== undefined) result.log = text;
  if (tainted) result.retire = true;
  return result;
}

/**
 * onRetry / onFailure of a try the worker ended whose own process could not run them (killed
 * after its execution timeout, or dead): the try's ctx, its error the worker's, its lines
 * appended to the try's log file. Answers false when the callback outlived CALLBACK_TIMEOUT_MS
 * (still running here: the worker discards this process).
 */
async function runEndedTryCallback(c: EndedTryCallbackMessage): Promise<EndedTryCallbackResult> {
  const m = c.task;
  // inlineLog: in memory for as long as a callback may run (the worker stores it); past
  // SPILL_BYTES it goes to the file on this host like any long log.
  const log = new TryLog(
    m.logPath,
    c.inlineLog ? { spillAfterMs: CALLBACK_TIMEOUT_MS + 60_000, evenIfFileExists: true, maxBytes: m.maxLogBytes } : { toFile: true, maxBytes: m.maxLogBytes },
  );
  currentLog = log;
  masker.clear();
  const { line, closing } = logWriters(log);
  const restoreOutput = captureOutput(log);
  let finished = true;
  try {
    const { dag, task } = await findTask(m);
    const step: TaskContext["step"] = async (name) => {
      throw new Error(`ctx.step("${name}"): the try has ended (${c.error.code}); its callbacks cannot record steps`);
    };
    // Not aborted: the try's signal was, but the callback has its own time (CALLBACK_TIMEOUT_MS).
    const ctx = taskContext(m, task.upstream, new AbortController().signal, step, line);
    const options = { ...dag.options.defaultArgs, ...task.options };
    const error = Object.assign(new Error(c.error.message), { name: c.error.name, code: c.error.code });
    const decided = c.callback && options[c.callback];
    const callback = c.callback
      ? decided && { name: c.callback, call: () => decided(ctx, error) }
      : taskCallback(options, ctx, { outcome: "failed", error: c.error }, m);
    if (callback) {
      closing("INFO", [`Running the ${callback.name} callback (${c.callback ? "a scheduler" : "the worker"} ended the try: ${c.error.code})`]);
      finished = await runCallback(callback.name, callback.call, closing);
    }
  } catch (err) {
    closing("ERROR", [`could not run the task's callback: ${(err as Error)?.stack ?? String(err)}`]);
  } finally {
    restoreOutput();
  }
  const text = await log.end();
  currentLog = undefined;
  return { finished, log: c.inlineLog ? text : undefined, retire: tainted || undefined };
}

/** A DAG's onSuccess / onFailure for a run that just ended, logged to the run's callback log. */
async function runDagCallback(m: DagCallbackMessage): Promise<{ retire?: boolean }> {
  // Capped as a try's log is (BATON_TASK_LOG_MAX_BYTES): a callback logging in a loop filled the
  // logs folder's disk. What the file holds (an earlier end of the same run) counts against it.
  const log = new TryLog(m.logPath, { toFile: true, maxBytes: m.maxLogBytes, kind: "dagCallback" });
  // What the callback prints (console.log, process.stdout.write) goes to its log, as a try's does;
  // no secret of an earlier try is masked in it (a DAG callback's ctx fetches none, so masking is a no-op).
  masker.clear();
  const { line, closing } = logWriters(log);
  const restoreOutput = captureOutput(log);
  let finished = true;
  try {
    const module = await loadBundle(m.bundlePath);
    const dag = Object.values(module).find((v): v is Dag => isDag(v) && v.id === m.dagId);
    const callback = m.state === "success" ? dag?.options.onSuccess : dag?.options.onFailure;
    if (callback) {
      const ctx: RunCallbackContext = {
        dagId: m.dagId,
        runId: m.runId,
        state: m.state,
        logicalDate: m.logicalDate ? new Date(m.logicalDate) : null,
        conf: m.conf,
        log: { debug: (...a) => line("DEBUG", a), info: (...a) => line("INFO", a), warn: (...a) => line("WARNING", a), error: (...a) => line("ERROR", a) },
      };
      closing("INFO", [`Run ${m.runId} ended ${m.state}: running the DAG's ${m.state === "success" ? "onSuccess" : "onFailure"} callback`]);
      finished = await runCallback(m.state === "success" ? "onSuccess" : "onFailure", () => callback(ctx), closing, "run", m.timeoutMs);
    }
  } catch (err) {
    closing("ERROR", [`could not run the DAG callback: ${(err as Error)?.stack ?? String(err)}`]);
  } finally {
    // What code the callback left running prints later is not in its log (captureOutput: its request has ended).
    restoreOutput();
  }
  await log.end();
  // A callback still running past its deadline would go on in this warm process beside the tries
  // it runs next: the worker replaces the process, as after a try's callback that outlived it.
  return { retire: tainted || !finished || undefined };
}

serveRequests({
  // A worker that prestarts its children claims once they answer this.
  ping: async () => "pong",
  run: (m) => {
    const t = m.task as RunTryMessage;
    return served(`try ${t.tryNumber} of ${t.dagId}.${t.taskId} (run ${t.runId})`, () => runTry(t));
  },
  dagCallback: (m) => {
    const c = m.callback as DagCallbackMessage;
    return served(`the ${c.state === "success" ? "onSuccess" : "onFailure"} callback of DAG ${c.dagId} (run ${c.runId})`, () => runDagCallback(c));
  },
  endedTryCallback: (m) => {
    const c = m.callback as EndedTryCallbackMessage;
    return served(`the callback of try ${c.task.tryNumber} of ${c.task.dagId}.${c.task.taskId} (run ${c.task.runId})`, () => runEndedTryCallback(c));
  },
  abort: async (m) => {
    if (m.timeout) timedOut = m.timeout as NonNullable<TryOutcome["error"]>;
    if (m.abandoned) abandoned = String(m.reason);
    // The process may be killed after the grace period: its log must be in the file by then.
    currentLog?.spill();
    current?.abort(new Error(String(m.reason ?? "aborted")));
  },
  // The worker decides when a try ends: see TASK_CHILD in worker.ts.
}, { processGroup: true });
