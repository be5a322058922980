import { randomUUID } from "node:crypto";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { IncomingMessage } from "node:http";
import type { Logger } from "../core/logger.ts";
import { isSensitiveKey } from "../core/sensitive.ts";
import { ACTIVE_RUN_STATES, ACTIVE_TASK_STATES, processMetrics, setGaugeCounts, type BatonMetrics } from "../core/metrics.ts";
import { poolStats } from "../store/db.ts";
import { activeCounts } from "../store/queries/metrics.ts";
import type { ApiDeps } from "./context.ts";

/** Registered at the root (`GET /metrics`), out of the OpenAPI document; role viewer like any GET. */
export const metricsRoutes: FastifyPluginAsyncTypebox<ApiDeps & { metrics?: BatonMetrics }> = async (app, deps) => {
  const log = deps.logger.scope({ component: "api" });
  // Queues seen by earlier scrapes stay at 0 once empty, instead of vanishing from the graphs.
  const knownQueues = new Set<string>(["default"]);

  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    // Created on the first scrape: the CLI's in-process API never pays for the process collectors.
    const metrics = deps.metrics ?? processMetrics();
    const pool = poolStats(deps.db.pool);
    if (pool) setGaugeCounts(metrics.dbPoolConnections, "state", new Map(Object.entries(pool)));
    try {
      const counts = await activeCounts(deps.db.pool);
      for (const queue of counts.queues.keys()) knownQueues.add(queue);
      setGaugeCounts(metrics.dagRuns, "state", counts.runs, ACTIVE_RUN_STATES);
      setGaugeCounts(metrics.taskInstances, "state", counts.tasks, ACTIVE_TASK_STATES);
      setGaugeCounts(metrics.queueDepth, "queue", counts.queues, [...knownQueues]);
      metrics.metadatabaseUp.set(1);
    } catch (err) {
      // The process metrics are still worth a scrape: answer them, without stale database counts.
      log.warn(`metrics: cannot count task instances: ${(err as Error).message}`);
      metrics.dagRuns.reset();
      metrics.taskInstances.reset();
      metrics.queueDepth.reset();
      metrics.metadatabaseUp.set(0);
    }
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Fastify's genReqId: the caller's X-Request-Id when it is a safe token, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

// Query parameters whose values are never written to a log: any name a variable's value would be
// masked under (isSensitiveKey: passphrase, private_key, …), and the web's usual secret names.
const SECRET_PARAM = /token|secret|passw|auth|api[_-]?key|^key$|signature|^sig$|credential|session|cookie/i;
const isSecretParam = (name: string) => SECRET_PARAM.test(name) || isSensitiveKey(name);

/** The URL as logged: path kept, the values of secret-looking query parameters replaced by ***. */
export function loggableUrl(url: string): string {
  const at = url.indexOf("?");
  if (at < 0) return url;
  const params = new URLSearchParams(url.slice(at + 1));
  const kept = [...params].map(([k, v]) => `${encodeURIComponent(k)}=${isSecretParam(k) ? "***" : encodeURIComponent(v)}`);
  return kept.length ? `${url.slice(0, at)}?${kept.join("&")}` : url.slice(0, at);
}

type FrameworkErrorHandler = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void;

/**
 * Fastify's `frameworkErrors` (a malformed %-escape, an over-long path segment) answer before
 * any hook runs: this sets X-Request-Id on them too.
 */
export function withRequestId(handler: FrameworkErrorHandler): FrameworkErrorHandler {
  return (err, request, reply) => {
    void reply.header("x-request-id", request.id);
    handler(err, request, reply);
  };
}

/**
 * Every response carries X-Request-Id (errors included). With `log`, every request is logged
 * once at info level by the api logger: method, url (secrets masked), status, duration, request
 * id. Headers (Authorization above all) are never logged.
 */
export function installRequestLog(app: FastifyInstance, logger: Logger, options: { log?: boolean } = {}): void {
  const log = logger.scope({ component: "api" });
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("x-request-id", request.id);
  });
  // Replies sent without onRequest (errors raised while routing) get the header here.
  app.addHook("onSend", async (request: FastifyRequest, reply, payload) => {
    if (!reply.hasHeader("x-request-id")) void reply.header("x-request-id", request.id);
    return payload;
  });
  if (!options.log) return;
  app.addHook("onResponse", async (request, reply) => {
    const url = loggableUrl(request.url);
    const durationMs = Math.round(reply.elapsedTime * 100) / 100;
    log.info(`${request.method} ${url} ${reply.statusCode} ${durationMs} ms`, {
      method: request.method,
      url,
      status: reply.statusCode,
      duration_ms: durationMs,
      request_id: request.id,
    });
  });
}
