import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { sendSignal, SIGNAL_PAYLOAD_CAP_BYTES } from "../../store/transitions/signals.ts";
import { VersionCache } from "../../store/versions.ts";
import type { ApiDeps } from "../context.ts";
import { RunParams } from "../schemas.ts";

export const signalRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const versions = new VersionCache(deps.db.pool);
  app.post(
    "/dags/:dag_id/dagRuns/:dag_run_id/signals/:name",
    {
      // The payload cap is enforced on the JSON payload itself (413); the body may carry a little more.
      bodyLimit: SIGNAL_PAYLOAD_CAP_BYTES + 4096,
      schema: {
        params: Type.Intersect([RunParams, Type.Object({ name: Type.String({ minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9_.:-]+$" }) })]),
        body: Type.Object(
          { payload: Type.Optional(Type.Unknown()), signal_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) },
          { additionalProperties: false },
        ),
      },
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req) => {
      const result = await sendSignal(
        deps.db,
        deps.clock.now(),
        { dagId: req.params.dag_id, runId: req.params.dag_run_id, name: req.params.name, signalId: req.body.signal_id, payload: req.body.payload },
        (h) => versions.shape(h),
      );
      if (result.queued.length > 0) deps.onTasksQueued?.();
      return {
        dag_id: req.params.dag_id,
        dag_run_id: req.params.dag_run_id,
        name: req.params.name,
        signal_id: result.signalId,
        duplicate: result.duplicate,
        delivered_to: result.deliveredTo,
      };
    },
  );
};
