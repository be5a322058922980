import path from "node:path";
import { systemClock } from "../core/clock.ts";
import { loadConfig, type Config } from "../core/config.ts";
import { BatonError } from "../core/errors.ts";
import { createLogger, type Logger } from "../core/logger.ts";
import { describeDatabaseUrl, ensureDatabase, isConnectionError, isLoginError, openDb, requireDatabase, type Db } from "../store/db.ts";
import { migrate } from "../store/migrate.ts";

export interface Runtime {
  config: Config;
  db: Db;
  logger: Logger;
}

/** Stops the process with one line on stderr: no stack trace for errors users can fix. */
export function exitWith(message: string, code = 1): never {
  process.stderr.write(`baton: ${message}\n`);
  process.exit(code);
}

export function explainDatabaseError(url: string, err: unknown): string {
  if (isLoginError(err)) {
    // The server answered: starting one would not help; the server's words name the user and host it saw.
    const { code, message } = err as { code: string; message?: string };
    return `MySQL at ${describeDatabaseUrl(url)} refused the login (${code}: ${message}). Check the user and password in BATON_DATABASE_URL and the user's grants.`;
  }
  const reason = (err as { code?: string; message?: string }).code ?? (err as Error).message;
  return (
    `cannot reach MySQL at ${describeDatabaseUrl(url)} (${reason}). ` +
    `Start MySQL/MariaDB (e.g. 'start-stop-daemon --start --background --exec /usr/sbin/mariadbd' or 'service mariadb start') ` +
    `or point BATON_DATABASE_URL at a running server.`
  );
}

/** The configuration from the environment and `overrides` (flags), or one line with its code and exit code 1. */
export function loadCliConfig(overrides: Partial<Config> = {}): Config {
  try {
    return loadConfig(process.env, overrides);
  } catch (err) {
    // Bad input, like every other: one line with its code, exit 1 (2 is for an unreachable database).
    exitWith(err instanceof BatonError ? `${err.code}: ${err.message}` : (err as Error).message, err instanceof BatonError ? 1 : 2);
  }
}

export interface OpenOptions {
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /**
   * Create the database when the server has none of its name: for the commands that set Baton
   * up (the services, `db migrate`, `dags test`). Without it a missing database is
   * BATON_DATABASE_MISSING, so a misspelt name never becomes a new, empty Baton.
   */
  create?: boolean;
}

/** Logger and a migrated database for `config`, or a one-line explanation and exit code 2. */
export async function openRuntime(config: Config = loadCliConfig(), options: OpenOptions = {}): Promise<Runtime> {
  const logger = createLogger(config.logLevel, {}, undefined, { format: config.logFormat });
  try {
    await (options.create ? ensureDatabase(config.databaseUrl) : requireDatabase(config.databaseUrl));
    const db = openDb(config.databaseUrl, { traceQueries: config.dbTraceQueries, statementTimeoutMs: config.dbStatementTimeoutMs, preparedStatements: config.dbPreparedStatements });
    if (options.migrate !== false) {
      const applied = await migrate(db, logger.scope({ component: "migrate" }));
      if (applied.length) logger.info(`applied ${applied.length} migration(s): ${applied.join(", ")}`);
    }
    return { config, db, logger };
  } catch (err) {
    if (isConnectionError(err) || isLoginError(err)) exitWith(explainDatabaseError(config.databaseUrl, err), 2);
    // A setting read only now (BATON_DATABASE_URL) is bad input like any other, exit 1; 2 says
    // the database is missing, refused or unusable (a failed or newer migration).
    if (err instanceof BatonError) exitWith(`${err.code}: ${err.message}`, err.code === "BATON_CONFIG_INVALID" ? 1 : 2);
    throw err;
  }
}

export const clock = systemClock;

/** A path as the CLI prints it: relative to the working directory when under it, else as it is (not ../../…). */
export function relative(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === "" || rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) ? file : rel;
}
