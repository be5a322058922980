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
import { readFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import nodePath from "node:path";
import { CONNECTION_ID_RULE, isConnectionId } from "../core/dagLimits.ts";
import { parseDuration, type Duration } from "../core/durations.ts";
import { DEFAULT_PORT, localSocket, meansLocalSocket, parseMysqlUrl, redactUrl, type SocketLookup } from "../core/mysqlUrl.ts";
import { MAX_TIMER_MS, timeoutSignal } from "../core/timers.ts";
import { FailError, InvalidDagError, SkipError } from "./errors.ts";
import type { Connection, PokeResult, SensorOptions, TaskContext } from "./types.ts";

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
// Stored connections (Airflow's conn_id), read at poke time through ctx.connection

function checkConnectionId(sensor: string, field: string, value: unknown): void {
  if (!isConnectionId(value)) invalid(sensor, `${field} must be a connection id (${CONNECTION_ID_RULE}, as the API creates them), got ${JSON.stringify(value)}`);
}

/**
 * The connection a sensor names, read as ctx.connection reads it (decrypted by the worker, its
 * password and sensitive extras masked in the try's log). Its errors are the poke's, named after
 * the sensor and keeping their code: an unknown id (BATON_CONNECTION_NOT_FOUND) fails the try,
 * and retries apply, as an exception in an Airflow sensor's poke.
 */
async function sensorConnection(sensor: string, ctx: TaskContext, connectionId: string): Promise<Connection> {
  try {
    return await ctx.connection(connectionId);
  } catch (err) {
    if (err instanceof Error) err.message = `${sensor}: ${err.message}`;
    throw err;
  }
}

/** A connection that cannot serve the sensor: retrying will not help until someone edits it. */
function unusable(sensor: string, connection: Connection, problem: string): never {
  throw new FailError(`${sensor}: connection "${connection.connectionId}"${problem}`);
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

/** Options every httpSensor takes, whichever way it names its target. */
export interface HttpSensorCommonOptions<T = never> extends SensorSettings {
  /** Default "GET". */
  method?: string;
  /** Sent with every request; over a connection's default headers and Basic auth, name by name (any case). */
  headers?: Record<string, string>;
  body?: FromContext<string | undefined>;
  /** The status(es) that mean "ready" (default 200), error statuses too (404 to wait for a resource to go); ignored when `predicate` is given. */
  expectedStatus?: number | number[];
  /**
   * The error statuses (400..599) that mean "not yet" (default 404, Airflow's response_error_codes_allowlist;
   * [] for none): any other error status not in `expectedStatus` fails the poke (the task's retries apply).
   * Statuses under 400 not expected always mean "not yet". Not with `predicate`, which decides from every response.
   */
  waitOnStatus?: number | number[];
  /** Decides from the response, whatever its status, instead of `expectedStatus` / `waitOnStatus`; may read the body; may return { done: true, value }. */
  predicate?: (response: Response, ctx: TaskContext) => PokeResult<T> | Promise<PokeResult<T>>;
  /** Per-request timeout (default "10s"). */
  requestTimeout?: Duration;
  /** Network errors, per-request timeouts and error statuses (any not expected) count as "not yet", with a warning, instead of failing the poke. */
  tolerateErrors?: boolean;
}

/**
 * `T`: the `value` a predicate answers with ({ done: true, value }). The target is either `url`,
 * or a stored connection (`httpConnId`, Airflow's http_conn_id) and an `endpoint` joined to its base URL.
 */
export type HttpSensorOptions<T = never> = HttpSensorCommonOptions<T> &
  (
    | { url: FromContext<string>; httpConnId?: undefined; endpoint?: undefined }
    | {
        /** A connection's id: its schema (http or https, default http), host and port make the base URL; login and password Basic auth; extra default headers. */
        httpConnId: string;
        /** The path joined to the connection's base URL, as Airflow's HttpSensor joins it (default ""). */
        endpoint?: FromContext<string>;
        url?: undefined;
      }
  );

/**
 * Joins an endpoint to a base URL as Airflow's HttpHook does: a "/" between them when neither
 * side has one, else the two as they are ("http://h/" + "/x" keeps both slashes, as Airflow does).
 */
export function joinEndpoint(base: string, endpoint: string): string {
  if (base && !base.endsWith("/") && endpoint && !endpoint.startsWith("/")) return `${base}/${endpoint}`;
  return base + endpoint;
}

/**
 * A connection's URL, or its host, as messages show it: redactUrl's (password and query values
 * masked); a host without a scheme ("user:token@api") is read as an http URL's authority.
 */
function shownHttp(urlOrHost: string): string {
  if (urlOrHost.includes("://")) return redactHttpUrl(urlOrHost);
  const shown = redactHttpUrl(`http://${urlOrHost}`);
  return shown.startsWith("http://") ? shown.slice("http://".length) : shown;
}

/**
 * redactUrl, and a user name without a password masked too: in an http URL that is often the token
 * itself (https://TOKEN@host).
 */
function redactHttpUrl(url: string): string {
  const shown = redactUrl(url);
  return shown.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^:/?#@]+)@/i, "$1***@");
}

/** An Authorization header's value for HTTP Basic auth. */
function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}

/**
 * A URL without the credentials it holds (user:password@), and them as a Basic Authorization value:
 * fetch refuses a URL with credentials before any request, where Airflow's requests session sends them
 * as Basic auth. A URL that does not parse is returned as it is (fetch then says why, redacted).
 */
function credentialsOut(url: string): { url: string; authorization?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  if (parsed.username === "" && parsed.password === "") return { url };
  const decoded = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const authorization = basicAuthorization(decoded(parsed.username), decoded(parsed.password));
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.toString(), authorization };
}

/** Extra keys Airflow's HttpHook reads as settings of its requests session, never sent as headers. */
const HTTP_SESSION_EXTRAS = new Set(["headers", "timeout", "allow_redirects", "auth_type", "auth_kwargs", "proxies", "proxy", "stream", "verify", "verify_ssl", "cert", "max_redirects", "trust_env"]);

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerEntries(sensor: string, connection: Connection, from: Record<string, unknown>, where: string, out: Record<string, string>): void {
  for (const [name, value] of Object.entries(from)) {
    if (!HEADER_NAME.test(name)) unusable(sensor, connection, `: ${where} ${JSON.stringify(name)} is not a header name`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      unusable(sensor, connection, `: ${where} ${JSON.stringify(name)} is not a header value (a string, number or boolean)`);
    }
    const text = String(value);
    if (/[\r\n\0]/.test(text)) unusable(sensor, connection, `: ${where} ${JSON.stringify(name)} holds a line break`);
    out[name] = text;
  }
}

/**
 * The URL and default headers of a request through an http connection, as Airflow's HttpHook
 * builds them: a host holding "://" is the base URL as it is; otherwise schema (default http)
 * "://" host, then ":" port when set. The endpoint is joined with joinEndpoint. login (and
 * password) become Basic auth; extra's entries default headers, except the keys the hook reads
 * as session settings (timeout, verify, proxies, …), which are not applied; extra.headers (an
 * object, or its JSON) adds headers too. A connection that cannot work throws a FailError.
 */
export function httpConnectionRequest(connection: Connection, endpoint: string): { url: string; headers: Record<string, string> } {
  const sensor = "httpSensor";
  const host = connection.host ?? "";
  let base: string;
  if (host.includes("://")) {
    base = host;
  } else {
    if (host === "") unusable(sensor, connection, " has no host");
    const schema = (connection.schema || "http").toLowerCase();
    if (schema !== "http" && schema !== "https") unusable(sensor, connection, ` has schema ${JSON.stringify(connection.schema)}: httpSensor needs http or https`);
    base = `${schema}://${host}${connection.port ? `:${connection.port}` : ""}`;
  }
  const url = joinEndpoint(base, endpoint);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    unusable(sensor, connection, ` does not make an http(s) URL: ${JSON.stringify(shownHttp(url))} (host ${JSON.stringify(shownHttp(host))})`);
  }

  const headers: Record<string, string> = {};
  const extra = connection.extra ?? {};
  const defaults: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(extra)) if (!HTTP_SESSION_EXTRAS.has(key)) defaults[key] = value;
  headerEntries(sensor, connection, defaults, "extra", headers);
  let nested = extra.headers;
  if (typeof nested === "string") {
    try {
      nested = JSON.parse(nested);
    } catch {
      unusable(sensor, connection, ": extra.headers must be an object (or its JSON)");
    }
  }
  if (nested !== undefined && nested !== null) {
    if (typeof nested !== "object" || Array.isArray(nested)) unusable(sensor, connection, ": extra.headers must be an object (or its JSON)");
    headerEntries(sensor, connection, nested as Record<string, unknown>, "extra.headers", headers);
  }
  // Credentials in the host's URL are sent as Basic auth (fetch refuses them in the URL), as login's
  // are; login and password, when set, win, as in Airflow (requests reads the URL's only without auth).
  const { url: requested, authorization: fromUrl } = credentialsOut(url);
  const authorization = connection.login ? basicAuthorization(connection.login, connection.password ?? "") : fromUrl;
  if (authorization) {
    for (const name of Object.keys(headers)) if (name.toLowerCase() === "authorization") delete headers[name];
    headers.Authorization = authorization;
  }
  return { url: requested, headers };
}

/**
 * Waits until a URL answers with an expected status, or until `predicate(response)` holds. Output: { status } or the predicate's value.
 * Without a predicate, an error status (>= 400) neither expected nor in waitOnStatus fails the poke, as Airflow's HttpSensor raises.
 */
export function httpSensor<T = never>(options: HttpSensorOptions<T>): SensorOptions<HttpSensorStatus | T> {
  const name = "httpSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { url, httpConnId, endpoint, method = "GET", headers, body, expectedStatus = 200, waitOnStatus, predicate, requestTimeout = "10s", tolerateErrors = false, ...settings } = options;
  if (url !== undefined && httpConnId !== undefined) invalid(name, "give url or httpConnId, not both");
  if (url === undefined && httpConnId === undefined) invalid(name, "url (an http(s) URL or (ctx) => string) or httpConnId (a stored connection's id, with endpoint) is required");
  if (httpConnId === undefined) {
    if (typeof url !== "function" && (typeof url !== "string" || !/^https?:\/\//i.test(url))) invalid(name, `url must be an http(s) URL or (ctx) => string, got ${JSON.stringify(url)}`);
    if (endpoint !== undefined) invalid(name, "endpoint goes with httpConnId (a path joined to the connection's base URL); with url, put the path in the URL");
  } else {
    checkConnectionId(name, "httpConnId", httpConnId);
    if (endpoint !== undefined && typeof endpoint !== "function" && (typeof endpoint !== "string" || /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint))) {
      invalid(name, `endpoint must be a path joined to the connection's base URL (e.g. "api/health") or (ctx) => string, got ${JSON.stringify(endpoint)}`);
    }
  }
  if (headers !== undefined && (typeof headers !== "object" || headers === null || Array.isArray(headers))) invalid(name, "headers must be an object of header names to values");
  const expected = Array.isArray(expectedStatus) ? expectedStatus : [expectedStatus];
  if (expected.length === 0 || expected.some((s) => !Number.isInteger(s) || s < 100 || s > 599)) invalid(name, `expectedStatus must be HTTP status code(s), got ${JSON.stringify(expectedStatus)}`);
  if (predicate !== undefined && typeof predicate !== "function") invalid(name, "predicate must be a function (response, ctx) => boolean");
  // Airflow's HttpSensor pokes again only on its response_error_codes_allowlist (default ["404"]); any other
  // error status raises. An explicit list holding an expected status is a contradiction; the default's 404
  // gives way to an expectedStatus of 404 (waiting for a resource to go).
  const waitOn = waitOnStatus === undefined ? [404].filter((s) => !expected.includes(s)) : Array.isArray(waitOnStatus) ? waitOnStatus : [waitOnStatus];
  if (waitOnStatus !== undefined) {
    if (waitOn.some((s) => !Number.isInteger(s) || s < 100 || s > 599)) invalid(name, `waitOnStatus must be HTTP status code(s), got ${JSON.stringify(waitOnStatus)}`);
    const notError = waitOn.filter((s) => s < 400);
    if (notError.length > 0) invalid(name, `waitOnStatus lists error statuses (400..599) that mean "not yet", got ${notError.join(", ")}: a status under 400 not in expectedStatus already means "not yet"`);
    const both = waitOn.filter((s) => expected.includes(s));
    if (both.length > 0) invalid(name, `${both.join(", ")} cannot be in both expectedStatus and waitOnStatus`);
    if (predicate !== undefined) invalid(name, "waitOnStatus goes without predicate: a predicate decides from every response, whatever its status");
  }
  // fetch throws at every poke otherwise, an error tolerateErrors would take for the network's and wait on.
  if (body !== undefined && /^(GET|HEAD)$/i.test(method)) invalid(name, `a ${method.toUpperCase()} request cannot have a body: set method (e.g. "POST") or drop body`);
  const timeoutMs = durationMs(name, requestTimeout, "requestTimeout");
  if (timeoutMs <= 0) invalid(name, "requestTimeout must be more than 0");

  /** The request's URL and headers: the URL as given, or the connection's base URL, endpoint and default headers. */
  const target = async (ctx: TaskContext): Promise<{ url: string; shownUrl: string; headers: Record<string, string> | Headers | undefined; via: string }> => {
    if (httpConnId === undefined) {
      const given = resolve(url as FromContext<string>, ctx);
      // Credentials in the URL go as Basic auth unless the sensor's headers set Authorization; the log and
      // errors show the URL with query values (and any credentials left) masked, as through a connection.
      const { url: requested, authorization } = credentialsOut(given);
      let sent: Record<string, string> | Headers | undefined = headers;
      if (authorization) {
        sent = new Headers(headers);
        if (!sent.has("authorization")) sent.set("authorization", authorization);
      }
      return { url: requested, shownUrl: shownHttp(requested), headers: sent, via: "" };
    }
    const connection = await sensorConnection(name, ctx, httpConnId);
    const request = httpConnectionRequest(connection, endpoint === undefined ? "" : resolve(endpoint, ctx));
    const merged = new Headers(request.headers);
    for (const [key, value] of Object.entries(headers ?? {})) merged.set(key, value);
    // The log and errors show the URL redacted: a host may hold user:token@ (Basic auth is masked as the connection's password is).
    return { url: request.url, shownUrl: shownHttp(request.url), headers: merged, via: ` (connection "${httpConnId}")` };
  };

  return withDefaults<HttpSensorStatus | T>(settings, async (ctx) => {
    const { url: address, shownUrl, headers: sent, via } = await target(ctx);
    const shown = `${shownUrl}${via}`;
    // Not AbortSignal.timeout: it fires at once for more than 2^31−1 ms.
    const timeout = timeoutSignal(timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout.signal]);
    try {
      let response: Response;
      try {
        response = await fetch(address, { method, headers: sent, body: body === undefined ? undefined : resolve(body, ctx), signal, redirect: "follow" });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const detail = `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause?: Error }).cause!.message})` : ""}`;
        // fetch's own message may quote the URL (one with credentials is refused, quoted whole).
        const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : detail.split(address).join(shownUrl);
        if (!tolerateErrors) throw new Error(`httpSensor: ${method} ${shown} failed: ${reason}`);
        ctx.log.warn(`httpSensor: ${method} ${shown} failed (tolerated): ${reason}`);
        return false;
      }
      try {
        if (predicate) {
          const answer = await predicate(response, ctx);
          ctx.log.info(`httpSensor: ${method} ${shown} answered ${response.status}; predicate ${answer === true || (typeof answer === "object" && answer?.done) ? "holds" : "does not hold"}`);
          if (answer === true) return { done: true, value: { status: response.status } };
          return answer;
        }
        const status = response.status;
        if (expected.includes(status)) {
          ctx.log.info(`httpSensor: ${method} ${shown} answered ${status}`);
          return { done: true, value: { status } };
        }
        if (status >= 400 && !waitOn.includes(status)) {
          if (!tolerateErrors) {
            const notYet = waitOn.length === 0 ? "no error status means" : `only ${waitOn.join(" or ")} ${waitOn.length === 1 ? "means" : "mean"}`;
            throw new Error(`httpSensor: ${method} ${shown} answered ${status} (not ${expected.join(" or ")}; ${notYet} not yet: waitOnStatus)`);
          }
          ctx.log.warn(`httpSensor: ${method} ${shown} answered ${status} (tolerated; waiting for ${expected.join(" or ")})`);
          return false;
        }
        ctx.log.info(`httpSensor: ${method} ${shown} answered ${status} (waiting for ${expected.join(" or ")})`);
        return false;
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

/** What withConnection opens: a URL's options (mysqlOptions) or a stored connection's (mysqlConnectionOptions). */
type MysqlConnectOptions = ReturnType<typeof mysqlOptions> & { charset?: string; ssl?: Record<string, string> };

/** mysql2 from the task process's loader (executor/child.ts), or a plain runtime import. */
async function loadMysql(): Promise<typeof import("mysql2/promise")> {
  const loader = (globalThis as { __batonRequire?: (id: string) => unknown }).__batonRequire;
  if (loader) return loader("mysql2/promise") as typeof import("mysql2/promise");
  const specifier = "mysql2/promise";
  return (await import(specifier)) as typeof import("mysql2/promise");
}

/** Opens a connection, runs `use`, always closes it; ctx.signal (timeout, cancel) destroys it. */
async function withConnection<T>(options: MysqlConnectOptions, ctx: TaskContext, use: (conn: MinimalConnection) => Promise<T>): Promise<T> {
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

/** Options every sqlSensor takes, whichever way it names its database. */
export interface SqlSensorCommonOptions extends SensorSettings {
  /** One statement; the sensor holds when its first row's first cell is truthy. */
  sql: FromContext<string>;
  /** Values for the statement's `?` placeholders. */
  params?: FromContext<unknown[]>;
  /** Per-query timeout (default "60s"). */
  queryTimeout?: Duration;
}

/** The database is either `conn` (a URL or an environment variable's name) or `connId`, a stored connection (Airflow's conn_id). */
export type SqlSensorOptions = SqlSensorCommonOptions &
  (
    | {
        /** A mysql:// URL, or the name of an environment variable holding one (read by the worker at each poke). */
        conn: string;
        connId?: undefined;
      }
    | {
        /** A stored connection's id (conn_type mysql or mariadb), read at each poke as ctx.connection reads it. */
        connId: string;
        conn?: undefined;
      }
  );

/** The connection URL a sensor's `conn` names: the value itself, or the environment variable's value. */
export function connectionUrl(conn: string, env: NodeJS.ProcessEnv = process.env): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(conn)) return conn;
  const value = env[conn];
  if (!value) throw new Error(`sqlSensor: the environment variable ${conn} is not set on this worker (it should hold a mysql:// URL)`);
  return value;
}

/** A file an ssl option of a connection's extra names, read on the worker. */
export type ReadTextFile = (path: string) => string;

const readText: ReadTextFile = (path) => readFileSync(path, "utf8");

/** extra.ssl as mysql2 takes it: true (or "true") for TLS with the system's CAs, an object of PEM file paths ca / cert / key (or its JSON), false for none. */
function sslOption(connection: Connection, value: unknown, readFile: ReadTextFile): Record<string, string> | undefined {
  const sensor = "sqlSensor";
  if (value === undefined || value === null || value === false || value === "false") return undefined;
  if (value === true || value === "true") return {};
  let spec: unknown = value;
  if (typeof spec === "string") {
    try {
      spec = JSON.parse(spec);
    } catch {
      spec = undefined;
    }
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    unusable(sensor, connection, `: extra.ssl must be true, false or an object of PEM file paths (ca, cert, key), got ${JSON.stringify(value)}`);
  }
  const ssl: Record<string, string> = {};
  for (const key of ["ca", "cert", "key"] as const) {
    const file = (spec as Record<string, unknown>)[key];
    if (file === undefined || file === null) continue;
    if (typeof file !== "string" || file === "") unusable(sensor, connection, `: extra.ssl.${key} must be a file path on the worker, got ${JSON.stringify(file)}`);
    try {
      ssl[key] = readFile(file);
    } catch (err) {
      unusable(sensor, connection, `: could not read extra.ssl.${key} ${file}: ${(err as Error).message}`);
    }
  }
  return ssl;
}

/**
 * mysql2 connection options from a stored connection, as Airflow's MySqlHook reads one: host
 * (default localhost; localhost on 3306 is the local socket, as in a mysql:// URL), port (default
 * 3306), login (default root), password, schema as the database; from extra, charset, ssl (see
 * sslOption) and unix_socket; other extra keys are ignored. A connection of another conn_type,
 * or a bad value of those keys, throws a FailError: no retry can work until the connection is edited.
 */
export function mysqlConnectionOptions(connection: Connection, findSocket: SocketLookup = localSocket, readFile: ReadTextFile = readText) {
  const sensor = "sqlSensor";
  const type = connection.connType.toLowerCase();
  if (type !== "mysql" && type !== "mariadb") unusable(sensor, connection, ` has conn_type ${JSON.stringify(connection.connType)}: sqlSensor needs mysql or mariadb`);
  const extra = connection.extra ?? {};
  const host = connection.host || "localhost";
  const port = connection.port || DEFAULT_PORT;
  const { charset, unix_socket: socket } = extra;
  if (charset !== undefined && (typeof charset !== "string" || !/^[A-Za-z0-9_]+$/.test(charset))) {
    unusable(sensor, connection, `: extra.charset must be a character set name (e.g. "utf8mb4"), got ${JSON.stringify(charset)}`);
  }
  if (socket !== undefined && (typeof socket !== "string" || socket === "")) unusable(sensor, connection, `: extra.unix_socket must be a non-empty path, got ${JSON.stringify(socket)}`);
  const socketPath = (socket as string | undefined) ?? (meansLocalSocket(host, port) ? findSocket() : undefined);
  const ssl = sslOption(connection, extra.ssl, readFile);
  return {
    host,
    port,
    ...(socketPath === undefined ? {} : { socketPath }),
    user: connection.login || "root",
    password: connection.password ?? "",
    ...(connection.schema ? { database: connection.schema } : {}),
    ...(charset === undefined ? {} : { charset: charset as string }),
    ...(ssl === undefined ? {} : { ssl }),
    timezone: "Z",
    supportBigNumbers: true,
    connectTimeout: 10_000,
    multipleStatements: false,
  };
}

/** How a log line names a stored connection's server: no password, ever. */
function describeConnection(connection: Connection, options: ReturnType<typeof mysqlConnectionOptions>): string {
  const where = options.socketPath ? `socket ${options.socketPath}` : `${options.host}:${options.port}`;
  return `connection "${connection.connectionId}" (${options.user}@${where}${options.database ? `/${options.database}` : ""})`;
}

/** Waits until a query's first cell is truthy (Airflow's SqlSensor). Output: that cell. The connection is closed after every poke. */
export function sqlSensor(options: SqlSensorOptions): SensorOptions<SqlSensorCell> {
  const name = "sqlSensor";
  if (typeof options !== "object" || options === null) invalid(name, "options must be an object");
  const { conn, connId, sql, params, queryTimeout = "60s", ...settings } = options;
  if (conn !== undefined && connId !== undefined) invalid(name, "give conn or connId, not both");
  if (conn === undefined && connId === undefined) invalid(name, "conn (a mysql:// URL or an environment variable's name) or connId (a stored connection's id) is required");
  if (connId !== undefined) checkConnectionId(name, "connId", connId);
  else if (typeof conn !== "string" || !(/^(mysql|mariadb):\/\//i.test(conn) || /^[A-Za-z_][A-Za-z0-9_]*$/.test(conn))) {
    invalid(name, `conn must be a mysql:// URL or the name of an environment variable holding one, got ${JSON.stringify(conn)}`);
  }
  if (typeof sql !== "function" && (typeof sql !== "string" || sql.trim() === "")) invalid(name, "sql must be a non-empty string or (ctx) => string");
  // mysql2 times a query with setTimeout, which fires at once past 2^31−1 ms (≈ 24.8 days):
  // a longer queryTimeout is capped there, as good as none for a sensor's query.
  const timeoutMs = durationMs(name, queryTimeout, "queryTimeout");
  return withDefaults(settings, async (ctx) => {
    let target: { options: ReturnType<typeof mysqlOptions>; shown: string };
    if (connId !== undefined) {
      const connection = await sensorConnection(name, ctx, connId);
      const resolved = mysqlConnectionOptions(connection);
      target = { options: resolved, shown: describeConnection(connection, resolved) };
    } else {
      const uri = connectionUrl(conn!);
      target = { options: mysqlOptions(uri), shown: redactUrl(uri) };
    }
    const statement = resolve(sql, ctx);
    const values = params === undefined ? [] : resolve(params, ctx);
    const rows = await withConnection(target.options, ctx, async (c) => (await c.query({ sql: statement, timeout: Math.min(timeoutMs, MAX_TIMER_MS), rowsAsArray: true }, values))[0]);
    const first = Array.isArray(rows) && Array.isArray(rows[0]) ? (rows[0] as unknown[])[0] : undefined;
    ctx.log.info(`sqlSensor: first cell ${JSON.stringify(typeof first === "bigint" ? String(first) : first) ?? "(no rows)"} on ${target.shown}`);
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
    const found = await withConnection(mysqlOptions(uri), ctx, async (c): Promise<ExternalState | null> => {
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
