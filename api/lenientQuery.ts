// Query-string values that Airflow's API reads more leniently than JSON Schema does, read the same
// way here: booleans in any case (connexion lowercases them, and Python's requests sends True as
// "True"), and date-times whose "+" offset arrived as a space (an unencoded "+" in a query string
// is a space; Airflow's format_datetime turns it back). The text is fixed before validation, so
// the schema still decides what is valid. Each route gets a hook only for the parameters its
// querystring schema declares so: a route without any gets none, and one with some loops over
// those names alone.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from "fastify";

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

export interface QueryFixes {
  booleans: string[];
  dateTimes: string[];
}

interface SchemaNode {
  type?: unknown;
  format?: unknown;
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  allOf?: SchemaNode[];
}

/** The querystring parameters (of an object schema, or an allOf of them) that need a fix. */
export function queryFixesOf(schema: unknown): QueryFixes {
  const fixes: QueryFixes = { booleans: [], dateTimes: [] };
  const visit = (node: SchemaNode | undefined) => {
    if (!node || typeof node !== "object") return;
    for (const [name, property] of Object.entries(node.properties ?? {})) {
      const scalar = property.type === "array" ? property.items : property;
      if (scalar?.type === "boolean") fixes.booleans.push(name);
      else if (scalar?.type === "string" && scalar.format === "date-time") fixes.dateTimes.push(name);
    }
    for (const part of node.allOf ?? []) visit(part);
  };
  visit(schema as SchemaNode);
  return fixes;
}

function fixed(value: unknown, fix: (text: string) => string): unknown {
  if (typeof value === "string") return fix(value);
  return Array.isArray(value) ? value.map((v) => (typeof v === "string" ? fix(v) : v)) : value;
}

function fixQuery({ booleans, dateTimes }: QueryFixes) {
  return (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const query = request.query as Record<string, unknown>;
    for (const name of booleans) if (query[name] !== undefined) query[name] = fixed(query[name], booleanText);
    for (const name of dateTimes) if (query[name] !== undefined) query[name] = fixed(query[name], dateTimeText);
    done();
  };
}

/** onRoute: call before any route is registered (the hook only sees routes added after it). */
export function installLenientQuery(app: FastifyInstance): void {
  app.addHook("onRoute", (route: RouteOptions) => {
    const fixes = queryFixesOf((route.schema as { querystring?: unknown } | undefined)?.querystring);
    if (fixes.booleans.length === 0 && fixes.dateTimes.length === 0) return;
    const own = route.preValidation === undefined ? [] : [route.preValidation].flat();
    route.preValidation = [fixQuery(fixes), ...own] as RouteOptions["preValidation"];
  });
}
