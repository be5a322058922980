import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type Static } from "typebox";
import { createHash } from "node:crypto";
import { BatonError } from "../../core/errors.ts";
import { stableJson } from "../../core/json.ts";
import { removeLogs, runLogFolder } from "../../core/logPaths.ts";
import { RunState } from "../../core/states.ts";
import { DAG_RUN_ORDER_FIELDS, dagRunOrder, getDag, getDagRun, listDagRuns, listDagRunsAfter, runNotFoundError, setDagRunNote, type DagRunFilter } from "../../store/queries/read.ts";
import { cancelRun } from "../../store/transitions/cancelRun.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { deleteDagRun } from "../../store/transitions/deleteDagRun.ts";
import { markRunSuccess } from "../../store/transitions/markRunSuccess.ts";
import { requeueRun } from "../../store/transitions/requeueRun.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { VersionCache } from "../../store/versions.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { decodeCursor, encodeCursor, type CursorScope } from "../cursor.ts";
import { CursorListOf, ListOf, serializeAsBuilt } from "../openapi.ts";
import { CursorQuery, DagParams, Id, instantOf, PageBody, PageQuery, RunParams, TriggerBody } from "../schemas.ts";
import { DagRunSchema, dagRunJson } from "../serializers.ts";
import { orderByEnum } from "./dags.ts";

const TAGS = ["DAGRun"];

const RunStateSchema = Type.Enum(Object.values(RunState));
const OrderBy = orderByEnum(DAG_RUN_ORDER_FIELDS, "id (default), dag_id, dag_run_id, state, execution_date, logical_date, start_date, end_date or queued_at");
const DateBound = Type.Optional(Type.String({ format: "date-time" }));
/** Airflow's date range filters, the same in the query string (GET) and the batch body. */
const DateFilters = {
  execution_date_gte: DateBound,
  execution_date_lte: DateBound,
  start_date_gte: DateBound,
  start_date_lte: DateBound,
  end_date_gte: DateBound,
  end_date_lte: DateBound,
};
type DateFilterValues = Partial<Record<keyof typeof DateFilters, string>>;

const DagRunList = ListOf("dag_runs", DagRunSchema);

const BatchBody = Type.Object(
  {
    order_by: Type.Optional(OrderBy),
    ...PageBody,
    dag_ids: Type.Optional(Type.Array(Id, { maxItems: 1000, description: "Every DAG when left out or empty, as in Airflow." })),
    states: Type.Optional(Type.Array(RunStateSchema, { maxItems: 10 })),
    ...DateFilters,
  },
  { additionalProperties: false },
);

/**
 * The answer of PATCH …/dagRuns/{dag_run_id}: Airflow's DAGRun, as the change's own transaction left
 * it, plus (Baton's) previous_state, the state it found under the run's lock.
 */
const UpdatedDagRun = Type.Object({
  ...DagRunSchema.properties,
  previous_state: Type.String({
    description:
      "Baton: the run's state before the change, read under its lock. The other fields are the run as the change's " +
      "transaction left it, not a later read: workers and the scheduler may have moved it on since (a re-queued run finished)",
  }),
});

const StateBody = Type.Object(
  {
    state: Type.Enum(["failed", "success", "queued"], {
      description:
        "failed: cancel (running tasks fail, the rest are skipped); success: every task that did not succeed is marked success; " +
        "queued: clear every task so the run starts over",
    }),
    compensate: Type.Optional(
      Type.Boolean({
        description:
          'With state "failed": undo the succeeded tasks first (saga). Refused (409 BATON_DAG_RUN_COMPENSATING) when the run\'s compensation has started; without it, cancelling a compensating run stops the compensation (compensation_failed).',
      }),
    ),
  },
  { additionalProperties: false },
);

function dateOf(field: string, value: string | undefined, where: string): Date | undefined {
  return instantOf(value, `${where}.${field}`);
}

function dateRanges(v: DateFilterValues, where: string): Pick<DagRunFilter, "logicalDate" | "startDate" | "endDate"> {
  return {
    logicalDate: { gte: dateOf("execution_date_gte", v.execution_date_gte, where), lte: dateOf("execution_date_lte", v.execution_date_lte, where) },
    startDate: { gte: dateOf("start_date_gte", v.start_date_gte, where), lte: dateOf("start_date_lte", v.start_date_lte, where) },
    endDate: { gte: dateOf("end_date_gte", v.end_date_gte, where), lte: dateOf("end_date_lte", v.end_date_lte, where) },
  };
}

const sha256 = (value: unknown) => createHash("sha256").update(stableJson(value)).digest("hex");

/**
 * An Idempotency-Key's request hash: the trigger body as it means, defaults filled in, so that
 * `{}` and `{"conf": {}}` are one request, as are the two names of the logical date and one
 * instant written two ways ("…00Z", "…00.000+00:00"). Versions before defaults were filled in
 * stored the hash of the body as written (the date and its alias normalized already), so a run
 * they keyed for a body without conf holds the hash of that body without `conf`: also matches it.
 */
function triggerHashes(
  body: { dag_run_id?: string; logical_date?: string; conf?: object; note?: string },
  logicalDate: Date | undefined,
): { requestHash: string; alsoMatches: string[] } {
  const meant = { ...body, ...(logicalDate ? { logical_date: logicalDate.toISOString() } : {}), conf: body.conf ?? {} };
  const requestHash = sha256(meant);
  if (Object.keys(meant.conf).length > 0) return { requestHash, alsoMatches: [] };
  const { conf: _none, ...withoutConf } = meant;
  return { requestHash, alsoMatches: [sha256(withoutConf)] };
}

type NoNulls<T> = { [K in keyof T]: Exclude<T[K], null> };

/** The body without its null fields: where the schema lets a field be null, null means left out. */
function nullsLeftOut<T extends object>(body: T): NoNulls<T> {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null)) as NoNulls<T>;
}

export const dagRunRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, config, logger, onRunCreated, onTasksQueued }) => {
  const versions = new VersionCache(db.pool);
  const shapeOf = (h: string) => versions.shape(h);
  const current = async (dagId: string, runId: string) => {
    const run = await getDagRun(db.pool, dagId, runId);
    if (!run) throw await runNotFoundError(db.pool, dagId, runId);
    return dagRunJson(run);
  };

  app.post(
    "/dags/:dag_id/dagRuns",
    {
      schema: { operationId: "post_dag_run", tags: TAGS, params: DagParams, body: Type.Optional(TriggerBody), response: { 200: DagRunSchema } },
      // A schema cannot make the whole body optional: a POST without one means `{}`.
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req, reply) => {
      // A null is no value (TriggerBody): left out, so `{"note": null}` and `{}` are one request (Idempotency-Key).
      const { execution_date, ...rest } = nullsLeftOut(req.body ?? {});
      const now = clock.now();
      const logical = dateOf("logical_date", rest.logical_date, "body");
      const execution = dateOf("execution_date", execution_date, "body");
      if (logical && execution && logical.getTime() !== execution.getTime()) {
        throw new BatonError(
          "BATON_VALIDATION_FAILED",
          `body.logical_date "${rest.logical_date}" and body.execution_date "${execution_date}" differ; execution_date is a deprecated alias of logical_date: give one`,
        );
      }
      const logicalDate = logical ?? execution ?? now;
      // A DATETIME holds years 1000-9999 (and JavaScript reads years below 100 back as 19xx).
      const year = logicalDate.getUTCFullYear();
      if (year < 1000 || year > 9999) {
        throw new BatonError("BATON_VALIDATION_FAILED", `body.logical_date must be within the years 1000-9999 (UTC), got ${logicalDate.toISOString()}`);
      }
      // The alias is one field: the same run asked either way hashes the same for Idempotency-Key.
      const body = execution_date !== undefined && rest.logical_date === undefined ? { ...rest, logical_date: execution_date } : rest;
      const key = req.headers["idempotency-key"];
      if (Array.isArray(key) || (typeof key === "string" && (key.length === 0 || key.length > 255))) {
        throw new BatonError("BATON_VALIDATION_FAILED", "headers.idempotency-key must be one value of 1-255 characters");
      }
      const idempotency = typeof key === "string" ? { key, ...triggerHashes(body, logical ?? execution ? logicalDate : undefined) } : undefined;
      const { runId, existing } = await createDagRun(dbFor(db, req), now, {
        idempotency,
        dagId: req.params.dag_id,
        runId: body.dag_run_id,
        runType: "manual",
        logicalDate,
        conf: (body.conf ?? {}) as Record<string, unknown>,
        note: body.note ?? null,
      });
      if (!existing) onRunCreated?.();
      return reply.status(200).send(await current(req.params.dag_id, runId));
    },
  );

  // "~" lists the runs of every DAG, as in Airflow.
  app.get(
    "/dags/:dag_id/dagRuns",
    {
      schema: {
        operationId: "get_dag_runs",
        tags: TAGS,
        params: DagParams,
        querystring: Type.Object({
          ...PageQuery.properties,
          ...CursorQuery.properties,
          state: Type.Optional(Type.Array(RunStateSchema, { maxItems: 10, description: "Repeatable: runs in any of these states." })),
          order_by: Type.Optional(OrderBy),
          ...DateFilters,
        }),
        response: { 200: CursorListOf("dag_runs", DagRunSchema) },
      },
      serializerCompiler: serializeAsBuilt,
    },
    async (req) => {
      const dagId = req.params.dag_id;
      const { limit = 100, offset = 0, state, order_by, cursor } = req.query;
      const order = dagRunOrder(order_by);
      const filter: DagRunFilter = { dagIds: dagId === "~" ? undefined : [dagId], states: state, ...dateRanges(req.query, "querystring") };
      const scope: CursorScope = { path: { dag_id: dagId }, filters: { ...filter, dagIds: undefined } };
      const from = cursor === undefined ? undefined : decodeCursor(cursor, offset, "dag_runs", scope, order);
      // A cursor page: the total came with the cursor, and no COUNT runs.
      const { rows, next, total } = from
        ? { ...(await listDagRunsAfter(db.pool, filter, { limit, orderBy: order_by, after: from.after })), total: from.total }
        : await listDagRuns(db.pool, filter, { limit, offset, orderBy: order_by });
      // Runs prove their DAG exists: only an empty page asks (a query less for every other page).
      if (rows.length === 0 && dagId !== "~" && !(await getDag(db.pool, dagId))) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
      return { dag_runs: rows.map(dagRunJson), total_entries: total, next_cursor: next && encodeCursor("dag_runs", scope, order, next, total) };
    },
  );

  // Airflow's batch list: the filters of GET …/dagRuns in a body, for many DAGs at once. A read,
  // so a viewer may call it although it is a POST.
  app.post(
    "/dags/~/dagRuns/list",
    {
      config: { role: "viewer" },
      schema: { operationId: "get_dag_runs_batch", tags: TAGS, body: BatchBody, response: { 200: DagRunList } },
      serializerCompiler: serializeAsBuilt,
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {} as Static<typeof BatchBody>;
      },
    },
    async (req) => {
      const { page_offset = 0, page_limit = 100, dag_ids, states, order_by } = req.body;
      // An empty dag_ids is every DAG, as left out: Airflow's get_dag_runs_batch filters by
      // dag_ids only `if data.get("dag_ids")` (states: `if states`, as the store reads them).
      const filter: DagRunFilter = { dagIds: dag_ids?.length ? dag_ids : undefined, states, ...dateRanges(req.body, "body") };
      const { rows, total } = await listDagRuns(db.pool, filter, { limit: page_limit, offset: page_offset, orderBy: order_by });
      return { dag_runs: rows.map(dagRunJson), total_entries: total };
    },
  );

  app.get(
    "/dags/:dag_id/dagRuns/:dag_run_id",
    { schema: { operationId: "get_dag_run", tags: TAGS, params: RunParams, response: { 200: DagRunSchema } } },
    async (req) => current(req.params.dag_id, req.params.dag_run_id),
  );

  app.patch(
    "/dags/:dag_id/dagRuns/:dag_run_id",
    { schema: { operationId: "update_dag_run_state", tags: TAGS, params: RunParams, body: StateBody, response: { 200: UpdatedDagRun } } },
    async (req) => {
      const { dag_id: dagId, dag_run_id: runId } = req.params;
      const { state, compensate } = req.body;
      if (compensate !== undefined && state !== "failed") {
        throw new BatonError("BATON_VALIDATION_FAILED", `body.compensate only applies to state "failed", not "${state}"`);
      }
      const now = clock.now();
      // Answered from the transition's own transaction (the run's row as it left it, and its state
      // before, read under its lock), not read again: by then workers may have run what it queued.
      let done: { previousState: string; run: RowDataPacket };
      if (state === "failed") {
        const cancelled = await cancelRun(dbFor(db, req), now, dagId, runId, { compensate: compensate === true, shapeOf });
        if (cancelled.compensating) onTasksQueued?.();
        done = cancelled;
      } else if (state === "success") {
        done = await markRunSuccess(dbFor(db, req), now, dagId, runId);
      } else {
        const cleared = await requeueRun(dbFor(db, req), now, dagId, runId, shapeOf);
        if (cleared.queued.length > 0) onTasksQueued?.();
        done = { previousState: cleared.previousRunState, run: cleared.run };
      }
      // A finished run frees room under maxActiveRuns; runs depending on the past may go on.
      onRunCreated?.();
      return { ...dagRunJson(done.run), previous_state: done.previousState };
    },
  );

  app.patch(
    "/dags/:dag_id/dagRuns/:dag_run_id/setNote",
    {
      schema: {
        operationId: "set_dag_run_note",
        tags: TAGS,
        params: RunParams,
        body: Type.Object({ note: Type.Union([Type.String({ maxLength: 10_000 }), Type.Null()]) }, { additionalProperties: false }),
        response: { 200: DagRunSchema },
      },
    },
    async (req) => {
      const { dag_id: dagId, dag_run_id: runId } = req.params;
      if (!(await setDagRunNote(db.pool, dagId, runId, req.body.note))) throw await runNotFoundError(db.pool, dagId, runId);
      return current(dagId, runId);
    },
  );

  // Deletes the run with its task instances, outputs and events, then its log folder; 409
  // BATON_TASKS_RUNNING while one of its task instances runs. See store/transitions/deleteDagRun.ts.
  app.delete(
    "/dags/:dag_id/dagRuns/:dag_run_id",
    { schema: { operationId: "delete_dag_run", tags: TAGS, params: RunParams, response: { 204: Type.Null({ description: "Deleted" }) } } },
    async (req, reply) => {
      const { dag_id: dagId, dag_run_id: runId } = req.params;
      await deleteDagRun(db, dagId, runId);
      await removeLogs(runLogFolder(config.logsFolder, { dagId, runId }), logger);
      onRunCreated?.();
      return reply.status(204).send(null);
    },
  );
};
