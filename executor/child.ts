// A warm task-runner process: imports DAG bundles (cached per version), runs one try at a
// time, writes its log file, and answers with the outcome. It never touches the database.
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";
import { serveRequests } from "../core/childProcess.ts";
import type { Dag, TaskContext, TaskRef } from "../sdk/types.ts";
import { isDag } from "../sdk/dag.ts";
import { SkipError } from "../sdk/errors.ts";
import type { RunTryMessage, TryOutcome } from "./protocol.ts";

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

/** Direct downstream task ids of `taskId`. */
function downstreamOf(dag: Dag, taskId: string): string[] {
  return [...dag.tasks.values()].filter((t) => t.upstream.has(taskId)).map((t) => t.id);
}

/**
 * Airflow's branch and short-circuit semantics: a branch follows the direct downstream tasks
 * it returns and skips the others; a short-circuit returning false(y) skips every task
 * downstream of it, whatever their trigger rules.
 */
function decideSkips(dag: Dag, taskId: string, kind: string, returned: unknown): { output: unknown; skipTasks: string[] } {
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
  return { output: chosen, skipTasks: direct.filter((id) => !chosen.includes(id)) };
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
  } finally {
    current = undefined;
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
  // The outcome is reported only once the log is on disk, so a reader never sees a cut log.
  await new Promise<void>((resolve) => log.end(resolve));
  return result;
}

serveRequests({
  run: (m) => runTry(m.task as RunTryMessage),
  abort: async (m) => {
    current?.abort(new Error(String(m.reason ?? "aborted")));
  },
});
