import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { getDag, getDagVersion, listDags, listDagVersions, setDagPaused } from "../../store/queries/read.ts";
import { isoOrNull } from "../../store/rows.ts";
import type { ApiDeps } from "../context.ts";
import { DagParams, PageQuery, PatchDagBody } from "../schemas.ts";
import { dagJson } from "../serializers.ts";

export const dagRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, onRunCreated }) => {
  app.get(
    "/dags",
    { schema: { querystring: Type.Intersect([PageQuery, Type.Object({ only_active: Type.Optional(Type.Boolean()), paused: Type.Optional(Type.Boolean()) })]) } },
    async (req) => {
      const { limit = 100, offset = 0, only_active = true, paused } = req.query;
      const { rows, total } = await listDags(db.pool, { limit, offset, onlyActive: only_active, paused });
      return { dags: rows.map(dagJson), total_entries: total };
    },
  );

  app.get("/dags/:dag_id", { schema: { params: DagParams } }, async (req) => {
    const row = await getDag(db.pool, req.params.dag_id);
    if (!row) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.params.dag_id}" not found`);
    return dagJson(row);
  });

  app.patch("/dags/:dag_id", { schema: { params: DagParams, body: PatchDagBody } }, async (req) => {
    if (!(await setDagPaused(db.pool, req.params.dag_id, req.body.is_paused))) {
      throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.params.dag_id}" not found`);
    }
    // Runs held while the DAG was paused can start now, without waiting for the next tick.
    if (!req.body.is_paused) onRunCreated?.();
    return dagJson((await getDag(db.pool, req.params.dag_id))!);
  });

  app.get("/dags/:dag_id/versions", { schema: { params: DagParams, querystring: PageQuery } }, async (req) => {
    if (!(await getDag(db.pool, req.params.dag_id))) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.params.dag_id}" not found`);
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listDagVersions(db.pool, req.params.dag_id, { limit, offset });
    return {
      dag_versions: rows.map((r) => ({ dag_version: r.version_hash, created_at: isoOrNull(r.created_at), code_hash: r.code_hash, is_latest: !!r.is_latest })),
      total_entries: total,
    };
  });

  app.get(
    "/dags/:dag_id/versions/:dag_version",
    { schema: { params: Type.Intersect([DagParams, Type.Object({ dag_version: Type.String({ pattern: "^[0-9a-f]{64}$" }) })]) } },
    async (req) => {
      const row = await getDagVersion(db.pool, req.params.dag_id, req.params.dag_version);
      if (!row) throw new BatonError("BATON_VERSION_NOT_FOUND", `DAG "${req.params.dag_id}" has no version ${req.params.dag_version}`);
      return { dag_version: row.version_hash, created_at: isoOrNull(row.created_at), code_hash: row.code_hash, structure: JSON.parse(row.structure) };
    },
  );
};
