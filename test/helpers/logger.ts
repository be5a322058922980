// capturingLogger: a Logger that writes "<level>: <message>" lines into an array (debug left out),
// for tests that assert on what a component logged.
import type { Logger } from "../../core/logger.ts";

export function capturingLogger(lines: string[]): Logger {
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  const logger: Logger = { debug: () => undefined, info: at("info"), warn: at("warn"), error: at("error"), scope: () => logger };
  return logger;
}
