import { Type } from "typebox";
import { NAME_PATTERN, STORED_NAME_PATTERN } from "../core/dagLimits.ts";
import { parseDateTime } from "../core/dateTime.ts";
import { Nullable } from "./openapi.ts";

/**
 * The deepest offset a list pages to. Offsets are written into SQL as integer literals: one past
 * 2^53 would be written as 1e+21 (a syntax error, a 500), so every offset a client sends, in a
 * query string or a body, is bounded by its schema.
 */
export const MAX_OFFSET = 1_000_000_000;
/** Airflow's maximum_page_limit and fallback_page_limit (its [api] defaults). */
export const MAX_PAGE_LIMIT = 1000;
export const DEFAULT_PAGE_LIMIT = 100;
/** Lowered to MAX_PAGE_LIMIT when larger, and 0 is DEFAULT_PAGE_LIMIT, after validation (lenient.ts). */
const Limit = Type.Integer({
  minimum: 0,
  default: DEFAULT_PAGE_LIMIT,
  description: `At most ${MAX_PAGE_LIMIT}: a larger limit is lowered to ${MAX_PAGE_LIMIT}, and 0 means the default (${DEFAULT_PAGE_LIMIT}), as in Airflow.`,
});
const Offset = Type.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 });

/** Airflow's list paging: limit (default 100, at most 1000) and offset. */
export const PageQuery = Type.Object({
  limit: Type.Optional(Limit),
  offset: Type.Optional(Offset),
});

/** The same paging in the body of Airflow's batch lists (POST …/list). */
export const PageBody = {
  page_offset: Type.Optional(Offset),
  page_limit: Type.Optional(Limit),
};

/** Keyset paging beside limit/offset (dag run, task instance and event log lists). */
export const CursorQuery = Type.Object({
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 1024,
      description:
        "The next_cursor of the previous page: this page starts right after its last row, at the cost of the first page however deep. " +
        "Keep order_by and the filters; leave offset out. total_entries is then the one of the page the walk started from, not counted again.",
    }),
  ),
});

/**
 * A free-text identifier or filter of 1-`maxLength` characters, by the API's one name rule
 * (core/dagLimits.ts NAME_PATTERN): no control character, no whitespace at the end. MySQL compares
 * utf8mb4_bin with PAD SPACE: "a " finds "a", so a DELETE of "key " deleted "key".
 */
export function Name(maxLength: number, options: { description?: string } = {}) {
  return Type.String({ minLength: 1, maxLength, pattern: NAME_PATTERN, ...options });
}

/**
 * The key of a row the API may have written under an older, looser rule (core/dagLimits.ts
 * STORED_NAME_PATTERN): a variable key in its path. Anything but a trailing space, which PAD SPACE
 * would match to another row.
 */
export function StoredName(maxLength: number, options: { description?: string } = {}) {
  return Type.String({ minLength: 1, maxLength, pattern: STORED_NAME_PATTERN, ...options });
}

/** An identifier as Baton stores them (DAG, run and task ids, variable keys: VARCHAR(250)). */
export const Id = Name(250);
export const DagParams = Type.Object({ dag_id: Id });
export const RunParams = Type.Object({ dag_id: Id, dag_run_id: Id });
export const TaskParams = Type.Object({ dag_id: Id, dag_run_id: Id, task_id: Id });

// Airflow's DAGRun has dag_run_id, logical_date (execution_date) and note nullable: null is no
// value, as leaving the field out (an id is generated, the date is now, no note).
export const TriggerBody = Type.Object(
  {
    dag_run_id: Type.Optional(
      Nullable(Type.String({ minLength: 1, maxLength: 250, pattern: "^[A-Za-z0-9_.:+\\-]+$", description: "null or left out: manual__<logical_date>" })),
    ),
    logical_date: Type.Optional(Nullable(Type.String({ format: "date-time", description: "null or left out: now" }))),
    execution_date: Type.Optional(
      Nullable(
        Type.String({ format: "date-time", deprecated: true, description: "Airflow 2's name of logical_date (deprecated); if both are given they must be the same instant." }),
      ),
    ),
    conf: Type.Optional(Type.Object({}, { additionalProperties: true })),
    note: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  },
  { additionalProperties: false },
);

/**
 * The instant of a `format: "date-time"` value its schema let through; undefined when absent. The
 * format takes what JavaScript cannot place in time (a leap second, an offset of hours alone):
 * that is 400 BATON_INVALID_DATE naming `field` (e.g. "querystring.end_date_lte"), never a filter
 * that matches nothing.
 */
export function instantOf(value: string | undefined, field: string): Date | undefined {
  return value === undefined ? undefined : parseDateTime(value, field);
}

export const PatchDagBody = Type.Object({ is_paused: Type.Boolean() }, { additionalProperties: false });
