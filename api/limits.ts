import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import { BatonError } from "../core/errors.ts";
import type { ApiDeps } from "./context.ts";

/**
 * Rate limit per token (per client address for requests without one) and CORS, both from
 * config: neither is installed when unset, as in tests. The limit runs after authentication
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
  if (config.corsOrigins && config.corsOrigins.length > 0) {
    await app.register(cors, { origin: config.corsOrigins, credentials: false, allowedHeaders: ["authorization", "content-type", "idempotency-key", "last-event-id", "x-request-id"] });
  }
}
