import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { sendSignal, SIGNAL_PAYLOAD_CAP_BYTES } from "../../store/transitions/signals.ts";
import { VersionCache } from "../../store/versions.ts";
import type { ApiDeps } from "../context.ts";
import { Nullable } from "../openapi.ts";
import { RunParams } from "../schemas.ts";

const SignalSent = Type.Object(
  {
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    name: Type.String(),
    signal_id: Nullable(Type.String()),
    duplicate: Type.Boolean({ description: "true when this signal_id was already received for the run (nothing changed)" }),
    delivered_to: Nullable(Type.String({ description: "the task that received it; null if none waits yet (kept for the first that does)" })),
  },
  { additionalProperties: false },
);

export const signalRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const versions = new VersionCache(deps.db.pool);
  app.post(
    "/dags/:dag_id/dagRuns/:dag_run_id/signals/:name",
    {
      // The payload cap is enforced on the JSON payload itself (413); the body may carry a little more.
      bodyLimit: SIGNAL_PAYLOAD_CAP_BYTES + 4096,
      schema: {
        operationId: "post_signal",
        tags: ["Signal"],
        response: { 200: SignalSent },
        params: Type.Intersect([RunParams, Type.Object({ name: Type.String({ minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9_.:-]+$" }) })]),
        // Optional: a signal without a body has no payload.
        body: Type.Optional(
          Type.Object(
            { payload: Type.Optional(Type.Unknown()), signal_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) },
            { additionalProperties: false },
          ),
        ),
      },
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req) => {
      const body = req.body ?? {};
      const result = await sendSignal(
        deps.db,
        deps.clock.now(),
        { dagId: req.params.dag_id, runId: req.params.dag_run_id, name: req.params.name, signalId: body.signal_id, payload: body.payload },
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
