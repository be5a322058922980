// The OpenAPI document: @fastify/swagger options, the problem schema every route answers its
// errors with (added to each route by an onRoute hook), and the canonical text of the spec
// checked in as docs/openapi.json. Schema helpers for response schemas live here too.
import type { FastifyInstance, RouteOptions } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { IsOptional, Type, type Static, type TArray, type TInteger, type TSchema, type TUnsafe } from "typebox";
import { ERRORS, type ProblemDetails } from "../core/errors.ts";
import { RunState } from "../core/states.ts";

export const OPENAPI_PATH = "/api/v1/openapi.json";

/** Tags shown by /docs, in this order; a tag a route uses but this list lacks is appended. */
const TAG_DESCRIPTIONS: Record<string, string> = {
  DAG: "DAGs parsed from the DAG folder, their versions and pausing",
  DAGRun: "Runs of a DAG: trigger, list, cancel",
  TaskInstance: "Task instances of a run, their logs and reschedules",
  XCom: "Task outputs",
  Signal: "External events delivered to waiting tasks",
  Backfill: "Runs over past logical dates",
  Pool: "Slots shared by tasks",
  Variable: "Key/value settings read by DAGs",
  Connection: "Credentials and endpoints read by DAGs",
  EventLog: "Every state change of runs and task instances",
  DeadLetter: "Task instances that exhausted their retries",
  Worker: "Worker processes and their heartbeats",
  ImportError: "DAG files that failed to load",
  Monitoring: "Health and version",
  Token: "API tokens and their roles",
};

/**
 * Problem JSON's `details` (core/errors.ts ProblemDetails): the members an error may carry, each
 * declared here, and only these are sent (api/errors.ts problemOf picks them by this list).
 */
export const PROBLEM_DETAILS_SCHEMA = {
  type: "object",
  description:
    "Baton: facts about this error for code to branch on, beside the human-readable detail (an RFC 9457 extension member). " +
    "Present only when the error has some; each member is documented with its code in docs/errors.md.",
  properties: {
    state: {
      type: "string",
      enum: Object.values(RunState),
      description: "The DAG run's state that refused the request (BATON_DAG_RUN_FINISHED)",
    },
  } satisfies Record<keyof ProblemDetails, unknown>,
  additionalProperties: false,
} as const;

/** The body of every 4xx/5xx answer (RFC 9457 problem details plus Baton's stable code). */
export const PROBLEM_SCHEMA = {
  $id: "Problem",
  title: "Problem",
  type: "object",
  description: "An error, as RFC 9457 problem details; `code` is stable (see docs/errors.md).",
  properties: {
    type: { type: "string", description: "https://baton.dev/errors#<code>" },
    title: { type: "string" },
    status: { type: "integer", minimum: 400, maximum: 599 },
    detail: { type: "string" },
    code: { type: "string", enum: Object.keys(ERRORS) },
    details: PROBLEM_DETAILS_SCHEMA,
  },
  required: ["type", "title", "status", "detail", "code"],
  additionalProperties: false,
} as const;

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "Problem#" } } },
});

const SCALAR_TYPES = new Set(["string", "integer", "number", "boolean"]);

/**
 * A value or null. A scalar becomes `type: [T, "null"]` (JSON Schema 2020-12 / OpenAPI 3.1), which
 * the response serializer writes directly; with `anyOf [T, null]` it validates every value against
 * each branch first (a date-time format check per date: ≈ 20 % of a 100-run page's CPU). Objects,
 * arrays and enumerations keep `anyOf`.
 */
export function Nullable<T extends TSchema>(schema: T): TUnsafe<Static<T> | null> {
  const { type, const: constant, enum: values } = schema as { type?: unknown; const?: unknown; enum?: unknown };
  // With const or enum, a null would fail them: those keep anyOf.
  if (typeof type === "string" && SCALAR_TYPES.has(type) && constant === undefined && values === undefined) {
    return Type.Unsafe<Static<T> | null>({ ...schema, type: [type, "null"] });
  }
  return Type.Unsafe<Static<T> | null>(Type.Union([schema, Type.Null()]));
}
/** An ISO-8601 UTC timestamp as `Date#toISOString` writes it. */
export const DateTime = Type.String({ format: "date-time" });
export const NullableDateTime = Nullable(DateTime);
/** Airflow's list envelope: `{<key>: [...], total_entries}`. */
export function ListOf<K extends string, T extends TSchema>(key: K, item: T) {
  const properties = { [key]: Type.Array(item), total_entries: Type.Integer({ minimum: 0 }) } as Record<K, TArray<T>> & { total_entries: TInteger };
  return Type.Object(properties);
}
/** A list that also pages by keyset: ListOf plus `next_cursor`, to pass as `?cursor=` for the rows after this page. */
export function CursorListOf<K extends string, T extends TSchema>(key: K, item: T) {
  return Type.Object({
    ...ListOf(key, item).properties,
    next_cursor: Nullable(Type.String({ description: "pass as ?cursor= for the page after this one (same order_by and filters); null on the last page" })),
  });
}
/**
 * Route option for the big lists whose handlers build every item field by field, typed by the
 * response schema (dagRunJson, taskInstanceJson): JSON.stringify instead of the schema's compiled
 * serializer. The compiled one builds a page of 100 runs from thousands of string pieces
 * (≈ 30 % of what such a request allocated, then flattened for Content-Length); JSON.stringify
 * writes the text in one piece: ≈ 20 % more pages per second under 50 clients (bench/README.md).
 * It neither drops undeclared keys nor coerces types, so a route using it must return exactly
 * the schema's shape; test/integration/listSerialization.test.ts holds them to the compiled
 * serializer's output.
 */
export const serializeAsBuilt = () => (data: unknown) => JSON.stringify(data);
/** Free-form JSON object (conf, payloads): declared open so the serializer keeps every key. */
export const FreeObject = Type.Object({}, { additionalProperties: true });

/** Marks, on the route schema, a body the route may go without (`Type.Optional(...)`); see finishDocument. */
const OPTIONAL_BODY = "x-baton-optional-body";

interface RouteSchema {
  hide?: boolean;
  body?: unknown;
  [OPTIONAL_BODY]?: boolean;
  response?: Record<string, unknown>;
  security?: unknown[];
}

/**
 * onRoute: every documented route answers errors as problem JSON, so the 4XX and 5XX
 * responses are declared here once (unless a route declares its own); routes that need no
 * token (`config.role: "public"`) are marked `security: []`.
 */
export function documentRoute(route: RouteOptions): void {
  const schema = (route.schema ?? {}) as RouteSchema;
  if (schema.hide) return;
  route.schema = schema as RouteOptions["schema"];
  const response = (schema.response ??= {});
  const has = (range: string) => Object.keys(response).some((k) => k.toLowerCase() === range);
  if (!has("4xx")) response["4xx"] = problemResponse("The request was rejected (problem JSON)");
  if (!has("5xx")) response["5xx"] = problemResponse("The server or its database failed (problem JSON)");
  if ((route.config as { role?: string } | undefined)?.role === "public") schema.security ??= [];
  // @fastify/swagger marks every request body required; a route that fills in a missing one says so.
  if (schema.body && IsOptional(schema.body)) schema[OPTIONAL_BODY] = true;
}

type OpenApiOperation = { tags?: string[]; requestBody?: { required?: boolean }; [OPTIONAL_BODY]?: boolean };
type OpenApiObject = { tags?: { name: string; description?: string }[]; paths?: Record<string, Record<string, OpenApiOperation>> };

/**
 * The last touches: optional request bodies marked not required, and the top-level tags (the
 * ones operations use, described, in TAG_DESCRIPTIONS order then by name).
 */
function finishDocument(doc: OpenApiObject): OpenApiObject {
  const used = new Set<string>();
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      for (const t of op.tags ?? []) used.add(t);
      if (op[OPTIONAL_BODY]) {
        if (op.requestBody) op.requestBody.required = false;
        delete op[OPTIONAL_BODY];
      }
    }
  }
  const known = Object.keys(TAG_DESCRIPTIONS);
  const names = [...used].sort((a, b) => {
    const [ia, ib] = [known.indexOf(a), known.indexOf(b)];
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0 || ib >= 0) return ia >= 0 ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return { ...doc, tags: names.map((name) => (TAG_DESCRIPTIONS[name] ? { name, description: TAG_DESCRIPTIONS[name] } : { name })) };
}

/**
 * Serves the spec at /api/v1/openapi.json and the interactive docs at /docs. Call before any
 * route is registered: the onRoute hook only sees routes added after it.
 */
export async function installOpenApi(app: FastifyInstance): Promise<void> {
  app.addSchema(PROBLEM_SCHEMA);
  app.addHook("onRoute", documentRoute);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Baton REST API",
        version: "1.0.0",
        description:
          "Shaped like Airflow's stable REST API v1. Errors are problem JSON with a stable `code` (docs/errors.md). " +
          "Send `Authorization: Bearer <token>` unless the server runs with auth off.",
      },
      servers: [{ url: "/", description: "The Baton API serving this document" }],
      components: {
        securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "A Baton API token" } },
      },
      security: [{ bearerAuth: [] }],
    },
    // Shared schemas become #/components/schemas/<$id> rather than def-0, def-1, ...
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    transformObject: (documentObject) => finishDocument((documentObject as { openapiObject: OpenApiObject }).openapiObject) as never,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get(OPENAPI_PATH, { schema: { hide: true }, config: { role: "public" } }, async () => app.swagger());
}

/** JSON with object keys sorted at every level, two-space indented, newline-terminated. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = sort((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}
