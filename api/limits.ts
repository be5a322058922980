import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import { BatonError } from "../core/errors.ts";
import { jsonDepth, MAX_JSON_DEPTH } from "../core/json.ts";
import type { ApiDeps } from "./context.ts";

/**
 * Rate limit per token (per client address for requests without one), from config: not
 * installed when unset, as in tests. The limit runs after authentication
 * (preHandler), so it knows the token.
 */
export async function installLimits(app: FastifyInstance, config: ApiDeps["config"]): Promise<void> {
  const limit = config.apiRateLimit;
  if (limit && limit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      hook: "preHandler",
      max: limit.max,
      timeWindow: limit.windowMs,
      keyGenerator: (request) => (request.apiToken ? `token:${request.apiToken.id}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) =>
        new BatonError("BATON_RATE_LIMITED", `more than ${context.max} requests in ${Math.round(context.ttl / 1000) || 1} s; retry after ${context.after}`),
    });
  }
}

/**
 * CORS from config (off when no origins are set). Installed before authentication: a browser's
 * preflight carries no Authorization header, so it must be answered before the auth hook would
 * refuse it, and a refusal (401/403) must carry the CORS headers for the page to read it.
 */
export async function installCors(app: FastifyInstance, config: ApiDeps["config"]): Promise<void> {
  if (config.corsOrigins && config.corsOrigins.length > 0) {
    await app.register(cors, { origin: config.corsOrigins, credentials: false, allowedHeaders: ["authorization", "content-type", "idempotency-key", "last-event-id", "x-request-id"] });
  }
}

/**
 * Every JSON body goes through Fastify's own parser (which refuses `__proto__` and
 * `constructor.prototype` keys), then is refused with 400 when nested deeper than
 * MAX_JSON_DEPTH: a 30 KB body of 5,000 nested arrays used to overflow the stack of the
 * recursive code it reached (a 500). The depth is counted without recursion. A body refused for
 * such a key says so: Fastify answers that it is not valid JSON, which it is.
 */
export function installJsonDepthLimit(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    parse(request, body as string, (err, value) => {
      if (err) return done(poisoningRefusal(err, body as string) ?? err, undefined);
      const depth = jsonDepth(value, MAX_JSON_DEPTH);
      if (depth > MAX_JSON_DEPTH) {
        return done(new BatonError("BATON_VALIDATION_FAILED", `body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep (at most ${MAX_JSON_DEPTH} are allowed)`), undefined);
      }
      done(null, value);
    });
  });
}

/**
 * The refusal of valid JSON that Fastify's parser rejected: it holds a `__proto__` or
 * `constructor.prototype` key (prototype poisoning), which its message does not say. Undefined
 * when the body is not valid JSON (Fastify's message is right) or for any other error.
 */
function poisoningRefusal(err: Error, body: string): BatonError | undefined {
  if ((err as { code?: string }).code !== "FST_ERR_CTP_INVALID_JSON_BODY") return undefined;
  try {
    JSON.parse(body);
  } catch {
    return undefined;
  }
  return new BatonError(
    "BATON_VALIDATION_FAILED",
    'body holds a "__proto__" or "constructor.prototype" key, which the API refuses (prototype poisoning); rename the key',
  );
}
