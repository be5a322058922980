import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { latestHeartbeat, listImportErrors } from "../../store/queries/read.ts";
import { workerLiveness } from "../../store/processes.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery } from "../schemas.ts";
import { importErrorJson } from "../serializers.ts";
import { heartbeatTimeoutOf } from "./workers.ts";

const HEALTHY_WITHIN_MS = 30_000;

export const systemRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const { db, clock } = deps;
  app.get("/health", async (_req, reply) => {
    let metadatabase = "healthy";
    let schedulerBeat: Date | null = null;
    let workers: { alive: number; latest: Date | null } = { alive: 0, latest: null };
    try {
      schedulerBeat = await latestHeartbeat(db.pool, "scheduler");
      workers = await workerLiveness(db.pool, new Date(clock.now().getTime() - heartbeatTimeoutOf(deps)));
    } catch {
      metadatabase = "unhealthy";
    }
    const schedulerHealthy = !!schedulerBeat && clock.now().getTime() - new Date(schedulerBeat).getTime() < HEALTHY_WITHIN_MS;
    const body = {
      metadatabase: { status: metadatabase },
      scheduler: { status: schedulerHealthy ? "healthy" : "unhealthy", latest_scheduler_heartbeat: schedulerBeat ? new Date(schedulerBeat).toISOString() : null },
      // Workers heartbeating within the zombie timeout; GET /api/v1/workers lists them.
      workers: {
        status: workers.alive > 0 ? "healthy" : "unhealthy",
        alive: workers.alive,
        latest_worker_heartbeat: workers.latest ? new Date(workers.latest).toISOString() : null,
      },
    };
    return reply.status(metadatabase === "healthy" ? 200 : 503).send(body);
  });

  app.get("/importErrors", { schema: { querystring: PageQuery } }, async (req) => {
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listImportErrors(db.pool, { limit, offset });
    return { import_errors: rows.map(importErrorJson), total_entries: total };
  });
};
