import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { latestHeartbeat, listImportErrors } from "../../store/queries/read.ts";
import type { ApiDeps } from "../context.ts";
import { PageQuery } from "../schemas.ts";
import { importErrorJson } from "../serializers.ts";

const HEALTHY_WITHIN_MS = 30_000;

export const systemRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db, clock }) => {
  app.get("/health", async (_req, reply) => {
    let metadatabase = "healthy";
    let schedulerBeat: Date | null = null;
    try {
      schedulerBeat = await latestHeartbeat(db.pool, "scheduler");
    } catch {
      metadatabase = "unhealthy";
    }
    const schedulerHealthy = !!schedulerBeat && clock.now().getTime() - new Date(schedulerBeat).getTime() < HEALTHY_WITHIN_MS;
    const body = {
      metadatabase: { status: metadatabase },
      scheduler: { status: schedulerHealthy ? "healthy" : "unhealthy", latest_scheduler_heartbeat: schedulerBeat ? new Date(schedulerBeat).toISOString() : null },
    };
    return reply.status(metadatabase === "healthy" ? 200 : 503).send(body);
  });

  app.get("/importErrors", { schema: { querystring: PageQuery } }, async (req) => {
    const { limit = 100, offset = 0 } = req.query;
    const { rows, total } = await listImportErrors(db.pool, { limit, offset });
    return { import_errors: rows.map(importErrorJson), total_entries: total };
  });
};
