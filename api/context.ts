import type { Clock } from "../core/clock.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";

/** What every route plugin gets; the API holds no state of its own. */
/** "off" only in local development (loopback) and for the CLI's in-process API. */
export interface AuthSettings {
  mode: "on" | "off";
}

export interface ApiDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  auth: AuthSettings;
  /** taskHeartbeatTimeoutMs (default 30 s) decides when a worker counts as alive. */
  /** Limits left out (as in tests) are Fastify's defaults, with no rate limit and no CORS. */
  config: Pick<Config, "logsFolder"> &
    Partial<Pick<Config, "taskHeartbeatTimeoutMs" | "backfillMaxRuns" | "apiRateLimit" | "apiBodyLimitBytes" | "apiRequestTimeoutMs" | "corsOrigins" | "healthTimeoutMs" | "trustProxy">> & {
      /** Refused (401/403) requests per client address per minute before 429; default MAX_REFUSALS_PER_MINUTE. */
      authRefusalsPerMinute?: number;
    };
  /** A run was created: in `standalone`, wakes the in-process scheduler. */
  onRunCreated?: () => void;
  /** Task instances were queued (a clear): in `standalone`, wakes the in-process worker. */
  onTasksQueued?: () => void;
  /** Log one info line per request (a listening server; not the CLI's in-process API). Default false. */
  requestLog?: boolean;
  /**
   * Compile each route's validators and serializer at its first request instead of at start: the
   * CLI's in-process API answers one or two requests, and compiling every route's schemas took
   * about a fifth of a second of its start. A listening server compiles them all at start.
   */
  lazySchemas?: boolean;
}

/**
 * An API token as the event log names it (the entries' owner): what it changed and what it was
 * refused alike, so `?owner=token:<name>` finds both.
 */
export function tokenActor(name: string): string {
  return `token:${name}`;
}

/**
 * The database as the request's API token: what a route changes through it is logged in the
 * event log as `token:<name>`, not as the API process. Without a token (auth off), the process.
 */
export function dbFor(db: Db, request: { apiToken?: { name: string } }): Db {
  return request.apiToken ? db.actingAs(tokenActor(request.apiToken.name)) : db;
}
