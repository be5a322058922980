// api/errors.ts on a bare Fastify app: an unexpected error answers BATON_INTERNAL without its
// details, and the log line carries the request's id so an operator can find it. A coded error's
// details reach problem JSON as its `details` member, only the members the OpenAPI document declares.
import Fastify from "fastify";
import { installErrorHandler } from "../../api/errors.ts";
import { BatonError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";

interface Line {
  level: string;
  message: string;
  meta?: Record<string, unknown>;
}

function capturingLogger(lines: Line[]): Logger {
  const at = (level: string) => (message: string, meta?: Record<string, unknown>) => void lines.push({ level, message, meta });
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), scope: () => logger };
  return logger;
}

describe("API error handler", () => {
  const lines: Line[] = [];
  const app = Fastify({ genReqId: () => "req-test-42" });
  installErrorHandler(app, capturingLogger(lines));
  app.get("/boom", async () => {
    throw new TypeError("secret internals");
  });
  app.get("/coded", async () => {
    throw new BatonError("BATON_POOL_NOT_FOUND", 'pool "x" not found');
  });
  app.get("/finished", async () => {
    throw new BatonError("BATON_DAG_RUN_FINISHED", 'DAG run "r" has already finished (state success)', { state: "success" });
  });
  app.get("/undeclared", async () => {
    // A member nobody declared (cast past the type, as a rethrow of foreign details could): never sent.
    throw new BatonError("BATON_DAG_RUN_FINISHED", 'DAG run "r" has already finished', { state: "failed", dsn: "mysql://root:hunter2@db" } as never);
  });
  app.get("/locked", async () => {
    throw Object.assign(new Error("Lock wait timeout exceeded; try restarting transaction"), { code: "ER_LOCK_WAIT_TIMEOUT" });
  });
  afterAll(() => app.close());
  beforeEach(() => void lines.splice(0));

  it("logs an unhandled error with the request id in its meta and answers BATON_INTERNAL without details", async () => {
    const res = await app.inject({ method: "GET", url: "/boom?token=abc" });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: "BATON_INTERNAL", status: 500 });
    expect(res.body).not.toContain("secret internals");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", meta: { request_id: "req-test-42" } });
    expect(lines[0]!.message).toContain("GET /boom: TypeError: secret internals");
    // The query string (it may hold a secret) stays out of the log.
    expect(lines[0]!.message).not.toContain("token=abc");
  });

  it("answers a lock wait timeout as 503 BATON_DATABASE_BUSY (retry), not as an internal error", async () => {
    const res = await app.inject({ method: "GET", url: "/locked" });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe("BATON_DATABASE_BUSY");
    expect(lines).toEqual([]);
  });

  it("does not log coded errors: they are answers, not faults", async () => {
    const res = await app.inject({ method: "GET", url: "/coded" });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe("BATON_POOL_NOT_FOUND");
    expect(lines).toEqual([]);
  });

  it("answers a coded error's details as the problem's details member, and leaves it out when there are none", async () => {
    const res = await app.inject({ method: "GET", url: "/finished" });
    expect({ status: res.statusCode, body: res.json() }).toEqual({
      status: 409,
      body: {
        type: "https://baton.dev/errors#BATON_DAG_RUN_FINISHED",
        title: "DAG run has finished",
        status: 409,
        detail: 'DAG run "r" has already finished (state success)',
        code: "BATON_DAG_RUN_FINISHED",
        details: { state: "success" },
      },
    });
    expect(Object.keys((await app.inject({ method: "GET", url: "/coded" })).json())).not.toContain("details");
  });

  it("sends only the details members the OpenAPI document declares", async () => {
    const res = await app.inject({ method: "GET", url: "/undeclared" });
    expect(res.json().details).toEqual({ state: "failed" });
    expect(res.body).not.toContain("hunter2");
  });
});
