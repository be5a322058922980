import { findSourceMap } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MAX_COMPENSABLE_ID_LENGTH, dagOptionProblem, signalNameProblem, taskOptionProblem } from "../core/dagLimits.ts";
import { parseDuration } from "../core/durations.ts";
import { InvalidDagError } from "./errors.ts";
import {
  TRIGGER_RULES,
  type BranchChoice,
  type Dag,
  type DagBuilder,
  type EdgeDefinition,
  type DagOptions,
  type TaskDefaults,
  type TaskDefinition,
  type TaskFn,
  type SensorOptions,
  type SensorSpec,
  type SignalSpec,
  type TaskKind,
  type TaskOptions,
  type WaitForSignalOptions,
  type TaskRef,
} from "./types.ts";

/** Marks DAG values so the parser finds them among a module's exports across bundle copies. */
export const DAG_BRAND = Symbol.for("baton.dag");
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,250}$/;

export function isDag(value: unknown): value is Dag {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[DAG_BRAND] === true;
}

/** The SDK module's file name (core/sdkModule.ts): a module of SDK code only. */
const SDK_MODULE = /(^|[/\\])baton-sdk-[0-9a-f]{64}\.mjs$/;

/**
 * Where SDK code is, found from a frame of this very function: `module`, this module's file when it
 * holds SDK code only (the SDK module bundles import, or this file run from source), whose frames
 * need no source map; `folder`, the folder of this file's source, where a bundle carrying its own
 * copy of the SDK maps the SDK's frames. Only Baton's own files: a user's path may hold an `sdk` folder.
 */
let sdkCode: { module: string | null; folder: string | null } | undefined;
function locateSdk(): { module: string | null; folder: string | null } {
  const [self] = rawFrames(rawFrames);
  const file = self?.getFileName();
  const line = self?.getLineNumber();
  if (!self || !file || line === null || line === undefined) return { module: null, folder: null };
  const raw = asPath(file);
  const original = originalPosition(file, line, self.getColumnNumber() ?? 1).file;
  const mapped = original !== raw;
  const sdkModule = SDK_MODULE.test(raw);
  // The SDK module without its source map: its folder holds the bundles too, no SDK source.
  return { module: mapped && !sdkModule ? null : raw, folder: mapped || !sdkModule ? path.dirname(original) + path.sep : null };
}

/** A frame's file name as a path (ES modules give file URLs). */
function asPath(file: string): string {
  return file.startsWith("file://") ? fileURLToPath(file) : file;
}

/** The call sites below `above` (a function on the stack: frames from it up are left out). */
function rawFrames(above: (...args: never[]) => unknown): NodeJS.CallSite[] {
  const original = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.prepareStackTrace = (_, frames) => frames;
    // Deep enough to get past the SDK's own frames whatever the user set (even 0).
    Error.stackTraceLimit = 20;
    Error.captureStackTrace(holder, above);
    return Array.isArray(holder.stack) ? holder.stack : [];
  } finally {
    Error.prepareStackTrace = original;
    Error.stackTraceLimit = limit;
  }
}

/** A position in its original source when the module has a source map (bundles do), else as it is; file URLs as paths. */
function originalPosition(file: string, line: number, column: number): { file: string; line: number } {
  const entry = findSourceMap(file)?.findEntry(line - 1, column - 1) as { originalSource?: string; originalLine?: number } | undefined;
  const mapped = entry?.originalSource && entry.originalLine !== undefined ? { file: entry.originalSource, line: entry.originalLine + 1 } : { file, line };
  return { file: asPath(mapped.file), line: mapped.line };
}

/**
 * The first stack frame outside the SDK: where the user called dag() or t.task(). Read from the
 * raw call sites, mapping only that frame: a formatted, source-mapped stack trace per task cost
 * ≈ 0.5 ms, most of the time it took to import a DAG file.
 */
function callSite(): string | undefined {
  // Only the DAG processor reports where things were defined. A task process skips it.
  if ((globalThis as { __batonTaskRunner?: boolean }).__batonTaskRunner) return undefined;
  for (const frame of rawFrames(callSite)) {
    const original = userPosition(frame);
    if (original) return `${original.file}:${original.line}`;
  }
  return undefined;
}

/** A frame's position in the user's source, or undefined for Node's and the SDK's own frames. */
function userPosition(frame: NodeJS.CallSite): { file: string; line: number } | undefined {
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  if (!file || line === null || file.startsWith("node:")) return undefined;
  sdkCode ??= locateSdk();
  if (sdkCode.module !== null && asPath(file) === sdkCode.module) return undefined;
  const original = originalPosition(file, line, frame.getColumnNumber() ?? 1);
  return sdkCode.folder !== null && original.file.startsWith(sdkCode.folder) ? undefined : original;
}

/**
 * The name of a global the DAG processor's child sets while it imports a DAG file
 * (parser/child.ts): each dag() call then reports the DAG it made and the user's frames on the
 * stack (innermost first), so the child can tell a DAG the file made but did not export. A
 * global, because the bundle imports its own copy of the SDK, not the child's.
 */
export const DAG_CREATED_HOOK = "__batonDagCreated";
export type DagCreatedHook = (dag: Dag, callers: { file: string; line: number }[]) => void;

function reportCreated(created: Dag): void {
  const hook = (globalThis as Record<string, unknown>)[DAG_CREATED_HOOK];
  if (typeof hook !== "function") return;
  // Every user frame, mapped: costs a source-map lookup each, once per DAG and only while parsing.
  const callers = rawFrames(reportCreated).flatMap((frame) => userPosition(frame) ?? []);
  (hook as DagCreatedHook)(created, callers);
}

function fail(message: string, code: "BATON_INVALID_DAG" | "BATON_DUPLICATE_TASK_ID" = "BATON_INVALID_DAG"): never {
  throw new InvalidDagError(code, message);
}

function checkDefaults(where: string, o: TaskDefaults): void {
  // retries, priorityWeight, poolSlots, queue, pool, maxActiveTisPerDag: integers and lengths the database holds.
  const problem = taskOptionProblem(o);
  if (problem) fail(`${where}: ${problem}`);
  for (const field of ["retryDelay", "maxRetryDelay", "executionTimeout"] as const) {
    const value = o[field];
    if (value === undefined) continue;
    try {
      // Refuses what the database cannot add to now (over 100 years) too.
      parseDuration(value, field);
    } catch (err) {
      fail(`${where}: ${(err as Error).message}`);
    }
  }
  if (o.triggerRule !== undefined && !(TRIGGER_RULES as readonly string[]).includes(o.triggerRule)) {
    fail(`${where}: triggerRule "${o.triggerRule}" is unknown; use one of ${TRIGGER_RULES.join(", ")}`);
  }
  for (const field of ["onSuccess", "onFailure", "onRetry"] as const) {
    if (o[field] !== undefined && typeof o[field] !== "function") fail(`${where}: ${field} must be a function`);
  }
  for (const field of ["dependsOnPast", "waitForDownstream"] as const) {
    if (o[field] !== undefined && typeof o[field] !== "boolean") fail(`${where}: ${field} must be true or false, got ${JSON.stringify(o[field])}`);
  }
  if (o.isolation !== undefined && !["warm", "process"].includes(o.isolation)) {
    fail(`${where}: isolation must be "warm" or "process", got ${JSON.stringify(o.isolation)}`);
  }
  if (o.weightRule !== undefined && !["downstream", "upstream", "absolute"].includes(o.weightRule)) {
    fail(`${where}: weightRule must be "downstream", "upstream" or "absolute", got ${JSON.stringify(o.weightRule)}`);
  }
}

/**
 * Declares a DAG. `build` runs at once and wires tasks together; the returned value is
 * what the DAG file exports.
 */
export function dag(options: DagOptions, build: (t: DagBuilder) => void): Dag {
  if (typeof options !== "object" || options === null) fail("dag(): options must be an object");
  if (typeof options.id !== "string" || !ID_PATTERN.test(options.id)) {
    fail(`dag(): id must be 1-250 letters, digits, "_", "." or "-", got ${JSON.stringify(options.id)}`);
  }
  if (typeof build !== "function") fail(`dag "${options.id}": the second argument must be a function (t) => { ... }`);
  // owner, description, schedule, timezone, maxActiveRuns, maxActiveTasks: what the dag row holds.
  const problem = dagOptionProblem(options);
  if (problem) fail(`dag "${options.id}": ${problem}`);
  if (options.dagrunTimeout !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(options.dagrunTimeout, "dagrunTimeout");
    } catch (err) {
      fail(`dag "${options.id}": ${(err as Error).message}`);
    }
    if (ms <= 0) fail(`dag "${options.id}": dagrunTimeout must be a positive duration, got ${JSON.stringify(options.dagrunTimeout)}`);
  }
  checkDefaults(`dag "${options.id}" defaultArgs`, options.defaultArgs ?? {});
  for (const field of ["onSuccess", "onFailure"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "function") fail(`dag "${options.id}": ${field} must be a function`);
  }

  const tasks = new Map<string, TaskDefinition>();
  const refs = new Map<string, TaskRef<unknown>>();

  const edges: EdgeDefinition[] = [];
  const addEdge = (from: TaskRef<unknown>, to: TaskRef<unknown>, definedAt: string | undefined) => {
    const target = tasks.get(to?.id);
    if (!target || refs.get(to.id) !== to) fail(`dag "${options.id}": ${JSON.stringify(to?.id)} is not a task of this DAG`);
    if (refs.get(from.id) !== from) fail(`dag "${options.id}": ${JSON.stringify(from?.id)} is not a task of this DAG`);
    target.upstream.add(from.id);
    edges.push({ from: from.id, to: to.id, definedAt });
  };

  const makeRef = (id: string): TaskRef<unknown> => {
    const ref: TaskRef<unknown> = {
      id,
      then(next) {
        // Only a then() can close a cycle (a new task has nothing downstream yet): where, for the import error.
        const at = callSite();
        for (const n of Array.isArray(next) ? next : [next]) addEdge(ref, n, at);
        return next;
      },
    };
    return ref;
  };

  const addTask = (
    kind: TaskKind,
    id: string,
    optionsOrFn: TaskOptions | TaskFn<unknown>,
    maybeFn?: TaskFn<unknown>,
    extra: { sensor?: SensorSpec; signal?: SignalSpec } = {},
  ) => {
    const taskOptions = (typeof optionsOrFn === "function" ? {} : optionsOrFn) ?? {};
    const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn;
    if (typeof id !== "string" || !ID_PATTERN.test(id)) {
      fail(`dag "${options.id}": task id must be 1-250 letters, digits, "_", "." or "-", got ${JSON.stringify(id)}`);
    }
    if (tasks.has(id)) fail(`dag "${options.id}": duplicate task id "${id}"`, "BATON_DUPLICATE_TASK_ID");
    if (typeof fn !== "function") fail(`dag "${options.id}": task "${id}" needs a function to run`);
    if (typeof taskOptions.compensate === "function" && id.length > MAX_COMPENSABLE_ID_LENGTH) {
      fail(
        `dag "${options.id}": task "${id}" has compensate, so its id must be at most ${MAX_COMPENSABLE_ID_LENGTH} characters ` +
          `(its compensation task "<id>__compensate" must fit task ids' 250), got ${id.length}`,
      );
    }
    checkDefaults(`task "${id}"`, taskOptions);
    const definedAt = callSite();
    tasks.set(id, { id, kind, fn, options: taskOptions, upstream: new Set(), definedAt, ...extra });
    const ref = makeRef(id);
    refs.set(id, ref);
    for (const up of taskOptions.upstream ?? []) addEdge(up, ref, definedAt);
    return ref as TaskRef<never>;
  };

  const builder: DagBuilder = {
    task: (id: string, optionsOrFn: TaskOptions | TaskFn<unknown>, maybeFn?: TaskFn<unknown>) => addTask("task", id, optionsOrFn, maybeFn),
    branch: (id: string, optionsOrFn: TaskOptions | TaskFn<BranchChoice>, maybeFn?: TaskFn<BranchChoice>) =>
      addTask("branch", id, optionsOrFn as TaskOptions | TaskFn<unknown>, maybeFn as TaskFn<unknown>),
    shortCircuit: (id: string, optionsOrFn: TaskOptions | TaskFn<unknown>, maybeFn?: TaskFn<unknown>) =>
      addTask("short_circuit", id, optionsOrFn, maybeFn),
    sensor: (id: string, o: SensorOptions) => {
      const where = `sensor "${id}"`;
      if (typeof o !== "object" || o === null || typeof o.poke !== "function") fail(`${where}: options must include poke: async (ctx) => boolean`);
      if (o.mode !== undefined && o.mode !== "poke" && o.mode !== "reschedule") fail(`${where}: mode must be "poke" or "reschedule", got ${JSON.stringify(o.mode)}`);
      for (const flag of ["softFail", "exponentialBackoff"] as const) {
        // "true" (a string) would read as false: say so instead of ignoring it.
        if (o[flag] !== undefined && typeof o[flag] !== "boolean") fail(`${where}: ${flag} must be true or false, got ${JSON.stringify(o[flag])}`);
      }
      const ms = (field: "pokeInterval" | "timeout", fallback: string) => {
        try {
          const value = parseDuration(o[field] ?? fallback, field);
          if (field === "pokeInterval" && value <= 0) throw new RangeError("pokeInterval must be more than 0");
          return value;
        } catch (err) {
          return fail(`${where}: ${(err as Error).message}`);
        }
      };
      const sensor: SensorSpec = {
        poke: o.poke,
        pokeIntervalMs: ms("pokeInterval", "60s"),
        timeoutMs: ms("timeout", "7d"),
        mode: o.mode ?? "poke",
        softFail: o.softFail === true,
        exponentialBackoff: o.exponentialBackoff === true,
      };
      const { poke: _poke, pokeInterval: _i, timeout: _t, mode: _m, softFail: _s, exponentialBackoff: _e, ...taskOptions } = o;
      return addTask("sensor", id, taskOptions, () => undefined, { sensor });
    },
    waitForSignal: (id: string, o: WaitForSignalOptions) => {
      const where = `waitForSignal "${id}"`;
      // The API's rule too (core/dagLimits.ts): every signal a DAG waits for can be sent.
      const signalProblem = signalNameProblem("signal", typeof o === "object" && o !== null ? o.signal : undefined);
      if (signalProblem !== null) fail(`${where}: ${signalProblem}`);
      if (o.onTimeout !== undefined && !["fail", "skip", "succeed"].includes(o.onTimeout)) {
        fail(`${where}: onTimeout must be "fail", "skip" or "succeed", got ${JSON.stringify(o.onTimeout)}`);
      }
      let timeoutMs: number | null = null;
      if (o.timeout !== undefined) {
        try {
          timeoutMs = parseDuration(o.timeout, "timeout");
        } catch (err) {
          fail(`${where}: ${(err as Error).message}`);
        }
      }
      const { signal, timeout: _t, onTimeout, ...taskOptions } = o;
      return addTask("wait_for_signal", id, taskOptions, () => undefined, { signal: { name: signal, timeoutMs, onTimeout: onTimeout ?? "fail" } });
    },
  } as DagBuilder;

  build(builder);
  if (tasks.size === 0) fail(`dag "${options.id}" has no tasks`);
  const created = Object.freeze({ [DAG_BRAND]: true, id: options.id, options, tasks, definedAt: callSite(), edges }) as Dag;
  reportCreated(created);
  return created;
}
