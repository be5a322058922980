/**
 * Service logger with one scope shape (graphile-worker's logger.scope): each boundary
 * makes a child logger once, and every line it writes carries that context.
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
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  scope(scope: LogScope): Logger;
}

export type LogSink = (line: string) => void;

export function createLogger(
  level: LogLevel = "info",
  scope: LogScope = {},
  sink: LogSink = (line) => process.stderr.write(line + "\n"),
): Logger {
  const threshold = LEVELS[level] ?? LEVELS.info;
  const prefix = Object.entries(scope)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (k === "component" ? `[${v}]` : `${k}=${v}`))
    .join(" ");
  const write = (lvl: Exclude<LogLevel, "silent">, message: string, meta?: Record<string, unknown>) => {
    if (LEVELS[lvl] < threshold) return;
    const extra = meta && Object.keys(meta).length ? " " + JSON.stringify(meta) : "";
    sink(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${prefix} ${message}${extra}`);
  };
  return {
    debug: (m, meta) => write("debug", m, meta),
    info: (m, meta) => write("info", m, meta),
    warn: (m, meta) => write("warn", m, meta),
    error: (m, meta) => write("error", m, meta),
    scope: (more) => createLogger(level, { ...scope, ...more }, sink),
  };
}

export const silentLogger: Logger = createLogger("silent");
