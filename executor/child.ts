// A warm task-runner process: imports DAG bundles (cached per version), runs one try at a
// time, writes its log file, and answers with the outcome. It never touches the database.
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";
import { serveRequests } from "../core/childProcess.ts";
import type { Dag, RunCallbackContext, TaskContext, TaskOptions, TaskRef } from "../sdk/types.ts";
import { isDag } from "../sdk/dag.ts";
import { SkipError } from "../sdk/errors.ts";
import { decideSkips } from "./branching.ts";
import type { DagCallbackMessage, RunTryMessage, TryOutcome } from "./protocol.ts";

const bundles = new Map<string, Promise<Record<string, unknown>>>();
let current: AbortController | undefined;

function loadBundle(bundlePath: string): Promise<Record<string, unknown>> {
  let loaded = bundles.get(bundlePath);
  if (!loaded) {
    loaded = import(pathToFileURL(bundlePath).href);
    loaded.catch(() => bundles.delete(bundlePath));
    bundles.set(bundlePath, loaded);
  }
  return loaded;
}

const CALLBACK_TIMEOUT_MS = 60_000;

/** Runs a callback, bounded in time; its failure is logged and never changes the outcome. */
async function runCallback(name: string, call: () => unknown, line: (level: string, args: unknown[]) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(call),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${CALLBACK_TIMEOUT_MS / 1000} s`)), CALLBACK_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    line("ERROR", [`${name} callback failed (the task's state is unchanged): ${(err as Error)?.stack ?? String(err)}`]);
  } finally {
    clearTimeout(timer);
  }
}

/** onSuccess after a success; onRetry or onFailure after a failure, as the retry policy will decide. */
function runTaskCallback(options: TaskOptions, ctx: TaskContext, result: TryOutcome, m: RunTryMessage, line: (level: string, args: unknown[]) => void) {
  if (result.outcome === "success" && options.onSuccess) return runCallback("onSuccess", () => options.onSuccess!(ctx, result.output), line);
  if (result.outcome !== "failed" || !result.error) return;
  const error = Object.assign(new Error(result.error.message), { name: result.error.name, code: result.error.code });
  const willRetry = !result.error.nonRetryable && m.tryNumber <= m.maxTries;
  if (willRetry && options.onRetry) return runCallback("onRetry", () => options.onRetry!(ctx, error), line);
  if (!willRetry && options.onFailure) return runCallback("onFailure", () => options.onFailure!(ctx, error), line);
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

function openLog(logPath: string): Promise<WriteStream> {
  return mkdir(path.dirname(logPath), { recursive: true }).then(
    () =>
      new Promise((resolve, reject) => {
        const stream = createWriteStream(logPath, { flags: "a" });
        stream.once("open", () => resolve(stream));
        stream.once("error", reject);
      }),
  );
}

async function runTry(m: RunTryMessage): Promise<TryOutcome> {
  const log = await openLog(m.logPath);
  const line = (level: string, args: unknown[]) => log.write(`[${new Date().toISOString()}] ${level} - ${format(...args)}\n`);
  // Everything the task prints lands in its try's log file.
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const capture = (chunk: unknown, encoding?: unknown, cb?: unknown) => {
    log.write(chunk as string);
    const callback = typeof encoding === "function" ? encoding : cb;
    if (typeof callback === "function") callback();
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  const controller = new AbortController();
  current = controller;
  let result: TryOutcome;
  let hooks: { options: TaskOptions; ctx: TaskContext } | undefined;
  try {
    line("INFO", [`Starting try ${m.tryNumber} of ${m.maxTries + 1}: ${m.dagId}.${m.taskId} run ${m.runId}`]);
    const module = await loadBundle(m.bundlePath);
    const dag = Object.values(module).find((v): v is Dag => isDag(v) && v.id === m.dagId);
    if (!dag) throw Object.assign(new Error(`DAG "${m.dagId}" is not exported by its bundle`), { nonRetryable: true });
    const task = dag.tasks.get(m.taskId);
    if (!task) throw Object.assign(new Error(`task "${m.taskId}" is not in DAG "${m.dagId}"`), { nonRetryable: true });

    const ctx: TaskContext = {
      dagId: m.dagId,
      runId: m.runId,
      taskId: m.taskId,
      tryNumber: m.tryNumber,
      maxTries: m.maxTries,
      logicalDate: m.logicalDate ? new Date(m.logicalDate) : null,
      dataInterval: { start: m.dataIntervalStart ? new Date(m.dataIntervalStart) : null, end: m.dataIntervalEnd ? new Date(m.dataIntervalEnd) : null },
      conf: m.conf,
      params: { ...m.params, ...m.conf },
      signal: controller.signal,
      idempotencyKey: `${m.dagId}:${m.runId}:${m.taskId}:${m.mapIndex}`,
      log: {
        debug: (...a) => line("DEBUG", a),
        info: (...a) => line("INFO", a),
        warn: (...a) => line("WARNING", a),
        error: (...a) => line("ERROR", a),
      },
      get<T>(ref: TaskRef<T>): T {
        const id = typeof ref === "string" ? ref : ref?.id;
        if (!task.upstream.has(id)) throw new Error(`ctx.get("${id}"): only direct upstream tasks of "${m.taskId}" can be read`);
        return m.upstreamOutputs[id] as T;
      },
      skip(reason?: string): never {
        throw new SkipError(reason);
      },
    };
    hooks = { options: { ...dag.options.defaultArgs, ...task.options }, ctx };
    let output = await task.fn(ctx);
    let skipTasks: string[] | undefined;
    if (task.kind === "branch" || task.kind === "short_circuit") {
      ({ output, skipTasks } = decideSkips(dag, task.id, task.kind, output));
      if (skipTasks.length > 0) line("INFO", [`Skipping downstream tasks: ${skipTasks.join(", ")}`]);
    }
    let normalized: unknown;
    if (output !== undefined) {
      try {
        normalized = JSON.parse(JSON.stringify(output));
      } catch (err) {
        throw Object.assign(new Error(`the task's return value is not JSON-serializable: ${(err as Error).message}`), { nonRetryable: true });
      }
    }
    line("INFO", ["Task succeeded"]);
    result = { outcome: "success", output: normalized, skipTasks };
  } catch (err) {
    const error = errorOf(err);
    if (error.code === "BATON_TASK_SKIPPED") {
      line("INFO", [`Task skipped: ${error.message}`]);
      result = { outcome: "skipped" };
    } else {
      line("ERROR", [`Task failed: ${error.stack ?? error.message}`]);
      result = { outcome: "failed", error };
    }
  }
  try {
    if (hooks) await runTaskCallback(hooks.options, hooks.ctx, result, m, line);
  } finally {
    current = undefined;
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
  // The outcome is reported only once the log is on disk, so a reader never sees a cut log.
  await new Promise<void>((resolve) => log.end(resolve));
  return result;
}

/** A DAG's onSuccess / onFailure for a run that just ended, logged to the run's callback log. */
async function runDagCallback(m: DagCallbackMessage): Promise<void> {
  const log = await openLog(m.logPath);
  const line = (level: string, args: unknown[]) => log.write(`[${new Date().toISOString()}] ${level} - ${format(...args)}\n`);
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
      line("INFO", [`Run ${m.runId} ended ${m.state}: running the DAG's ${m.state === "success" ? "onSuccess" : "onFailure"} callback`]);
      await runCallback(m.state === "success" ? "onSuccess" : "onFailure", () => callback(ctx), line);
    }
  } catch (err) {
    line("ERROR", [`could not run the DAG callback: ${(err as Error)?.stack ?? String(err)}`]);
  }
  await new Promise<void>((resolve) => log.end(resolve));
}

serveRequests({
  run: (m) => runTry(m.task as RunTryMessage),
  dagCallback: (m) => runDagCallback(m.callback as DagCallbackMessage),
  abort: async (m) => {
    current?.abort(new Error(String(m.reason ?? "aborted")));
  },
});
