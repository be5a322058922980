import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { listRunSignals } from "../../store/queries/signals.ts";
import { isoOrNull, parseJsonText } from "../../store/rows.ts";
import { sendSignal } from "../../store/transitions/signals.ts";
import { VersionCache } from "../../store/versions.ts";
import { MAX_SIGNAL_NAME_LENGTH, SIGNAL_NAME_PATTERN } from "../../core/dagLimits.ts";
import { dbFor, type ApiDeps } from "../context.ts";
import { ListOf, Nullable, NullableDateTime } from "../openapi.ts";
import { Name, PageQuery, RunParams } from "../schemas.ts";
import { runOr404 } from "./taskInstances.ts";

/** Any name waitForSignal takes (core/dagLimits.ts signalNameProblem), and no other. */
const SignalName = Type.String({ minLength: 1, maxLength: MAX_SIGNAL_NAME_LENGTH, pattern: SIGNAL_NAME_PATTERN });

const SignalSent = Type.Object(
  {
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    name: Type.String(),
    signal_id: Nullable(Type.String()),
    duplicate: Type.Boolean({
      description: "true when the run already received this signal_id with the same name and payload (nothing changed); with another name or payload the answer is 409 BATON_IDEMPOTENCY_CONFLICT",
    }),
    delivered_to: Nullable(Type.String({ description: "the task that received it; null if none waits yet (kept for the first that does)" })),
  },
  { additionalProperties: false },
);

/** A signal a run received, and the task it was delivered to. */
const ReceivedSignal = Type.Object(
  {
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    name: Type.String(),
    signal_id: Nullable(Type.String({ description: "the sender's id (makes resending harmless); null if none was given" })),
    payload: Type.Unknown({ description: "the JSON payload (null if none), at most 64 KiB" }),
    received_at: NullableDateTime,
    delivered_to: Nullable(Type.String({ description: "the task that received it; null while no task took it (kept for the first task that waits for it, unless that wait was cleared since it arrived)" })),
    delivered_at: NullableDateTime,
  },
  { additionalProperties: false },
);

export const signalRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const versions = new VersionCache(deps.db.pool);
  app.get(
    "/dags/:dag_id/dagRuns/:dag_run_id/signals",
    {
      schema: {
        operationId: "get_signals",
        tags: ["Signal"],
        description: "The signals a run received, in the order they arrived, with the task each was delivered to; `name` keeps one signal name.",
        params: RunParams,
        querystring: Type.Object({ ...PageQuery.properties, name: Type.Optional(SignalName) }),
        response: { 200: ListOf("signals", ReceivedSignal) },
      },
    },
    async (req) => {
      const { dag_id: dagId, dag_run_id: runId } = req.params;
      const run = await runOr404(deps.db.pool, dagId, runId);
      const { limit = 100, offset = 0, name } = req.query;
      const { rows, total } = await listRunSignals(deps.db.pool, Number(run.id), { name, limit, offset });
      return {
        signals: rows.map((r) => ({
          dag_id: dagId,
          dag_run_id: runId,
          name: r.name,
          signal_id: r.signal_id,
          payload: parseJsonText(r.payload, null),
          received_at: isoOrNull(r.created_at),
          delivered_to: r.delivered_to,
          delivered_at: isoOrNull(r.consumed_at),
        })),
        total_entries: total,
      };
    },
  );

  app.post(
    "/dags/:dag_id/dagRuns/:dag_run_id/signals/:name",
    {
      // The cap is on the payload as compact JSON (sendSignal: 413), not on the body: the same
      // payload written with \u escapes (Python's json.dumps) or indented takes up to 6 times as
      // many bytes. The body is bounded by the API's limit (BATON_API_BODY_LIMIT), as every body.
      schema: {
        operationId: "post_signal",
        tags: ["Signal"],
        response: { 200: SignalSent },
        params: Type.Intersect([RunParams, Type.Object({ name: SignalName })]),
        // Optional: a signal without a body has no payload.
        body: Type.Optional(
          Type.Object(
            { payload: Type.Optional(Type.Unknown()), signal_id: Type.Optional(Name(255)) },
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
        dbFor(deps.db, req),
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
