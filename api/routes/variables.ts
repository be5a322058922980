// Variables (Airflow's /variables): admin only, reads included, since values may be credentials.
// A variable whose key looks sensitive (password, token, …) is answered with value "***".
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import { isSensitiveKey, MASK } from "../../core/sensitive.ts";
import { createVariable, deleteVariable, getVariable, listVariables, updateVariable, VARIABLE_ORDER_FIELDS, type Variable } from "../../store/variables.ts";
import type { ApiDeps } from "../context.ts";
import { Id, PageQuery, StoredName } from "../schemas.ts";
import { orderByEnum } from "./dags.ts";

const TAGS = ["Variable"];
/** A key a variable is created with: the API's one name rule. */
const NewVariableKey = Id;
/**
 * A key looked up (the path's, and PATCH's body.key, which must equal it): any a variable may have,
 * those an older Baton stored with a tab or a newline too (POST took any key not ending with a space).
 */
const VariableKey = StoredName(250, { description: "Any stored key (one an older Baton stored may hold a tab or a newline); new keys follow the name rule: no control character, no trailing whitespace" });
const VariableParams = Type.Object({ variable_key: VariableKey });
const Value = Type.String({ maxLength: 1_000_000 });
const Description = Type.Union([Type.String({ maxLength: 10_000 }), Type.Null()]);

const VariableJson = Type.Object({ key: Type.String(), value: Type.String(), description: Type.Union([Type.String(), Type.Null()]) });
const VariableList = Type.Object({ variables: Type.Array(VariableJson), total_entries: Type.Integer() });
const UpdateMaskQuery = Type.Object({ update_mask: Type.Optional(Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 20 })) });

const MASKABLE = ["value", "description"] as const;
type Maskable = (typeof MASKABLE)[number];

export function variableJson(v: Variable) {
  return { key: v.key, value: isSensitiveKey(v.key) ? MASK : v.value, description: v.description };
}

function notFound(key: string): never {
  throw new BatonError("BATON_VARIABLE_NOT_FOUND", `variable "${key}" not found`);
}

/**
 * Airflow's update_mask (repeated or comma-separated): the fields to take from the body. Without
 * it, every field the body sets is changed.
 */
export function maskedFields<F extends string>(mask: string[] | undefined, allowed: readonly F[], body: Record<string, unknown>): F[] {
  if (mask === undefined) return allowed.filter((f) => body[f] !== undefined);
  const fields = mask.flatMap((m) => m.split(",")).map((m) => m.trim()).filter(Boolean);
  for (const f of fields) {
    if (!(allowed as readonly string[]).includes(f)) {
      throw new BatonError("BATON_VALIDATION_FAILED", `querystring.update_mask: "${f}" cannot be updated; allowed: ${allowed.join(", ")}`);
    }
    if (body[f] === undefined) throw new BatonError("BATON_VALIDATION_FAILED", `body.${f} is required: update_mask names it`);
  }
  return [...new Set(fields)] as F[];
}

export const variableRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  const admin = { role: "admin" as const };

  app.get(
    "/variables",
    {
      config: admin,
      schema: {
        operationId: "get_variables",
        tags: TAGS,
        querystring: Type.Object({ ...PageQuery.properties, order_by: Type.Optional(orderByEnum(VARIABLE_ORDER_FIELDS, "key (the default)")) }),
        response: { 200: VariableList },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by } = req.query;
      const { rows, total } = await listVariables(db.pool, { limit, offset, orderBy: order_by });
      return { variables: rows.map(variableJson), total_entries: total };
    },
  );

  app.get(
    "/variables/:variable_key",
    { config: admin, schema: { operationId: "get_variable", tags: TAGS, params: VariableParams, response: { 200: VariableJson } } },
    async (req) => variableJson((await getVariable(db.pool, req.params.variable_key)) ?? notFound(req.params.variable_key)),
  );

  app.post(
    "/variables",
    {
      config: admin,
      schema: {
        operationId: "post_variables",
        tags: TAGS,
        body: Type.Object({ key: NewVariableKey, value: Value, description: Type.Optional(Description) }, { additionalProperties: false }),
        response: { 200: VariableJson },
      },
    },
    async (req) => {
      await createVariable(db.pool, req.body);
      return variableJson((await getVariable(db.pool, req.body.key))!);
    },
  );

  app.patch(
    "/variables/:variable_key",
    {
      config: admin,
      schema: {
        operationId: "patch_variable",
        tags: TAGS,
        params: VariableParams,
        querystring: UpdateMaskQuery,
        body: Type.Object({ key: Type.Optional(VariableKey), value: Type.Optional(Value), description: Type.Optional(Description) }, { additionalProperties: false }),
        response: { 200: VariableJson },
      },
    },
    async (req) => {
      const key = req.params.variable_key;
      if (req.body.key !== undefined && req.body.key !== key) {
        throw new BatonError("BATON_VALIDATION_FAILED", `body.key "${req.body.key}" differs from the path's "${key}": variables cannot be renamed`);
      }
      const fields = maskedFields<Maskable>(req.query.update_mask, MASKABLE, req.body);
      if (fields.length === 0) throw new BatonError("BATON_VALIDATION_FAILED", "body must set value or description");
      const change: { value?: string; description?: string | null } = {};
      // The API shows a sensitive variable's value as the mask: written back unchanged, it keeps the secret.
      if (fields.includes("value") && !(isSensitiveKey(key) && req.body.value === MASK)) change.value = req.body.value;
      if (fields.includes("description")) change.description = req.body.description;
      // One transaction: a variable the answer cannot read back (its value sealed with another
      // BATON_SECRET_KEY) answers the error with nothing changed, not a change reported as failed.
      return db.tx(async (tx) => {
        if (!(await updateVariable(tx, key, change))) notFound(key);
        return variableJson((await getVariable(tx, key))!);
      });
    },
  );

  app.delete(
    "/variables/:variable_key",
    { config: admin, schema: { operationId: "delete_variable", tags: TAGS, params: VariableParams, response: { 204: Type.Null() } } },
    async (req, reply) => {
      if (!(await deleteVariable(db.pool, req.params.variable_key))) notFound(req.params.variable_key);
      return reply.status(204).send(null);
    },
  );
};
