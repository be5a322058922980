// Connections (Airflow's /connections): admin only, reads included. The password is write-only:
// no answer ever carries it. Extra values under sensitive keys are answered as "***".
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type TSchema } from "typebox";
import { CONNECTION_ID_PATTERN, MAX_CONNECTION_ID_LENGTH } from "../../core/dagLimits.ts";
import { BatonError } from "../../core/errors.ts";
import { keepMaskedSecrets, MASK, redactJson, sensitiveLeaves } from "../../core/sensitive.ts";
import {
  CONNECTION_FIELDS,
  createConnection,
  deleteConnection,
  getConnection,
  CONNECTION_ORDER_FIELDS,
  listConnections,
  updateConnection,
  type Connection,
  type ConnectionFields,
} from "../../store/connections.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery } from "../schemas.ts";
import { orderByEnum } from "./dags.ts";
import { maskedFields } from "./variables.ts";

const TAGS = ["Connection"];
const ConnectionId = Type.String({ minLength: 1, maxLength: MAX_CONNECTION_ID_LENGTH, pattern: CONNECTION_ID_PATTERN });
const ConnectionParams = Type.Object({ connection_id: ConnectionId });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** The writable fields of a connection, as Airflow names them; extra is JSON object text. */
const Fields = {
  conn_type: Type.String({ minLength: 1, maxLength: 500 }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  host: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  login: Type.Optional(Nullable(Type.String({ maxLength: 5_000 }))),
  schema: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  port: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 65_535 }))),
  password: Type.Optional(Nullable(Type.String({ maxLength: 5_000 }))),
  extra: Type.Optional(Nullable(Type.String({ maxLength: 500_000, description: 'A JSON object as text; "" (blank) or null for none, stored and answered as null' }))),
};

const NullableText = Type.Union([Type.String(), Type.Null()]);
const ConnectionJson = Type.Object({
  connection_id: Type.String(),
  conn_type: Type.String(),
  description: NullableText,
  host: NullableText,
  login: NullableText,
  schema: NullableText,
  port: Type.Union([Type.Integer(), Type.Null()]),
  extra: NullableText,
});
const ConnectionList = Type.Object({ connections: Type.Array(ConnectionJson), total_entries: Type.Integer() });

/** A connection as the API shows it: no password, sensitive extra values masked. */
export function connectionJson(c: Connection) {
  let extra: string | null = null;
  if (c.extra !== null) {
    try {
      extra = JSON.stringify(redactJson(JSON.parse(c.extra)));
    } catch {
      extra = MASK;
    }
  }
  return { connection_id: c.connection_id, conn_type: c.conn_type, description: c.description, host: c.host, login: c.login, schema: c.schema, port: c.port, extra };
}

/** Whether an extra (JSON object text, checked) holds the mask under a sensitive key: one storedSecretsKept would fill. */
function keepsMask(extra: string): boolean {
  return sensitiveLeaves(JSON.parse(extra)).includes(MASK);
}

/** extra as the client sent it, with the stored secrets back where it kept the mask the API showed. */
function storedSecretsKept(stored: string | null | undefined, extra: string): string {
  if (stored === null || stored === undefined) return extra;
  if (extra === MASK) return stored; // an unreadable stored extra is shown whole as the mask
  try {
    return JSON.stringify(keepMaskedSecrets(JSON.parse(extra), JSON.parse(stored)));
  } catch {
    return extra;
  }
}

/**
 * extra as stored: a blank string ("", as Airflow exports a connection without one) is no extra,
 * null, like an extra never set (answered null; a task's ctx.connection(…).extra is {}). Other text
 * must be a JSON object (Airflow's extra_dejson).
 */
function checkedExtra(extra: string | null | undefined): string | null | undefined {
  if (extra === null || extra === undefined) return extra;
  if (extra.trim() === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(extra);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new BatonError("BATON_VALIDATION_FAILED", `body.extra must be a JSON object encoded as a string, e.g. "{\\"timeout\\": 30}", or "" for none`);
  }
  return extra;
}

function notFound(id: string): never {
  throw new BatonError("BATON_CONNECTION_NOT_FOUND", `connection "${id}" not found`);
}

export const connectionRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  const admin = { role: "admin" as const };

  app.get(
    "/connections",
    {
      config: admin,
      schema: {
        operationId: "get_connections",
        tags: TAGS,
        querystring: Type.Object({ ...PageQuery.properties, order_by: Type.Optional(orderByEnum(CONNECTION_ORDER_FIELDS, "connection_id (default), conn_type, host or port")) }),
        response: { 200: ConnectionList },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by } = req.query;
      const { rows, total } = await listConnections(db.pool, { limit, offset, orderBy: order_by });
      return { connections: rows.map(connectionJson), total_entries: total };
    },
  );

  app.get(
    "/connections/:connection_id",
    { config: admin, schema: { operationId: "get_connection", tags: TAGS, params: ConnectionParams, response: { 200: ConnectionJson } } },
    async (req) => connectionJson((await getConnection(db.pool, req.params.connection_id)) ?? notFound(req.params.connection_id)),
  );

  app.post(
    "/connections",
    {
      config: admin,
      schema: {
        operationId: "post_connection",
        tags: TAGS,
        body: Type.Object({ connection_id: ConnectionId, ...Fields }, { additionalProperties: false }),
        response: { 200: ConnectionJson },
      },
    },
    async (req) => {
      await createConnection(db.pool, { ...req.body, extra: checkedExtra(req.body.extra) });
      return connectionJson((await getConnection(db.pool, req.body.connection_id))!);
    },
  );

  app.patch(
    "/connections/:connection_id",
    {
      config: admin,
      schema: {
        operationId: "patch_connection",
        tags: TAGS,
        params: ConnectionParams,
        querystring: Type.Object({ update_mask: Type.Optional(Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 20 })) }),
        body: Type.Object({ connection_id: Type.Optional(ConnectionId), ...Fields, conn_type: Type.Optional(Fields.conn_type) }, { additionalProperties: false }),
        response: { 200: ConnectionJson },
      },
    },
    async (req) => {
      const id = req.params.connection_id;
      if (req.body.connection_id !== undefined && req.body.connection_id !== id) {
        throw new BatonError("BATON_VALIDATION_FAILED", `body.connection_id "${req.body.connection_id}" differs from the path's "${id}": connections cannot be renamed`);
      }
      const body = { ...req.body, extra: checkedExtra(req.body.extra) } as Partial<ConnectionFields>;
      const fields = maskedFields(req.query.update_mask, CONNECTION_FIELDS, body);
      if (fields.length === 0) throw new BatonError("BATON_VALIDATION_FAILED", `body must set at least one of ${CONNECTION_FIELDS.join(", ")}`);
      const change: Record<string, unknown> = {};
      for (const f of fields) change[f] = body[f];
      // One transaction: a connection the answer cannot read back (a password or extra sealed with
      // another BATON_SECRET_KEY) answers the error with nothing changed, not a change reported as failed.
      return db.tx(async (tx) => {
        // The stored extra is read only when the new one keeps a secret as the mask: one that replaces
        // them all is written without it (as it must be, when it was sealed with a lost key).
        if (typeof change.extra === "string" && keepsMask(change.extra)) change.extra = storedSecretsKept((await getConnection(tx, id))?.extra, change.extra);
        if (!(await updateConnection(tx, id, change as Partial<ConnectionFields>))) notFound(id);
        return connectionJson((await getConnection(tx, id))!);
      });
    },
  );

  app.delete(
    "/connections/:connection_id",
    { config: admin, schema: { operationId: "delete_connection", tags: TAGS, params: ConnectionParams, response: { 204: Type.Null() } } },
    async (req, reply) => {
      if (!(await deleteConnection(db.pool, req.params.connection_id))) notFound(req.params.connection_id);
      return reply.status(204).send(null);
    },
  );
};
