// Read-only queries behind the API and CLI. Lists order by a unique key so pages are stable.
import type { DagShape } from "../../core/dagStructure.ts";
import { BatonError } from "../../core/errors.ts";
import type { Queryable, ResultSetHeader, RowDataPacket } from "../db.ts";
import { Conditions, type KeysetPosition, type SortKey } from "./conditions.ts";
import { pageTotal } from "./counting.ts";
import { DATES_AS_TEXT } from "../rows.ts";
import { keysetPage, limitOffset, sqlCount, type KeysetOrder, type SortValueType } from "./paging.ts";

export interface Page {
  limit: number;
  offset: number;
}

/** Fields GET /dags may order by (a leading "-" sorts descending); dag_id breaks ties. */
export const DAG_ORDER_FIELDS = { dag_id: "d.dag_id", last_parsed_time: "d.last_parsed_at", next_dagrun: "d.next_dagrun" } as const;
export type DagOrderField = keyof typeof DAG_ORDER_FIELDS;

export interface DagFilter {
  onlyActive: boolean;
  paused?: boolean;
  /** Any of these tags (JSON_CONTAINS on dag.tags). */
  tags?: string[];
  /** Case-insensitive substring of dag_id; % and _ match themselves. */
  dagIdPattern?: string;
  dagIds?: string[];
}

/** The order an API order_by value ("field" or "-field") asks for, with a unique tie-breaker in the same direction. */
function sortKeyOf(value: string | undefined, columns: Record<string, string>, fallback: string, tieBreaker: string): SortKey & { field: string } {
  const raw = value ?? fallback;
  const descending = raw.startsWith("-");
  const field = descending ? raw.slice(1) : raw;
  const column = columns[field];
  if (!column) throw new Error(`order_by "${raw}" is not one of ${Object.keys(columns).join(", ")}`);
  return { field, column, tieBreaker, descending, nullable: false };
}

function orderSql(k: SortKey): string {
  const dir = k.descending ? "DESC" : "ASC";
  if (k.column === k.tieBreaker || k.redundant === "tieBreaker") return `ORDER BY ${k.column} ${dir}`;
  return k.redundant === "column" ? `ORDER BY ${k.tieBreaker} ${dir}` : `ORDER BY ${k.column} ${dir}, ${k.tieBreaker} ${dir}`;
}

/** `ORDER BY` from an API order_by value ("field" or "-field"), with a unique tie-breaker in the same direction. */
export function orderBy(value: string | undefined, columns: Record<string, string>, fallback: string, tieBreaker: string): string {
  return orderSql(sortKeyOf(value, columns, fallback, tieBreaker));
}

/** `LIKE` operand matching `text` anywhere, its wildcards escaped (backslash is LIKE's default escape). */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, "\\$&")}%`;
}

function dagWhere(f: DagFilter): { sql: string; params: unknown[] } {
  const w = new Conditions();
  if (f.onlyActive) w.add("d.is_active = 1");
  if (f.paused !== undefined) w.add("d.is_paused = ?", f.paused ? 1 : 0);
  if (f.tags?.length) w.add(`(${f.tags.map(() => "JSON_CONTAINS(d.tags, ?)").join(" OR ")})`, ...f.tags.map((t) => JSON.stringify(t)));
  if (f.dagIdPattern) w.add("LOWER(d.dag_id) LIKE ?", containsPattern(f.dagIdPattern.toLowerCase()));
  w.in("d.dag_id", f.dagIds, "none");
  return w;
}

export async function listDags(db: Queryable, p: Page & DagFilter & { orderBy?: string }) {
  const w = dagWhere(p);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT d.*, EXISTS (SELECT 1 FROM import_error e WHERE e.fileloc = d.fileloc) AS has_import_errors
       FROM dag d WHERE ${w.sql} ${orderBy(p.orderBy, DAG_ORDER_FIELDS, "dag_id", "d.dag_id")} ${limitOffset(p)}`,
    w.params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM dag d WHERE ${w.sql}`, w.params);
  return { rows, total: Number(count!.n) };
}

export async function getDag(db: Queryable, dagId: string) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT d.*, EXISTS (SELECT 1 FROM import_error e WHERE e.fileloc = d.fileloc) AS has_import_errors FROM dag d WHERE d.dag_id = ?`,
    [dagId],
  );
  return rows[0];
}

/** A DAG's running tries, all runs: what the claim counts against its maxActiveTasks (ix_ti_dag_pool's prefix). */
export async function runningTaskCount(db: Queryable, dagId: string): Promise<number> {
  const [[row]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND state = 'running'", [dagId]);
  return Number(row!.n);
}

/** Running instances of a task across its DAG's runs, as a claim counts them for maxActiveTisPerDag (claimTasks). */
export async function runningTaskInstanceCount(db: Queryable, dagId: string, taskId: string): Promise<number> {
  const [[row]] = await db.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM task_instance FORCE INDEX (ix_ti_dag_pool) WHERE dag_id = ? AND state = 'running' AND task_id = ?",
    [dagId, taskId],
  );
  return Number(row!.n);
}

export async function setDagPaused(db: Queryable, dagId: string, paused: boolean): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("UPDATE dag SET is_paused = ? WHERE dag_id = ?", [paused ? 1 : 0, dagId]);
  return result.affectedRows > 0;
}

/** PATCH /dags: pauses or unpauses the DAGs named. */
export async function setDagsPaused(db: Queryable, dagIds: string[], paused: boolean): Promise<void> {
  if (dagIds.length === 0) return;
  await db.query(`UPDATE dag SET is_paused = ? WHERE dag_id IN (${dagIds.map(() => "?").join(", ")})`, [paused ? 1 : 0, ...dagIds]);
}

/** Fields dag run lists may order by (a leading "-" sorts descending); the row id breaks ties. */
export const DAG_RUN_ORDER_FIELDS = {
  id: "r.id",
  dag_id: "r.dag_id",
  dag_run_id: "r.run_id",
  state: "r.state",
  execution_date: "r.logical_date",
  logical_date: "r.logical_date",
  start_date: "r.start_date",
  end_date: "r.end_date",
  queued_at: "r.queued_at",
} as const;
export type DagRunOrderField = keyof typeof DAG_RUN_ORDER_FIELDS;

export interface DateRange {
  gte?: Date;
  lte?: Date;
}

export interface DagRunFilter {
  /** Every DAG when undefined. */
  dagIds?: string[];
  states?: string[];
  logicalDate?: DateRange;
  startDate?: DateRange;
  endDate?: DateRange;
}

function dagRunWhere(f: DagRunFilter): Conditions {
  return new Conditions()
    .in("r.dag_id", f.dagIds, "none")
    .in("r.state", f.states, "any")
    .range("r.logical_date", f.logicalDate?.gte, f.logicalDate?.lte)
    .range("r.start_date", f.startDate?.gte, f.startDate?.lte)
    .range("r.end_date", f.endDate?.gte, f.endDate?.lte);
}

/**
 * Keyset paging of dag runs, per order field: its values' type and NULLability (what a cursor
 * holds), and the index that keeps the runs in that order, for one DAG's runs and for every
 * DAG's. Without one the runs are sorted on every page (they still start after the cursor).
 */
const DAG_RUN_KEYSETS: Record<DagRunOrderField, { type: SortValueType; nullable?: true; oneDag?: string; anyDag?: string }> = {
  id: { type: "id", oneDag: "ix_dag_run_dag_id", anyDag: "PRIMARY" },
  dag_id: { type: "string", oneDag: "ix_dag_run_dag_id", anyDag: "ix_dag_run_dag_id" },
  dag_run_id: { type: "string", oneDag: "ux_dag_run" },
  state: { type: "string", oneDag: "ix_dag_run_dag_state", anyDag: "ix_dag_run_state" },
  execution_date: { type: "date", nullable: true, oneDag: "ix_dag_run_dag_logical" },
  logical_date: { type: "date", nullable: true, oneDag: "ix_dag_run_dag_logical" },
  start_date: { type: "date", nullable: true },
  end_date: { type: "date", nullable: true },
  queued_at: { type: "date" },
};

/** The order of a dag run list for an order_by value (default: id), of one DAG's runs or not. */
export function dagRunOrder(value: string | undefined, f: DagRunFilter = {}): KeysetOrder & { index?: string } {
  const key = sortKeyOf(value, DAG_RUN_ORDER_FIELDS, "id", "r.id");
  const { type, nullable, oneDag, anyDag } = DAG_RUN_KEYSETS[key.field as DagRunOrderField];
  const one = f.dagIds?.length === 1;
  const index = one ? oneDag : f.dagIds === undefined ? anyDag : undefined;
  const redundant = !one ? undefined : key.field === "dag_run_id" ? "tieBreaker" : key.field === "dag_id" ? "column" : undefined;
  return { ...key, orderBy: value ?? "id", type, nullable: nullable ?? false, redundant, index };
}

const DEFERRED_JOIN_FROM_OFFSET = 1_000;

/**
 * What a dag run list answers with (api/serializers.ts, dagRunJson) and pages on; the rest of the
 * row (idempotency, backfill and scheduling bookkeeping, four dates among them) is left unread:
 * parsing 100 rows of it was a fifth of a page's work in the API.
 */
const DAG_RUN_LIST_COLUMNS = [
  "id", "dag_id", "run_id", "version_hash", "run_type", "state", "logical_date", "data_interval_start", "data_interval_end",
  "conf", "note", "external_trigger", "queued_at", "start_date", "end_date", "compensation",
].map((c) => `r.${c}`).join(", ");

/** The same for task instance lists (taskInstanceJson): no upstream counters, claim or sensor bookkeeping. */
const TASK_INSTANCE_LIST_COLUMNS = [
  "id", "dag_id", "run_id", "task_id", "map_index", "state", "try_number", "max_tries", "priority_weight", "pool", "pool_slots",
  "queue", "trigger_rule", "hostname", "pid", "queued_at", "start_date", "end_date", "duration", "next_retry_at", "error",
  "deferred_on", "next_check_at",
].map((c) => `ti.${c}`).join(", ");

/**
 * The statements of a dag run page by offset: the page's rows (one more than the page, which
 * tells whether another page follows) and the count for its total. bench/api.ts explains and
 * times the same ones.
 */
export function dagRunPageStatements(f: DagRunFilter, p: Page & { orderBy?: string }) {
  const w = dagRunWhere(f);
  const key = dagRunOrder(p.orderBy, f);
  const order = orderSql(key);
  const more = { limit: p.limit + 1, offset: p.offset };
  // Deep pages use a deferred join: the page's ids come from an index-only walk ((dag_id, id) for
  // one DAG's runs), then only those rows are read: 100,000 runs deep, 38 ms instead of 130 ms.
  // Near the start the plain query is cheaper (4 ms against 7 ms for the first page).
  const sql =
    p.offset >= DEFERRED_JOIN_FROM_OFFSET
      ? `SELECT ${DAG_RUN_LIST_COLUMNS} FROM dag_run r JOIN (SELECT r.id FROM dag_run r WHERE ${w.sql} ${order} ${limitOffset(more)}) k ON k.id = r.id ${order}`
      : `SELECT ${DAG_RUN_LIST_COLUMNS} FROM dag_run r WHERE ${w.sql} ${order} ${limitOffset(more)}`;
  return { key, asked: more.limit, rows: { sql, params: w.params }, count: { sql: `SELECT COUNT(*) AS n FROM dag_run r WHERE ${w.sql}`, params: w.params } };
}

/** A page by offset (Airflow's paging), its total, and where a keyset page after it starts (null: it is the last). */
export async function listDagRuns(db: Queryable, f: DagRunFilter, p: Page & { orderBy?: string }) {
  const s = dagRunPageStatements(f, p);
  const [rows] = await db.query<RowDataPacket[]>({ sql: s.rows.sql, ...DATES_AS_TEXT }, s.rows.params);
  const total = await pageTotal(db, s.count.sql, s.count.params, { offset: p.offset, asked: s.asked, fetched: rows.length });
  return { ...keysetPage(rows, p.limit, s.key), total };
}

/** The dag run filter holds nothing but the DAGs, so the index of the order alone finds a page. */
function onlyDags(f: DagRunFilter): boolean {
  const open = (r?: DateRange) => r?.gte === undefined && r?.lte === undefined;
  return !f.states?.length && open(f.logicalDate) && open(f.startDate) && open(f.endDate);
}

/**
 * A keyset page: up to `limit` runs strictly after `after` in the order, and where the next page
 * starts (null: none). No offset walk and no COUNT: with the DAG filter alone it is one range of
 * the order's index, as cheap 100,000 runs deep as on the first page. The index is forced because
 * MariaDB 10.11 prefers `ref` on the dag_id prefix and filters the cursor's condition while
 * walking the DAG's index entries from the start: 12-15 ms 90,000 runs deep instead of 0.5-0.7 ms
 * (scratch copy of bench/api.ts's data). With other filters the optimizer chooses: an index on
 * (dag_id, state) may then serve better than the order's.
 */
export async function listDagRunsAfter(db: Queryable, f: DagRunFilter, p: { limit: number; orderBy?: string; after: KeysetPosition }) {
  const key = dagRunOrder(p.orderBy, f);
  const w = dagRunWhere(f).after(key, p.after);
  const index = onlyDags(f) ? key.index : undefined;
  const [rows] = await db.query<RowDataPacket[]>(
    { sql: `SELECT ${DAG_RUN_LIST_COLUMNS} FROM dag_run r${index ? ` FORCE INDEX (${index})` : ""} WHERE ${w.sql} ${orderSql(key)} LIMIT ${sqlCount("limit", p.limit + 1)}`, ...DATES_AS_TEXT },
    w.params,
  );
  return keysetPage(rows, p.limit, key);
}

export async function getDagRun(db: Queryable, dagId: string, runId: string) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  return rows[0];
}

/**
 * The error for a run that was looked up and not found: BATON_DAG_RUN_NOT_FOUND when its DAG
 * exists, BATON_DAG_NOT_FOUND when the DAG does not. Every lookup of a run by (dag_id, run_id)
 * ends here when it misses, so the DAG is read only then and finding a run costs nothing more.
 * `what` names the run in the detail (default: its quoted id).
 */
export async function runNotFoundError(db: Queryable, dagId: string, runId: string, what = `"${runId}"`): Promise<BatonError> {
  const [dags] = await db.query<RowDataPacket[]>("SELECT 1 FROM dag WHERE dag_id = ?", [dagId]);
  if (dags.length === 0) return new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
  return new BatonError("BATON_DAG_RUN_NOT_FOUND", `DAG run ${what} of DAG "${dagId}" not found`);
}

/** BATON_TASK_NOT_FOUND naming the tasks the run's version lacks (a run keeps the version it started with); nothing when it has them all. */
export function requireTasksInRun(shape: DagShape, taskIds: readonly string[], dagId: string, runId: string): void {
  const unknown = taskIds.filter((id) => !shape.byId.has(id));
  if (unknown.length === 0) return;
  throw new BatonError(
    "BATON_TASK_NOT_FOUND",
    `${unknown.length === 1 ? "task" : "tasks"} ${unknown.map((id) => `"${id}"`).join(", ")} not found in run "${runId}" of DAG "${dagId}"` +
      " (a run keeps the DAG version it started with)",
  );
}

/**
 * BATON_DAG_RUN_REPLACED for a run a backfill replaced, naming the current run of its date (the
 * one that holds ux_dag_run_automated's key: the backfill's run, or a later one) if it still exists.
 * `what` says what was refused and why ("clearing its tasks would run its date twice").
 */
export async function runReplacedError(
  db: Queryable,
  run: { dagId: string; runId: string; backfillId: number; logicalDate: Date | null },
  what: string,
): Promise<BatonError> {
  const [current] = run.logicalDate
    ? await db.query<RowDataPacket[]>("SELECT run_id FROM dag_run WHERE dag_id = ? AND automated_logical_date = ?", [run.dagId, run.logicalDate])
    : [[]];
  const now = current[0]?.run_id as string | undefined;
  return new BatonError(
    "BATON_DAG_RUN_REPLACED",
    `DAG run "${run.runId}" of DAG "${run.dagId}" was replaced by backfill ${run.backfillId} and is kept as history: ${what}; ` +
      (now ? `clear, re-drive or mark run "${now}", which replaced it, instead` : "the run that replaced it was deleted: backfill the date again to re-run it"),
  );
}

/**
 * A list filtered by `?dag_id=` that matched nothing: BATON_DAG_NOT_FOUND when no such DAG exists,
 * so a typo is a 404, not an empty page. The DAG is read only then: a page with rows costs nothing more.
 */
export async function refuseUnknownDagFilter(db: Queryable, dagId: string | undefined, matched: number): Promise<void> {
  if (dagId === undefined || matched > 0) return;
  const [dags] = await db.query<RowDataPacket[]>("SELECT 1 FROM dag WHERE dag_id = ?", [dagId]);
  if (dags.length === 0) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
}

/** PATCH …/setNote; false when the run does not exist. */
export async function setDagRunNote(db: Queryable, dagId: string, runId: string, note: string | null): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("UPDATE dag_run SET note = ? WHERE dag_id = ? AND run_id = ?", [note, dagId, runId]);
  return result.affectedRows > 0;
}

export async function getDagRunById(db: Queryable, id: number) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE id = ?", [id]);
  return rows[0];
}

export async function listTaskInstances(db: Queryable, dagRunId: number, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM task_instance WHERE dag_run_id = ? ORDER BY id ${limitOffset(p)}`, [dagRunId]);
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_run_id = ?", [dagRunId]);
  return { rows, total: Number(count!.n) };
}

/** The ids a claim reports, named: for warnings about tries the claim left (PK lookups). */
export async function taskInstanceNames(db: Queryable, ids: number[]): Promise<Map<number, { dagId: string; runId: string; taskId: string; mapIndex: number }>> {
  if (ids.length === 0) return new Map();
  const [rows] = await db.query<RowDataPacket[]>(`SELECT id, dag_id, run_id, task_id, map_index FROM task_instance WHERE id IN (${ids.map(() => "?").join(", ")})`, ids);
  return new Map(rows.map((r) => [Number(r.id), { dagId: r.dag_id as string, runId: r.run_id as string, taskId: r.task_id as string, mapIndex: Number(r.map_index) }]));
}

export async function getTaskInstance(db: Queryable, dagRunId: number, taskId: string, mapIndex = -1) {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE dag_run_id = ? AND task_id = ? AND map_index = ?", [
    dagRunId,
    taskId,
    mapIndex,
  ]);
  return rows[0];
}

export async function getXcom(db: Queryable, dagRunId: number, taskId: string, key: string, mapIndex = -1) {
  const [rows] = await db.query<RowDataPacket[]>(
    "SELECT * FROM xcom WHERE dag_run_id = ? AND task_id = ? AND map_index = ? AND xcom_key = ?",
    [dagRunId, taskId, mapIndex, key],
  );
  return rows[0];
}

/**
 * Airflow's task instance filters (GET …/taskInstances and POST /dags/~/dagRuns/~/taskInstances/list).
 * An absent or empty list matches everything; ranges are inclusive; dates compare in UTC.
 */
export interface TaskInstanceFilter {
  dagIds?: string[];
  /** dag_run.run_id values (with dagIds: of those DAGs, else of any DAG). */
  runIds?: string[];
  /** dag_run.id values: a run already looked up. */
  dagRunIds?: number[];
  taskIds?: string[];
  states?: string[];
  pools?: string[];
  queues?: string[];
  executionDateGte?: Date;
  executionDateLte?: Date;
  startDateGte?: Date;
  startDateLte?: Date;
  endDateGte?: Date;
  endDateLte?: Date;
  durationGte?: number;
  durationLte?: number;
}

function taskInstanceWhere(f: TaskInstanceFilter): Conditions {
  return new Conditions()
    .in("ti.dag_run_id", f.dagRunIds, "any")
    .in("ti.dag_id", f.dagIds, "any")
    // No task_instance index leads with run_id (`ti.run_id IN …` read every task instance): the
    // runs are found on ix_dag_run_run_id, their task instances on ux_task_instance.
    .inLookup("ti.dag_run_id", { table: "dag_run", id: "id", key: "run_id" }, f.runIds, "any")
    .in("ti.task_id", f.taskIds, "any")
    .in("ti.state", f.states, "any")
    .in("ti.pool", f.pools, "any")
    .in("ti.queue", f.queues, "any")
    .range("r.logical_date", f.executionDateGte, f.executionDateLte)
    .range("ti.start_date", f.startDateGte, f.startDateLte)
    .range("ti.end_date", f.endDateGte, f.endDateLte)
    .range("ti.duration", f.durationGte, f.durationLte);
}

/**
 * Task instances matching a filter, within a run, across a DAG's runs or across DAGs, ordered
 * by id (unique, so pages are stable); each row carries its run's logical date as run_logical_date.
 * Index: ux_task_instance for one run, ix_ti_dag_id (dag_id, id) for one DAG (migration 0016).
 */
export async function listTaskInstancesWhere(db: Queryable, f: TaskInstanceFilter, p: Page) {
  const w = taskInstanceWhere(f);
  // One row more than the page tells whether another page follows.
  const [rows] = await db.query<RowDataPacket[]>(
    {
      sql: `SELECT ${joinOrder(f)} ${TASK_INSTANCE_LIST_COLUMNS}, r.logical_date AS run_logical_date ${tiFrom()} WHERE ${w.sql} ORDER BY ti.id ${limitOffset({ limit: p.limit + 1, offset: p.offset })}`,
      ...DATES_AS_TEXT,
    },
    w.params,
  );
  const total = await pageTotal(db, `SELECT COUNT(*) AS n ${tiFrom()} WHERE ${w.sql}`, w.params, { offset: p.offset, asked: p.limit + 1, fetched: rows.length });
  return { ...keysetPage(rows, p.limit, TASK_INSTANCE_ORDER), total };
}

/** Task instances with their runs; `index`: the one task_instance is read by. */
const tiFrom = (index?: string) => `FROM task_instance ti${index ? ` FORCE INDEX (${index})` : ""} JOIN dag_run r ON r.id = ti.dag_run_id`;

/**
 * Task instances first, in id order, each joined to its run: unless a run's date or run ids
 * filter, the only order that reads a page and no more. Unfiltered (`~/~`), MariaDB 10.11 chose to
 * start from dag_run and sort every task instance: 13.7 s for the first page of 1,000,000, against
 * 0.5 ms. Run ids are the opposite case: their runs first, then only their task instances (forced
 * into id order, it checked 1,000,000 task instances for one run's 10: 1.2 s against 1 ms).
 */
function joinOrder(f: TaskInstanceFilter): string {
  return f.executionDateGte === undefined && f.executionDateLte === undefined && !f.runIds?.length ? "STRAIGHT_JOIN" : "";
}

/** Task instance lists have one order: by id. */
export const TASK_INSTANCE_ORDER: KeysetOrder = { orderBy: "id", column: "ti.id", tieBreaker: "ti.id", descending: false, nullable: false, type: "id" };

/**
 * A keyset page of task instances: up to `limit` strictly after `after` (by id), and where the
 * next page starts (null: none); no COUNT. With no filter, or one DAG's alone, it is one range of
 * PRIMARY or ix_ti_dag_id (dag_id, id), forced for the reason listDagRunsAfter gives (700,000
 * index entries walked 900,000 task instances deep). One run's task instances are found by
 * ux_task_instance (dag_run_id, …) and sorted: a run holds few enough.
 */
export async function listTaskInstancesAfter(db: Queryable, f: TaskInstanceFilter, p: { limit: number; after: KeysetPosition }) {
  const w = taskInstanceWhere(f).after(TASK_INSTANCE_ORDER, p.after);
  const { dagIds, ...others } = f;
  const onlyDags = Object.values(others).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));
  const index = !onlyDags ? undefined : !dagIds?.length ? "PRIMARY" : dagIds.length === 1 ? "ix_ti_dag_id" : undefined;
  const [rows] = await db.query<RowDataPacket[]>(
    { sql: `SELECT ${joinOrder(f)} ${TASK_INSTANCE_LIST_COLUMNS}, r.logical_date AS run_logical_date ${tiFrom(index)} WHERE ${w.sql} ORDER BY ti.id LIMIT ${sqlCount("limit", p.limit + 1)}`, ...DATES_AS_TEXT },
    w.params,
  );
  return keysetPage(rows, p.limit, TASK_INSTANCE_ORDER);
}

/**
 * Started runs of a DAG whose logical date is within [gte, lte] (undefined: open), oldest first;
 * with `states`, only runs holding a task instance in one of them (ix_ti_waiting: dag_run_id, state, …). For clears
 * across runs; at most `limit` rows.
 */
export async function listStartedRunsInRange(db: Queryable, dagId: string, range: { gte?: Date; lte?: Date }, states: string[] | undefined, limit: number) {
  // Not a run a backfill replaced: its date's current run is the one to clear (BATON_DAG_RUN_REPLACED).
  const w = new Conditions().add("r.dag_id = ?", dagId).add("r.state <> 'queued'").add("r.replaced_by_backfill_id IS NULL").range("r.logical_date", range.gte, range.lte);
  if (states?.length) w.add(`EXISTS (SELECT 1 FROM task_instance ti WHERE ti.dag_run_id = r.id AND ti.state IN (${states.map(() => "?").join(", ")}))`, ...states);
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT r.id, r.run_id, r.version_hash, r.logical_date FROM dag_run r WHERE ${w.sql} ORDER BY r.logical_date, r.id LIMIT ${Math.floor(limit)}`,
    w.params,
  );
  return rows;
}

/** XCom entries (without values) of one task instance, a run or anything (undefined = any), in primary-key order. */
export async function listXcomEntries(
  db: Queryable,
  f: { dagId?: string; runId?: string; dagRunId?: number; taskId?: string; mapIndex?: number; key?: string },
  p: Page,
) {
  const w = new Conditions()
    .eq("x.dag_run_id", f.dagRunId)
    .eq("r.dag_id", f.dagId)
    .eq("r.run_id", f.runId)
    .eq("x.task_id", f.taskId)
    .eq("x.map_index", f.mapIndex)
    .eq("x.xcom_key", f.key);
  const { sql, params } = w;
  const from = "FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id";
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT x.task_id, x.map_index, x.xcom_key, x.created_at, r.dag_id, r.run_id, r.logical_date ${from} WHERE ${sql}
      ORDER BY x.dag_run_id, x.task_id, x.map_index, x.xcom_key ${limitOffset(p)}`,
    params,
  );
  const [[count]] = await db.query<RowDataPacket[]>(`SELECT COUNT(*) AS n ${from} WHERE ${sql}`, params);
  return { rows, total: Number(count!.n) };
}

/** A reschedule-mode sensor's pokes that did not succeed (task_reschedule), oldest first. */
export async function listTaskReschedules(db: Queryable, taskInstanceId: number, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT try_number, start_date, end_date, reschedule_date FROM task_reschedule WHERE task_instance_id = ? ORDER BY id ${limitOffset(p)}`,
    [taskInstanceId],
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_reschedule WHERE task_instance_id = ?", [taskInstanceId]);
  return { rows, total: Number(count!.n) };
}

/** Airflow's order_by fields of get_import_errors. */
export const IMPORT_ERROR_ORDER_FIELDS = { import_error_id: "id", timestamp: "created_at", filename: "fileloc" } as const;

export async function listImportErrors(db: Queryable, p: Page & { orderBy?: string }) {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT * FROM import_error ${orderBy(p.orderBy, IMPORT_ERROR_ORDER_FIELDS, "import_error_id", "id")} ${limitOffset(p)}`);
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM import_error");
  return { rows, total: Number(count!.n) };
}

export async function getImportError(db: Queryable, id: number): Promise<RowDataPacket | undefined> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM import_error WHERE id = ?", [id]);
  return rows[0];
}

/** The import error of the file at `fileloc`, if its last parse failed. */
export async function importErrorOfFile(db: Queryable, fileloc: string): Promise<RowDataPacket | undefined> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT * FROM import_error WHERE fileloc = ?", [fileloc]);
  return rows[0];
}

export async function latestHeartbeat(db: Queryable, kind: string): Promise<Date | null> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT MAX(heartbeat_at) AS at FROM baton_process WHERE kind = ?", [kind]);
  return rows[0]?.at ?? null;
}

export async function listDagVersions(db: Queryable, dagId: string, p: Page) {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT v.version_hash, v.created_at, v.code_hash, (d.latest_version_hash = v.version_hash) AS is_latest
       FROM dag_version v JOIN dag d ON d.dag_id = v.dag_id WHERE v.dag_id = ? ORDER BY v.id ${limitOffset(p)}`,
    [dagId],
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_version WHERE dag_id = ?", [dagId]);
  return { rows, total: Number(count!.n) };
}

export async function getDagVersion(db: Queryable, dagId: string, versionHash: string) {
  const [rows] = await db.query<RowDataPacket[]>(
    "SELECT version_hash, created_at, code_hash, structure FROM dag_version WHERE dag_id = ? AND version_hash = ?",
    [dagId, versionHash],
  );
  return rows[0];
}
