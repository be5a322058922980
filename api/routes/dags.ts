import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { SerializedDag } from "../../core/dagStructure.ts";
import { BatonError } from "../../core/errors.ts";
import { dagLogFolder, removeLogs } from "../../core/logPaths.ts";
import { DAG_ORDER_FIELDS, getDag, getDagVersion, listDags, listDagVersions, setDagPaused, setDagsPaused } from "../../store/queries/read.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { isoOrNull } from "../../store/rows.ts";
import { deleteDag } from "../../store/transitions/deleteDag.ts";
import { VersionCache } from "../../store/versions.ts";
import type { ApiDeps } from "../context.ts";
import { FreeObject, ListOf, NullableDateTime } from "../openapi.ts";
import { DagParams, Id, PageQuery, PatchDagBody } from "../schemas.ts";
import { DagDetailSchema, DagSchema, TaskSchema, dagDetailJson, dagJson, taskJson } from "../serializers.ts";

const TAGS = ["DAG"];

/** `field` or `-field` (descending) for each field in the map. */
export function orderByEnum(fields: Record<string, unknown>, description: string) {
  return Type.Enum(
    Object.keys(fields).flatMap((f) => [f, `-${f}`]),
    { description: `${description}; prefix "-" for descending. Ties are broken by a unique key, so pages are stable.` },
  );
}

const DagFilterQuery = {
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50, description: "Repeatable: DAGs with any of these tags." })),
  dag_id_pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 250, description: "Case-insensitive substring of dag_id (% and _ are literal)." })),
  only_active: Type.Optional(Type.Boolean({ default: true, description: "Only DAGs whose file still defines them." })),
};

const DagListQuery = Type.Object({
  ...PageQuery.properties,
  ...DagFilterQuery,
  order_by: Type.Optional(orderByEnum(DAG_ORDER_FIELDS, "dag_id (default), last_parsed_time or next_dagrun")),
  paused: Type.Optional(Type.Boolean()),
});

const UpdateMask = Type.Optional(
  Type.Array(Type.Enum(["is_paused"]), { maxItems: 1, description: "Fields of the body to apply; is_paused is the only one that can change." }),
);

const DagList = ListOf("dags", DagSchema);
const TaskParams = Type.Object({ dag_id: DagParams.properties.dag_id, task_id: Id });
const VersionSchema = Type.Object({ dag_version: Type.String(), created_at: NullableDateTime, code_hash: Type.String(), is_latest: Type.Boolean() });

function dagNotFound(dagId: string): never {
  throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${dagId}" not found`);
}

export const dagRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, config, logger, onRunCreated }) => {
  const versions = new VersionCache(db.pool);
  /** The latest version's structure (what /details and /tasks describe); null before the first parse. */
  const latestOf = async (row: RowDataPacket): Promise<SerializedDag | null> =>
    row.latest_version_hash ? (await versions.shape(row.latest_version_hash as string)).dag : null;

  app.get("/dags", { schema: { operationId: "get_dags", tags: TAGS, querystring: DagListQuery, response: { 200: DagList } } }, async (req) => {
    const { limit = 100, offset = 0, only_active = true, paused, tags, dag_id_pattern, order_by } = req.query;
    const { rows, total } = await listDags(db.pool, { limit, offset, onlyActive: only_active, paused, tags, dagIdPattern: dag_id_pattern, orderBy: order_by });
    return { dags: rows.map(dagJson), total_entries: total };
  });

  // Airflow's bulk PATCH: pauses or unpauses the DAGs matching dag_id_pattern ("~" for all), one
  // page of them (limit/offset, ordered by dag_id); answers those DAGs and how many match in all.
  app.patch(
    "/dags",
    {
      schema: {
        operationId: "patch_dags",
        tags: TAGS,
        querystring: Type.Object({
          ...PageQuery.properties,
          ...DagFilterQuery,
          dag_id_pattern: Type.String({ minLength: 1, maxLength: 250, description: 'Required: a substring of dag_id, or "~" for every DAG.' }),
          update_mask: UpdateMask,
        }),
        body: PatchDagBody,
        response: { 200: DagList },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, only_active = true, tags, dag_id_pattern } = req.query;
      const filter = { onlyActive: only_active, tags, dagIdPattern: dag_id_pattern === "~" ? undefined : dag_id_pattern };
      const { rows, total } = await listDags(db.pool, { limit, offset, ...filter });
      const dagIds = rows.map((r) => r.dag_id as string);
      await setDagsPaused(db.pool, dagIds, req.body.is_paused);
      if (!req.body.is_paused && dagIds.length > 0) onRunCreated?.();
      const after = await listDags(db.pool, { limit, offset: 0, onlyActive: false, dagIds });
      return { dags: after.rows.map(dagJson), total_entries: total };
    },
  );

  app.get("/dags/:dag_id", { schema: { operationId: "get_dag", tags: TAGS, params: DagParams, response: { 200: DagSchema } } }, async (req) => {
    const row = await getDag(db.pool, req.params.dag_id);
    if (!row) dagNotFound(req.params.dag_id);
    return dagJson(row);
  });

  app.patch(
    "/dags/:dag_id",
    {
      schema: {
        operationId: "patch_dag",
        tags: TAGS,
        params: DagParams,
        querystring: Type.Object({ update_mask: UpdateMask }),
        body: PatchDagBody,
        response: { 200: DagSchema },
      },
    },
    async (req) => {
      if (!(await setDagPaused(db.pool, req.params.dag_id, req.body.is_paused))) dagNotFound(req.params.dag_id);
      // Runs held while the DAG was paused can start now, without waiting for the next tick.
      if (!req.body.is_paused) onRunCreated?.();
      return dagJson((await getDag(db.pool, req.params.dag_id))!);
    },
  );

  // Deletes the DAG's runs, task instances, outputs, events, backfills and versions, then its log
  // folder; 409 BATON_TASKS_RUNNING while a task instance runs. See store/transitions/deleteDag.ts.
  app.delete(
    "/dags/:dag_id",
    { config: { role: "admin" }, schema: { operationId: "delete_dag", tags: TAGS, params: DagParams, response: { 204: Type.Null({ description: "Deleted" }) } } },
    async (req, reply) => {
      await deleteDag(db, req.params.dag_id);
      await removeLogs(dagLogFolder(config.logsFolder, req.params.dag_id), logger);
      // Freed room under pools and maxActiveRuns does not matter to other DAGs, but a waiting
      // scheduler re-reads its state sooner.
      onRunCreated?.();
      return reply.status(204).send(null);
    },
  );

  app.get(
    "/dags/:dag_id/details",
    { schema: { operationId: "get_dag_details", tags: TAGS, params: DagParams, response: { 200: DagDetailSchema } } },
    async (req) => {
      const row = await getDag(db.pool, req.params.dag_id);
      if (!row) dagNotFound(req.params.dag_id);
      return dagDetailJson(row, await latestOf(row));
    },
  );

  app.get(
    "/dags/:dag_id/tasks",
    {
      schema: {
        operationId: "get_tasks",
        tags: TAGS,
        params: DagParams,
        querystring: Type.Object({ order_by: Type.Optional(Type.Enum(["task_id", "-task_id"], { description: "task_id (default)" })) }),
        response: { 200: ListOf("tasks", TaskSchema) },
      },
    },
    async (req) => {
      const row = await getDag(db.pool, req.params.dag_id);
      if (!row) dagNotFound(req.params.dag_id);
      const dag = await latestOf(row);
      const tasks = [...(dag?.tasks ?? [])].sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
      if (req.query.order_by === "-task_id") tasks.reverse();
      return { tasks: tasks.map((t) => taskJson(t, dag!)), total_entries: tasks.length };
    },
  );

  app.get(
    "/dags/:dag_id/tasks/:task_id",
    { schema: { operationId: "get_task", tags: TAGS, params: TaskParams, response: { 200: TaskSchema } } },
    async (req) => {
      const row = await getDag(db.pool, req.params.dag_id);
      if (!row) dagNotFound(req.params.dag_id);
      const dag = await latestOf(row);
      const task = dag?.tasks.find((t) => t.taskId === req.params.task_id);
      if (!dag || !task) throw new BatonError("BATON_TASK_NOT_FOUND", `task "${req.params.task_id}" not found in the latest version of DAG "${req.params.dag_id}"`);
      return taskJson(task, dag);
    },
  );

  app.get(
    "/dags/:dag_id/versions",
    { schema: { operationId: "get_dag_versions", tags: TAGS, params: DagParams, querystring: PageQuery, response: { 200: ListOf("dag_versions", VersionSchema) } } },
    async (req) => {
      if (!(await getDag(db.pool, req.params.dag_id))) dagNotFound(req.params.dag_id);
      const { limit = 100, offset = 0 } = req.query;
      const { rows, total } = await listDagVersions(db.pool, req.params.dag_id, { limit, offset });
      return {
        dag_versions: rows.map((r) => ({ dag_version: r.version_hash, created_at: isoOrNull(r.created_at), code_hash: r.code_hash, is_latest: !!r.is_latest })),
        total_entries: total,
      };
    },
  );

  app.get(
    "/dags/:dag_id/versions/:dag_version",
    {
      schema: {
        operationId: "get_dag_version",
        tags: TAGS,
        params: Type.Intersect([DagParams, Type.Object({ dag_version: Type.String({ pattern: "^[0-9a-f]{64}$" }) })]),
        response: {
          200: Type.Object({ dag_version: Type.String(), created_at: NullableDateTime, code_hash: Type.String(), structure: FreeObject }),
        },
      },
    },
    async (req) => {
      const row = await getDagVersion(db.pool, req.params.dag_id, req.params.dag_version);
      if (!row) throw new BatonError("BATON_VERSION_NOT_FOUND", `DAG "${req.params.dag_id}" has no version ${req.params.dag_version}`);
      return { dag_version: row.version_hash, created_at: isoOrNull(row.created_at), code_hash: row.code_hash, structure: JSON.parse(row.structure) };
    },
  );
};
