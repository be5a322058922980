/**
 * Built-in sensors. Each helper returns the options of a sensor, to pass to `t.sensor`:
 *
 *   t.sensor("wait_file", fileSensor({ path: "/data/in/*.csv", minSize: 1, pokeInterval: "30s", timeout: "1h" }))
 *
 * They default to `mode: "reschedule"` (the worker slot is released between pokes); every
 * other sensor option (pokeInterval, timeout, softFail, exponentialBackoff, retries, …)
 * passes through. Options are checked when the DAG file loads, so a mistake is an import
 * error, not a failed run.
 *
 * This file is bundled into DAG files: it imports node built-ins only. mysql2 is loaded at
 * poke time from Baton's own installation (the task process provides a loader), never through
 * a literal import: esbuild would parse all of mysql2 into every DAG bundle (12× slower parses).
 */
import { readdir, stat } from "node:fs/promises";
import nodePath from "node:path";
import { parseDuration, type Duration } from "../core/durations.ts";
import { parseMysqlUrl, redactUrl } from "../core/mysqlUrl.ts";
import { MAX_TIMER_MS, timeoutSignal } from "../core/timers.ts";
import { FailError, InvalidDagError, SkipError } from "./errors.ts";
import type { PokeResult, SensorOptions, TaskContext } from "./types.ts";

// The SQL sensors quote connection URLs as Baton quotes its own database URL.
export { redactUrl };

/** Every option of `t.sensor` except `poke`, which the built-in builds. */
export type SensorSettings = Omit<SensorOptions, "poke">;

/** A value given as is, or computed from the task's context at each poke (dates, conf, …). */
export type FromContext<T> = T | ((ctx: TaskContext) => T);

function resolve<T>(value: FromContext<T>, ctx: TaskContext): T {
  return typeof value === "function" ? (value as (ctx: TaskContext) => T)(ctx) : value;
}

function invalid(sensor: string, message: string): never {
  throw new InvalidDagError("BATON_INVALID_DAG", `${sensor}: ${message}`);
}

function durationMs(sensor: string, value: Duration, field: string): number {
  try {
    return parseDuration(value, field);
  } catch (err) {
    return invalid(sensor, (err as Error).message);
  }
}

function withDefaults<T>(settings: SensorSettings, poke: SensorOptions<T>["poke"]): SensorOptions<T> {
  return { ...settings, mode: settings.mode ?? "reschedule", poke };
}

// ---------------------------------------------------------------------------------------
// Glob matching

const GLOB_CHARS = /[*?[]/;

/** True when a path or a path segment contains a wildcard (`*`, `?`, `[…]`). */
export function hasGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/**
 * The regular expression for one path segment of a glob: `*` matches any run of characters,
 * `?` one character, `[abc]` / `[a-z]` / `[!abc]` one of a set; nothing matches "/". A
 * wildcard does not match a leading "." (hidden files, such as partial uploads) unless the
 * segment itself starts with ".".
 */
export function segmentToRegExp(segment: string): RegExp {
  let source = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "*") {
      while (segment[i + 1] === "*") i++;
      source += "[^/]*";
    } else if (c === "?") {
      source += "[^/]";
    } else if (c === "[") {
      const close = segment.indexOf("]", i + 2);
      if (close < 0) {
        source += "\\[";
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body[0] === "!" || body[0] === "^";
      if (negate) body = body.slice(1);
      source += `[${negate ? "^/" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = close;
    } else {
      source += c.replace(/[.+^${}()|\\]/g, "\\$&");
    }
  }
  const hiddenGuard = segment.startsWith(".") ? "" : "(?!\\.)";
  return new RegExp(`^${hiddenGuard}${source}$`);
}

/**
 * Whether a path matches a glob: segments as in segmentToRegExp, and a `**` segment matches
 * zero or more directories (not hidden ones). Both are split on "/"; compare absolute with
 * absolute or relative with relative.
 */
export function matchGlob(pattern: string, filePath: string): boolean {
  const pat = pattern.split("/");
  const parts = filePath.split("/");
  const memo = new Map<string, boolean>();
  const match = (p: number, s: number): boolean => {
    const key = `${p}:${s}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (p === pat.length) result = s === parts.length;
    else if (pat[p] === "**") {
      result = match(p + 1, s) || (s < parts.length && !parts[s]!.startsWith(".") && match(p, s + 1));
    } else {
      result = s < parts.length && (hasGlob(pat[p]!) ? segmentToRegExp(pat[p]!).test(parts[s]!) : pat[p] === parts[s]) && match(p + 1, s + 1);
    }
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

/**
 * The existing paths a glob matches (absolute, sorted), walking only the directories the
 * pattern can reach: a relative pattern is resolved against the current directory; one ending
 * in "/" yields folders only.
 * Symbolic links to directories are followed by explicit segments and wildcards, not by `**`.
 */
export async function expandGlob(pattern: string, cwd = process.cwd()): Promise<string[]> {
  // resolve() drops a trailing slash, which in a shell or Python's glob asks for folders only.
  if (pattern.length > 1 && pattern.endsWith("/")) {
    const all = await expandGlob(pattern.replace(/\/+$/, "") || "/", cwd);
    const dirs: string[] = [];
    for (const p of all) if (await stat(p).then((i) => i.isDirectory(), () => false)) dirs.push(p);
    return dirs;
  }
  const absolute = nodePath.resolve(cwd, pattern);
  if (!hasGlob(absolute)) {
    try {
      await stat(absolute);
      return [absolute];
    } catch {
      return [];
    }
  }
  const segments = absolute.split("/").filter((s, i) => s !== "" || i === 0);
  const firstGlob = segments.findIndex((s) => hasGlob(s) || s === "**");
  const base = segments.slice(0, firstGlob).join("/") || "/";
  const found = new Set<string>();

  const isDir = async (p: string) => {
    try {
      return (await stat(p)).isDirectory();
    } catch {
      return false;
    }
  };
  const walk = async (dir: string, rest: string[]): Promise<void> => {
    if (rest.length === 0) {
      found.add(dir);
      return;
    }
    const [segment, ...tail] = rest as [string, ...string[]];
    if (segment === "**") {
      await walk(dir, tail);
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (entry.name.startsWith(".")) continue;
        if (entry.isDirectory()) await walk(nodePath.join(dir, entry.name), rest);
        // A trailing ** matches files too (as matchGlob says): "in/**" with minSize waits for a file below in/.
        else if (tail.length === 0) found.add(nodePath.join(dir, entry.name));
      }
      return;
    }
    if (!hasGlob(segment)) {
      const next = nodePath.join(dir, segment);
      if (tail.length === 0 ? await stat(next).then(() => true, () => false) : await isDir(next)) await walk(next, tail);
      return;
    }
    const re = segmentToRegExp(segment);
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!re.test(entry.name)) continue;
      const next = nodePath.join(dir, entry.name);
      if (tail.length === 0) found.add(next);
      else if (entry.isDirectory() || (entry.isSymbolicLink() && (await isDir(next)))) await walk(next, tail);
    }
  };
  if (await isDir(base)) await walk(base, segments.slice(firstGlob));
  return [...found].sort();
}

// ---------------------------------------------------------------------------------------
// fileSensor

export interface FileSensorOptions extends SensorSettings {
  /** A path or a glob (`*`, `?`, `[…]`, `**`); relative paths resolve against the worker's current directory. */
  path: FromContext<string>;
  /** Only regular files of at least this many bytes count (directories then never do). */
  minSize?: number;
}

/** At most this many matched paths are returned as the sensor's output. */
export const FILE_SENSOR_MAX_PATHS = 1000;

/** Waits until a path (or at least one path matching a glob) exists; its output is the matched paths. */
export function fileSensor(options: FileSensorOptions): SensorOptions<string[]> {
  const name = "fileSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { path, minSize, ...settings } = options;
  if (typeof path !== "function" && (typeof path !== "string" || path.length === 0)) invalid(name, `path must be a non-empty string or (ctx) => string, got ${JSON.stringify(path)}`);
  if (minSize !== undefined && (!Number.isInteger(minSize) || minSize < 0)) invalid(name, `minSize must be a non-negative integer (bytes), got ${JSON.stringify(minSize)}`);
  return withDefaults(settings, async (ctx) => {
    const pattern = resolve(path, ctx);
    const matches: string[] = [];
    for (const candidate of await expandGlob(pattern)) {
      const info = await stat(candidate).catch(() => null);
      if (!info) continue;
      if (minSize !== undefined ? info.isFile() && info.size >= minSize : info.isFile() || info.isDirectory()) matches.push(candidate);
    }
    if (matches.length === 0) {
      ctx.log.info(`fileSensor: nothing matches ${pattern}${minSize !== undefined ? ` with at least ${minSize} bytes` : ""}`);
      return false;
    }
    ctx.log.info(`fileSensor: ${matches.length} path(s) match ${pattern}`);
    return { done: true, value: matches.slice(0, FILE_SENSOR_MAX_PATHS) };
  });
}

// ---------------------------------------------------------------------------------------
// httpSensor

/** An httpSensor's output when the expected status (or a predicate's plain `true`) ended it. */
export interface HttpSensorStatus {
  status: number;
}

/** `T`: the `value` a predicate answers with ({ done: true, value }). */
export interface HttpSensorOptions<T = never> extends SensorSettings {
  url: FromContext<string>;
  /** Default "GET". */
  method?: string;
  headers?: Record<string, string>;
  body?: FromContext<string | undefined>;
  /** The status(es) that mean "ready" (default 200); ignored when `predicate` is given. */
  expectedStatus?: number | number[];
  /** Decides from the response instead of its status; may read the body; may return { done: true, value }. */
  predicate?: (response: Response, ctx: TaskContext) => PokeResult<T> | Promise<PokeResult<T>>;
  /** Per-request timeout (default "10s"). */
  requestTimeout?: Duration;
  /** Network errors and per-request timeouts count as "not yet" instead of failing the poke. */
  tolerateErrors?: boolean;
}

/** Waits until a URL answers with an expected status, or until `predicate(response)` holds. Output: { status } or the predicate's value. */
export function httpSensor<T = never>(options: HttpSensorOptions<T>): SensorOptions<HttpSensorStatus | T> {
  const name = "httpSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { url, method = "GET", headers, body, expectedStatus = 200, predicate, requestTimeout = "10s", tolerateErrors = false, ...settings } = options;
  if (typeof url !== "function" && (typeof url !== "string" || !/^https?:\/\//i.test(url))) invalid(name, `url must be an http(s) URL or (ctx) => string, got ${JSON.stringify(url)}`);
  const expected = Array.isArray(expectedStatus) ? expectedStatus : [expectedStatus];
  if (expected.length === 0 || expected.some((s) => !Number.isInteger(s) || s < 100 || s > 599)) invalid(name, `expectedStatus must be HTTP status code(s), got ${JSON.stringify(expectedStatus)}`);
  if (predicate !== undefined && typeof predicate !== "function") invalid(name, "predicate must be a function (response, ctx) => boolean");
  // fetch throws at every poke otherwise, an error tolerateErrors would take for the network's and wait on.
  if (body !== undefined && /^(GET|HEAD)$/i.test(method)) invalid(name, `a ${method.toUpperCase()} request cannot have a body: set method (e.g. "POST") or drop body`);
  const timeoutMs = durationMs(name, requestTimeout, "requestTimeout");
  if (timeoutMs <= 0) invalid(name, "requestTimeout must be more than 0");

  return withDefaults<HttpSensorStatus | T>(settings, async (ctx) => {
    const target = resolve(url, ctx);
    // Not AbortSignal.timeout: it fires at once for more than 2^31−1 ms.
    const timeout = timeoutSignal(timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout.signal]);
    try {
      let response: Response;
      try {
        response = await fetch(target, { method, headers, body: body === undefined ? undefined : resolve(body, ctx), signal, redirect: "follow" });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause?: Error }).cause!.message})` : ""}`;
        if (!tolerateErrors) throw new Error(`httpSensor: ${method} ${target} failed: ${reason}`);
        ctx.log.warn(`httpSensor: ${method} ${target} failed (tolerated): ${reason}`);
        return false;
      }
      try {
        if (predicate) {
          const answer = await predicate(response, ctx);
          ctx.log.info(`httpSensor: ${method} ${target} answered ${response.status}; predicate ${answer === true || (typeof answer === "object" && answer?.done) ? "holds" : "does not hold"}`);
          if (answer === true) return { done: true, value: { status: response.status } };
          return answer;
        }
        ctx.log.info(`httpSensor: ${method} ${target} answered ${response.status} (waiting for ${expected.join(" or ")})`);
        return expected.includes(response.status) ? { done: true, value: { status: response.status } } : false;
      } finally {
        // Frees the connection when nobody read the body.
        await response.body?.cancel().catch(() => undefined);
      }
    } finally {
      timeout.clear();
    }
  });
}

// ---------------------------------------------------------------------------------------
// SQL-backed sensors (MySQL / MariaDB through mysql2, loaded only when they poke)

interface MinimalConnection {
  query(options: { sql: string; timeout?: number; rowsAsArray?: boolean }, values?: unknown): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  destroy(): void;
}

/**
 * mysql2 connection options from a mysql:// (or mariadb://) URL, read as Baton reads
 * BATON_DATABASE_URL (core/mysqlUrl.ts) except that query parameters other than socket are
 * ignored: these URLs are the user's, often shared with other clients (`?ssl=true`,
 * `?charset=utf8mb4`), and sensors read them that way before socket= existed.
 */
export function mysqlOptions(url: string) {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`not a valid mysql:// URL: ${redactUrl(url)}`);
  }
  if (parsed.protocol !== "mysql:" && parsed.protocol !== "mariadb:") throw new Error(`not a mysql:// URL: ${redactUrl(url)}`);
  const { host, port, socketPath, user, password, database } = parseMysqlUrl(
    url,
    (problem) => {
      throw new Error(`the mysql:// URL ${problem}: ${redactUrl(url)}`);
    },
    undefined,
    { unknownParameters: "ignore" },
  );
  return {
    host,
    port,
    ...(socketPath === undefined ? {} : { socketPath }),
    user,
    password,
    ...(database ? { database } : {}),
    timezone: "Z",
    supportBigNumbers: true,
    connectTimeout: 10_000,
    multipleStatements: false,
  };
}

/** mysql2 from the task process's loader (executor/child.ts), or a plain runtime import. */
async function loadMysql(): Promise<typeof import("mysql2/promise")> {
  const loader = (globalThis as { __batonRequire?: (id: string) => unknown }).__batonRequire;
  if (loader) return loader("mysql2/promise") as typeof import("mysql2/promise");
  const specifier = "mysql2/promise";
  return (await import(specifier)) as typeof import("mysql2/promise");
}

/** Opens a connection, runs `use`, always closes it; ctx.signal (timeout, cancel) destroys it. */
async function withConnection<T>(uri: string, ctx: TaskContext, use: (conn: MinimalConnection) => Promise<T>): Promise<T> {
  const options = mysqlOptions(uri);
  const mysql = await loadMysql();
  const conn = (await mysql.createConnection(options)) as unknown as MinimalConnection;
  const onAbort = () => conn.destroy();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await use(conn);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await conn.end().catch(() => conn.destroy());
  }
}

/** Airflow's rule for a SQL sensor's first cell: null, 0, "0", "" and false (and numeric strings equal to 0, as text or bytes) mean "not yet". */
export function isTruthyCell(cell: unknown): boolean {
  // mysql2 gives binary, blob and BIT cells as Buffers, always truthy objects: judge the text the
  // sensor outputs instead, and zero bytes (a BIT column's 0) as 0.
  if (Buffer.isBuffer(cell)) return !cell.every((b) => b === 0) && isTruthyCell(cell.toString("utf8"));
  if (cell === null || cell === undefined || cell === false || cell === "" || cell === 0 || cell === 0n) return false;
  if (typeof cell === "string" && /^\s*[-+]?0*(\.0*)?\s*$/.test(cell) && /0/.test(cell)) return false;
  return true;
}

/**
 * A sqlSensor's output: the first cell as JSON holds it. Numbers, strings (DECIMAL, integers past
 * 2^53, text and binary as UTF-8, dates and times as ISO strings once stored), or a JSON column's value.
 */
export type SqlSensorCell = string | number | boolean | object;

export interface SqlSensorOptions extends SensorSettings {
  /** A mysql:// URL, or the name of an environment variable holding one (read by the worker at each poke). */
  conn: string;
  /** One statement; the sensor holds when its first row's first cell is truthy. */
  sql: FromContext<string>;
  /** Values for the statement's `?` placeholders. */
  params?: FromContext<unknown[]>;
  /** Per-query timeout (default "60s"). */
  queryTimeout?: Duration;
}

/** The connection URL a sensor's `conn` names: the value itself, or the environment variable's value. */
export function connectionUrl(conn: string, env: NodeJS.ProcessEnv = process.env): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(conn)) return conn;
  const value = env[conn];
  if (!value) throw new Error(`sqlSensor: the environment variable ${conn} is not set on this worker (it should hold a mysql:// URL)`);
  return value;
}

/** Waits until a query's first cell is truthy (Airflow's SqlSensor). Output: that cell. The connection is closed after every poke. */
export function sqlSensor(options: SqlSensorOptions): SensorOptions<SqlSensorCell> {
  const name = "sqlSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { conn, sql, params, queryTimeout = "60s", ...settings } = options;
  if (typeof conn !== "string" || !(/^(mysql|mariadb):\/\//i.test(conn) || /^[A-Za-z_][A-Za-z0-9_]*$/.test(conn))) {
    invalid(name, `conn must be a mysql:// URL or the name of an environment variable holding one, got ${JSON.stringify(conn)}`);
  }
  if (typeof sql !== "function" && (typeof sql !== "string" || sql.trim() === "")) invalid(name, "sql must be a non-empty string or (ctx) => string");
  // mysql2 times a query with setTimeout, which fires at once past 2^31−1 ms (≈ 24.8 days):
  // a longer queryTimeout is capped there, as good as none for a sensor's query.
  const timeoutMs = durationMs(name, queryTimeout, "queryTimeout");
  return withDefaults(settings, async (ctx) => {
    const uri = connectionUrl(conn);
    const statement = resolve(sql, ctx);
    const values = params === undefined ? [] : resolve(params, ctx);
    const rows = await withConnection(uri, ctx, async (c) => (await c.query({ sql: statement, timeout: Math.min(timeoutMs, MAX_TIMER_MS), rowsAsArray: true }, values))[0]);
    const first = Array.isArray(rows) && Array.isArray(rows[0]) ? (rows[0] as unknown[])[0] : undefined;
    ctx.log.info(`sqlSensor: first cell ${JSON.stringify(typeof first === "bigint" ? String(first) : first) ?? "(no rows)"} on ${redactUrl(uri)}`);
    if (!isTruthyCell(first)) return false;
    return { done: true, value: (typeof first === "bigint" ? String(first) : Buffer.isBuffer(first) ? first.toString("utf8") : first) as SqlSensorCell };
  });
}

// ---------------------------------------------------------------------------------------
// externalTaskSensor

/** Baton's database when BATON_DATABASE_URL is not set: the same default as the server's. */
export const DEFAULT_BATON_DATABASE_URL = "mysql://root@localhost:3306/baton";

const RUN_STATES = ["queued", "running", "success", "failed"];
const TASK_STATES = ["scheduled", "queued", "running", "success", "failed", "up_for_retry", "up_for_reschedule", "deferred", "skipped", "upstream_failed", "removed"];

export interface ExternalTaskSensorOptions extends SensorSettings {
  externalDagId: string;
  /** A task of that DAG; omitted, the whole run is watched. */
  externalTaskId?: string;
  /** States that satisfy the sensor (default ["success"]). */
  allowedStates?: string[];
  /** States that fail the sensor at once, without retries (default none: keep waiting). */
  failedStates?: string[];
  /** The other run's logical date (default: this run's logical date). */
  logicalDate?: (ctx: TaskContext) => Date;
  /** Or: this run's logical date minus this much (Airflow's execution_delta). */
  executionDelta?: Duration;
  /** Baton's database (default: BATON_DATABASE_URL, which the worker's task processes inherit). */
  databaseUrl?: string;
}

export interface ExternalState {
  dagId: string;
  runId: string;
  logicalDate: string;
  taskId: string | null;
  /** The run's state, or the task's (every map index's, for a mapped task). */
  states: string[];
}

/** Decides an external run or task's states against allowed / failed states: "done", "failed" or "wait". */
export function judgeExternal(states: string[], allowed: readonly string[], failed: readonly string[]): "done" | "failed" | "wait" {
  if (states.length === 0) return "wait";
  if (states.some((s) => failed.includes(s))) return "failed";
  return states.every((s) => allowed.includes(s)) ? "done" : "wait";
}

/**
 * Waits until another DAG's run for the same logical date (or a task of it) reaches one of
 * `allowedStates`; fails fast on `failedStates`. It reads Baton's own database. Output:
 * { dagId, runId, logicalDate, taskId, states }. When several runs share the logical date,
 * the latest one counts.
 */
export function externalTaskSensor(options: ExternalTaskSensorOptions): SensorOptions<ExternalState> {
  const name = "externalTaskSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { externalDagId, externalTaskId, allowedStates = ["success"], failedStates = [], logicalDate, executionDelta, databaseUrl, ...settings } = options;
  if (typeof externalDagId !== "string" || !/^[A-Za-z0-9_.-]{1,250}$/.test(externalDagId)) invalid(name, `externalDagId must be a DAG id, got ${JSON.stringify(externalDagId)}`);
  if (externalTaskId !== undefined && (typeof externalTaskId !== "string" || !/^[A-Za-z0-9_.-]{1,250}$/.test(externalTaskId))) {
    invalid(name, `externalTaskId must be a task id, got ${JSON.stringify(externalTaskId)}`);
  }
  const known = externalTaskId === undefined ? RUN_STATES : TASK_STATES;
  for (const [field, list] of [["allowedStates", allowedStates], ["failedStates", failedStates]] as const) {
    if (!Array.isArray(list) || list.some((s) => !known.includes(s))) {
      invalid(name, `${field} must be a list of ${externalTaskId === undefined ? "run" : "task"} states (${known.join(", ")}), got ${JSON.stringify(list)}`);
    }
  }
  if (allowedStates.length === 0) invalid(name, "allowedStates must not be empty");
  const overlap = allowedStates.filter((s) => failedStates.includes(s));
  if (overlap.length) invalid(name, `${overlap.join(", ")} cannot be both allowed and failed`);
  if (logicalDate !== undefined && typeof logicalDate !== "function") invalid(name, "logicalDate must be a function (ctx) => Date");
  if (logicalDate !== undefined && executionDelta !== undefined) invalid(name, "give logicalDate or executionDelta, not both");
  const deltaMs = executionDelta === undefined ? 0 : durationMs(name, executionDelta, "executionDelta");
  if (databaseUrl !== undefined && (typeof databaseUrl !== "string" || !/^(mysql|mariadb):\/\//i.test(databaseUrl))) invalid(name, "databaseUrl must be a mysql:// URL");

  return withDefaults(settings, async (ctx) => {
    let date: Date;
    if (logicalDate) {
      date = new Date(logicalDate(ctx));
      if (Number.isNaN(date.getTime())) throw new Error(`${name}: logicalDate(ctx) did not return a valid date`);
    } else {
      if (!ctx.logicalDate) throw new FailError(`${name}: run ${ctx.runId} has no logical date; pass logicalDate: (ctx) => Date`);
      date = new Date(ctx.logicalDate.getTime() - deltaMs);
    }
    const uri = databaseUrl || process.env.BATON_DATABASE_URL || DEFAULT_BATON_DATABASE_URL;
    const found = await withConnection(uri, ctx, async (c): Promise<ExternalState | null> => {
      const [runs] = (await c.query(
        { sql: "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? AND logical_date = ? ORDER BY id DESC LIMIT 1" },
        [externalDagId, date],
      )) as [Array<{ id: number; run_id: string; state: string }>, unknown];
      const run = runs[0];
      if (!run) return null;
      let states = [run.state];
      if (externalTaskId !== undefined) {
        const [tis] = (await c.query({ sql: "SELECT state FROM task_instance WHERE dag_run_id = ? AND task_id = ?" }, [run.id, externalTaskId])) as [
          Array<{ state: string }>,
          unknown,
        ];
        states = tis.map((t) => t.state);
      }
      return { dagId: externalDagId, runId: run.run_id, logicalDate: date.toISOString(), taskId: externalTaskId ?? null, states };
    });
    const what = `${externalTaskId === undefined ? "the run" : `task ${externalTaskId}`} of ${externalDagId} for ${date.toISOString()}`;
    if (!found) {
      ctx.log.info(`${name}: ${externalDagId} has no run for ${date.toISOString()} yet`);
      return false;
    }
    const verdict = judgeExternal(found.states, allowedStates, failedStates);
    ctx.log.info(`${name}: ${what} (run ${found.runId}) is ${found.states.join(", ") || "not created yet"}`);
    if (verdict === "failed") {
      const message = `${name}: ${what} (run ${found.runId}) ended ${found.states.join(", ")}, one of failedStates`;
      // As Airflow's ExternalTaskSensor with soft_fail: the sensor is skipped, its downstream follow their trigger rules.
      if (settings.softFail === true) throw new SkipError(message);
      throw new FailError(message);
    }
    return verdict === "done" ? { done: true, value: found } : false;
  });
}

// ---------------------------------------------------------------------------------------
// Time sensors

export interface TimeSensorClock {
  /** The current time; tests pass a fixed one (default: the system clock). */
  now?: () => Date;
}

/** When a timeDeltaSensor fires: the run's data interval end (or logical date) plus delta. */
export function timeDeltaTarget(ctx: Pick<TaskContext, "dataInterval" | "logicalDate">, deltaMs: number): Date | null {
  const anchor = ctx.dataInterval.end ?? ctx.logicalDate;
  return anchor ? new Date(anchor.getTime() + deltaMs) : null;
}

function timeReached(target: Date, now: Date): PokeResult<string> {
  if (now.getTime() >= target.getTime()) return { done: true, value: target.toISOString() };
  return false;
}

/**
 * Waits until the run's data interval end plus `delta` (Airflow's TimeDeltaSensor), e.g. a
 * daily run waits until 02:00 the day after its interval. Output: the target time (ISO).
 * The default timeout is delta + 7 days, so long deltas do not time out first.
 */
export function timeDeltaSensor(options: SensorSettings & TimeSensorClock & { delta: Duration }): SensorOptions<string> {
  const name = "timeDeltaSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { delta, now = () => new Date(), ...settings } = options;
  if (delta === undefined) invalid(name, 'delta is required, e.g. delta: "2h"');
  const deltaMs = durationMs(name, delta, "delta");
  return withDefaults({ timeout: deltaMs + 7 * 86_400_000, ...settings }, async (ctx) => {
    const target = timeDeltaTarget(ctx, deltaMs);
    if (!target) throw new FailError(`${name}: run ${ctx.runId} has neither a data interval nor a logical date`);
    return timeReached(target, now());
  });
}

/**
 * A dateTimeSensor's target as an instant: a Date, or an ISO date-time with an offset or Z.
 * Without one JavaScript reads it in the worker's local time zone (a bare date in UTC), so
 * workers in different zones would wait for different instants; an error message otherwise.
 */
export function targetInstant(value: Date | string): Date | string {
  if (typeof value === "string" && !/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim())) {
    return `targetTime ${JSON.stringify(value)} is not an ISO date-time with an offset or Z (e.g. 2026-06-01T12:00:00Z or 2026-06-01T14:00:00+02:00)`;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? `targetTime ${JSON.stringify(typeof value === "string" ? value : String(value))} is not a valid date` : date;
}

/** Waits until a point in time (Airflow's DateTimeSensor). Output: the target time (ISO). */
export function dateTimeSensor(options: SensorSettings & TimeSensorClock & { targetTime: FromContext<Date | string> }): SensorOptions<string> {
  const name = "dateTimeSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { targetTime, now = () => new Date(), ...settings } = options;
  if (targetTime === undefined) invalid(name, "targetTime is required: a Date, an ISO date-time, or (ctx) => Date");
  if (typeof targetTime !== "function") {
    const checked = targetInstant(targetTime);
    if (typeof checked === "string") invalid(name, checked);
  }
  return withDefaults(settings, async (ctx) => {
    const target = targetInstant(resolve(targetTime, ctx));
    if (typeof target === "string") throw new FailError(`${name}: targetTime(ctx): ${target}`);
    return timeReached(target, now());
  });
}
