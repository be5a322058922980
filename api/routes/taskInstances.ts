import { open } from "node:fs/promises";
import path from "node:path";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type Static } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { taskLogPath } from "../../core/logPaths.ts";
import { TaskState, tryEnded } from "../../core/states.ts";
import type { Queryable } from "../../store/db.ts";
import {
  getDag,
  getDagRun,
  getTaskInstance,
  getXcom,
  listTaskInstancesAfter,
  listTaskInstancesWhere,
  listTaskReschedules,
  listXcomEntries,
  runningTaskCount,
  runningTaskInstanceCount,
  runNotFoundError,
  TASK_INSTANCE_ORDER,
  type TaskInstanceFilter,
} from "../../store/queries/read.ts";
import { dependsOnPastStatus } from "../../store/queries/previousRun.ts";
import { abandonedTriesOf } from "../../store/transitions/abandonedTries.ts";
import { windingDownDep } from "../../scheduler/deps/windingDown.ts";
import { listTaskSteps } from "../../store/queries/steps.ts";
import { getPool, shownSlots } from "../../store/pools.ts";
import { poolSlotsDep } from "../../scheduler/deps/poolSlots.ts";
import { claimRoomDeps } from "../../scheduler/deps/claimRoom.ts";
import { BACKFILL_PRIORITY_FLOOR } from "../../store/transitions/claimTasks.ts";
import { queueServedDep } from "../../scheduler/deps/queueServed.ts";
import { liveWorkerQueues } from "../../store/processes.ts";
import { heartbeatTimeoutOf } from "./workers.ts";
import { signalWaitDep } from "../../scheduler/deps/signalWait.ts";
import { notBeforeDep } from "../../scheduler/deps/notBefore.ts";
import { storedTaskLog, type StoredTaskLog } from "../../store/queries/logs.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import { MARKABLE_STATES, setTaskState, type ChangedTask } from "../../store/transitions/setTaskState.ts";
import { isUnusableVersion, VersionCache } from "../../store/versions.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { decodeCursor, encodeCursor, type CursorScope } from "../cursor.ts";
import { CursorListOf, ListOf, Nullable, NullableDateTime, serializeAsBuilt } from "../openapi.ts";
import { CursorQuery, DagParams, Id, instantOf, Name, PageBody, PageQuery, RunParams, TaskParams } from "../schemas.ts";
import { taskInstanceJson } from "../serializers.ts";

const TAGS = ["TaskInstance"];
const XCOM_TAGS = ["XCom"];
/** Airflow's wildcard: `~` as dag_id, dag_run_id (or task_id for XComs) means every one. */
const ALL = "~";
/** A step result longer than this is left out of GET …/steps (result null, result_omitted true). */
export const STEP_RESULT_LIST_CAP_BYTES = 64 * 1024;
/** A log read without full_content returns at most this many bytes, and a token for the rest. */
export const LOG_CHUNK_BYTES = 64 * 1024;

const StateName = Type.Union(Object.values(TaskState).map((s) => Type.Literal(s)));
const DateQuery = Type.String({ format: "date-time" });
const Duration = Type.Number({ minimum: 0, maximum: 1e12 });
const NewState = Type.Union(MARKABLE_STATES.map((s) => Type.Literal(s)));

/** Airflow's TaskInstance, as taskInstanceJson writes it. */
export const TaskInstanceSchema = Type.Object(
  {
    task_id: Type.String(),
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    map_index: Type.Integer(),
    execution_date: NullableDateTime,
    logical_date: NullableDateTime,
    state: Nullable(Type.String({ description: "null for Airflow's none (created, not yet scheduled)" })),
    try_number: Type.Integer(),
    max_tries: Type.Integer(),
    start_date: NullableDateTime,
    end_date: NullableDateTime,
    duration: Nullable(Type.Number({ description: "seconds" })),
    hostname: Type.String(),
    pid: Nullable(Type.Integer()),
    pool: Type.String(),
    pool_slots: Type.Integer(),
    queue: Type.String(),
    priority_weight: Type.Integer(),
    trigger_rule: Type.String(),
    queued_when: NullableDateTime,
    next_retry_at: NullableDateTime,
    error: Nullable(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            "Baton: why the try ended ({name, code?, message, …}), once it has (up_for_retry or a final state); null while the next try " +
            "is queued, running or waiting, as an earlier try's error is not its own (that one stays in the earlier try's log)",
        },
      ),
    ),
    waiting_for_signal: Nullable(
      Type.String({ description: "Baton: the signal a deferred task (waitForSignal) waits for; null in any other state" }),
    ),
    signal_timeout_at: Nullable(
      Type.String({
        format: "date-time",
        description:
          "Baton: when the wait of a deferred task times out (its onTimeout then decides: fail, skip or succeed); " +
          "null without a timeout and in any other state. It may have passed while the scheduler has not yet ended the wait",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Airflow's TaskInstanceReference. */
export const TaskInstanceReference = Type.Object(
  { task_id: Type.String(), dag_id: Type.String(), dag_run_id: Type.String(), execution_date: NullableDateTime },
  { additionalProperties: false },
);

/**
 * The answer of PATCH …/taskInstances/{task_id}: Airflow's TaskInstanceReference, plus (Baton's) the
 * states the mark's own transaction found and left, as ClearedReference answers a clear's.
 */
const MarkedReference = Type.Object(
  {
    ...TaskInstanceReference.properties,
    state: Nullable(Type.String({ description: "Baton: the state it was (or on a dry run would be) marked from; null for none" })),
    new_state: Nullable(
      Type.String({
        description:
          "Baton: the state the mark left it in, as its transaction committed: the requested one (as state, " +
          "when it was in it already); on a dry run the same as state. Not a later read",
      }),
    ),
    dag_run_state: Type.String({
      description:
        "Baton: the run's state as the mark's transaction left it (running: its downstream tasks run next; " +
        "success / failed: the mark finished it), not a later read: workers may have moved it on since; on a dry run its state now",
    }),
  },
  { additionalProperties: false },
);

/** A pool or queue name: none ends with whitespace (MySQL would pad a space away) or holds a control character (core/dagLimits.ts). */
const NameFilter = Name(256);

/** Airflow's filters of GET …/taskInstances (state, pool and queue repeat). */
const FilterQuery = Type.Object({
  state: Type.Optional(Type.Array(StateName, { maxItems: 20 })),
  pool: Type.Optional(Type.Array(NameFilter, { maxItems: 100 })),
  queue: Type.Optional(Type.Array(NameFilter, { maxItems: 100 })),
  execution_date_gte: Type.Optional(DateQuery),
  execution_date_lte: Type.Optional(DateQuery),
  start_date_gte: Type.Optional(DateQuery),
  start_date_lte: Type.Optional(DateQuery),
  end_date_gte: Type.Optional(DateQuery),
  end_date_lte: Type.Optional(DateQuery),
  duration_gte: Type.Optional(Duration),
  duration_lte: Type.Optional(Duration),
});
const ListQuery = Type.Object({ ...PageQuery.properties, ...CursorQuery.properties, ...FilterQuery.properties });

/**
 * Airflow's ListTaskInstanceForm (POST /dags/~/dagRuns/~/taskInstances/list). A list left out or
 * empty filters nothing, as in Airflow's get_task_instances_batch: no dag_ids is every DAG
 * (`if dag_ids:`), and its other lists are ORs of equalities, none when the list is empty.
 */
const BatchBody = Type.Object(
  {
    dag_ids: Type.Optional(Type.Array(Id, { maxItems: 1000, description: "Every DAG when left out or empty, as in Airflow." })),
    dag_run_ids: Type.Optional(Type.Array(Id, { maxItems: 1000, description: "Every run when left out or empty, as in Airflow." })),
    task_ids: Type.Optional(Type.Array(Id, { maxItems: 1000, description: "Every task when left out or empty, as in Airflow." })),
    ...PageBody,
    ...FilterQuery.properties,
  },
  { additionalProperties: false },
);

function filterOf(q: Static<typeof FilterQuery>, where: "querystring" | "body"): TaskInstanceFilter {
  const date = (field: keyof typeof q & `${string}_date_${string}`) => instantOf(q[field], `${where}.${field}`);
  return {
    states: q.state,
    pools: q.pool,
    queues: q.queue,
    executionDateGte: date("execution_date_gte"),
    executionDateLte: date("execution_date_lte"),
    startDateGte: date("start_date_gte"),
    startDateLte: date("start_date_lte"),
    endDateGte: date("end_date_gte"),
    endDateLte: date("end_date_lte"),
    durationGte: q.duration_gte,
    durationLte: q.duration_lte,
  };
}

export async function runOr404(db: Queryable, dagId: string, runId: string) {
  const run = await getDagRun(db, dagId, runId);
  if (!run) throw await runNotFoundError(db, dagId, runId);
  return run;
}

async function dagOr404(db: Queryable, dagId: string) {
  if (!(await getDag(db, dagId))) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
}

export async function taskOr404(db: Queryable, p: { dag_id: string; dag_run_id: string; task_id: string }, mapIndex = -1) {
  const run = await runOr404(db, p.dag_id, p.dag_run_id);
  const ti = await getTaskInstance(db, Number(run.id), p.task_id, mapIndex);
  if (!ti) {
    const which = mapIndex === -1 ? `task "${p.task_id}"` : `task "${p.task_id}" with map_index ${mapIndex}`;
    throw new BatonError("BATON_TASK_NOT_FOUND", `${which} not found in run "${p.dag_run_id}" of DAG "${p.dag_id}"`);
  }
  return { run, ti };
}

function referenceJson(c: ChangedTask) {
  return { task_id: c.taskId, dag_id: c.dagId, dag_run_id: c.runId, execution_date: isoOrNull(c.logicalDate) };
}

// --- Logs: byte offsets in a continuation token -------------------------------------------

/** The opaque continuation token: base64url of {"o": byte offset}. */
export function encodeLogToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString("base64url");
}

export function decodeLogToken(token: string): number {
  const invalid = () => new BatonError("BATON_INVALID_CONTINUATION_TOKEN", "query.token is not a continuation token this API issued; start again without it");
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const offset = (parsed as { o?: unknown } | null)?.o;
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) throw invalid();
  return offset;
}

/** The end of the last whole UTF-8 character within buf[0, end), so a chunk never splits one. */
export function utf8Boundary(buf: Buffer, end: number): number {
  for (let i = end - 1; i >= Math.max(0, end - 4); i--) {
    const byte = buf[i]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for its lead
    const length = byte < 0x80 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return i + length <= end ? end : i;
  }
  return end;
}

/**
 * Bytes [offset, offset + max) (max undefined: to the end) of a try's log: its stored text
 * (task_log.content), its file, then what was written after it ended (task_log.epilogue: a
 * zombie's reason, its callbacks' lines), any of which may be missing; null when all are.
 */
async function readLog(stored: StoredTaskLog | null, file: string, offset: number, max: number | undefined): Promise<{ text: string; next: number; size: number } | null> {
  let handle;
  try {
    handle = await open(file, "r");
  } catch {
    handle = undefined;
  }
  if (!handle && !stored) return null;
  const head = stored?.head ?? Buffer.alloc(0);
  const tail = stored?.tail ?? Buffer.alloc(0);
  try {
    const fileSize = handle ? (await handle.stat()).size : 0;
    const size = head.length + fileSize + tail.length;
    if (offset > size) throw new BatonError("BATON_INVALID_CONTINUATION_TOKEN", `query.token points past the end of this log (${size} bytes)`);
    const want = Math.min(max ?? size - offset, size - offset);
    const buf = Buffer.alloc(want);
    let read = 0;
    if (offset < head.length) read = head.copy(buf, 0, offset, Math.min(head.length, offset + want));
    const tailStart = head.length + fileSize;
    while (handle && read < want && offset + read < tailStart) {
      const { bytesRead } = await handle.read(buf, read, Math.min(want - read, tailStart - offset - read), offset + read - head.length);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    // The file is read up to the size it had above (one that grew is read further next time).
    if (read < want && offset + read >= tailStart) read += tail.copy(buf, read, offset + read - tailStart, Math.min(tail.length, offset + want - tailStart));
    const end = offset + read < size ? utf8Boundary(buf, read) : read;
    return { text: buf.subarray(0, end).toString("utf8"), next: offset + end, size };
  } finally {
    await handle?.close();
  }
}

const LogParams = Type.Intersect([TaskParams, Type.Object({ try_number: Type.Integer({ minimum: 1, maximum: 100_000 }) })]);
const LogChunk = Type.Object(
  {
    content: Type.String(),
    continuation_token: Nullable(Type.String({ description: "pass as ?token= for the rest; null once the try has ended and everything was read" })),
  },
  { additionalProperties: false },
);

/** A durable step: a ctx.step(name, fn) result, memoized across the tries of a task instance. */
const TaskStep = Type.Object(
  {
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    task_id: Type.String(),
    map_index: Type.Integer(),
    name: Type.String({ description: "the name given to ctx.step" }),
    try_number: Type.Integer({ description: "the try that ran the step and recorded its result; later tries reuse it" }),
    recorded_at: NullableDateTime,
    result: Type.Unknown({ description: `the step's JSON result; null when result_omitted` }),
    result_bytes: Type.Integer({ minimum: 0, description: "the size of the result's JSON text" }),
    result_omitted: Type.Boolean({ description: `true when the result is over ${STEP_RESULT_LIST_CAP_BYTES / 1024} KiB and left out of this list` }),
  },
  { additionalProperties: false },
);

/** xcom.xcom_key: VARCHAR(512). */
const XcomKey = Name(512);
const XcomKeyParams = Type.Intersect([TaskParams, Type.Object({ xcom_key: XcomKey })]);
const XcomEntrySummary = Type.Object(
  {
    key: Type.String(),
    timestamp: NullableDateTime,
    execution_date: NullableDateTime,
    task_id: Type.String(),
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    map_index: Type.Integer(),
  },
  { additionalProperties: false },
);
const XcomEntry = Type.Object(
  { ...XcomEntrySummary.properties, value: Type.Unknown({ description: "the JSON value; its JSON text with stringify=true or deserialize=false" }) },
  { additionalProperties: false },
);

/** Airflow's TaskInstanceDependencyCollection. */
const DependencyList = Type.Object(
  {
    dependencies: Type.Array(
      Type.Object({ name: Type.String({ description: "the check, e.g. pool_slots" }), reason: Type.String() }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

/** Task instance states that wait to run (null is "none"). */
const WAITING_STATES: readonly string[] = [TaskState.None, TaskState.Scheduled, TaskState.Queued, TaskState.UpForRetry, TaskState.UpForReschedule];

export const taskInstanceRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, config, onTasksQueued, onRunCreated }) => {
  const base = "/dags/:dag_id/dagRuns/:dag_run_id/taskInstances";
  const versions = new VersionCache(db.pool);
  const wake = () => (onTasksQueued ?? onRunCreated)?.();
  /** A waitForSignal task's onTimeout in a run's version; undefined when that version cannot be read (the reason says less). */
  const onTimeoutOf = async (versionHash: string, taskId: string) => {
    try {
      return (await versions.shape(versionHash)).byId.get(taskId)?.signal?.onTimeout;
    } catch (err) {
      if (isUnusableVersion(err)) return undefined;
      throw err;
    }
  };
  const listJson = (rows: Awaited<ReturnType<typeof listTaskInstancesWhere>>["rows"]) => rows.map((r) => taskInstanceJson(r, r.run_logical_date ?? null));

  app.get(
    base,
    {
      schema: {
        operationId: "get_task_instances",
        tags: TAGS,
        description: "Task instances of a run; `~` as dag_id and/or dag_run_id lists across DAGs and runs. Ordered by creation (id).",
        params: RunParams,
        querystring: ListQuery,
        response: { 200: CursorListOf("task_instances", TaskInstanceSchema) },
      },
      serializerCompiler: serializeAsBuilt,
    },
    async (req) => {
      const { dag_id: dagId, dag_run_id: runId } = req.params;
      const { limit = 100, offset = 0, cursor } = req.query;
      const filter = filterOf(req.query, "querystring");
      const scope: CursorScope = { path: { dag_id: dagId, dag_run_id: runId }, filters: { ...filter } };
      const from = cursor === undefined ? undefined : decodeCursor(cursor, offset, "task_instances", scope, TASK_INSTANCE_ORDER);
      if (dagId !== ALL && runId !== ALL) filter.dagRunIds = [Number((await runOr404(db.pool, dagId, runId)).id)];
      else {
        if (dagId !== ALL) {
          await dagOr404(db.pool, dagId);
          filter.dagIds = [dagId];
        }
        if (runId !== ALL) filter.runIds = [runId];
      }
      // A cursor page: the total came with the cursor, and no COUNT runs.
      const { rows, next, total } = from
        ? { ...(await listTaskInstancesAfter(db.pool, filter, { limit, after: from.after })), total: from.total }
        : await listTaskInstancesWhere(db.pool, filter, { limit, offset });
      return { task_instances: listJson(rows), total_entries: total, next_cursor: next && encodeCursor("task_instances", scope, TASK_INSTANCE_ORDER, next, total) };
    },
  );

  app.post(
    "/dags/~/dagRuns/~/taskInstances/list",
    {
      config: { role: "viewer" },
      schema: {
        operationId: "get_task_instances_batch",
        tags: TAGS,
        description: "Task instances across DAGs and runs, filtered by a body (a read: viewer role).",
        body: BatchBody,
        response: { 200: ListOf("task_instances", TaskInstanceSchema) },
      },
      serializerCompiler: serializeAsBuilt,
    },
    async (req) => {
      const body = req.body;
      const filter = { ...filterOf(body, "body"), dagIds: body.dag_ids, runIds: body.dag_run_ids, taskIds: body.task_ids };
      const { rows, total } = await listTaskInstancesWhere(db.pool, filter, { limit: body.page_limit ?? 100, offset: body.page_offset ?? 0 });
      return { task_instances: listJson(rows), total_entries: total };
    },
  );

  app.get(
    `${base}/:task_id`,
    { schema: { operationId: "get_task_instance", tags: TAGS, params: TaskParams, response: { 200: TaskInstanceSchema } } },
    async (req) => {
      const { run, ti } = await taskOr404(db.pool, req.params);
      return taskInstanceJson(ti, run.logical_date);
    },
  );

  // Airflow 2.10's get_task_instance_dependencies: why a task instance that waits is not running:
  // what the claim cannot lift by itself (a pool too small for the task, the previous run under
  // dependsOnPast, a signal a deferred task waits for, a queue no worker serves) and, for a queued
  // task, what it weighs as tries come and go (a paused DAG, maxActiveTasks, a pool's open slots).
  app.get(
    `${base}/:task_id/dependencies`,
    {
      schema: {
        operationId: "get_task_instance_dependencies",
        tags: TAGS,
        description:
          "Why a waiting task instance (no state, scheduled, queued, up_for_retry, up_for_reschedule, deferred) is not running, " +
          "as the checks it fails: `depends_on_past`, a dependsOnPast task (no state or scheduled) whose task in the previous run " +
          "(the latest earlier logical date) has not succeeded or been skipped; `pool_slots`, a task asking for more slots than its pool has in all, " +
          "which no worker will ever claim until the pool grows; `queue`, a queued task whose queue no live worker serves (none heartbeated within the task heartbeat timeout); " +
          "`dag_paused`, `max_active_tasks`, `max_active_tis_per_dag` and `pool_open_slots`, a queued task whose DAG is paused (a backfill's tasks run all the same), " +
          "whose DAG runs its maxActiveTasks tries already, whose task runs its maxActiveTisPerDag instances already (across the DAG's runs), or whose pool has fewer open slots than it needs (Airflow's wording; these lift as tries end); " +
          "`retry_period`, an up_for_retry task whose retry delay has not passed, and `reschedule`, a reschedule-mode sensor between pokes: until when; " +
          "`signal`, a deferred task waiting for a signal: which one, until when, " +
          "and what its onTimeout does then (or that its timeout passed and the scheduler ends it at its next pass); " +
          "`winding_down`, a saga's compensation (no state or scheduled) waiting for tries of its run ended from outside " +
          "(cancelled, timed out, marked, cleared) that their workers may still run: which ones, and where. " +
          "Empty when nothing is known to hold it back.",
        params: TaskParams,
        response: { 200: DependencyList },
      },
    },
    async (req) => {
      const { run, ti } = await taskOr404(db.pool, req.params);
      if (ti.state === TaskState.Deferred && ti.deferred_on) {
        const wait = { dagId: ti.dag_id, runId: ti.run_id, signal: ti.deferred_on, timeoutAt: ti.next_check_at ?? null };
        const dep = signalWaitDep({ ...wait, onTimeout: await onTimeoutOf(run.version_hash, ti.task_id) }, clock.now());
        return { dependencies: [{ name: dep.dep, reason: dep.reason }] };
      }
      if (!WAITING_STATES.includes(ti.state)) return { dependencies: [] };
      const pool = await getPool(db.pool, ti.pool);
      const deps = [
        poolSlotsDep({ dagId: ti.dag_id, runId: ti.run_id, taskId: ti.task_id, pool: ti.pool, poolSlots: Number(ti.pool_slots) }, pool && { slots: shownSlots(Number(pool.slots)) }),
      ];
      if ((ti.state === TaskState.UpForRetry || ti.state === TaskState.UpForReschedule) && ti.next_retry_at) {
        deps.push(notBeforeDep({ state: ti.state, nextAt: new Date(ti.next_retry_at) }, clock.now()));
      }
      if (ti.state === TaskState.Queued) {
        deps.push(queueServedDep({ queue: String(ti.queue) }, await liveWorkerQueues(db.pool, new Date(clock.now().getTime() - heartbeatTimeoutOf({ config })))));
        // What the claim weighs besides the queue (claimTasks): the DAG's pause and maxActiveTasks,
        // the task's maxActiveTisPerDag (counted only when it has one), the pool's open slots.
        const limit = ti.max_active_tis_per_dag == null ? null : Number(ti.max_active_tis_per_dag);
        const [dag, running, taskRunning] = await Promise.all([
          getDag(db.pool, ti.dag_id),
          runningTaskCount(db.pool, ti.dag_id),
          limit === null ? undefined : runningTaskInstanceCount(db.pool, ti.dag_id, ti.task_id),
        ]);
        if (dag) {
          deps.push(
            ...claimRoomDeps(
              {
                dagId: ti.dag_id,
                taskId: ti.task_id,
                maxActiveTisPerDag: limit,
                backfill: Number(ti.priority_weight) < BACKFILL_PRIORITY_FLOOR,
                pool: ti.pool,
                poolSlots: Number(ti.pool_slots),
              },
              {
                paused: !!dag.is_paused,
                maxActiveTasks: Number(dag.max_active_tasks),
                running,
                taskRunning,
                pool: pool && { slots: shownSlots(Number(pool.slots)), occupied: Number(pool.occupied_slots) },
              },
            ),
          );
        }
      }
      // Past `scheduled` the scheduler has found the previous run done (releaseScheduled).
      if (ti.state === TaskState.None || ti.state === TaskState.Scheduled) {
        const shape = await versions.shape(run.version_hash);
        if (shape.byId.get(ti.task_id)?.dependsOnPast) {
          deps.unshift(await dependsOnPastStatus(db.pool, { dagId: ti.dag_id, logicalDate: run.logical_date }, ti.task_id, shape));
        }
        // A compensation waits for the tries of its run ended from outside to stop (releaseScheduled decides from the same rows).
        if (shape.byId.get(ti.task_id)?.kind === "compensate") deps.unshift(windingDownDep(await abandonedTriesOf(db.pool, Number(run.id))));
      }
      return { dependencies: deps.filter((d) => !d.passed).map((d) => ({ name: d.dep, reason: d.reason })) };
    },
  );

  app.patch(
    `${base}/:task_id`,
    {
      schema: {
        operationId: "patch_task_instance",
        tags: TAGS,
        description:
          "Marks a task instance success, failed or skipped (Airflow's set_task_instance_state): a running try is fenced, " +
          "failed/upstream_failed tasks downstream are cleared, and the run carries on or finishes.",
        params: TaskParams,
        body: Type.Object({ dry_run: Type.Optional(Type.Boolean({ default: false })), new_state: NewState }, { additionalProperties: false }),
        response: { 200: MarkedReference },
      },
    },
    async (req) => {
      const { run, ti } = await taskOr404(db.pool, req.params);
      const newState = req.body.new_state;
      const result = await setTaskState(
        dbFor(db, req),
        clock.now(),
        { dagId: req.params.dag_id, runId: req.params.dag_run_id, taskIds: [ti.task_id], newState, dryRun: req.body.dry_run ?? false },
        (hash) => versions.shape(hash),
      );
      if (result.queued.length > 0) wake();
      // From the mark's own transaction, not read again: by now workers may have run what it queued
      // and finished the run. Not marked: it was in the new state already, under the same locks.
      const marked = result.marked.find((c) => c.taskId === ti.task_id && c.mapIndex === -1);
      const noneAsNull = (state: string) => (state === TaskState.None ? null : state);
      return {
        task_id: ti.task_id,
        dag_id: ti.dag_id,
        dag_run_id: ti.run_id,
        execution_date: isoOrNull(run.logical_date),
        state: noneAsNull(marked?.previousState ?? newState),
        new_state: noneAsNull(marked?.state ?? newState),
        dag_run_state: result.runs.find((r) => r.dagRunId === Number(run.id))!.state,
      };
    },
  );

  app.post(
    "/dags/:dag_id/updateTaskInstancesState",
    {
      schema: {
        operationId: "post_set_task_instances_state",
        tags: TAGS,
        description:
          "Marks a task (and with include_* its relatives, earlier and later runs) success, failed or skipped. " +
          "dry_run defaults to true, as in Airflow. Give dag_run_id or execution_date.",
        params: DagParams,
        body: Type.Object(
          {
            dry_run: Type.Optional(Type.Boolean({ default: true })),
            task_id: Id,
            dag_run_id: Type.Optional(Id),
            execution_date: Type.Optional(DateQuery),
            include_upstream: Type.Optional(Type.Boolean({ default: false })),
            include_downstream: Type.Optional(Type.Boolean({ default: false })),
            include_future: Type.Optional(Type.Boolean({ default: false })),
            include_past: Type.Optional(Type.Boolean({ default: false })),
            new_state: NewState,
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ task_instances: Type.Array(TaskInstanceReference) }, { additionalProperties: false }) },
      },
    },
    async (req) => {
      const body = req.body;
      if ((body.dag_run_id === undefined) === (body.execution_date === undefined)) {
        throw new BatonError("BATON_VALIDATION_FAILED", "give exactly one of body.dag_run_id and body.execution_date");
      }
      const result = await setTaskState(
        dbFor(db, req),
        clock.now(),
        {
          dagId: req.params.dag_id,
          runId: body.dag_run_id,
          logicalDate: instantOf(body.execution_date, "body.execution_date"),
          taskIds: [body.task_id],
          newState: body.new_state,
          includeUpstream: body.include_upstream ?? false,
          includeDownstream: body.include_downstream ?? false,
          includePast: body.include_past ?? false,
          includeFuture: body.include_future ?? false,
          dryRun: body.dry_run ?? true,
        },
        (hash) => versions.shape(hash),
      );
      if (result.queued.length > 0) wake();
      return { task_instances: result.marked.map(referenceJson) };
    },
  );

  app.get(
    `${base}/:task_id/xcomEntries`,
    {
      schema: {
        operationId: "get_xcom_entries",
        tags: XCOM_TAGS,
        description: "XCom entries (without values) of a task instance; `~` as dag_id, dag_run_id or task_id means every one.",
        params: TaskParams,
        querystring: Type.Object({
          ...PageQuery.properties,
          map_index: Type.Optional(Type.Integer({ minimum: -1, maximum: 1_000_000 })),
          xcom_key: Type.Optional(XcomKey),
        }),
        response: { 200: ListOf("xcom_entries", XcomEntrySummary) },
      },
    },
    async (req) => {
      const { dag_id: dagId, dag_run_id: runId, task_id: taskId } = req.params;
      const { limit = 100, offset = 0 } = req.query;
      let dagRunId: number | undefined;
      if (dagId !== ALL && runId !== ALL) {
        const run = await runOr404(db.pool, dagId, runId);
        dagRunId = Number(run.id);
        if (taskId !== ALL) await taskOr404(db.pool, req.params);
      } else if (dagId !== ALL) await dagOr404(db.pool, dagId);
      const { rows, total } = await listXcomEntries(
        db.pool,
        {
          dagRunId,
          dagId: dagRunId === undefined && dagId !== ALL ? dagId : undefined,
          runId: dagRunId === undefined && runId !== ALL ? runId : undefined,
          taskId: taskId === ALL ? undefined : taskId,
          mapIndex: req.query.map_index,
          key: req.query.xcom_key,
        },
        { limit, offset },
      );
      return {
        xcom_entries: rows.map((r) => ({
          key: r.xcom_key,
          timestamp: isoOrNull(r.created_at),
          execution_date: isoOrNull(r.logical_date),
          task_id: r.task_id,
          dag_id: r.dag_id,
          dag_run_id: r.run_id,
          map_index: r.map_index,
        })),
        total_entries: total,
      };
    },
  );

  app.get(
    `${base}/:task_id/xcomEntries/:xcom_key`,
    {
      schema: {
        operationId: "get_xcom_entry",
        tags: XCOM_TAGS,
        description:
          "One XCom entry with its value. Baton stores JSON, so `value` is the JSON value itself (Airflow's deserialize=true, " +
          "stringify=false); deserialize=false or stringify=true return its JSON text instead.",
        params: XcomKeyParams,
        querystring: Type.Object({
          map_index: Type.Optional(Type.Integer({ minimum: -1, maximum: 1_000_000 })),
          deserialize: Type.Optional(Type.Boolean()),
          stringify: Type.Optional(Type.Boolean()),
        }),
        response: { 200: XcomEntry },
      },
    },
    async (req) => {
      const { run } = await taskOr404(db.pool, req.params);
      const row = await getXcom(db.pool, Number(run.id), req.params.task_id, req.params.xcom_key, req.query.map_index ?? -1);
      if (!row) throw new BatonError("BATON_XCOM_NOT_FOUND", `no XCom "${req.params.xcom_key}" for task "${req.params.task_id}"`);
      const asText = req.query.stringify === true || req.query.deserialize === false;
      return {
        key: row.xcom_key,
        dag_id: req.params.dag_id,
        dag_run_id: req.params.dag_run_id,
        task_id: row.task_id,
        map_index: row.map_index,
        timestamp: isoOrNull(row.created_at),
        execution_date: isoOrNull(run.logical_date),
        value: asText ? (row.value ?? "null") : parseJsonText(row.value, null),
      };
    },
  );

  // Airflow's task_reschedule: every poke of a reschedule-mode sensor that did not succeed.
  app.get(
    `${base}/:task_id/reschedules`,
    {
      schema: {
        operationId: "get_task_instance_reschedules",
        tags: TAGS,
        params: TaskParams,
        querystring: PageQuery,
        response: {
          200: ListOf(
            "task_reschedules",
            Type.Object(
              { try_number: Type.Integer(), start_date: NullableDateTime, end_date: NullableDateTime, reschedule_date: NullableDateTime },
              { additionalProperties: false },
            ),
          ),
        },
      },
    },
    async (req) => {
      const { ti } = await taskOr404(db.pool, req.params);
      const { limit = 100, offset = 0 } = req.query;
      const { rows, total } = await listTaskReschedules(db.pool, Number(ti.id), { limit, offset });
      return {
        task_reschedules: rows.map((r) => ({
          try_number: r.try_number,
          start_date: isoOrNull(r.start_date),
          end_date: isoOrNull(r.end_date),
          reschedule_date: isoOrNull(r.reschedule_date),
        })),
        total_entries: total,
      };
    },
  );

  app.get(
    `${base}/:task_id/steps`,
    {
      schema: {
        operationId: "get_task_steps",
        tags: TAGS,
        description:
          "The durable steps (ctx.step) a task instance recorded, in the order they were recorded (step name breaking ties). " +
          `Results over ${STEP_RESULT_LIST_CAP_BYTES / 1024} KiB are left out (result null, result_omitted true).`,
        params: TaskParams,
        querystring: PageQuery,
        response: { 200: ListOf("steps", TaskStep) },
      },
    },
    async (req) => {
      const { ti } = await taskOr404(db.pool, req.params);
      const { limit = 100, offset = 0 } = req.query;
      const { rows, total } = await listTaskSteps(db.pool, Number(ti.id), { limit, offset, maxValueBytes: STEP_RESULT_LIST_CAP_BYTES });
      return {
        steps: rows.map((r) => ({
          dag_id: ti.dag_id,
          dag_run_id: ti.run_id,
          task_id: ti.task_id,
          map_index: ti.map_index,
          name: r.step_name,
          try_number: r.try_number,
          recorded_at: isoOrNull(r.created_at),
          result: r.value === null ? null : parseJsonText(r.value, null),
          result_bytes: r.value_bytes,
          result_omitted: r.value === null && r.value_bytes > STEP_RESULT_LIST_CAP_BYTES,
        })),
        total_entries: total,
      };
    },
  );

  app.get(
    `${base}/:task_id/logs/:try_number`,
    {
      schema: {
        operationId: "get_log",
        tags: TAGS,
        description:
          `A try's log: text/plain, or {content, continuation_token} with Accept: application/json. Without full_content at most ` +
          `${LOG_CHUNK_BYTES / 1024} KiB are returned; pass continuation_token back as ?token= for the next chunk (also sent as the ` +
          "X-Continuation-Token header). The token is null once the try has ended and the log was read to its end.",
        params: LogParams,
        querystring: Type.Object({
          full_content: Type.Optional(Type.Boolean({ default: false, description: "everything from the token's offset (or the start) to the end" })),
          map_index: Type.Optional(Type.Integer({ minimum: -1, maximum: 1_000_000, description: "the task instance's map index (default -1: not mapped)" })),
          token: Type.Optional(Type.String({ maxLength: 512 })),
        }),
        response: { 200: { description: "The log", content: { "application/json": { schema: LogChunk }, "text/plain": { schema: Type.String() } } } },
      },
    },
    async (req, reply) => {
      const { ti } = await taskOr404(db.pool, req.params, req.query.map_index ?? -1);
      const tryNumber = req.params.try_number;
      // A reschedule-mode sensor gives its try number back between pokes (as Airflow does), and keeps it given back once
      // marked: its pokes wrote the log of the try after it, served when there is one.
      // Only a sensor that poked (first_poke_at set): any other task's next try number is a try that never was.
      const pokes = tryNumber === ti.try_number + 1 && ti.first_poke_at !== null && ti.first_poke_at !== undefined;
      const noSuchTry = () => new BatonError("BATON_LOG_NOT_FOUND", `task "${ti.task_id}" has had ${ti.try_number} tries; there is no try ${tryNumber}`);
      if (tryNumber > ti.try_number && !pokes) throw noSuchTry();
      const offset = req.query.token === undefined ? 0 : decodeLogToken(req.query.token);
      // The path comes from the stored row, never from the URL, and must stay inside the logs folder.
      const root = path.resolve(config.logsFolder);
      const file = path.resolve(taskLogPath(root, { dagId: ti.dag_id, runId: ti.run_id, taskId: ti.task_id, mapIndex: ti.map_index, tryNumber }));
      if (!file.startsWith(root + path.sep)) throw new BatonError("BATON_LOG_NOT_FOUND", `no log for try ${tryNumber} of task "${ti.task_id}"`);
      // The try may still write: the one running (or deferred), or a sensor's poke between pokes.
      const ended = tryEnded(tryNumber, ti.try_number, ti.state);
      const stored = await storedTaskLog(db.pool, Number(ti.id), tryNumber);
      const read = await readLog(stored, file, offset, req.query.full_content ? undefined : LOG_CHUNK_BYTES);
      if (!read && pokes) throw noSuchTry();
      const chunk = read ?? (ended ? null : { text: "", next: offset, size: offset });
      if (!chunk) throw new BatonError("BATON_LOG_NOT_FOUND", `no log for try ${tryNumber} of task "${ti.task_id}" on this host`);
      const token = ended && chunk.next >= chunk.size ? null : encodeLogToken(chunk.next);
      if (token) void reply.header("x-continuation-token", token);
      if ((req.headers.accept ?? "").includes("application/json")) return { content: chunk.text, continuation_token: token };
      return reply.type("text/plain; charset=utf-8").send(chunk.text);
    },
  );
};
