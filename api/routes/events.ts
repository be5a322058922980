import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { BatonError } from "../../core/errors.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { latestEventId, listEvents, type EventFilter } from "../../store/queries/events.ts";
import { isoOrNull } from "../../store/rows.ts";
import type { ApiDeps } from "../context.ts";
import { DateTime, ListOf, Nullable } from "../openapi.ts";
import { PageQuery } from "../schemas.ts";

const Filters = Type.Object({
  dag_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250 })),
  dag_run_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250 })),
  task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 250 })),
  after: Type.Optional(Type.String({ format: "date-time" })),
  before: Type.Optional(Type.String({ format: "date-time" })),
});

const TAGS = ["EventLog"];

const EventLog = Type.Object(
  {
    event_log_id: Type.Integer(),
    when: DateTime,
    event: Type.String({ description: "<kind>:<to_state>, e.g. task:success" }),
    kind: Type.String({ description: "run, task, or auth (a refused request)" }),
    dag_id: Type.String(),
    dag_run_id: Type.String(),
    run_id: Type.String(),
    task_id: Nullable(Type.String()),
    map_index: Nullable(Type.Integer()),
    try_number: Nullable(Type.Integer()),
    from_state: Nullable(Type.String()),
    to_state: Type.String(),
    owner: Nullable(Type.String({ description: "the process (or token) that made the change" })),
    hostname: Nullable(Type.String()),
    extra: Nullable(Type.String({ description: "what a refused request asked for" })),
  },
  { additionalProperties: false },
);

/** Airflow's EventLog fields, plus the transition itself (from → to). */
function eventJson(r: RowDataPacket) {
  return {
    event_log_id: Number(r.id),
    when: isoOrNull(r.at)!,
    event: `${r.kind}:${r.to_state}`,
    kind: r.kind,
    dag_id: r.dag_id,
    dag_run_id: r.run_id,
    run_id: r.run_id,
    task_id: r.task_id ?? null,
    map_index: r.map_index ?? null,
    try_number: r.try_number ?? null,
    from_state: r.from_state ?? null,
    to_state: r.to_state,
    owner: r.actor ?? null,
    hostname: r.hostname ?? null,
    extra: r.detail ?? null,
  };
}

function filterOf(q: { dag_id?: string; dag_run_id?: string; task_id?: string; after?: string; before?: string }): EventFilter {
  const date = (v: string | undefined, field: string) => {
    if (v === undefined) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new BatonError("BATON_INVALID_DATE", `${field} "${v}" is not a valid date`);
    return d;
  };
  return { dagId: q.dag_id, runId: q.dag_run_id, taskId: q.task_id, after: date(q.after, "after"), before: date(q.before, "before") };
}

export const eventRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { db }) => {
  // Streams end when the server closes, so shutdown never waits on a listening client.
  const streams = new Set<() => void>();
  app.addHook("onClose", async () => {
    for (const stop of streams) stop();
  });

  app.get(
    "/eventLogs",
    {
      schema: {
        operationId: "get_event_logs",
        tags: TAGS,
        querystring: Type.Intersect([
          PageQuery,
          Filters,
          Type.Object({
            order_by: Type.Optional(
              Type.Union([Type.Literal("event_log_id"), Type.Literal("-event_log_id"), Type.Literal("when"), Type.Literal("-when")], {
                description: "oldest first (default) or, with a leading -, newest first",
              }),
            ),
          }),
        ]),
        response: { 200: ListOf("event_logs", EventLog) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by } = req.query;
      // Ids are assigned in insert order, as `at` is, so `when` orders as the id does.
      const { rows, total } = await listEvents(db.pool, filterOf(req.query), { limit, offset, newestFirst: order_by?.startsWith("-") });
      return { event_logs: rows.map(eventJson), total_entries: total };
    },
  );

  // Server-sent events: every new event matching the filters, as it is committed. A client that
  // reconnects with Last-Event-ID resumes after the last event it saw.
  app.get(
    "/events",
    {
      schema: {
        operationId: "stream_events",
        tags: TAGS,
        description: "Server-sent events: each new event log entry matching the filters (`id:` is its event_log_id; send Last-Event-ID to resume).",
        querystring: Type.Intersect([Filters, Type.Object({ poll_ms: Type.Optional(Type.Integer({ minimum: 50, maximum: 10_000 })) })]),
        response: {
          200: {
            description: "A text/event-stream of EventLog objects (`event: <kind>`, `data: <EventLog JSON>`)",
            content: { "text/event-stream": { schema: Type.String() } },
          },
        },
      },
    },
    async (req, reply) => {
      const filter = filterOf(req.query);
      const lastHeader = Number(req.headers["last-event-id"]);
      let afterId = Number.isInteger(lastHeader) && lastHeader >= 0 ? lastHeader : await latestEventId(db.pool);
      reply.raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      reply.raw.write(": connected\n\n");
      let open = true;
      const stop = () => (open = false);
      streams.add(stop);
      req.raw.on("close", stop);
      while (open) {
        try {
          const { rows } = await listEvents(db.pool, { ...filter, afterId }, { limit: 500, offset: 0 });
          for (const r of rows) {
            afterId = Number(r.id);
            reply.raw.write(`id: ${afterId}\nevent: ${r.kind}\ndata: ${JSON.stringify(eventJson(r))}\n\n`);
          }
          if (rows.length === 500) continue;
        } catch {
          reply.raw.write(": database unavailable, retrying\n\n");
        }
        await new Promise((r) => setTimeout(r, req.query.poll_ms ?? 250));
      }
      streams.delete(stop);
      reply.raw.end();
      return reply;
    },
  );
};
