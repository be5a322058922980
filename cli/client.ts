import type { FastifyInstance } from "fastify";
import { BatonError, ERRORS, type ErrorCode } from "../core/errors.ts";
import { clock, openRuntime, type Runtime } from "./runtime.ts";

/**
 * One way for every CLI command to act: a REST request. With --api-url (or BATON_API_URL) it goes
 * over HTTP with BATON_API_TOKEN; without, the same API is built in this process on the database
 * and reached with inject(). Either way the CLI and the API cannot drift apart: there is one
 * implementation of each operation, the route.
 */
export interface ApiClient {
  /** Sends a request; a non-2xx answer throws ApiCallError carrying the problem's code and detail. */
  call<T = any>(method: string, path: string, options?: CallOptions): Promise<T>;
  /** Raw answer (status, headers, text body), for logs and streams; never throws on status. */
  raw(method: string, path: string, options?: CallOptions): Promise<{ status: number; headers: Record<string, string>; text: string }>;
  close(): Promise<void>;
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

/** An API answer outside 2xx, as the CLI reports it: `CODE: detail`. */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
    this.name = "ApiCallError";
  }
}

export interface ClientOptions {
  apiUrl?: string;
  token?: string;
}

function queryString(query: CallOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function errorOf(status: number, text: string): ApiCallError {
  try {
    const problem = JSON.parse(text) as { code?: string; detail?: string; title?: string };
    if (problem.code) return new ApiCallError(status, problem.code, problem.detail ?? problem.title ?? "");
  } catch {
    // not problem JSON
  }
  return new ApiCallError(status, `HTTP_${status}`, text.slice(0, 500));
}

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A client from its transport: `call` is `raw` plus problem JSON → ApiCallError, the same for both. */
function clientOver(raw: ApiClient["raw"], close: () => Promise<void>): ApiClient {
  return {
    raw,
    async call(method, path, options) {
      const answer = await raw(method, path, options);
      if (answer.status >= 400) throw errorOf(answer.status, answer.text);
      return parseBody(answer.text) as any;
    },
    close,
  };
}

/** The API at a URL, authenticated with a bearer token. */
export function remoteClient(apiUrl: string, token?: string): ApiClient {
  const base = apiUrl.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
  const raw: ApiClient["raw"] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${base}/api/v1${path}${queryString(options.query)}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (err) {
      throw new BatonError("BATON_API_UNREACHABLE", `cannot reach the Baton API at ${base} (${unreachableReason(err, base)})`);
    }
    return { status: response.status, headers: Object.fromEntries(response.headers.entries()), text: await response.text() };
  };
  const client = clientOver(raw, async () => undefined);
  if (token) return client;
  // The API's detail is for any client; a CLI user also needs to hear where the CLI takes its token from.
  return {
    ...client,
    async call(method, path, options) {
      try {
        return await client.call(method, path, options);
      } catch (err) {
        if (err instanceof ApiCallError && err.code === "BATON_UNAUTHENTICATED") {
          throw new ApiCallError(err.status, err.code, `${err.message}; BATON_API_TOKEN is not set, and --api-url sends it as the token`);
        }
        throw err;
      }
    },
  };
}

/**
 * Why fetch() failed, in a word or a sentence: the socket's error code (ECONNREFUSED, ENOTFOUND),
 * else fetch's own reason. It refuses, before connecting, the ports browsers block (1, 6000, …),
 * with only "bad port" under "fetch failed".
 */
function unreachableReason(err: unknown, base: string): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if (cause?.message === "bad port") {
    let port = "";
    try {
      port = new URL(base).port;
    } catch {
      // unparsable: no port to name
    }
    return `bad port: Node's fetch refuses to call port ${port}; serve the API on another port`;
  }
  return cause?.message ?? (err as Error).message;
}

/** The API built in this process on the configured database (what a command does without --api-url). */
export async function localClient(runtime?: Runtime): Promise<ApiClient> {
  const rt = runtime ?? (await openRuntime());
  const { buildApp } = await import("../api/app.ts");
  // Whoever holds the database credentials already has every right: no token in local mode.
  const app: FastifyInstance = await buildApp({ db: rt.db, clock, logger: rt.logger, config: rt.config, auth: { mode: "off" }, lazySchemas: true });
  const raw: ApiClient["raw"] = async (method, path, options = {}) => {
    const answer = await app.inject({
      method: method as "GET",
      url: `/api/v1${path}${queryString(options.query)}`,
      headers: { accept: "application/json", ...options.headers },
      ...(options.body === undefined ? {} : { payload: options.body as object }),
    });
    return { status: answer.statusCode, headers: answer.headers as Record<string, string>, text: answer.body };
  };
  return clientOver(raw, async () => {
    await app.close();
    if (!runtime) await rt.db.close();
  });
}

/** The client a command uses: remote when --api-url or BATON_API_URL is given, local otherwise. */
export async function openClient(options: ClientOptions = {}): Promise<ApiClient> {
  const apiUrl = options.apiUrl ?? process.env.BATON_API_URL;
  if (apiUrl) return remoteClient(apiUrl, options.token ?? process.env.BATON_API_TOKEN);
  return localClient();
}

/** Runs `body` with a client and always closes it. */
export async function withClient<T>(options: ClientOptions, body: (client: ApiClient) => Promise<T>): Promise<T> {
  const client = await openClient(options);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

export function isKnownCode(code: string): code is ErrorCode {
  return code in ERRORS;
}
