// What the database can hold of a DAG's options (column types in migrations/). The SDK and the
// serializer both check them, so an option that does not fit is an import error naming it: found
// only when a run started, its task_instance INSERT failed the scheduler's whole batch of runs on
// every tick (for every DAG), and the run stayed pinned to the bad version.
import { MAX_DURATION_MS } from "./durations.ts";

/** dag.dag_id and task_instance.task_id are VARCHAR(250). */
export const MAX_ID_LENGTH = 250;
/** task_instance.queue, task_callback.queue: VARCHAR(256). */
export const MAX_QUEUE_LENGTH = 256;
/** pool.name, task_instance.pool: VARCHAR(256). */
export const MAX_POOL_LENGTH = 256;
/** dag.owners: VARCHAR(255). */
export const MAX_OWNER_LENGTH = 255;
/** dag.schedule: VARCHAR(255). */
export const MAX_SCHEDULE_LENGTH = 255;
/** dag.timezone: VARCHAR(64). */
export const MAX_TIMEZONE_LENGTH = 64;
/** dag.description: TEXT, 65,535 bytes (UTF-8). */
export const MAX_DESCRIPTION_BYTES = 65_535;
/** max_tries (INT) becomes try_number + retries at each clear: far from INT's end, clear after clear. */
export const MAX_RETRIES = 1_000_000;
/** The largest pool the API creates: a task asking more could never run. */
export const MAX_POOL_SLOTS = 1_000_000;
/**
 * Priority weights. A try's priority_weight (INT) is its task's effective weight (its own weight
 * summed over its downstream or upstream tasks, by weightRule), less BACKFILL_PRIORITY_OFFSET (1e9)
 * in a backfill run; claims and the hand-off gate tell backfill tries by priority alone (below
 * BACKFILL_PRIORITY_FLOOR, -5e8). So effective weights stay within ±499,999,999: an ordinary try's
 * priority is then never below the floor and a backfill try's never at or above it (a weight of
 * -6e8 ran while its DAG was paused, as backfill; a backfill try of weight 6e8 ran as ordinary).
 * Declared weights are limited to ±100,000,000 (an import error past it), so a few tasks' sum
 * stays meaningful; larger sums are clamped, as Airflow clamps to its INT.
 * test/unit/priorityWeight.test.ts checks these against the store's offset and floor.
 */
export const PRIORITY_WEIGHT_MIN = -100_000_000;
export const PRIORITY_WEIGHT_MAX = 100_000_000;
export const EFFECTIVE_PRIORITY_WEIGHT_MIN = -499_999_999;
export const EFFECTIVE_PRIORITY_WEIGHT_MAX = 499_999_999;
/**
 * Durations (timeouts, delays, intervals) become DATETIMEs (timeout_at, next_check_at, …) as now +
 * the duration; DATETIME ends at 9999, so a duration of 10,000,000 weeks failed every tick.
 * parseDuration refuses longer ones; durationProblem checks a structure that did not go through it.
 */
export { MAX_DURATION_MS };
/** max_active_runs, max_active_tasks: INT. */
export const MAX_INT = 2_147_483_647;

/** The longest id a task with `compensate` may have: its compensation task is `<id>__compensate`. */
export const MAX_COMPENSABLE_ID_LENGTH = MAX_ID_LENGTH - "__compensate".length;

/** An effective weight (or a stored one from an older, wider range) clamped into the effective range. */
export function clampPriorityWeight(weight: number): number {
  return Math.min(EFFECTIVE_PRIORITY_WEIGHT_MAX, Math.max(EFFECTIVE_PRIORITY_WEIGHT_MIN, weight));
}

function integerProblem(field: string, value: unknown, min: number, max: number): string | null {
  if (value === undefined) return null;
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return null;
  return `${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`;
}

function textProblem(field: string, value: unknown, maxLength: number, minLength = 1, isName = false): string | null {
  if (value === undefined) return null;
  if (typeof value !== "string") return `${field} must be a string, got ${JSON.stringify(value)}`;
  // A name the database compares ignores trailing spaces: "x " would be matched to "x".
  if (isName && /\s$/.test(value)) return `${field} must not end with whitespace, got ${JSON.stringify(value.slice(-40))}`;
  // Characters, as VARCHAR(n) counts them in utf8mb4 (code points, not UTF-16 units).
  const length = [...value].length;
  if (length < minLength || length > maxLength) {
    return `${field} must be ${minLength}-${maxLength} characters, got ${length}${length > 0 ? ` (${JSON.stringify(value.slice(0, 40))}${length > 40 ? "…" : ""})` : ""}`;
  }
  return null;
}

/**
 * Unicode's control characters (Cc: U+0000-U+001F, U+007F-U+009F; a newline, a tab) as the body of
 * a character class, for the patterns below and CONTROL_CHARACTER: the one definition. No pool or
 * queue name holds one: names are printed in log lines and CLI tables, where a newline would split
 * a line. Spelled as ranges, not \p{Cc}: it means the same with or without the u flag, for
 * whatever client reads a pattern from the OpenAPI document.
 */
const CC = "\\u0000-\\u001f\\u007f-\\u009f";
const CONTROL_CHARACTER = new RegExp(`[${CC}]`);

/** The first control character in `value`, as "U+000A"; null when it holds none. */
export function controlCharacterIn(value: string): string | null {
  const control = CONTROL_CHARACTER.exec(value);
  return control ? `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}` : null;
}

/** Why `value` holds a control character, as a message about `field`; null when it holds none. */
function controlCharacterProblem(field: string, value: string): string | null {
  const code = controlCharacterIn(value);
  if (code === null) return null;
  return `${field} must not contain control characters (a newline, a tab: it is printed in log lines), got ${code} in ${JSON.stringify(value.slice(0, 40))}`;
}

/**
 * A pool name, the one rule of the API (its schema's pattern), the CLI and DAG files: any 1-256
 * characters (Airflow allows any name), except
 * - a name ending with whitespace: pool.name compares with PAD SPACE, so "gpu " would be "gpu";
 * - "." and "..": as a path segment (GET /api/v1/pools/{name}) HTTP clients resolve them away
 *   (fetch sends /api/v1/pools/.. as /api/v1/), so such a pool could never be read or deleted;
 * - a control character (Unicode's Cc: U+0000-U+001F, U+007F-U+009F; a newline, a tab): names
 *   are printed in log lines and CLI tables, where a newline would split a line.
 * Leading whitespace is kept (the database ignores trailing spaces only). Any other character is
 * sent percent-encoded in the path (encodeURIComponent: "team/gpu" is team%2Fgpu) and decoded by
 * the router.
 */
export const POOL_NAME_PATTERN = `^(?!\\.\\.?$)[^${CC}]*[^\\s${CC}]$`;
/** What POOL_NAME_PATTERN asks besides the length, as the API says it. */
export const POOL_NAME_RULE =
  'must not end with whitespace, contain control characters (a newline, a tab), nor be "." or ".." (a pool name is any other 1-256 characters)';

/**
 * A connection id as the API creates one (POST /connections, PATCH's new id): 1-250 ASCII letters,
 * digits and `_ . : @ # ! -` (Airflow's conn_id characters; connection.connection_id is a
 * VARCHAR(250)). The sensors' connId / httpConnId are checked with it when the DAG file loads, so an
 * id no connection can have is an import error rather than a retried BATON_CONNECTION_NOT_FOUND at
 * each poke. ctx.connection(id) reads any stored id (1-250 characters, not ending with a space).
 */
export const CONNECTION_ID_PATTERN = "^[A-Za-z0-9_.:@#!-]+$";
export const MAX_CONNECTION_ID_LENGTH = 250;
/** What CONNECTION_ID_PATTERN and MAX_CONNECTION_ID_LENGTH ask, as messages say it. */
export const CONNECTION_ID_RULE = "1-250 ASCII letters, digits and _ . : @ # ! -";
const CONNECTION_ID = new RegExp(CONNECTION_ID_PATTERN);

export function isConnectionId(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_CONNECTION_ID_LENGTH && CONNECTION_ID.test(value);
}

/** Why `value` cannot name a pool, as a message about `field`; null when it can (or is undefined). */
export function poolNameProblem(field: string, value: unknown): string | null {
  const problem = textProblem(field, value, MAX_POOL_LENGTH, 1, true);
  if (problem !== null || value === undefined) return problem;
  if (value === "." || value === "..") return `${field} must not be "." or ".." (a path segment HTTP clients resolve away)`;
  return controlCharacterProblem(field, value as string);
}

/**
 * A queue name (a task's `queue`, a worker's --queues): any 1-256 characters (task_instance.queue
 * is a VARCHAR(256)) not ending with whitespace (the column compares with PAD SPACE: "etl " would
 * be "etl") and without a control character, as pool names (it is printed in log lines too). Unlike
 * a pool name, no comma and no leading whitespace: `baton worker --queues` splits its value at
 * commas and trims each name, so no worker could serve such a queue (and `--queues gpu,fast`, which
 * the `queue` dependency reason suggests, would serve "gpu" and "fast").
 */
export function queueNameProblem(field: string, value: unknown): string | null {
  const problem = textProblem(field, value, MAX_QUEUE_LENGTH, 1, true);
  if (problem !== null || value === undefined) return problem;
  if ((value as string).includes(",")) return `${field} must not contain "," (baton worker --queues splits at commas), got ${JSON.stringify((value as string).slice(0, 40))}`;
  if (/^\s/.test(value as string)) return `${field} must not start with whitespace (baton worker --queues trims it), got ${JSON.stringify((value as string).slice(0, 40))}`;
  return controlCharacterProblem(field, value as string);
}

/**
 * A worker's --hostname: recorded on the task instances it runs (task_instance.hostname, a
 * VARCHAR(255): a longer name failed every claim of the worker) and printed in log lines and by
 * GET /api/v1/workers, so 1-255 characters without a control character.
 */
export function hostnameProblem(field: string, value: unknown): string | null {
  const problem = textProblem(field, value, MAX_HOSTNAME_LENGTH);
  if (problem !== null || value === undefined) return problem;
  return controlCharacterProblem(field, value as string);
}

/**
 * The API's one rule for a free-text identifier or a filter compared with stored names: path ids
 * (dag_id, dag_run_id, task_id, a variable key, an XCom key), the id lists of the batch lists, a
 * pool or queue filter (GET …/taskInstances?queue=), a signal_id, the event log's filters. No stored
 * name ends with whitespace (the columns compare with PAD SPACE: "etl " would find "etl") or holds a
 * control character (DAG files cannot declare one: poolNameProblem, queueNameProblem, the SDK's id
 * and signal name patterns; the API creates none), so one that does is refused rather than answered
 * for another name or for none. A variable key an older API stored may break it: STORED_NAME_PATTERN
 * looks those up. Leading whitespace is kept, as in pool names. Narrower rules (a
 * connection id, a token name, a signal name) are stricter patterns of their own.
 */
export const NAME_PATTERN = `^[^${CC}]*[^\\s${CC}]$`;
/** What NAME_PATTERN asks besides the length, as the API says it. */
export const NAME_RULE = "must not end with a space or other whitespace, nor contain control characters (a newline, a tab)";

/**
 * What the API takes as the key of a row it may have written under an older rule: until
 * NAME_PATTERN, POST /variables took any key not ending with a space ("a\tb", "k\t", "key\u00a0"),
 * and GET /variables lists such rows, so GET/PATCH/DELETE /variables/{variable_key} must find them.
 * Only a key ending with a space (U+0020) is refused: MySQL's PAD SPACE would match "key " to "key"
 * (a DELETE of "key " deleted "key"), so no row is that key. Creating still follows NAME_PATTERN.
 */
export const STORED_NAME_PATTERN = "[^ ]$";
/** What STORED_NAME_PATTERN asks besides the length, as the API says it. */
export const STORED_NAME_RULE = "must not end with a space (the database would match the name without it)";

/** task_instance.hostname: VARCHAR(255). */
export const MAX_HOSTNAME_LENGTH = 255;

/** run_signal.name and task_instance.deferred_on: VARCHAR(255). */
export const MAX_SIGNAL_NAME_LENGTH = 255;
/**
 * A signal name, the one rule of DAG files (waitForSignal's `signal`) and the API (POST and GET
 * …/dagRuns/{run}/signals/{name}, ?name=): every name a DAG can wait for can be sent, and nothing
 * else. Letters, digits and "_.:-": a name is a path segment, sent as it is.
 */
export const SIGNAL_NAME_PATTERN = "^[A-Za-z0-9_.:-]+$";
/** What SIGNAL_NAME_PATTERN and the length ask, as the API and import errors say it. */
export const SIGNAL_NAME_RULE = `must be 1-${MAX_SIGNAL_NAME_LENGTH} letters, digits, "_", ".", ":" or "-"`;
const SIGNAL_NAME = new RegExp(SIGNAL_NAME_PATTERN);

/** Why `value` cannot name a signal, as a message about `field`; null when it can. */
export function signalNameProblem(field: string, value: unknown): string | null {
  if (typeof value === "string" && value.length <= MAX_SIGNAL_NAME_LENGTH && SIGNAL_NAME.test(value)) return null;
  return `${field} ${SIGNAL_NAME_RULE}, got ${JSON.stringify(value)}`;
}

/**
 * maxActiveTisPerDag (task_instance.max_active_tis_per_dag, INT): how many instances of a task may
 * run at once across its DAG's runs. At most as many as a DAG may run in all (maxActiveTasks' INT).
 */
export const MAX_ACTIVE_TIS_PER_DAG = MAX_INT;

/** The first task option (or defaultArgs) the database cannot hold, as a message; null when all fit. */
export function taskOptionProblem(o: {
  retries?: unknown;
  priorityWeight?: unknown;
  poolSlots?: unknown;
  queue?: unknown;
  pool?: unknown;
  maxActiveTisPerDag?: unknown;
}): string | null {
  return (
    integerProblem("retries", o.retries, 0, MAX_RETRIES) ??
    integerProblem("priorityWeight", o.priorityWeight, PRIORITY_WEIGHT_MIN, PRIORITY_WEIGHT_MAX) ??
    integerProblem("poolSlots", o.poolSlots, 1, MAX_POOL_SLOTS) ??
    queueNameProblem("queue", o.queue) ??
    poolNameProblem("pool", o.pool) ??
    // null: no limit (a task's null undoes its DAG's defaultArgs limit), as Airflow's None.
    (o.maxActiveTisPerDag === null ? null : integerProblem("maxActiveTisPerDag", o.maxActiveTisPerDag, 1, MAX_ACTIVE_TIS_PER_DAG))
  );
}

/** The first DAG option the database cannot hold, as a message; null when all fit. */
export function dagOptionProblem(o: {
  owner?: unknown;
  description?: unknown;
  schedule?: unknown;
  timezone?: unknown;
  maxActiveRuns?: unknown;
  maxActiveTasks?: unknown;
}): string | null {
  if (o.description !== undefined && o.description !== null) {
    if (typeof o.description !== "string") return `description must be a string, got ${JSON.stringify(o.description)}`;
    const bytes = new TextEncoder().encode(o.description).length;
    if (bytes > MAX_DESCRIPTION_BYTES) return `description must be at most ${MAX_DESCRIPTION_BYTES} bytes (UTF-8), got ${bytes}`;
  }
  return (
    textProblem("owner", o.owner, MAX_OWNER_LENGTH) ??
    (typeof o.schedule === "string" ? textProblem("schedule", o.schedule, MAX_SCHEDULE_LENGTH, 0) : null) ??
    textProblem("timezone", o.timezone, MAX_TIMEZONE_LENGTH, 0) ??
    integerProblem("maxActiveRuns", o.maxActiveRuns, 1, MAX_INT) ??
    integerProblem("maxActiveTasks", o.maxActiveTasks, 1, MAX_INT)
  );
}

/** A duration option (in ms, already parsed) the database cannot add to now; null when it fits. */
export function durationProblem(field: string, ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined || ms <= MAX_DURATION_MS) return null;
  return `${field} must be at most 100 years (${MAX_DURATION_MS} ms), got ${ms} ms`;
}
