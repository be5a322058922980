import type { FastifyInstance, FastifyRequest } from "fastify";
import { bearerToken, hashToken } from "../core/apiTokens.ts";
import { BatonError } from "../core/errors.ts";
import { RefusalThrottle } from "../core/refusalThrottle.ts";
import { requiredRole, roleAllows, type Role, type RouteRole } from "../core/roles.ts";
import { findLiveToken, recordAuthEvent, touchToken, type ApiTokenRow } from "../store/apiTokens.ts";
import { tokenActor, type ApiDeps } from "./context.ts";

export type { Role, RouteRole };

declare module "fastify" {
  interface FastifyInstance {
    /** Drops the cached token lookups, after a revocation: this process refuses the token at once (others within TOKEN_CACHE_MS). */
    forgetTokenLookups(): void;
  }
  interface FastifyContextConfig {
    /** See core/roles.ts: omitted means viewer for GET/HEAD, operator otherwise. */
    role?: RouteRole;
  }
  interface FastifyRequest {
    /** The token that authenticated this request (undefined when auth is off or the route is public). */
    apiToken?: { id: number; name: string; role: Role };
    /**
     * Whether the request's token still authenticates it for its route (the same cached check as
     * at the start), for a long-lived response such as the event stream to end once it is revoked
     * or expires. Undefined when auth is off or the route is public: nothing to re-check.
     */
    stillAuthorized?: () => Promise<boolean>;
  }
}

/** Token lookups are cached briefly: a token revoked through another API process stops working within this time. */
export const TOKEN_CACHE_MS = 5_000;
/** Refused requests allowed per client address per minute before it gets 429 (unless its token is live). */
export const MAX_REFUSALS_PER_MINUTE = 30;
const CACHE_LIMIT = 10_000;

/** The route's required role, for the matched route (unknown paths need a viewer, so they don't reveal routes). */
export function roleOf(request: FastifyRequest): RouteRole {
  // The interactive docs (@fastify/swagger-ui's own routes) are static pages, like the spec they show.
  if (request.routeOptions.url?.startsWith("/docs")) return "public";
  // No route matched (a 404, or a 405 for a method the path lacks): any live token may hear so. The method's
  // default role would answer a viewer's DELETE on /api/v1/health 403 "needs operator" for a method no role has.
  if (request.routeOptions.url === undefined) return "viewer";
  return requiredRole(request.method, request.routeOptions.config?.role);
}

/**
 * Bearer-token authentication and per-route roles, as one onRequest hook: 401 without a live
 * token, 403 when the token's role is below the route's; both go to the event log (never the token).
 */
export function installAuth(app: FastifyInstance, deps: Pick<ApiDeps, "db" | "clock" | "logger" | "auth"> & { config?: ApiDeps["config"] }): void {
  app.decorateRequest("apiToken", undefined);
  app.decorateRequest("stillAuthorized", undefined);
  const cache = new Map<string, { token: ApiTokenRow | undefined; until: number }>();
  // Bumped by each forget: a lookup that read the token before a revocation and answers after it
  // must not put the live row back into the cache just emptied.
  let forgotten = 0;
  app.decorate("forgetTokenLookups", () => {
    forgotten++;
    cache.clear();
  });
  if (deps.auth.mode === "off") return;
  const { db, clock, logger } = deps;
  const throttle = new RefusalThrottle(deps.config?.authRefusalsPerMinute ?? MAX_REFUSALS_PER_MINUTE, 60_000);

  const lookup = async (hash: string): Promise<ApiTokenRow | undefined> => {
    const now = clock.now();
    const hit = cache.get(hash);
    if (hit && hit.until > now.getTime() && (!hit.token?.expires_at || new Date(hit.token.expires_at) > now)) return hit.token;
    const generation = forgotten;
    const token = await findLiveToken(db.pool, hash, now);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    if (generation === forgotten) cache.set(hash, { token, until: now.getTime() + TOKEN_CACHE_MS });
    if (token) void touchToken(db.pool, token.id, now).catch(() => undefined);
    return token;
  };

  const refuse = async (request: FastifyRequest, outcome: "unauthenticated" | "forbidden", actor: string, why: string) => {
    const path = request.url.split("?")[0];
    await recordAuthEvent(db.pool, { at: clock.now(), outcome, actor, detail: `${request.method} ${path}: ${why}` }).catch((err) =>
      logger.warn(`could not record a refused request in the event log: ${(err as Error).message}`),
    );
  };

  app.addHook("onRequest", async (request, reply) => {
    const needs = roleOf(request);
    if (needs === "public") return;
    const now = clock.now().getTime();
    const presented = bearerToken(request.headers.authorization);
    const hash = presented ? hashToken(presented) : undefined;
    const throttled = () => {
      void reply.header("retry-after", String(throttle.retryAfterSeconds(request.ip, now)));
      return new BatonError("BATON_RATE_LIMITED", `too many refused requests from ${request.ip}; retry later with a valid token`);
    };
    // A blocked address still has a presented token looked up (one indexed read, cached), and a
    // live token with the role passes: the address may be a NAT or proxy shared with whoever was
    // refused, and 30 bad requests a minute must not lock every user behind it out. Anything
    // else is answered 429 without being logged.
    const blocked = throttle.isBlocked(request.ip, now);
    if (blocked && !hash) throw throttled();
    const token = hash ? await lookup(hash) : undefined;
    if (blocked && !(token && roleAllows(token.role, needs))) throw throttled();
    if (!token) {
      const why = presented ? "invalid, expired or revoked token" : "no bearer token";
      throttle.refused(request.ip, now);
      await refuse(request, "unauthenticated", "anonymous", why);
      void reply.header("www-authenticate", 'Bearer realm="baton"');
      throw new BatonError("BATON_UNAUTHENTICATED", `${why}: send "Authorization: Bearer <token>" (create one with "baton tokens create")`);
    }
    if (!roleAllows(token.role, needs)) {
      throttle.refused(request.ip, now);
      // Owned as the token's changes are (token:<name>); a request without a live token is "anonymous".
      await refuse(request, "forbidden", tokenActor(token.name), `role ${token.role} lacks ${needs}`);
      throw new BatonError("BATON_FORBIDDEN", `token "${token.name}" has role ${token.role}; ${request.method} ${request.url.split("?")[0]} needs ${needs}`);
    }
    request.apiToken = { id: Number(token.id), name: token.name, role: token.role };
    request.stillAuthorized = async () => {
      const current = await lookup(hash!);
      return !!current && roleAllows(current.role, needs);
    };
  });
}
