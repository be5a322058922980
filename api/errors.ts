import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BatonError, ERRORS, type ErrorCode, type ProblemDetails } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { isConnectionError } from "../store/db.ts";
import { PROBLEM_DETAILS_SCHEMA } from "./openapi.ts";
import { NAME_PATTERN, NAME_RULE, POOL_NAME_PATTERN, POOL_NAME_RULE, SIGNAL_NAME_PATTERN, SIGNAL_NAME_RULE, STORED_NAME_PATTERN, STORED_NAME_RULE } from "../core/dagLimits.ts";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  details?: ProblemDetails;
}

const DECLARED_DETAILS = Object.keys(PROBLEM_DETAILS_SCHEMA.properties) as (keyof ProblemDetails)[];

/**
 * The problem JSON of an error. Of `details`, only the members the OpenAPI document declares are
 * kept: an error rethrown with another's details, or details cast past their type, can never send
 * a client more than the document promises (some routes' answers skip the schema's serializer).
 */
export function problemOf(code: ErrorCode, detail: string, details?: ProblemDetails): Problem {
  const { status, title } = ERRORS[code];
  const problem: Problem = { type: `https://baton.dev/errors#${code}`, title, status, detail, code };
  const kept = DECLARED_DETAILS.filter((member) => details?.[member] !== undefined).map((member) => [member, details![member]]);
  return kept.length > 0 ? { ...problem, details: Object.fromEntries(kept) as ProblemDetails } : problem;
}

/**
 * Errors Fastify raises before routing (a malformed %-escape, an over-long path segment):
 * passed as the `frameworkErrors` option so they answer problem JSON too.
 */
export function sendFrameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.status(400).type("application/problem+json").send(problemOf("BATON_VALIDATION_FAILED", err.message));
}

type ValidationError = NonNullable<FastifyError["validation"]>[number];

/**
 * The detail of a request the schema refused, from Ajv's errors (the first names the field):
 * `body.dag_run_id is required`, `querystring.state.0 must be one of: queued, running, …`.
 */
export function validationDetail(context: string, errors: ValidationError[]): string {
  const first = errors[0];
  const where = `${context}${first?.instancePath ? first.instancePath.replace(/\//g, ".") : ""}`;
  const params = first?.params as { missingProperty?: string; additionalProperty?: string; pattern?: string } | undefined;
  if (params?.missingProperty) return `${where}.${params.missingProperty} is required`;
  if (params?.additionalProperty) return `${where}.${params.additionalProperty} is not an allowed property`;
  if (params?.pattern === NAME_PATTERN) return `${where} ${NAME_RULE}`;
  if (params?.pattern === POOL_NAME_PATTERN) return `${where} ${POOL_NAME_RULE}`;
  if (params?.pattern === SIGNAL_NAME_PATTERN) return `${where} ${SIGNAL_NAME_RULE}`;
  if (params?.pattern === STORED_NAME_PATTERN) return `${where} ${STORED_NAME_RULE}`;
  const allowed = allowedValues(errors);
  if (allowed) return `${where} must be one of: ${allowed.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ")}`;
  return `${where} ${first?.message ?? "is invalid"}`;
}

/**
 * The values an enumeration allows, when the first error is the value's not being one: an `enum`
 * (its allowedValues), or a union of literals, whose every branch failed its `const` (Ajv reports
 * each branch, then the anyOf). Undefined for anything else, a union mixing other kinds included
 * (string or null), whose first error says more.
 */
function allowedValues(errors: ValidationError[]): unknown[] | undefined {
  const first = errors[0];
  if (first?.keyword === "enum") return (first.params as { allowedValues?: unknown[] }).allowedValues;
  if (first?.keyword !== "const") return undefined;
  const values: unknown[] = [];
  for (const e of errors) {
    if (e.instancePath !== first.instancePath) continue;
    if (e.keyword === "const") values.push((e.params as { allowedValue?: unknown }).allowedValue);
    else if (e.keyword !== "anyOf") return undefined;
  }
  return values;
}

/** Maps every error to problem JSON with a stable code; bad input never becomes a 500. */
export function installErrorHandler(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    let problem: Problem;
    if (err instanceof BatonError) {
      problem = problemOf(err.code, err.message, err.details);
    } else if (err.validation) {
      problem = problemOf("BATON_VALIDATION_FAILED", validationDetail(err.validationContext ?? "request", err.validation));
    } else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      problem = problemOf("BATON_PAYLOAD_TOO_LARGE", err.message);
    } else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      problem = problemOf("BATON_UNSUPPORTED_MEDIA_TYPE", err.message);
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      problem = problemOf("BATON_VALIDATION_FAILED", err.message);
    } else if (["ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK"].includes((err as { code?: string }).code ?? "")) {
      problem = problemOf("BATON_DATABASE_BUSY", "the database was busy with the same rows and this request was rolled back; retry");
    } else if (isConnectionError(err)) {
      problem = problemOf("BATON_DATABASE_UNAVAILABLE", "the database cannot be reached; retry later");
    } else {
      logger.error(`unhandled error on ${request.method} ${request.url.split("?")[0]}: ${err.stack ?? err.message}`, { request_id: request.id });
      problem = problemOf("BATON_INTERNAL", "an internal error occurred; see the server log");
    }
    void reply.status(problem.status).type("application/problem+json").send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0]!;
    const allowed = path.startsWith(API_PATHS) ? allowedMethods(app, request.url) : [];
    if (allowed.length > 0) {
      const problem = problemOf("BATON_METHOD_NOT_ALLOWED", `${request.method} ${path} is not supported; this path allows ${allowed.join(", ")}`);
      void reply.status(405).header("allow", allowed.join(", ")).type("application/problem+json").send(problem);
      return;
    }
    const problem = problemOf("BATON_ROUTE_NOT_FOUND", `no route for ${request.method} ${path}`);
    void reply.status(404).type("application/problem+json").send(problem);
  });
}

/**
 * Where a wrong method answers 405 rather than 404: the REST API. The web UI's catch-all routes
 * (`GET /:file`, `GET /dags/*`) match nearly any other path for GET, and a missing file there is a 404.
 */
const API_PATHS = "/api/";
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The methods routed for this concrete URL, in the Allow header's order. Fastify's findRoute hands
 * the URL to find-my-way's find (the lookup a request goes through: parameters, decoding), so the
 * answer is the router's own. OPTIONS counts only beside another method: with CORS on, its
 * preflight route matches every path.
 */
export function allowedMethods(app: FastifyInstance, url: string): string[] {
  const found = METHODS.filter((method) => app.findRoute({ method, url }) !== null);
  if (found.length > 0 && app.findRoute({ method: "OPTIONS", url }) !== null) return [...found, "OPTIONS"];
  return found;
}
