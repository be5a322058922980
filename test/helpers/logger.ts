// capturingLogger: a Logger that writes "<level>: <message>" lines into an array, for tests that
// assert on what a component logged. Debug lines are left out unless `debug` is set (a worker logs
// a heartbeat's repeated failures at debug level).
import type { Logger } from "../../core/logger.ts";

export function capturingLogger(lines: string[], options: { debug?: boolean } = {}): Logger {
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  const logger: Logger = { debug: options.debug ? at("debug") : () => undefined, info: at("info"), warn: at("warn"), error: at("error"), scope: () => logger };
  return logger;
}
