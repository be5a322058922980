import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type Static } from "typebox";
import { controlCharacterIn } from "../../core/dagLimits.ts";
import { BatonError } from "../../core/errors.ts";
import { MAX_ACTOR_LENGTH, type RowDataPacket } from "../../store/db.ts";
import {
  eventIdsAfter,
  eventIdsBetween,
  eventOrder,
  eventsByIds,
  getEvent,
  latestEventId,
  listEvents,
  listEventsAfter,
  type EventFilter,
  type EventName,
} from "../../store/queries/events.ts";
import { isoOrNull } from "../../store/rows.ts";
import type { ApiDeps } from "../context.ts";
import { decodeCursor, encodeCursor, type CursorScope } from "../cursor.ts";
import { problemOf } from "../errors.ts";
import { EventCursor } from "../eventCursor.ts";
import { CursorListOf, DateTime, Nullable } from "../openapi.ts";
import { CursorQuery, Id, instantOf, Name, PageQuery } from "../schemas.ts";

// No event name or owner ends with a space, which MySQL would pad away ("task:success " matched
// task:success), or holds a control character: the API's one name rule (core/dagLimits.ts). A list
// of event names is trimmed item by item before it is compared, so whitespace around an item (a
// trailing newline too) is no part of a name: eventNames refuses control characters in the items.
const EventNames = Type.String({
  minLength: 1,
  maxLength: 10_000,
  description: "Event names separated by commas, e.g. task:failed,run:failed; whitespace around a name is ignored, a control character in one is refused",
});

/** Airflow's get_event_logs filters (FilterRunID, Event, Owner, …), shared by the SSE stream. */
const Filters = Type.Object({
  dag_id: Type.Optional(Id),
  run_id: Type.Optional(Id),
  dag_run_id: Type.Optional(Type.String({ ...Id, description: "Alias of run_id (Baton's name before Airflow's); both given must be equal." })),
  task_id: Type.Optional(Id),
  map_index: Type.Optional(Type.Integer({ minimum: -1, maximum: 2_147_483_647 })),
  try_number: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
  event: Type.Optional(Name(300, { description: "Exactly this event, <kind>:<to_state>, e.g. task:success or auth:forbidden" })),
  owner: Type.Optional(Name(MAX_ACTOR_LENGTH, { description: "The process or API token (token:<name>) that made the change or was refused (the entries' owner)" })),
  included_events: Type.Optional(EventNames),
  excluded_events: Type.Optional(EventNames),
  after: Type.Optional(Type.String({ format: "date-time" })),
  before: Type.Optional(Type.String({ format: "date-time" })),
});
type FilterQuery = Static<typeof Filters>;

const TAGS = ["EventLog"];

/** Events a stream reads per poll (more follow at once when there are). */
const READ_LIMIT = 500;
/** How far below its start a stream looks for ids not committed yet. */
const START_WINDOW = 1_000;

const EventLog = Type.Object(
  {
    event_log_id: Type.Integer(),
    when: DateTime,
    event: Type.String({ description: "<kind>:<to_state>, e.g. task:success" }),
    kind: Type.String({ description: "run, task, or auth (a refused request)" }),
    dag_id: Nullable(Type.String({ description: "null for an entry about no DAG (a refused request)" })),
    dag_run_id: Nullable(Type.String({ description: "null for an entry about no run (a refused request)" })),
    run_id: Nullable(Type.String({ description: "null for an entry about no run (a refused request)" })),
    task_id: Nullable(Type.String()),
    map_index: Nullable(Type.Integer()),
    try_number: Nullable(Type.Integer()),
    from_state: Nullable(Type.String()),
    to_state: Type.String(),
    owner: Nullable(Type.String({ description: "the process, or the API token (token:<name>), that made the change or was refused; anonymous for a request without a valid token" })),
    hostname: Nullable(Type.String()),
    extra: Nullable(
      Type.String({
        description:
          "what a refused request asked for, or why a state change was made (a hand-back, a zombie reap, a timeout, a clear, a mark, a signal: README 'Why a state change was made'); null for routine changes",
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * Airflow's EventLog fields, plus the transition itself (from → to). An entry about no DAG or run
 * (a refused request) stores "" for their ids (NOT NULL columns; no id is empty): answered null.
 */
function eventJson(r: RowDataPacket) {
  const idOrNull = (id: string) => (id === "" ? null : id);
  return {
    event_log_id: Number(r.id),
    when: isoOrNull(r.at)!,
    event: `${r.kind}:${r.to_state}`,
    kind: r.kind,
    dag_id: idOrNull(r.dag_id),
    dag_run_id: idOrNull(r.run_id),
    run_id: idOrNull(r.run_id),
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

/** `kind:to_state`, split at the first colon; a name without one can match no event. */
function eventName(text: string): EventName | null {
  const at = text.indexOf(":");
  return at < 0 ? null : { kind: text.slice(0, at), toState: text.slice(at + 1) };
}

/**
 * A comma-separated list of event names, each trimmed; those that cannot exist are left out. One
 * holding a control character is refused, as the name rule refuses it in `event`.
 */
function eventNames(text: string | undefined, field: string): EventName[] | undefined {
  if (text === undefined) return undefined;
  const items = text.split(",").map((t) => t.trim());
  for (const item of items) {
    const control = controlCharacterIn(item);
    if (control !== null) {
      throw new BatonError(
        "BATON_VALIDATION_FAILED",
        `querystring.${field}: an event name must not contain control characters (a newline, a tab; whitespace around it is ignored), got ${control} in ${JSON.stringify(item.slice(0, 40))}`,
      );
    }
  }
  return items.map(eventName).filter((n): n is EventName => n !== null);
}

function filterOf(q: FilterQuery): EventFilter {
  if (q.run_id !== undefined && q.dag_run_id !== undefined && q.run_id !== q.dag_run_id) {
    throw new BatonError("BATON_VALIDATION_FAILED", `querystring.run_id "${q.run_id}" and its alias querystring.dag_run_id "${q.dag_run_id}" differ; give one`);
  }
  return {
    dagId: q.dag_id,
    runId: q.run_id ?? q.dag_run_id,
    taskId: q.task_id,
    mapIndex: q.map_index,
    tryNumber: q.try_number,
    event: q.event === undefined ? undefined : eventName(q.event),
    includedEvents: eventNames(q.included_events, "included_events"),
    excludedEvents: eventNames(q.excluded_events, "excluded_events"),
    owner: q.owner,
    after: instantOf(q.after, "querystring.after"),
    before: instantOf(q.before, "querystring.before"),
  };
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
          CursorQuery,
          Filters,
          Type.Object({
            order_by: Type.Optional(
              Type.Union([Type.Literal("event_log_id"), Type.Literal("-event_log_id"), Type.Literal("when"), Type.Literal("-when")], {
                description: "oldest first (default) or, with a leading -, newest first",
              }),
            ),
          }),
        ]),
        response: { 200: CursorListOf("event_logs", EventLog) },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0, order_by, cursor } = req.query;
      const filter = filterOf(req.query);
      const order = eventOrder(order_by);
      const scope: CursorScope = { path: {}, filters: { ...filter } };
      const from = cursor === undefined ? undefined : decodeCursor(cursor, offset, "event_logs", scope, order);
      // A cursor page: the total came with the cursor, and no COUNT runs.
      const { rows, next, total } = from
        ? { ...(await listEventsAfter(db.pool, filter, { limit, orderBy: order_by, after: from.after })), total: from.total }
        : await listEvents(db.pool, filter, { limit, offset, orderBy: order_by });
      return { event_logs: rows.map(eventJson), total_entries: total, next_cursor: next && encodeCursor("event_logs", scope, order, next, total) };
    },
  );

  app.get(
    "/eventLogs/:event_log_id",
    {
      schema: {
        operationId: "get_event_log",
        tags: TAGS,
        params: Type.Object({ event_log_id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
        response: { 200: EventLog },
      },
    },
    async (req) => {
      const row = await getEvent(db.pool, req.params.event_log_id);
      if (!row) throw new BatonError("BATON_EVENT_LOG_NOT_FOUND", `event log entry ${req.params.event_log_id} not found`);
      return eventJson(row);
    },
  );

  // Server-sent events: every new event matching the filters, as it is committed, also one whose
  // transaction commits after a later id's (see EventCursor). A client that reconnects with
  // Last-Event-ID resumes where it was; only an event that committed late while it was away
  // (below that id) can be missed. The position (`id:`) is sent as the stream opens and whenever
  // events it filters out pass it, so it is never older than a poll.
  app.get(
    "/events",
    {
      schema: {
        operationId: "stream_events",
        tags: TAGS,
        description: "Server-sent events: each new event log entry matching the filters (`id:` is the stream's position: the event's event_log_id, or a higher one already sent when an event commits after a later one; it is also sent alone, with no data, as the stream opens and when events the filters leave out pass it; send the last one as Last-Event-ID to resume, with the same filters or others).",
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
      // An id past 2^53 (1e300) is no id this log will reach: ignored, as text that is no number is.
      const startAfter = Number.isSafeInteger(lastHeader) && lastHeader >= 0 ? lastHeader : await latestEventId(db.pool);
      // Ids just below the start that do not exist yet may be open transactions' events.
      const windowStart = Math.max(0, startAfter - START_WINDOW);
      const cursor = new EventCursor(startAfter, await eventIdsBetween(db.pool, windowStart, startAfter), windowStart, Date.now());
      // The head is written here, past Fastify's reply: with the headers hooks set on it (X-Request-Id, CORS).
      reply.raw.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      // The first position: where the stream starts. A client that reconnects or changes its
      // filters from here gets what commits after it (its page's data was read before); as for any
      // resume, only an event committing late below it can be missed.
      reply.raw.write(`: connected\nid: ${cursor.afterId}\n\n`);
      let sent = cursor.afterId;
      let open = true;
      const stop = () => (open = false);
      streams.add(stop);
      req.raw.on("close", stop);
      while (open) {
        try {
          // The token was checked when the stream opened; a stream outlives it, so it is checked
          // again on every poll (a cache hit but every TOKEN_CACHE_MS): a revoked or expired token
          // stops streaming within that window, as it stops working for other requests.
          if (req.stillAuthorized && !(await req.stillAuthorized())) {
            const problem = problemOf("BATON_UNAUTHENTICATED", "the stream's token was revoked or expired: reconnect with a live token");
            reply.raw.write(`event: error\ndata: ${JSON.stringify(problem)}\n\n`);
            break;
          }
          const ids = await eventIdsAfter(db.pool, filter, cursor.afterId, cursor.missing, READ_LIMIT);
          const rows = await eventsByIds(db.pool, ids.filter((e) => e.matches).map((e) => e.id));
          // `id:` is where a reconnecting client resumes: the highest id passed, which an event
          // committed late (a lower id than one already sent) does not lower.
          let position = cursor.afterId;
          for (const r of rows) {
            position = Math.max(position, Number(r.id));
            reply.raw.write(`id: ${position}\nevent: ${r.kind}\ndata: ${JSON.stringify(eventJson(r))}\n\n`);
          }
          sent = position;
          cursor.advance(ids.map((e) => e.id), Date.now());
          // Events the filters leave out move the position too: sent alone (an `id:` without
          // data), so a client of a quiet filter does not resume from long ago.
          if (cursor.afterId > sent) {
            sent = cursor.afterId;
            reply.raw.write(`id: ${sent}\n\n`);
          }
          if (ids.length === READ_LIMIT) continue;
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
