import { createRequire } from "node:module";
import { Writable } from "node:stream";
import type Winston from "winston";

// Loaded on the first real logger (≈ 70 ms): commands and child processes that only use
// silentLogger or no logger at all never pay for it.
let winstonModule: typeof Winston | undefined;
function winstonLib(): typeof Winston {
  return (winstonModule ??= createRequire(import.meta.url)("winston") as typeof Winston);
}

/**
 * Service logger with one scope shape (graphile-worker's logger.scope): each boundary
 * makes a child logger once, and every line it writes carries that context.
 *
 * Lines go through winston in one of two formats (BATON_LOG_FORMAT):
 *   text — `2026-01-01T00:00:00.000Z INFO  [scheduler] dagId=x message {"meta":1}`, for people;
 *   json — one object per line: timestamp, level, message, component, the other scope
 *          fields, then the meta fields, for log shippers.
 */
export interface LogScope {
  component?: string;
  workerId?: string;
  dagId?: string;
  runId?: string;
  taskId?: string;
  tryNumber?: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  scope(scope: LogScope): Logger;
}

export type LogSink = (line: string) => void;

export interface LoggerOptions {
  /** Default: BATON_LOG_FORMAT, else `text` when stderr is a terminal and `json` otherwise. */
  format?: LogFormat;
}

/** The format when none is configured: text for a person at a terminal, JSON for a log pipeline. */
export function defaultLogFormat(value: string | undefined, stderrIsTTY: boolean): LogFormat {
  if (value === "text" || value === "json") return value;
  return stderrIsTTY ? "text" : "json";
}

type Level = Exclude<LogLevel, "silent">;
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
// winston's own order (lower is more severe); "silent" never reaches winston.
const WINSTON_LEVELS: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const MESSAGE = Symbol.for("message");
const SCOPE = Symbol("baton.scope");
const META = Symbol("baton.meta");
/** Keys of a JSON line that meta may not overwrite; a meta key of that name is written as `meta_<key>`. */
const RESERVED = new Set(["timestamp", "level", "message"]);

interface Entry {
  level: Level;
  message: string;
  timestamp?: string;
  [SCOPE]: LogScope;
  [META]?: Record<string, unknown>;
}

function textPrefix(scope: LogScope): string {
  return Object.entries(scope)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (k === "component" ? `[${v}]` : `${k}=${v}`))
    .join(" ");
}

/** Errors become {name, message, stack}; bigints strings; a cycle does not lose the line. */
function stringify(value: unknown): string {
  const replacer = (_key: string, v: unknown) => {
    if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack };
    if (typeof v === "bigint") return v.toString();
    return v;
  };
  try {
    return JSON.stringify(value, replacer);
  } catch {
    return JSON.stringify(String(value));
  }
}

function textFormat(info: Winston.Logform.TransformableInfo): Winston.Logform.TransformableInfo {
  const entry = info as unknown as Entry;
  const meta = entry[META];
  const extra = meta && Object.keys(meta).length ? " " + stringify(meta) : "";
  (info as Record<symbol, unknown>)[MESSAGE] =
    `${entry.timestamp} ${entry.level.toUpperCase().padEnd(5)} ${textPrefix(entry[SCOPE])} ${entry.message}${extra}`;
  return info;
}

function jsonFormat(info: Winston.Logform.TransformableInfo): Winston.Logform.TransformableInfo {
  const entry = info as unknown as Entry;
  const line: Record<string, unknown> = { timestamp: entry.timestamp, level: entry.level, message: entry.message };
  for (const [k, v] of Object.entries(entry[SCOPE])) if (v !== undefined) line[k] = v;
  for (const [k, v] of Object.entries(entry[META] ?? {})) line[RESERVED.has(k) ? `meta_${k}` : k] = v;
  (info as Record<symbol, unknown>)[MESSAGE] = stringify(line);
  return info;
}

/** A winston logger whose one transport hands each formatted line to the sink, synchronously. */
function winstonFor(level: Level, format: LogFormat, sink: LogSink): Winston.Logger {
  const winston = winstonLib();
  const stream = new Writable({
    objectMode: true,
    write(info: Record<symbol, unknown>, _encoding, done) {
      try {
        sink(String(info[MESSAGE]));
      } catch {
        // A sink that throws (a closed stderr) must not take the process down with it.
      }
      done();
    },
  });
  return winston.createLogger({
    levels: WINSTON_LEVELS,
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format(format === "json" ? jsonFormat : textFormat)()),
    transports: [new winston.transports.Stream({ stream })],
  });
}

const noop = () => undefined;
const silent: Logger = { debug: noop, info: noop, warn: noop, error: noop, scope: () => silent };

export function createLogger(
  level: LogLevel = "info",
  scope: LogScope = {},
  sink: LogSink = (line) => process.stderr.write(line + "\n"),
  options: LoggerOptions = {},
): Logger {
  const threshold = LEVELS[level] ?? LEVELS.info;
  if (threshold >= LEVELS.silent) return silent;
  const format = options.format ?? defaultLogFormat(process.env.BATON_LOG_FORMAT, !!process.stderr.isTTY);
  const target = winstonFor((level in WINSTON_LEVELS ? level : "info") as Level, format, sink);
  // Scoped loggers share the root's winston instance: scope() is cheap, called per boundary.
  const scoped = (current: LogScope): Logger => {
    const write = (lvl: Level, message: string, meta?: Record<string, unknown>) => {
      if (LEVELS[lvl] < threshold) return;
      const entry: Entry = { level: lvl, message, [SCOPE]: current, [META]: meta };
      target.log(entry as unknown as Winston.LogEntry);
    };
    return {
      debug: (m, meta) => write("debug", m, meta),
      info: (m, meta) => write("info", m, meta),
      warn: (m, meta) => write("warn", m, meta),
      error: (m, meta) => write("error", m, meta),
      scope: (more) => scoped({ ...current, ...more }),
    };
  };
  return scoped(scope);
}

export const silentLogger: Logger = createLogger("silent");
