import { isIP } from "node:net";
import os from "node:os";
import path from "node:path";
import { parseDuration } from "./durations.ts";
import { BatonError } from "./errors.ts";
import { defaultLogFormat, LOG_FORMATS, type LogFormat, type LogLevel } from "./logger.ts";

/**
 * Runtime configuration: environment first, CLI flags override (see README "Configuration").
 * The CLI alone also reads BATON_API_URL and BATON_API_TOKEN (cli/client.ts): where to send its requests.
 */
export interface Config {
  databaseUrl: string;
  dagsFolder: string;
  port: number;
  host: string;
  workers: number;
  logLevel: LogLevel;
  /** BATON_LOG_FORMAT: `text` or `json`; default `text` when stderr is a terminal, else `json`. */
  logFormat: LogFormat;
  logsFolder: string;
  cacheFolder: string;
  dagsPausedAtCreation: boolean;
  dagParseTimeoutMs: number;
  dagRescanIntervalMs: number;
  /** BATON_DAG_REPARSE_INTERVAL: an unchanged DAG file is parsed again this long after its last parse; 0: off ("off"). */
  dagReparseIntervalMs: number;
  schedulerIntervalMs: number;
  shutdownGraceMs: number;
  /** After executionTimeout (or a lost claim) aborts ctx.signal, the time before the task's process is killed. */
  taskKillGraceMs: number;
  /** Cap on the JSON size of a task's output (XCom) and of each durable step's result. */
  xcomMaxBytes: number;
  /** BATON_TASK_LOG_MAX_BYTES: what a try's log keeps of its output, past which the rest is dropped and counted; 0: no limit ("off"). */
  taskLogMaxBytes: number;
  /** A running try whose heartbeat is older than this is a zombie: the scheduler hands it to its retry policy. */
  taskHeartbeatTimeoutMs: number;
  /** A backfill whose range yields more runs than this is refused unless forced. */
  backfillMaxRuns: number;
  /** Bearer-token auth on the API; "off" is for local development and refused on a non-loopback host. */
  auth: "on" | "off";
  /** An admin token to ensure at start (automation), instead of generating one on first start. */
  adminToken?: string;
  /** Where the generated first admin token is written (mode 0600). */
  adminTokenFile: string;
  /** Requests per token (per client address without one) per window; max 0 turns the limit off. */
  apiRateLimit: { max: number; windowMs: number };
  /** Largest request body the API reads. */
  apiBodyLimitBytes: number;
  /** Time allowed to receive a whole request (headers and body). */
  apiRequestTimeoutMs: number;
  /** Origins allowed to call the API from a browser; empty (the default) means CORS is off. */
  corsOrigins: string[];
  /** Processes without the API (worker, scheduler) serve GET /metrics here when set (0: off). */
  metricsPort: number;
  metricsHost: string;
  /** Errors from SQL statements carry the caller's stack (mysql2 `trace`): a stack capture per statement. */
  dbTraceQueries: boolean;
  /**
   * A statement that gets no byte from the server for this long fails (503 in the API, a failed
   * tick in the scheduler, a retry in the worker) and its connection is destroyed; 0: no limit.
   */
  dbStatementTimeoutMs: number;
  /** Hot transactions send their repeated statements as server-side prepared statements (MariaDB; store/preparedStatements.ts). */
  dbPreparedStatements: boolean;
  /** GET /health answers 503 (metadatabase unhealthy) when its reads take longer. */
  healthTimeoutMs: number;
  /**
   * Whose X-Forwarded-For the API believes (Fastify's trustProxy): false (the default: the socket's
   * address), true (any sender), a number of proxy hops, or addresses / CIDR ranges / loopback, linklocal, uniquelocal.
   */
  trustProxy: boolean | number | string[];
}

type Env = Record<string, string | undefined>;

/**
 * Encrypts variable values and connection passwords/extras at rest (README "Configuration").
 * Read from the environment where secrets are stored or read (store/secretBox.ts), not part of
 * Config: it must not travel in objects that get logged or passed around.
 */
export const SECRET_KEY_ENV = "BATON_SECRET_KEY";

/** The highest TCP port; 0 asks the system for a free one (how the tests listen). */
export const MAX_PORT = 65_535;

/**
 * A port setting (BATON_PORT, --port, …), checked here rather than at listen(): out of range,
 * Node throws a RangeError with a stack trace, and only after migrations and the first DAG scan.
 */
export function portValue(name: string, raw: string): number {
  const value = decimalValue(raw);
  if (value === undefined || value > MAX_PORT) {
    throw new BatonError("BATON_CONFIG_INVALID", `${name} must be a port from 0 to ${MAX_PORT}, got "${raw}"`);
  }
  return value;
}

/**
 * A whole number written in decimal digits, or undefined. Number() alone read a blank value as 0,
 * and took "0x10", "1e2" or "0b1" for numbers nobody meant; past 2^53 it rounds.
 */
export function decimalValue(raw: string): number | undefined {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

function portFrom(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  return raw === undefined || raw === "" ? fallback : portValue(name, raw);
}

function intFrom(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = decimalValue(raw);
  if (value === undefined || value < min) {
    throw new BatonError("BATON_CONFIG_INVALID", `${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function durationFrom(env: Env, name: string, fallback: string): number {
  try {
    return parseDuration(env[name] || fallback, name);
  } catch (err) {
    throw new BatonError("BATON_CONFIG_INVALID", (err as Error).message);
  }
}

/**
 * A period or timeout that 0 would break rather than turn off: a parse timeout of 0 makes every
 * DAG file an import error, an interval of 0 runs its loop back to back.
 */
function positiveDurationFrom(env: Env, name: string, fallback: string): number {
  const ms = durationFrom(env, name, fallback);
  if (ms < 1) throw new BatonError("BATON_CONFIG_INVALID", `${name} must be more than 0, got "${env[name]}"`);
  return ms;
}

/**
 * An interval whose loop may be turned off: "off" does, and 0 is refused as for the other
 * intervals (it would not say whether it means "never" or "all the time", Airflow's reading).
 * Off is 0 in Config. `min` (in ms, with its text): the smallest interval allowed but 0.
 */
function intervalOrOffFrom(env: Env, name: string, fallback: string, min?: { ms: number; text: string }): number {
  const raw = env[name];
  if (raw !== undefined && /^\s*off\s*$/i.test(raw)) return 0;
  const ms = durationFrom(env, name, fallback);
  if (ms < 1) throw new BatonError("BATON_CONFIG_INVALID", `${name} must be more than 0, or "off", got "${raw}"`);
  if (min && ms < min.ms) throw new BatonError("BATON_CONFIG_INVALID", `${name} must be at least ${min.text}, or "off", got "${raw}"`);
  return ms;
}

/**
 * BATON_TASK_LOG_MAX_BYTES by default: room for any log a person reads, while a task printing in
 * a loop stops there instead of filling the logs folder's disk (or task_log).
 */
export const DEFAULT_TASK_LOG_MAX_BYTES = 100 * 1024 * 1024;

/** A size in bytes, written in decimal digits, that 0 or "off" turns off (0 in Config). */
function bytesOrOffFrom(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^\s*off\s*$/i.test(raw)) return 0;
  const value = decimalValue(raw);
  if (value === undefined) {
    throw new BatonError("BATON_CONFIG_INVALID", `${name} must be a number of bytes in decimal digits, or 0 or "off" for no limit, got "${raw}"`);
  }
  return value;
}

/**
 * The shortest BATON_DAG_REPARSE_INTERVAL: below it every scan re-parsed the whole folder,
 * the watcher's scans too (100 ms after any write in the folder), each import running the files' top-level code.
 */
export const MIN_DAG_REPARSE_INTERVAL = { ms: 1_000, text: "1s" } as const;

function boolFrom(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new BatonError("BATON_CONFIG_INVALID", `${name} must be true or false, got "${raw}"`);
}

/** "N/window", e.g. "1200/1m"; "0" (or "off") turns the limit off. */
function rateLimitFrom(env: Env, name: string, fallback: string): { max: number; windowMs: number } {
  const raw = env[name] || fallback;
  if (/^(0|off)$/i.test(raw)) return { max: 0, windowMs: 60_000 };
  const match = /^(\d+)\/(.+)$/.exec(raw);
  const max = Number(match?.[1]);
  if (!match || !Number.isInteger(max) || max < 1) {
    throw new BatonError("BATON_CONFIG_INVALID", `${name} must look like "1200/1m" (requests per window) or "off", got "${raw}"`);
  }
  // A window of 0 ms resets the count at every request: no limit at all.
  const windowMs = durationFrom({ [name]: match[2] }, name, "1m");
  if (windowMs < 1) throw new BatonError("BATON_CONFIG_INVALID", `${name} needs a window of more than 0 (e.g. "1200/1m"), got "${raw}"`);
  return { max, windowMs };
}

const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];

/** BATON_TRUST_PROXY: off, true, a hop count, or a comma-separated list of addresses, CIDR ranges and range names. */
function trustProxyFrom(env: Env, name: string): boolean | number | string[] {
  const raw = (env[name] ?? "").trim();
  if (raw === "" || /^(0|false|no|off)$/i.test(raw)) return false;
  if (/^(true|yes|on)$/i.test(raw)) return true;
  const hops = decimalValue(raw);
  if (hops !== undefined) return hops;
  const entries = raw.split(",").map((e) => e.trim());
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split("/");
    const family = isIP(address ?? "");
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (!(PROXY_RANGE_NAMES.includes(entry) || (family !== 0 && prefixOk && rest.length === 0))) {
      throw new BatonError(
        "BATON_CONFIG_INVALID",
        `${name} must be off, true, a number of proxy hops, or comma-separated IP addresses, CIDR ranges (10.0.0.0/8) and ${PROXY_RANGE_NAMES.join(", ")}; "${entry}" is none of these (in "${raw}")`,
      );
    }
  }
  return entries;
}

/**
 * What the API logs at start when BATON_TRUST_PROXY believes senders it does not name: with true or a hop
 * count, a client that reaches the API without going through the proxy (or, with true, any client) chooses
 * the address the refusal throttle and the rate limit count.
 */
export function trustProxyWarning(trust: boolean | number | string[]): string | undefined {
  const advice =
    "a client that reaches the API directly (not through the proxy) sends its own and picks the address the refusal throttle and BATON_API_RATE_LIMIT count: list the proxies' addresses or CIDR ranges instead";
  if (trust === true) return `BATON_TRUST_PROXY=true believes X-Forwarded-For from any sender, and its leftmost address, which every client writes: ${advice}`;
  if (typeof trust === "number") return `BATON_TRUST_PROXY=${trust} believes X-Forwarded-For from the ${trust} nearest sender(s), whoever they are: ${advice}`;
  return undefined;
}

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const level = (env.BATON_LOG_LEVEL || "info") as LogLevel;
  if (!["debug", "info", "warn", "error", "silent"].includes(level)) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_LOG_LEVEL must be debug, info, warn, error or silent, got "${level}"`);
  }
  const format = env.BATON_LOG_FORMAT || undefined;
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_LOG_FORMAT must be text or json, got "${format}"`);
  }
  const config: Config = {
    databaseUrl: env.BATON_DATABASE_URL || "mysql://root@localhost:3306/baton",
    dagsFolder: path.resolve(env.BATON_DAGS_FOLDER || "./dags"),
    port: portFrom(env, "BATON_PORT", 8080),
    host: env.BATON_HOST || "127.0.0.1",
    workers: intFrom(env, "BATON_WORKERS", 2),
    logLevel: level,
    logFormat: defaultLogFormat(format, !!process.stderr.isTTY),
    logsFolder: path.resolve(env.BATON_LOGS_FOLDER || "./logs"),
    cacheFolder: path.resolve(env.BATON_CACHE_FOLDER || path.join(os.tmpdir(), `baton-cache-${process.getuid?.() ?? "user"}`)),
    dagsPausedAtCreation: boolFrom(env, "BATON_DAGS_PAUSED_AT_CREATION", false),
    dagParseTimeoutMs: positiveDurationFrom(env, "BATON_DAG_PARSE_TIMEOUT", "30s"),
    dagRescanIntervalMs: positiveDurationFrom(env, "BATON_DAG_RESCAN_INTERVAL", "5s"),
    dagReparseIntervalMs: intervalOrOffFrom(env, "BATON_DAG_REPARSE_INTERVAL", "5m", MIN_DAG_REPARSE_INTERVAL),
    schedulerIntervalMs: positiveDurationFrom(env, "BATON_SCHEDULER_INTERVAL", "1s"),
    shutdownGraceMs: durationFrom(env, "BATON_SHUTDOWN_GRACE", "8s"),
    taskKillGraceMs: durationFrom(env, "BATON_TASK_KILL_GRACE", "10s"),
    xcomMaxBytes: intFrom(env, "BATON_XCOM_MAX_BYTES", 1024 * 1024, 1),
    taskLogMaxBytes: bytesOrOffFrom(env, "BATON_TASK_LOG_MAX_BYTES", DEFAULT_TASK_LOG_MAX_BYTES),
    taskHeartbeatTimeoutMs: durationFrom(env, "BATON_TASK_HEARTBEAT_TIMEOUT", "30s"),
    backfillMaxRuns: intFrom(env, "BATON_BACKFILL_MAX_RUNS", 100_000, 1),
    auth: boolFrom(env, "BATON_AUTH", true) ? "on" : "off",
    adminToken: env.BATON_ADMIN_TOKEN || undefined,
    adminTokenFile: path.resolve(env.BATON_ADMIN_TOKEN_FILE || "./.baton/admin-token"),
    apiRateLimit: rateLimitFrom(env, "BATON_API_RATE_LIMIT", "6000/1m"),
    apiBodyLimitBytes: intFrom(env, "BATON_API_BODY_LIMIT", 1024 * 1024, 1),
    apiRequestTimeoutMs: durationFrom(env, "BATON_API_REQUEST_TIMEOUT", "30s"),
    corsOrigins: (env.BATON_CORS_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    metricsPort: portFrom(env, "BATON_METRICS_PORT", 0),
    metricsHost: env.BATON_METRICS_HOST || "127.0.0.1",
    dbTraceQueries: boolFrom(env, "BATON_DB_TRACE", false),
    dbStatementTimeoutMs: durationFrom(env, "BATON_DB_STATEMENT_TIMEOUT", "30s"),
    dbPreparedStatements: boolFrom(env, "BATON_DB_PREPARED_STATEMENTS", true),
    healthTimeoutMs: durationFrom(env, "BATON_HEALTH_TIMEOUT", "3s"),
    trustProxy: trustProxyFrom(env, "BATON_TRUST_PROXY"),
  };
  if (config.adminToken !== undefined && !/^\S{16,512}$/.test(config.adminToken)) {
    throw new BatonError("BATON_CONFIG_INVALID", "BATON_ADMIN_TOKEN must be 16-512 characters without spaces");
  }
  // Workers beat every min(5 s, timeout / 3): below 1 s a busy but healthy worker would look dead.
  if (config.taskHeartbeatTimeoutMs < 1000) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_TASK_HEARTBEAT_TIMEOUT must be at least 1s, got "${env.BATON_TASK_HEARTBEAT_TIMEOUT}"`);
  }
  if (config.healthTimeoutMs < 1) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_HEALTH_TIMEOUT must be more than 0, got "${env.BATON_HEALTH_TIMEOUT}"`);
  }
  const merged = { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  if (overrides.dagsFolder) merged.dagsFolder = path.resolve(overrides.dagsFolder);
  return merged;
}
