// The REST API client: bearer token from session storage, problem JSON turned into ApiError
// (code + detail), 401 turned into the token form, unreachable server into the connection banner.
import { getState, reloadAll, setState, toast } from "./store.ts";

export const API = "/api/v1";
const TOKEN_KEY = "baton.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  setState({ needToken: false, tokenMessage: null });
  reloadAll();
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Percent-encodes one path segment (run ids hold ':' and '+'). */
export const enc = encodeURIComponent;

export interface CallOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export function queryString(query: CallOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) params.append(k, item);
    else params.append(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

export function noteUnauthorized(message: string): void {
  if (!getState().needToken) setState({ needToken: true, tokenMessage: getToken() ? `The token was refused: ${message}` : null });
}

export async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const sent = getToken();
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders(), ...opts.headers };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`${API}${path}${queryString(opts.query)}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    setState({ apiDown: true });
    throw new ApiError(0, "NETWORK", "cannot reach the Baton server; retrying when it is back");
  }
  if (getState().apiDown) {
    setState({ apiDown: false });
    reloadAll();
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const problem = (json ?? {}) as { code?: string; detail?: string; title?: string };
    const err = new ApiError(res.status, problem.code ?? `HTTP_${res.status}`, problem.detail ?? problem.title ?? (text.slice(0, 300) || res.statusText));
    // A request sent before a token was entered refuses no token but the one it had: the new token stays (its views reload).
    if (res.status === 401 && sent === getToken()) noteUnauthorized(err.detail);
    throw err;
  }
  return (json ?? text) as T;
}

export const get = <T>(path: string, query?: CallOptions["query"], signal?: AbortSignal) => call<T>("GET", path, { query, signal });

/** Reports an action's failure to the user as a toast with the error code. */
export function reportError(err: unknown): void {
  if ((err as Error)?.name === "AbortError") return;
  if (err instanceof ApiError) {
    if (err.status === 401) return; // the token form says it
    toast("error", err.detail, err.code);
  } else {
    toast("error", (err as Error)?.message ?? String(err));
  }
}

/** True when the server has no such route (an endpoint not there yet), as opposed to a missing object. */
export const isMissingRoute = (err: unknown) => err instanceof ApiError && (err.code === "BATON_ROUTE_NOT_FOUND" || (err.status === 404 && err.code.startsWith("HTTP_")) || err.status === 405);
