import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { getDag, getDagRun, listDagRuns } from "../../store/queries/read.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import type { ApiDeps } from "../context.ts";
import { DagParams, PageQuery, RunParams, TriggerBody } from "../schemas.ts";
import { dagRunJson } from "../serializers.ts";

export const dagRunRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, onRunCreated }) => {
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
      const { runId } = await createDagRun(db, now, {
        dagId: req.params.dag_id,
        runId: body.dag_run_id,
        runType: "manual",
        logicalDate,
        conf: (body.conf ?? {}) as Record<string, unknown>,
        note: body.note ?? null,
      });
      onRunCreated?.();
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

  app.get("/dags/:dag_id/dagRuns/:dag_run_id", { schema: { params: RunParams } }, async (req) => {
    const row = await getDagRun(db.pool, req.params.dag_id, req.params.dag_run_id);
    if (!row) throw new BatonError("BATON_DAG_RUN_NOT_FOUND", `DAG run "${req.params.dag_run_id}" of DAG "${req.params.dag_id}" not found`);
    return dagRunJson(row);
  });
};
