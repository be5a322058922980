import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { listWorkers, type WorkerRow } from "../../store/processes.ts";
import type { ApiDeps } from "../context.ts";
import { DateTime, ListOf, Nullable } from "../openapi.ts";
import { PageQuery } from "../schemas.ts";

const Worker = Type.Object(
  {
    worker_id: Type.String(),
    hostname: Type.String(),
    pid: Type.Integer(),
    queues: Type.Array(Type.String()),
    concurrency: Nullable(Type.Integer()),
    running: Nullable(Type.Integer({ description: "tries it was running at its last heartbeat" })),
    started_at: DateTime,
    last_heartbeat: DateTime,
    alive: Type.Boolean({ description: "heartbeat within the task heartbeat timeout" }),
  },
  { additionalProperties: false },
);

/** A worker is alive while its heartbeat is younger than the zombie timeout its tasks are judged by. */
export function heartbeatTimeoutOf(deps: Pick<ApiDeps, "config">): number {
  return deps.config.taskHeartbeatTimeoutMs ?? 30_000;
}

function workerJson(w: WorkerRow, now: Date, timeoutMs: number) {
  return {
    worker_id: w.id,
    hostname: w.hostname,
    pid: w.pid,
    queues: w.queues,
    concurrency: w.concurrency,
    running: w.running,
    started_at: new Date(w.startedAt).toISOString(),
    last_heartbeat: new Date(w.heartbeatAt).toISOString(),
    alive: now.getTime() - new Date(w.heartbeatAt).getTime() < timeoutMs,
  };
}

/** Workers as their heartbeats (baton_process) describe them, most recent heartbeat first. */
export const workerRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  app.get("/workers", { schema: { operationId: "get_workers", tags: ["Worker"], querystring: PageQuery, response: { 200: ListOf("workers", Worker) } } }, async (req) => {
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listWorkers(deps.db.pool, { limit, offset });
    const now = deps.clock.now();
    return { workers: rows.map((w) => workerJson(w, now, heartbeatTimeoutOf(deps))), total_entries: total };
  });
};
