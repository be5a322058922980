import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { createPool, deletePool, getPool, listPools, updatePool, type PoolRow } from "../../store/pools.ts";
import type { ApiDeps } from "../context.ts";
import { ListOf, Nullable } from "../openapi.ts";
import { PageQuery } from "../schemas.ts";

const PoolName = Type.String({ minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9_.-]+$" });
const PoolParams = Type.Object({ pool_name: PoolName });
const Slots = Type.Integer({ minimum: 0 });
const Pool = Type.Object(
  {
    name: Type.String(),
    slots: Slots,
    occupied_slots: Slots,
    running_slots: Slots,
    queued_slots: Slots,
    open_slots: Slots,
    description: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const TAGS = ["Pool"];

/** Airflow's Pool schema: open slots are what claims may still use. */
function poolJson(p: PoolRow) {
  return {
    name: p.name,
    slots: p.slots,
    occupied_slots: p.occupied_slots,
    running_slots: p.occupied_slots,
    queued_slots: 0,
    open_slots: Math.max(0, p.slots - p.occupied_slots),
    description: p.description ?? null,
  };
}

function notFound(name: string): never {
  throw new BatonError("BATON_POOL_NOT_FOUND", `pool "${name}" not found`);
}

export const poolRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  app.get("/pools", { schema: { operationId: "get_pools", tags: TAGS, querystring: PageQuery, response: { 200: ListOf("pools", Pool) } } }, async (req) => {
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listPools(db.pool, { limit, offset });
    return { pools: rows.map(poolJson), total_entries: total };
  });

  app.get("/pools/:pool_name", { schema: { operationId: "get_pool", tags: TAGS, params: PoolParams, response: { 200: Pool } } }, async (req) =>
    poolJson((await getPool(db.pool, req.params.pool_name)) ?? notFound(req.params.pool_name)),
  );

  app.post(
    "/pools",
    {
      config: { role: "admin" },
      schema: {
        operationId: "post_pool",
        tags: TAGS,
        response: { 200: Pool },
        body: Type.Object(
          { name: PoolName, slots: Type.Integer({ minimum: 0, maximum: 1_000_000 }), description: Type.Optional(Type.String({ maxLength: 10_000 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      await createPool(db, req.body);
      return poolJson((await getPool(db.pool, req.body.name))!);
    },
  );

  app.patch(
    "/pools/:pool_name",
    {
      config: { role: "admin" },
      schema: {
        operationId: "patch_pool",
        tags: TAGS,
        params: PoolParams,
        response: { 200: Pool },
        body: Type.Object(
          { slots: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })), description: Type.Optional(Type.String({ maxLength: 10_000 })), name: Type.Optional(PoolName) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      if (req.body.name !== undefined && req.body.name !== req.params.pool_name) {
        throw new BatonError("BATON_VALIDATION_FAILED", "body.name cannot rename a pool; tasks refer to pools by name");
      }
      if (!(await updatePool(db.pool, req.params.pool_name, req.body))) notFound(req.params.pool_name);
      return poolJson((await getPool(db.pool, req.params.pool_name))!);
    },
  );

  app.delete(
    "/pools/:pool_name",
    { config: { role: "admin" }, schema: { operationId: "delete_pool", tags: TAGS, params: PoolParams, response: { 204: Type.Null({ description: "The pool was deleted" }) } } },
    async (req, reply) => {
      if (!(await deletePool(db.pool, req.params.pool_name))) notFound(req.params.pool_name);
      return reply.status(204).send(null);
    },
  );
};
