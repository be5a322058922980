import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(ROOT, "bin/baton.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the caller's BATON_* settings, plus `extra`: tests never inherit a developer's config. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
  return { ...env, ...extra };
}

/** Runs `baton ...args` to completion (killed after timeoutMs) and returns its exit code and output. */
export function runBaton(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A request the held API answered, as the CLI sent it. */
export interface HeldRequest {
  method: string;
  url: string;
  /** The JSON body parsed; undefined without one. */
  body: unknown;
}

/** What the held API does around a request; each hook may return a promise to wait for. */
export interface HeldApiHooks {
  /** Before the request reaches the app: e.g. another actor changes what the CLI's request will find. */
  before?: (req: HeldRequest) => Promise<unknown> | undefined;
  /** After a successful answer, before it goes back: e.g. the workers move a run on after the CLI's change. */
  hold?: (req: HeldRequest) => Promise<unknown> | undefined;
}

/** How a hook's promise settled, for the request it was run for. */
export interface HeldOutcome {
  hook: "before" | "hold";
  method: string;
  url: string;
  /** What the promise resolved to (when it did). */
  value?: unknown;
  /** Why it rejected (when it did). */
  error?: unknown;
}

export interface HeldApi {
  url: string;
  /** Every hook promise settled so far, in the order they settled. */
  outcomes: HeldOutcome[];
  /**
   * Stops the server; rejects with the first hook's failure, if any: an expect inside a hook, or a
   * condition whose deadline passed (the CLI then got its answer early, and proved nothing).
   */
  close: () => Promise<void>;
}

/**
 * `app` (which never listens) over HTTP for a CLI at BATON_API_URL, each request answered through
 * `app.inject()`, with `hooks` run around it: what happens in between shows in whatever the CLI
 * prints from a read of its own before or after its change, every time. A hook's promise that
 * rejects does not stop the answer (the CLI still exits), but it is kept: close() rejects with it,
 * and `outcomes` says what each hook's promise settled to, for the test to check.
 */
export async function heldApi(app: FastifyInstance, hooks: HeldApiHooks): Promise<HeldApi> {
  const outcomes: HeldOutcome[] = [];
  const run = async (hook: HeldOutcome["hook"], held: HeldRequest): Promise<void> => {
    const promise = hooks[hook]?.(held);
    if (!promise) return;
    const outcome: HeldOutcome = { hook, method: held.method, url: held.url };
    try {
      outcome.value = await promise;
    } catch (err) {
      outcome.error = err;
    }
    outcomes.push(outcome);
  };
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => (body += d));
    req.on("end", async () => {
      const held: HeldRequest = { method: req.method!, url: req.url!, body: body ? (JSON.parse(body) as unknown) : undefined };
      await run("before", held);
      const answer = await app.inject({ method: req.method as "GET", url: req.url!, headers: { "content-type": "application/json" }, ...(body ? { payload: body } : {}) });
      if (answer.statusCode < 300) await run("hold", held);
      res.writeHead(answer.statusCode, { "content-type": String(answer.headers["content-type"] ?? "application/json") }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    outcomes,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const failed = outcomes.find((o) => "error" in o);
      if (failed) {
        const err = failed.error as Error;
        throw new Error(`heldApi: the ${failed.hook} hook of ${failed.method} ${failed.url} failed: ${err?.message ?? String(err)}`, { cause: err });
      }
    },
  };
}
