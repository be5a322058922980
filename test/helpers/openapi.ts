// Test helpers built on the generated OpenAPI document: enumerate its operations, validate real
// responses against the response schema the spec declares for (method, path, status), make
// minimal valid values from a schema, and send requests that can neither hang nor stream forever.
import Ajv2020 from "ajv/dist/2020.js";
import AjvDraft7 from "ajv";
import addFormats from "ajv-formats";
import type { FastifyInstance, InjectOptions } from "fastify";
import { PROBLEM_DETAILS_SCHEMA } from "../../api/openapi.ts";
import { ERRORS } from "../../core/errors.ts";

type Json = Record<string, unknown>;
export type Schema = Json;

export interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: Schema;
}

interface MediaType {
  schema?: Schema;
}

interface ResponseObject {
  description?: string;
  content?: Record<string, MediaType>;
}

export interface OperationObject {
  operationId?: string;
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Record<string, MediaType> };
  responses?: Record<string, ResponseObject>;
  security?: unknown[];
}

export interface OpenApiSpec {
  openapi: string;
  paths: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, Schema> };
}

export interface Operation {
  /** Upper case: GET, POST, ... */
  method: string;
  /** The path template as the spec writes it: /api/v1/dags/{dag_id}. */
  path: string;
  /** "GET /api/v1/dags/{dag_id}": how tests name an operation. */
  key: string;
  op: OperationObject;
}

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

/** The spec the app serves, as plain JSON (what a client downloads). */
export function specOf(app: FastifyInstance): OpenApiSpec {
  return JSON.parse(JSON.stringify(app.swagger())) as OpenApiSpec;
}

export function operationsOf(spec: OpenApiSpec): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue;
      out.push({ method: method.toUpperCase(), path, key: `${method.toUpperCase()} ${path}`, op });
    }
  }
  return out;
}

export const paramsOf = (op: OperationObject, where: Parameter["in"]): Parameter[] => (op.parameters ?? []).filter((p) => p.in === where);

/** The JSON schema of an operation's JSON request body, if it takes one. */
export function bodySchemaOf(op: OperationObject): Schema | undefined {
  return op.requestBody?.content?.["application/json"]?.schema;
}

/** The operation's path with each {param} replaced by its percent-encoded value. */
export function fillPath(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`no value for path parameter ${name} of ${template}`);
    return encodeURIComponent(String(values[name]));
  });
}

/** The declared successful (2xx) statuses of an operation. */
export const successStatuses = (op: OperationObject): string[] => Object.keys(op.responses ?? {}).filter((s) => /^2(\d\d|XX)$/i.test(s));

/** The response object the spec declares for a status: exact, then its range (4XX), then default. */
export function responseFor(op: OperationObject, status: number): { key: string; response: ResponseObject } | undefined {
  const responses = op.responses ?? {};
  const range = `${String(status)[0]}XX`;
  for (const key of [String(status), range, range.toLowerCase(), "default"]) {
    if (responses[key]) return { key, response: responses[key]! };
  }
  return undefined;
}

/** OpenAPI 3.0's `nullable: true` as JSON Schema, and component refs as ajv schema ids. */
function toJsonSchema(value: unknown, refBase: string): unknown {
  if (Array.isArray(value)) return value.map((v) => toJsonSchema(v, refBase));
  if (!value || typeof value !== "object") return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value as Json)) {
    if (k === "$id" || k === "nullable" || k === "example" || k === "xml" || k === "externalDocs") continue;
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) {
      out.$ref = `${refBase}${v.slice("#/components/schemas/".length)}`;
      continue;
    }
    out[k] = toJsonSchema(v, refBase);
  }
  if ((value as Json).nullable === true) {
    const type = out.type;
    if (typeof type === "string") out.type = [type, "null"];
    else if (Array.isArray(type)) out.type = [...new Set([...type, "null"])];
    else return { anyOf: [out, { type: "null" }] };
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

export interface ResponseLike {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

const mediaTypeOf = (headers: ResponseLike["headers"]) => String(headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
const isJsonMedia = (media: string) => media === "application/json" || media.endsWith("+json");

/**
 * Validates responses against the spec: the status must be declared (exactly or by range), the
 * content type must be one the spec lists for it, and the body must match that schema.
 */
export class ContractValidator {
  private readonly ajv;
  private readonly compiled = new Map<string, (data: unknown) => boolean>();
  private static readonly REF_BASE = "https://baton.invalid/openapi/components/";

  constructor(readonly spec: OpenApiSpec) {
    const is31 = spec.openapi.startsWith("3.1");
    const options = { strict: false, allErrors: true, validateFormats: true };
    this.ajv = is31 ? new Ajv2020.default(options) : new AjvDraft7.default(options);
    addFormats.default(this.ajv as never);
    for (const [name, schema] of Object.entries(spec.components?.schemas ?? {})) {
      this.ajv.addSchema(toJsonSchema(schema, ContractValidator.REF_BASE) as Json, `${ContractValidator.REF_BASE}${name}`);
    }
  }

  /** Every way the response departs from the spec; empty when it conforms. */
  check(operation: Operation, res: ResponseLike): string[] {
    const found = responseFor(operation.op, res.statusCode);
    if (!found) return [`status ${res.statusCode} is not declared (declared: ${Object.keys(operation.op.responses ?? {}).join(", ") || "none"})`];
    const { key, response } = found;
    const content = response.content;
    if (!content || Object.keys(content).length === 0) {
      return res.body.length === 0 ? [] : [`response ${key} declares no content, got ${res.body.length} bytes`];
    }
    const media = mediaTypeOf(res.headers);
    const declared = content[media] ?? content["*/*"];
    if (!declared) return [`content-type "${media}" is not declared for ${key} (declared: ${Object.keys(content).join(", ")})`];
    if (!declared.schema) return [];
    let body: unknown = res.body;
    if (isJsonMedia(media)) {
      try {
        body = JSON.parse(res.body);
      } catch {
        return [`body is not JSON: ${res.body.slice(0, 200)}`];
      }
    }
    const cacheKey = `${operation.key} ${key} ${media}`;
    let validate = this.compiled.get(cacheKey);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(declared.schema, ContractValidator.REF_BASE) as Json) as (data: unknown) => boolean;
      this.compiled.set(cacheKey, validate);
    }
    if (validate(body)) return [];
    const errors = (validate as unknown as { errors?: { instancePath: string; message?: string; params?: unknown }[] }).errors ?? [];
    return errors.slice(0, 10).map((e) => `body${e.instancePath.replace(/\//g, ".")} ${e.message ?? "is invalid"} ${JSON.stringify(e.params)}`);
  }

  /** Whether a value is valid against a schema of this spec (refs resolved); `coerce` mimics query/path parsing. */
  valid(schema: Schema, value: unknown, coerce = false): boolean {
    const ajv = coerce ? this.coercing() : this.ajv;
    const key = `${coerce ? "c" : "x"}:${JSON.stringify(schema)}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = ajv.compile(toJsonSchema(schema, ContractValidator.REF_BASE) as Json) as (data: unknown) => boolean;
      this.compiled.set(key, validate);
    }
    return validate(structuredClone(value));
  }

  private coercingAjv?: InstanceType<typeof AjvDraft7.default>;
  private coercing() {
    if (!this.coercingAjv) {
      // The app's own settings for path parameters and query strings (api/app.ts).
      this.coercingAjv = new AjvDraft7.default({ coerceTypes: "array", useDefaults: true, strict: false });
      addFormats.default(this.coercingAjv);
      for (const [name, schema] of Object.entries(this.spec.components?.schemas ?? {})) {
        this.coercingAjv.addSchema(toJsonSchema(schema, ContractValidator.REF_BASE) as Json, `${ContractValidator.REF_BASE}${name}`);
      }
    }
    return this.coercingAjv;
  }

  /** Resolves a `#/components/schemas/X` reference (one level). */
  resolve(schema: Schema | undefined): Schema | undefined {
    const ref = schema?.$ref;
    if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) return this.spec.components?.schemas?.[ref.slice(21)];
    return schema;
  }
}

/** What is wrong with an error answer: it must be problem JSON with a known code and matching status. */
export function problemErrors(res: ResponseLike): string[] {
  const errors: string[] = [];
  const media = mediaTypeOf(res.headers);
  if (media !== "application/problem+json") errors.push(`content-type is "${media}", not application/problem+json`);
  let body: Json;
  try {
    body = JSON.parse(res.body) as Json;
  } catch {
    return [...errors, `body is not JSON: ${res.body.slice(0, 200)}`];
  }
  const keys = Object.keys(body ?? {}).filter((k) => k !== "details").sort().join(",");
  if (keys !== "code,detail,status,title,type") errors.push(`problem keys are ${keys}`);
  // details is optional, never empty, and holds declared members only.
  if (body && "details" in body) {
    const details = body.details;
    const members = details && typeof details === "object" && !Array.isArray(details) ? Object.keys(details) : [];
    const undeclared = members.filter((m) => !(m in PROBLEM_DETAILS_SCHEMA.properties));
    if (members.length === 0 || undeclared.length > 0) errors.push(`problem details ${JSON.stringify(details)} is not an object of declared members`);
  }
  const code = body?.code as string;
  if (!(code in ERRORS)) errors.push(`code ${JSON.stringify(code)} is not in core/errors.ts ERRORS`);
  else if (ERRORS[code as keyof typeof ERRORS].status !== res.statusCode) errors.push(`code ${code} has status ${ERRORS[code as keyof typeof ERRORS].status}, answered ${res.statusCode}`);
  if (body?.status !== res.statusCode) errors.push(`body.status ${JSON.stringify(body?.status)} differs from the HTTP status ${res.statusCode}`);
  return errors;
}

const STRING_CANDIDATES = ["contract", "contract_1", "contract-1", "c", "0".repeat(64), "2026-01-01T00:00:00.000Z", "viewer", "1"];

/**
 * A small valid value for a schema: required properties only, the first enum/const/alternative,
 * minimums for numbers; strings from a few candidates that satisfy the pattern/format.
 */
export function sampleOf(schema: Schema | undefined, v: ContractValidator, depth = 0): unknown {
  const s = v.resolve(schema);
  if (!s || depth > 8) return null;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if ("default" in s && s.default !== undefined) return s.default;
  for (const k of ["anyOf", "oneOf"]) {
    const alts = s[k] as Schema[] | undefined;
    if (Array.isArray(alts)) {
      const alt = alts.find((a) => a.type !== "null") ?? alts[0];
      return sampleOf(alt, v, depth + 1);
    }
  }
  if (Array.isArray(s.allOf)) return Object.assign({}, ...(s.allOf as Schema[]).map((a) => sampleOf(a, v, depth + 1) as object));
  const type = Array.isArray(s.type) ? (s.type as string[]).find((t) => t !== "null") : (s.type as string | undefined);
  switch (type) {
    case "object": {
      const out: Json = {};
      const props = (s.properties ?? {}) as Record<string, Schema>;
      for (const name of (s.required as string[] | undefined) ?? []) out[name] = sampleOf(props[name], v, depth + 1);
      return out;
    }
    case "array": {
      const n = Number(s.minItems ?? 0);
      return Array.from({ length: n }, () => sampleOf(s.items as Schema, v, depth + 1));
    }
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? s.minimum : typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum + 1 : 1;
    case "boolean":
      return false;
    case "null":
      return null;
    case "string": {
      const found = STRING_CANDIDATES.find((c) => v.valid(s, c));
      if (found !== undefined) return found;
      return "x".repeat(Math.max(1, Number(s.minLength ?? 1)));
    }
    default:
      return {};
  }
}

export interface Sent extends ResponseLike {
  ms: number;
  /** A server-sent event stream: only its first chunk was read, then the request was aborted. */
  streamed: boolean;
  timedOut: boolean;
}

/**
 * inject() that cannot hang the test: the response is read as a stream with a deadline, and an
 * event stream is cut after its first chunk (its handler runs until the client goes away).
 */
export async function send(app: FastifyInstance, options: InjectOptions, timeoutMs = 5_000): Promise<Sent> {
  const abort = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const timedOut = (): Sent => {
    abort.abort();
    return { statusCode: 0, headers: {}, body: "", ms: performance.now() - started, streamed: false, timedOut: true };
  };
  try {
    const res = await Promise.race([app.inject({ ...options, payloadAsStream: true, signal: abort.signal }), deadline]);
    if (res === "timeout") return timedOut();
    const streamed = mediaTypeOf(res.headers) === "text/event-stream";
    const read = (async () => {
      let body = "";
      for await (const chunk of res.stream()) {
        body += String(chunk);
        if (streamed) break;
      }
      return body;
    })();
    const body = await Promise.race([read, deadline]);
    if (body === "timeout") return timedOut();
    if (streamed) abort.abort();
    return { statusCode: res.statusCode, headers: res.headers, body, ms: performance.now() - started, streamed, timedOut: false };
  } finally {
    clearTimeout(timer);
  }
}

/** A short description of a request for failure messages (long values cut). */
export function describeRequest(options: { method?: string; url?: string; headers?: Record<string, unknown>; payload?: unknown }): string {
  const cut = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
  const payload = options.payload === undefined ? "" : ` body=${cut(typeof options.payload === "string" ? JSON.stringify(options.payload) : JSON.stringify(options.payload))}`;
  const headers = options.headers && Object.keys(options.headers).length > 0 ? ` headers=${cut(JSON.stringify(options.headers))}` : "";
  return `${options.method ?? "GET"} ${cut(options.url ?? "")}${headers}${payload}`;
}
