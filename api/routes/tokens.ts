import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { displayPrefix, generateToken, hashToken, MAX_TOKEN_LIFETIME_TEXT, tokenLifetimeMs } from "../../core/apiTokens.ts";
import { BatonError } from "../../core/errors.ts";
import { getTokenByName, insertToken, listTokens, revokeToken, type ApiTokenRow } from "../../store/apiTokens.ts";
import { isoOrNull } from "../../store/rows.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery } from "../schemas.ts";

const TokenName = Type.String({ minLength: 1, maxLength: 250, pattern: "^[A-Za-z0-9_.@:+-]+$" });
const RoleSchema = Type.Union([Type.Literal("viewer"), Type.Literal("operator"), Type.Literal("admin")]);

const TokenJson = Type.Object({
  name: Type.String(),
  role: RoleSchema,
  prefix: Type.String({ description: "The token's first characters, to tell tokens apart; never the token." }),
  created_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  last_used_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  active: Type.Boolean(),
});

function tokenJson(t: ApiTokenRow, now: Date) {
  return {
    name: t.name,
    role: t.role,
    prefix: t.prefix,
    created_at: isoOrNull(t.created_at),
    expires_at: isoOrNull(t.expires_at),
    last_used_at: isoOrNull(t.last_used_at),
    revoked_at: isoOrNull(t.revoked_at),
    active: !t.revoked_at && (!t.expires_at || new Date(t.expires_at) > now),
  };
}

/** API tokens (admin only). The token itself is returned once, by the POST that creates it. */
export const tokenRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock, auth }) => {
  const admin = { role: "admin" as const };

  // Any token may read its own role: a client (the web UI) shows only the actions that role may
  // take, rather than buttons that answer 403. Auth off, every route is open: admin.
  app.get(
    "/whoami",
    {
      schema: {
        operationId: "get_whoami",
        tags: ["Token"],
        description: "The token this request was made with: its name and role.",
        response: {
          200: Type.Object(
            {
              auth: Type.Enum(["on", "off"], { description: "off: the API asks for no token (every route is open)" }),
              token_name: Type.Union([Type.String(), Type.Null()], { description: "null when auth is off" }),
              role: RoleSchema,
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (req) => (req.apiToken ? { auth: "on" as const, token_name: req.apiToken.name, role: req.apiToken.role } : { auth: auth.mode, token_name: null, role: "admin" as const }),
  );

  app.get(
    "/tokens",
    {
      config: admin,
      schema: {
        operationId: "get_tokens",
        tags: ["Token"],
        querystring: PageQuery,
        response: { 200: Type.Object({ tokens: Type.Array(TokenJson), total_entries: Type.Integer() }) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0 } = req.query;
      const { rows, total } = await listTokens(db.pool, { limit, offset });
      const now = clock.now();
      return { tokens: rows.map((t) => tokenJson(t, now)), total_entries: total };
    },
  );

  app.post(
    "/tokens",
    {
      config: admin,
      schema: {
        operationId: "post_token",
        tags: ["Token"],
        body: Type.Object(
          {
            name: TokenName,
            role: RoleSchema,
            expires_in: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LIFETIME_TEXT, description: 'A duration from 1s to 10 years, such as "90d" or "12h"; no expiry when omitted.' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([TokenJson, Type.Object({ token: Type.String({ description: "Shown once; only its hash is stored." }) })]) },
      },
    },
    async (req, reply) => {
      const now = clock.now();
      let expiresAt: Date | null = null;
      if (req.body.expires_in !== undefined) {
        const ms = tokenLifetimeMs(req.body.expires_in, "body.expires_in");
        expiresAt = new Date(now.getTime() + ms);
      }
      const token = generateToken();
      await insertToken(db.pool, { name: req.body.name, role: req.body.role, hash: hashToken(token), prefix: displayPrefix(token), now, expiresAt });
      const row = (await getTokenByName(db.pool, req.body.name))!;
      return reply.status(201).send({ ...tokenJson(row, now), token });
    },
  );

  app.delete(
    "/tokens/:token_name",
    {
      config: admin,
      schema: { operationId: "delete_token", tags: ["Token"], params: Type.Object({ token_name: TokenName }), response: { 204: Type.Null() } },
    },
    async (req, reply) => {
      const name = req.params.token_name;
      // An expired token is revoked like a live one; only an unknown or revoked name is refused, saying which.
      if (!(await revokeToken(db.pool, name, clock.now()))) {
        const revokedAt = (await getTokenByName(db.pool, name))?.revoked_at;
        throw new BatonError("BATON_TOKEN_NOT_FOUND", revokedAt ? `token "${name}" was revoked already, at ${isoOrNull(revokedAt)}` : `no token named "${name}"`);
      }
      // Lookups are cached by token hash, which this name does not give: revocations are rare, forget them all.
      app.forgetTokenLookups();
      return reply.status(204).send(null);
    },
  );
};
