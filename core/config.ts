import os from "node:os";
import path from "node:path";
import { parseDuration } from "./durations.ts";
import { BatonError } from "./errors.ts";
import type { LogLevel } from "./logger.ts";

/** Runtime configuration: environment first, CLI flags override (see README "Configuration"). */
export interface Config {
  databaseUrl: string;
  dagsFolder: string;
  port: number;
  host: string;
  workers: number;
  logLevel: LogLevel;
  logsFolder: string;
  cacheFolder: string;
  dagsPausedAtCreation: boolean;
  dagParseTimeoutMs: number;
  dagRescanIntervalMs: number;
  schedulerIntervalMs: number;
  shutdownGraceMs: number;
  /** After executionTimeout (or a lost claim) aborts ctx.signal, the time before the task's process is killed. */
  taskKillGraceMs: number;
  /** Cap on the JSON size of a task's output (XCom) and of each durable step's result. */
  xcomMaxBytes: number;
  /** A running try whose heartbeat is older than this is a zombie: the scheduler hands it to its retry policy. */
  taskHeartbeatTimeoutMs: number;
  /** A backfill whose range yields more runs than this is refused unless forced. */
  backfillMaxRuns: number;
}

type Env = Record<string, string | undefined>;

function intFrom(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
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

function boolFrom(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new BatonError("BATON_CONFIG_INVALID", `${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const level = (env.BATON_LOG_LEVEL || "info") as LogLevel;
  if (!["debug", "info", "warn", "error", "silent"].includes(level)) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_LOG_LEVEL must be debug, info, warn, error or silent, got "${level}"`);
  }
  const config: Config = {
    databaseUrl: env.BATON_DATABASE_URL || "mysql://root@127.0.0.1:3306/baton",
    dagsFolder: path.resolve(env.BATON_DAGS_FOLDER || "./dags"),
    port: intFrom(env, "BATON_PORT", 8080),
    host: env.BATON_HOST || "127.0.0.1",
    workers: intFrom(env, "BATON_WORKERS", 2),
    logLevel: level,
    logsFolder: path.resolve(env.BATON_LOGS_FOLDER || "./logs"),
    cacheFolder: path.resolve(env.BATON_CACHE_FOLDER || path.join(os.tmpdir(), `baton-cache-${process.getuid?.() ?? "user"}`)),
    dagsPausedAtCreation: boolFrom(env, "BATON_DAGS_PAUSED_AT_CREATION", false),
    dagParseTimeoutMs: durationFrom(env, "BATON_DAG_PARSE_TIMEOUT", "30s"),
    dagRescanIntervalMs: durationFrom(env, "BATON_DAG_RESCAN_INTERVAL", "5s"),
    schedulerIntervalMs: durationFrom(env, "BATON_SCHEDULER_INTERVAL", "1s"),
    shutdownGraceMs: durationFrom(env, "BATON_SHUTDOWN_GRACE", "8s"),
    taskKillGraceMs: durationFrom(env, "BATON_TASK_KILL_GRACE", "10s"),
    xcomMaxBytes: intFrom(env, "BATON_XCOM_MAX_BYTES", 1024 * 1024, 1),
    taskHeartbeatTimeoutMs: durationFrom(env, "BATON_TASK_HEARTBEAT_TIMEOUT", "30s"),
    backfillMaxRuns: intFrom(env, "BATON_BACKFILL_MAX_RUNS", 100_000, 1),
  };
  // Workers beat every min(5 s, timeout / 3): below 1 s a busy but healthy worker would look dead.
  if (config.taskHeartbeatTimeoutMs < 1000) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_TASK_HEARTBEAT_TIMEOUT must be at least 1s, got "${env.BATON_TASK_HEARTBEAT_TIMEOUT}"`);
  }
  const merged = { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  if (overrides.dagsFolder) merged.dagsFolder = path.resolve(overrides.dagsFolder);
  return merged;
}
