import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { getDag, getDagRun, listDagRuns } from "../../store/queries/read.ts";
import { createHash } from "node:crypto";
import { cancelRun } from "../../store/transitions/cancelRun.ts";
import { VersionCache } from "../../store/versions.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import type { ApiDeps } from "../context.ts";
import { DagParams, PageQuery, RunParams, TriggerBody } from "../schemas.ts";
import { dagRunJson } from "../serializers.ts";

/** JSON with sorted keys, so the same body always hashes the same. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export const dagRunRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, onRunCreated, onTasksQueued }) => {
  const versions = new VersionCache(db.pool);
  app.post(
    "/dags/:dag_id/dagRuns",
    {
      schema: { params: DagParams, body: Type.Optional(TriggerBody) },
      // A schema cannot make the whole body optional: a POST without one means `{}`.
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req, reply) => {
      const body = req.body ?? {};
      const now = clock.now();
      let logicalDate = now;
      if (body.logical_date !== undefined) {
        logicalDate = new Date(body.logical_date);
        if (Number.isNaN(logicalDate.getTime())) throw new BatonError("BATON_INVALID_DATE", `body.logical_date "${body.logical_date}" is not a valid date`);
      }
      const key = req.headers["idempotency-key"];
      if (Array.isArray(key) || (typeof key === "string" && (key.length === 0 || key.length > 255))) {
        throw new BatonError("BATON_VALIDATION_FAILED", "headers.idempotency-key must be one value of 1-255 characters");
      }
      const idempotency = typeof key === "string" ? { key, requestHash: createHash("sha256").update(stableJson(body)).digest("hex") } : undefined;
      const { runId, existing } = await createDagRun(db, now, {
        idempotency,
        dagId: req.params.dag_id,
        runId: body.dag_run_id,
        runType: "manual",
        logicalDate,
        conf: (body.conf ?? {}) as Record<string, unknown>,
        note: body.note ?? null,
      });
      if (!existing) onRunCreated?.();
      const row = await getDagRun(db.pool, req.params.dag_id, runId);
      return reply.status(200).send(dagRunJson(row!));
    },
  );

  app.get(
    "/dags/:dag_id/dagRuns",
    { schema: { params: DagParams, querystring: Type.Intersect([PageQuery, Type.Object({ state: Type.Optional(Type.Array(Type.String(), { maxItems: 10 })) })]) } },
    async (req) => {
      if (req.params.dag_id !== "~" && !(await getDag(db.pool, req.params.dag_id))) {
        throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.params.dag_id}" not found`);
      }
      const { limit = 100, offset = 0, state } = req.query;
      const { rows, total } = await listDagRuns(db.pool, req.params.dag_id, { limit, offset, state });
      return { dag_runs: rows.map(dagRunJson), total_entries: total };
    },
  );

  app.patch(
    "/dags/:dag_id/dagRuns/:dag_run_id",
    {
      schema: {
        params: RunParams,
        body: Type.Object(
          { state: Type.Union([Type.Literal("failed"), Type.Literal("success"), Type.Literal("queued")]), compensate: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      if (req.body.state !== "failed") {
        throw new BatonError("BATON_VALIDATION_FAILED", `body.state "${req.body.state}" is not supported yet: set "failed" to cancel a run`);
      }
      const { compensating } = await cancelRun(db, clock.now(), req.params.dag_id, req.params.dag_run_id, {
        compensate: req.body.compensate === true,
        shapeOf: (h) => versions.shape(h),
      });
      if (compensating) onTasksQueued?.();
      return dagRunJson((await getDagRun(db.pool, req.params.dag_id, req.params.dag_run_id))!);
    },
  );

  app.get("/dags/:dag_id/dagRuns/:dag_run_id", { schema: { params: RunParams } }, async (req) => {
    const row = await getDagRun(db.pool, req.params.dag_id, req.params.dag_run_id);
    if (!row) throw new BatonError("BATON_DAG_RUN_NOT_FOUND", `DAG run "${req.params.dag_run_id}" of DAG "${req.params.dag_id}" not found`);
    return dagRunJson(row);
  });
};
