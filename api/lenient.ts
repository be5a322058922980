// What Airflow's API reads more leniently than JSON Schema does, read the same way here:
// - query-string booleans in any case (connexion lowercases them; Python's requests sends True as
//   "True");
// - query-string date-times whose "+" offset arrived as a space (an unencoded "+" in a query
//   string is a space; Airflow's format_datetime turns it back);
// - page limits (`limit`, and `page_limit` in a batch list's body) as Airflow's check_limit reads
//   them: over the maximum page, lowered to it; 0, the default page; only a negative one is a 400.
// Text is fixed before validation, so the schema still decides what is valid; limits after it.
// Each route gets hooks only for the parameters its schema declares so: a route without any gets
// none, and one with some loops over those names alone.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from "fastify";
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from "./schemas.ts";

/** "True", "FALSE" → "true", "false"; any other text as it was, for the schema to refuse. */
export function booleanText(value: string): string {
  const lower = value.toLowerCase();
  return lower === "true" || lower === "false" ? lower : value;
}

/**
 * "2026-01-01T00:00:00 05:00" → "2026-01-01T00:00:00+05:00": a space before an offset at the end
 * (the offsets the date-time format takes: hh, hhmm, hh:mm) was a "+". A time's own space, between
 * date and time, is left alone.
 */
export function dateTimeText(value: string): string {
  return value.replace(/ (\d\d(?::?\d\d)?)$/, "+$1");
}

/** Airflow's check_limit, past the schema (a whole number, not negative): 0 is the default page. */
export function pageLimit(limit: number): number {
  return limit === 0 ? DEFAULT_PAGE_LIMIT : Math.min(limit, MAX_PAGE_LIMIT);
}

export interface RouteFixes {
  /** Query parameters: booleans and date-times, fixed as text. */
  booleans: string[];
  dateTimes: string[];
  /** Page limits: `limit` in the query string, `page_limit` in the body. */
  queryLimit: boolean;
  bodyLimit: boolean;
}

interface SchemaNode {
  type?: unknown;
  format?: unknown;
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  allOf?: SchemaNode[];
}

/** The properties of an object schema, or of an allOf of them. */
function propertiesOf(schema: unknown): [string, SchemaNode][] {
  const node = schema as SchemaNode | undefined;
  if (!node || typeof node !== "object") return [];
  return [...Object.entries(node.properties ?? {}), ...(node.allOf ?? []).flatMap(propertiesOf)];
}

/** What a route's schema asks of the hooks. */
export function routeFixesOf(schema: { querystring?: unknown; body?: unknown } | undefined): RouteFixes {
  const fixes: RouteFixes = { booleans: [], dateTimes: [], queryLimit: false, bodyLimit: false };
  for (const [name, property] of propertiesOf(schema?.querystring)) {
    const scalar = property.type === "array" ? property.items : property;
    if (scalar?.type === "boolean") fixes.booleans.push(name);
    else if (scalar?.type === "string" && scalar.format === "date-time") fixes.dateTimes.push(name);
    else if (name === "limit" && property.type === "integer") fixes.queryLimit = true;
  }
  fixes.bodyLimit = propertiesOf(schema?.body).some(([name, property]) => name === "page_limit" && property.type === "integer");
  return fixes;
}

function fixed(value: unknown, fix: (text: string) => string): unknown {
  if (typeof value === "string") return fix(value);
  return Array.isArray(value) ? value.map((v) => (typeof v === "string" ? fix(v) : v)) : value;
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

function fixQueryText({ booleans, dateTimes }: RouteFixes): Hook {
  return (request, _reply, done) => {
    const query = request.query as Record<string, unknown>;
    for (const name of booleans) if (query[name] !== undefined) query[name] = fixed(query[name], booleanText);
    for (const name of dateTimes) if (query[name] !== undefined) query[name] = fixed(query[name], dateTimeText);
    done();
  };
}

function lowerLimits({ queryLimit, bodyLimit }: RouteFixes): Hook {
  return (request, _reply, done) => {
    const query = request.query as { limit?: number };
    if (queryLimit && typeof query.limit === "number") query.limit = pageLimit(query.limit);
    const body = request.body as { page_limit?: number } | undefined;
    if (bodyLimit && typeof body?.page_limit === "number") body.page_limit = pageLimit(body.page_limit);
    done();
  };
}

/** The route's hooks of one kind with `hook` first. */
function prepend<T>(own: T | T[] | undefined, hook: Hook): T[] {
  return [hook as T, ...(own === undefined ? [] : [own].flat())] as T[];
}

/** onRoute: call before any route is registered (the hook only sees routes added after it). */
export function installLenient(app: FastifyInstance): void {
  app.addHook("onRoute", (route: RouteOptions) => {
    const fixes = routeFixesOf(route.schema as { querystring?: unknown; body?: unknown } | undefined);
    if (fixes.booleans.length > 0 || fixes.dateTimes.length > 0) route.preValidation = prepend(route.preValidation, fixQueryText(fixes));
    if (fixes.queryLimit || fixes.bodyLimit) route.preHandler = prepend(route.preHandler, lowerLimits(fixes));
  });
}
