import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { MAX_POOL_LENGTH, MAX_POOL_SLOTS, POOL_NAME_PATTERN } from "../../core/dagLimits.ts";
import { BatonError } from "../../core/errors.ts";
import {
  createPool,
  deletePool,
  getPool,
  listPools,
  POOL_ORDER_FIELDS,
  shownSlots,
  storedSlots,
  UNLIMITED_SLOTS,
  updatePool,
  waitingSlots,
  type PoolRow,
  type PoolWaitingSlots,
} from "../../store/pools.ts";
import type { ApiDeps } from "../context.ts";
import { ListOf, Nullable } from "../openapi.ts";
import { PageQuery } from "../schemas.ts";
import { orderByEnum } from "./dags.ts";
import { maskedFields } from "./variables.ts";

/** Any name a DAG may use (core/dagLimits.ts poolNameProblem); percent-encoded in a path. */
const PoolName = Type.String({
  minLength: 1,
  maxLength: MAX_POOL_LENGTH,
  pattern: POOL_NAME_PATTERN,
  description: 'Any 1-256 characters but "." and "..", not ending with whitespace; in a path, percent-encoded (team/gpu is team%2Fgpu)',
});
const PoolParams = Type.Object({ pool_name: PoolName });
const Slots = Type.Integer({ minimum: 0 });
/** What a pool's slots are set to: -1 is no limit (Airflow's unlimited pool). */
const SlotsSet = Type.Integer({ minimum: UNLIMITED_SLOTS, maximum: MAX_POOL_SLOTS, description: "Slots in all; -1 for no limit" });
const Description = Nullable(Type.String({ maxLength: 10_000 }));
const Pool = Type.Object(
  {
    name: Type.String(),
    slots: Type.Integer({ minimum: UNLIMITED_SLOTS, description: "Slots in all; -1 when the pool has no limit" }),
    occupied_slots: Slots,
    running_slots: Slots,
    queued_slots: Type.Integer({ minimum: 0, description: "Slots of the pool's task instances in state queued (ready for a worker)" }),
    scheduled_slots: Type.Integer({ minimum: 0, description: "Slots of the pool's task instances in state scheduled" }),
    deferred_slots: Type.Integer({ minimum: 0, description: "Slots of the pool's task instances in state deferred (waiting for a signal or a sensor)" }),
    open_slots: Type.Integer({ minimum: UNLIMITED_SLOTS, description: "Slots claims may still use; -1 when the pool has no limit" }),
    description: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const TAGS = ["Pool"];

const NO_WAITING: PoolWaitingSlots = { queued: 0, scheduled: 0, deferred: 0 };

/**
 * Airflow's Pool schema. occupied (= running) slots are what claims count against `slots`, so
 * open slots are what claims may still use; queued, scheduled and deferred task instances hold
 * no slot yet and are shown beside them.
 */
function poolJson(p: PoolRow, waiting: PoolWaitingSlots = NO_WAITING) {
  const slots = shownSlots(p.slots);
  return {
    name: p.name,
    slots,
    occupied_slots: p.occupied_slots,
    running_slots: p.occupied_slots,
    queued_slots: waiting.queued,
    scheduled_slots: waiting.scheduled,
    deferred_slots: waiting.deferred,
    open_slots: slots === UNLIMITED_SLOTS ? UNLIMITED_SLOTS : Math.max(0, p.slots - p.occupied_slots),
    description: p.description ?? null,
  };
}

function notFound(name: string): never {
  throw new BatonError("BATON_POOL_NOT_FOUND", `pool "${name}" not found`);
}

export const poolRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  /** One pool as the API shows it, with its waiting slots. */
  const current = async (name: string) => {
    const pool = (await getPool(db.pool, name)) ?? notFound(name);
    return poolJson(pool, (await waitingSlots(db.pool, [name])).get(name));
  };

  app.get(
    "/pools",
    {
      schema: {
        operationId: "get_pools",
        tags: TAGS,
        querystring: Type.Object({ ...PageQuery.properties, order_by: Type.Optional(orderByEnum(POOL_ORDER_FIELDS, "name (default) or slots")) }),
        response: { 200: ListOf("pools", Pool) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by } = req.query;
      const { rows, total } = await listPools(db.pool, { limit, offset, orderBy: order_by });
      const waiting = await waitingSlots(
        db.pool,
        rows.map((p) => p.name),
      );
      return { pools: rows.map((p) => poolJson(p, waiting.get(p.name))), total_entries: total };
    },
  );

  app.get("/pools/:pool_name", { schema: { operationId: "get_pool", tags: TAGS, params: PoolParams, response: { 200: Pool } } }, async (req) =>
    current(req.params.pool_name),
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
          { name: PoolName, slots: SlotsSet, description: Type.Optional(Description) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      await createPool(db, { ...req.body, slots: storedSlots(req.body.slots) });
      return current(req.body.name);
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
        querystring: Type.Object({
          update_mask: Type.Optional(
            Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 20, description: "Fields of the body to apply (slots, description); repeated or comma-separated. Default: every field the body sets." }),
          ),
        }),
        response: { 200: Pool },
        body: Type.Object(
          { slots: Type.Optional(SlotsSet), description: Type.Optional(Description), name: Type.Optional(PoolName) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      if (req.body.name !== undefined && req.body.name !== req.params.pool_name) {
        throw new BatonError("BATON_VALIDATION_FAILED", "body.name cannot rename a pool; tasks refer to pools by name");
      }
      const fields = maskedFields(req.query.update_mask, ["slots", "description"] as const, req.body);
      if (fields.length === 0) throw new BatonError("BATON_VALIDATION_FAILED", "body must set slots or description");
      const change = {
        slots: fields.includes("slots") && req.body.slots !== undefined ? storedSlots(req.body.slots) : undefined,
        description: fields.includes("description") ? req.body.description : undefined,
      };
      if (!(await updatePool(db.pool, req.params.pool_name, change))) notFound(req.params.pool_name);
      return current(req.params.pool_name);
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
