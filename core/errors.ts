import type { RunState } from "./states.ts";

/**
 * Every error Baton reports, in one table (Fastify's lib/errors.js is the model).
 * A code means one thing forever: retired codes go to RETIRED_CODES and are never reused.
 * docs/errors.md documents each code; test/unit/errors.test.ts checks both ways.
 */
export const ERRORS = {
  BATON_VALIDATION_FAILED: { status: 400, title: "Request validation failed" },
  BATON_INVALID_CONF: { status: 400, title: "Invalid run conf" },
  BATON_INVALID_DATE: { status: 400, title: "Invalid date" },
  BATON_INVALID_CONTINUATION_TOKEN: { status: 400, title: "Invalid continuation token" },
  BATON_INVALID_CURSOR: { status: 400, title: "Invalid list cursor" },
  BATON_CURSOR_WITH_OFFSET: { status: 400, title: "Cursor and offset given together" },
  BATON_DAG_NOT_FOUND: { status: 404, title: "DAG not found" },
  BATON_DAG_RUN_NOT_FOUND: { status: 404, title: "DAG run not found" },
  BATON_TASK_NOT_FOUND: { status: 404, title: "Task instance not found" },
  BATON_SIGNAL_NOT_AWAITED: { status: 404, title: "No task of the run waits for this signal" },
  BATON_VERSION_NOT_FOUND: { status: 404, title: "DAG version not found" },
  BATON_XCOM_NOT_FOUND: { status: 404, title: "XCom entry not found" },
  BATON_LOG_NOT_FOUND: { status: 404, title: "Task log not found" },
  BATON_EVENT_LOG_NOT_FOUND: { status: 404, title: "Event log entry not found" },
  BATON_IMPORT_ERROR_NOT_FOUND: { status: 404, title: "Import error not found" },
  BATON_ROUTE_NOT_FOUND: { status: 404, title: "Route not found" },
  BATON_METHOD_NOT_ALLOWED: { status: 405, title: "Method not allowed" },
  BATON_UNAUTHENTICATED: { status: 401, title: "Authentication required" },
  BATON_FORBIDDEN: { status: 403, title: "Role not allowed" },
  BATON_TOKEN_NOT_FOUND: { status: 404, title: "API token not found" },
  BATON_TOKEN_EXISTS: { status: 409, title: "API token already exists" },
  BATON_RATE_LIMITED: { status: 429, title: "Too many requests" },
  BATON_DAG_RUN_EXISTS: { status: 409, title: "DAG run already exists" },
  BATON_DAG_INACTIVE: { status: 409, title: "DAG is not active" },
  BATON_DAG_RUN_FINISHED: { status: 409, title: "DAG run has finished" },
  BATON_TASKS_RUNNING: { status: 409, title: "Task instances are still running" },
  BATON_DAG_RUN_CANCELLED: { status: 500, title: "DAG run was cancelled" },
  BATON_VERSION_INCOMPATIBLE: { status: 409, title: "Latest DAG version does not fit this run" },
  BATON_CLEAR_MIXES_COMPENSATION: { status: 409, title: "Clear mixes compensations with other tasks" },
  BATON_DAG_RUN_COMPENSATING: { status: 409, title: "DAG run's saga compensation has started" },
  BATON_DAG_RUN_REPLACED: { status: 409, title: "DAG run was replaced by a backfill's run" },
  BATON_IDEMPOTENCY_CONFLICT: { status: 409, title: "Idempotency key reused with another request" },
  BATON_BACKFILL_NOT_FOUND: { status: 404, title: "Backfill not found" },
  BATON_BACKFILL_INVALID_RANGE: { status: 400, title: "Backfill date range is reversed" },
  BATON_BACKFILL_NO_SCHEDULE: { status: 400, title: "DAG has no periodic schedule to backfill" },
  BATON_BACKFILL_TOO_LARGE: { status: 400, title: "Backfill covers too many runs" },
  BATON_BACKFILL_FUTURE_DATES: { status: 400, title: "Backfill range has no ended data interval" },
  BATON_BACKFILL_NO_DATES: { status: 400, title: "Backfill range holds no date of the schedule" },
  BATON_BACKFILL_ALREADY_RUNNING: { status: 409, title: "Another backfill of the DAG is unfinished" },
  BATON_BACKFILL_INVALID_DIRECTION: { status: 400, title: "Backfill cannot run backwards over dependsOnPast tasks" },
  BATON_BACKFILL_INVALID_REPROCESS: { status: 400, title: "Backfill of dependsOnPast tasks needs a reprocess behavior" },
  BATON_BACKFILL_FINISHED: { status: 409, title: "Backfill has finished" },
  BATON_POOL_NOT_FOUND: { status: 404, title: "Pool not found" },
  BATON_POOL_EXISTS: { status: 409, title: "Pool already exists" },
  BATON_POOL_PROTECTED: { status: 409, title: "Pool cannot be deleted" },
  BATON_VARIABLE_NOT_FOUND: { status: 404, title: "Variable not found" },
  BATON_VARIABLE_EXISTS: { status: 409, title: "Variable already exists" },
  BATON_CONNECTION_NOT_FOUND: { status: 404, title: "Connection not found" },
  BATON_CONNECTION_EXISTS: { status: 409, title: "Connection already exists" },
  BATON_PAYLOAD_TOO_LARGE: { status: 413, title: "Payload too large" },
  BATON_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: "Unsupported media type" },
  BATON_DATABASE_UNAVAILABLE: { status: 503, title: "Database unavailable" },
  BATON_API_UNREACHABLE: { status: 503, title: "Baton API unreachable" },
  BATON_DATABASE_BUSY: { status: 503, title: "Database busy" },
  BATON_DATABASE_MISSING: { status: 500, title: "Database does not exist" },
  BATON_MIGRATION_CHECKSUM_MISMATCH: { status: 500, title: "Applied migration was changed" },
  BATON_MIGRATION_LOCK_TIMEOUT: { status: 500, title: "Could not acquire the migration lock" },
  BATON_MIGRATION_INVALID: { status: 500, title: "A migration file is misplaced" },
  BATON_MIGRATION_FAILED: { status: 500, title: "A migration failed" },
  BATON_DATABASE_TOO_NEW: { status: 500, title: "Database migrated by a newer Baton" },
  BATON_DAG_IMPORT_ERROR: { status: 422, title: "DAG file could not be imported" },
  BATON_DAG_PARSE_TIMEOUT: { status: 422, title: "DAG file took too long to load" },
  BATON_DAG_LOADER_DIED: { status: 422, title: "DAG file loader process died" },
  BATON_DAG_CYCLE: { status: 422, title: "DAG has a cycle" },
  BATON_DAG_ID_CONFLICT: { status: 422, title: "DAG id defined by another file" },
  BATON_DAG_NOT_EXPORTED: { status: 422, title: "DAG created but not exported" },
  BATON_DUPLICATE_TASK_ID: { status: 422, title: "Duplicate task id" },
  BATON_INVALID_DAG: { status: 422, title: "Invalid DAG definition" },
  BATON_DAG_TOO_LARGE: { status: 422, title: "DAG file too large to store" },
  BATON_DAGS_FOLDER_UNREADABLE: { status: 422, title: "DAG folder or part of it cannot be read" },
  BATON_DAG_FILELOC_TOO_LONG: { status: 422, title: "DAG file path too long to store" },
  BATON_SIGNAL_TIMEOUT: { status: 500, title: "No signal arrived before the timeout" },
  BATON_SENSOR_TIMEOUT: { status: 500, title: "Sensor timed out" },
  BATON_TASK_TIMEOUT: { status: 500, title: "Task exceeded its execution timeout" },
  BATON_DAGRUN_TIMEOUT: { status: 500, title: "DAG run exceeded its dagrunTimeout" },
  BATON_WORKER_CHILD_EXITED: { status: 500, title: "Task process exited unexpectedly" },
  BATON_TASK_ZOMBIE: { status: 500, title: "Task's worker stopped heartbeating" },
  BATON_RESULT_UNRECORDABLE: { status: 500, title: "Task result could not be stored" },
  BATON_TASK_UNCLAIMABLE: { status: 500, title: "Task could not be claimed" },
  BATON_TASK_INPUTS_UNREADABLE: { status: 500, title: "Task's inputs could not be read" },
  BATON_DAG_VERSION_UNUSABLE: { status: 500, title: "Stored DAG version cannot be read" },
  BATON_CONFIG_INVALID: { status: 500, title: "Invalid configuration" },
  BATON_LISTEN_FAILED: { status: 500, title: "Could not listen on the configured address" },
  BATON_INTERNAL: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Codes that were once used and must never be given another meaning. */
export const RETIRED_CODES: readonly string[] = [];

/**
 * Facts an error hands a client beside its `detail` text, for code to branch on: problem JSON's
 * `details` member (an RFC 9457 extension member). Every member is declared in the OpenAPI
 * document (api/openapi.ts PROBLEM_DETAILS_SCHEMA, which must cover this type) and documented in
 * docs/errors.md, and only declared members are ever sent (api/errors.ts problemOf): nothing else
 * an error carries, such as a row, a URL or a secret, reaches a client through it.
 */
export interface ProblemDetails {
  /** The DAG run's state, when a run's state refused the request (BATON_DAG_RUN_FINISHED). */
  state?: RunState;
}

export class BatonError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: ProblemDetails;

  constructor(code: ErrorCode, detail?: string, details?: ProblemDetails) {
    super(detail ?? ERRORS[code].title);
    this.name = "BatonError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }
}

export function isBatonError(value: unknown): value is BatonError {
  return value instanceof BatonError;
}
