// Sensors that reach an outside system through a stored Connection (Airflow's SqlSensor(conn_id=…),
// HttpSensor(http_conn_id=…, endpoint=…)): how a connection's fields become mysql2 options or a
// request, and which option shapes are import errors.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { httpConnectionRequest, httpSensor, joinEndpoint, mysqlConnectionOptions, sqlSensor } from "../../sdk/sensors.ts";
import type { Connection, TaskContext } from "../../sdk/types.ts";

function connection(fields: Partial<Connection> & { connType: string }): Connection {
  return { connectionId: "c", description: null, host: null, login: null, password: null, schema: null, port: null, extra: {}, ...fields };
}

function ctxWith(connections: Record<string, Connection>): TaskContext {
  const silent = () => undefined;
  return {
    dagId: "d",
    runId: "r",
    taskId: "t",
    tryNumber: 1,
    maxTries: 0,
    logicalDate: null,
    dataInterval: { start: null, end: null },
    conf: {},
    params: {},
    signal: new AbortController().signal,
    log: { debug: silent, info: silent, warn: silent, error: silent },
    idempotencyKey: "k",
    get: () => undefined as never,
    skip: () => {
      throw new Error("skip");
    },
    step: async (name, fn) => await fn({ idempotencyKey: name }),
    variables: { get: async () => undefined, getJson: async () => undefined } as unknown as TaskContext["variables"],
    connection: async (id: string) => {
      const found = connections[id];
      if (!found) throw Object.assign(new Error(`connection "${id}" is not defined`), { code: "BATON_CONNECTION_NOT_FOUND" });
      return found;
    },
  } as TaskContext;
}

const noSocket = () => undefined;

describe("mysqlConnectionOptions", () => {
  it("reads host, port, login, password and schema as Airflow's MySqlHook does", () => {
    const c = connection({ connType: "mysql", host: "db.internal", port: 3307, login: "etl", password: "s3cret", schema: "warehouse" });
    expect(mysqlConnectionOptions(c, noSocket)).toMatchObject({
      host: "db.internal",
      port: 3307,
      user: "etl",
      password: "s3cret",
      database: "warehouse",
      timezone: "Z",
      multipleStatements: false,
    });
  });

  it("defaults: host localhost, port 3306, user root, no password, no database; mariadb is accepted", () => {
    const options = mysqlConnectionOptions(connection({ connType: "mariadb" }), noSocket);
    expect(options).toMatchObject({ host: "localhost", port: 3306, user: "root", password: "" });
    expect(options).not.toHaveProperty("database");
    expect(options).not.toHaveProperty("socketPath");
    expect(mysqlConnectionOptions(connection({ connType: "MySQL", host: "h" }), noSocket).host).toBe("h");
  });

  it("localhost on 3306 goes through the local socket, as a mysql:// URL does; unix_socket in extra names one", () => {
    const found = () => "/run/mysqld/mysqld.sock";
    expect(mysqlConnectionOptions(connection({ connType: "mysql", host: "localhost" }), found).socketPath).toBe("/run/mysqld/mysqld.sock");
    expect(mysqlConnectionOptions(connection({ connType: "mysql", host: "localhost", port: 3307 }), found)).not.toHaveProperty("socketPath");
    expect(mysqlConnectionOptions(connection({ connType: "mysql", host: "127.0.0.1" }), found)).not.toHaveProperty("socketPath");
    const named = connection({ connType: "mysql", host: "db", extra: { unix_socket: "/tmp/dw.sock" } });
    expect(mysqlConnectionOptions(named, noSocket).socketPath).toBe("/tmp/dw.sock");
  });

  it("extra: charset, and ssl as true or an object of file paths (ca, cert, key) read on the worker", () => {
    const files: Record<string, string> = { "/etc/ca.pem": "CA", "/etc/cert.pem": "CERT", "/etc/key.pem": "KEY" };
    const read = (p: string) => {
      if (!(p in files)) throw new Error(`ENOENT: ${p}`);
      return files[p]!;
    };
    expect(mysqlConnectionOptions(connection({ connType: "mysql", extra: { charset: "utf8mb4" } }), noSocket).charset).toBe("utf8mb4");
    expect(mysqlConnectionOptions(connection({ connType: "mysql", extra: { ssl: true } }), noSocket, read).ssl).toEqual({});
    expect(mysqlConnectionOptions(connection({ connType: "mysql", extra: { ssl: "true" } }), noSocket, read).ssl).toEqual({});
    expect(mysqlConnectionOptions(connection({ connType: "mysql", extra: { ssl: false } }), noSocket, read)).not.toHaveProperty("ssl");
    const withFiles = connection({ connType: "mysql", extra: { ssl: { ca: "/etc/ca.pem", cert: "/etc/cert.pem", key: "/etc/key.pem" } } });
    expect(mysqlConnectionOptions(withFiles, noSocket, read).ssl).toEqual({ ca: "CA", cert: "CERT", key: "KEY" });
    // Airflow also takes the ssl object as a JSON string.
    const asText = connection({ connType: "mysql", extra: { ssl: JSON.stringify({ ca: "/etc/ca.pem" }) } });
    expect(mysqlConnectionOptions(asText, noSocket, read).ssl).toEqual({ ca: "CA" });
    // Keys it does not know are left alone, as Airflow leaves them to the driver.
    expect(mysqlConnectionOptions(connection({ connType: "mysql", extra: { cursor: "sscursor", local_infile: true } }), noSocket)).not.toHaveProperty("cursor");
  });

  it("a connection of another type, or a bad extra, fails the try without retries (FailError)", () => {
    const fails = (c: Connection, message: RegExp, read?: (p: string) => string) => {
      let thrown: unknown;
      try {
        mysqlConnectionOptions(c, noSocket, read);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: "BATON_TASK_FAILED", nonRetryable: true });
      expect((thrown as Error).message).toMatch(message);
    };
    fails(connection({ connectionId: "pg", connType: "postgres" }), /connection "pg" has conn_type "postgres": sqlSensor needs mysql or mariadb/);
    fails(connection({ connType: "mysql", extra: { charset: 5 } }), /extra\.charset must be a character set name/);
    fails(connection({ connType: "mysql", extra: { ssl: "maybe" } }), /extra\.ssl must be true, false or an object/);
    fails(connection({ connType: "mysql", extra: { ssl: { ca: 1 } } }), /extra\.ssl\.ca must be a file path/);
    fails(connection({ connType: "mysql", extra: { ssl: { ca: "/nope.pem" } } }), /could not read extra\.ssl\.ca \/nope\.pem/, () => {
      throw new Error("ENOENT");
    });
    fails(connection({ connType: "mysql", extra: { unix_socket: "" } }), /extra\.unix_socket must be a non-empty path/);
  });
});

describe("httpConnectionRequest (Airflow's HttpHook)", () => {
  it("base URL from schema (default http), host and port; endpoint joined as Airflow joins it", () => {
    expect(httpConnectionRequest(connection({ connType: "http", host: "api.example.com" }), "health").url).toBe("http://api.example.com/health");
    expect(httpConnectionRequest(connection({ connType: "http", host: "api.example.com", schema: "https", port: 8443 }), "/v1/ready").url).toBe(
      "https://api.example.com:8443/v1/ready",
    );
    // A host holding a whole URL is the base as it is (its port then is not added), as in Airflow.
    expect(httpConnectionRequest(connection({ connType: "http", host: "https://api.example.com/base", port: 9 }), "jobs/1").url).toBe("https://api.example.com/base/jobs/1");
    expect(httpConnectionRequest(connection({ connType: "http", host: "api.example.com" }), "").url).toBe("http://api.example.com");
  });

  it("joinEndpoint adds one slash only when neither side has it", () => {
    expect(joinEndpoint("http://h", "x")).toBe("http://h/x");
    expect(joinEndpoint("http://h/", "x")).toBe("http://h/x");
    expect(joinEndpoint("http://h", "/x")).toBe("http://h/x");
    expect(joinEndpoint("http://h/", "/x")).toBe("http://h//x");
    expect(joinEndpoint("http://h/api", "?q=1")).toBe("http://h/api/?q=1");
    expect(joinEndpoint("http://h", "")).toBe("http://h");
  });

  it("login and password become Basic auth; extra entries become default headers (extra.headers too); session options are left out", () => {
    const c = connection({
      connType: "http",
      host: "h",
      login: "ana",
      password: "pä:ss",
      extra: { "X-Api-Key": "k-1", headers: { Accept: "application/json" }, timeout: 30, verify: false, proxies: {} },
    });
    const { headers } = httpConnectionRequest(c, "x");
    expect(headers).toEqual({
      "X-Api-Key": "k-1",
      Accept: "application/json",
      Authorization: `Basic ${Buffer.from("ana:pä:ss", "utf8").toString("base64")}`,
    });
    expect(httpConnectionRequest(connection({ connType: "http", host: "h", login: "ana" }), "x").headers.Authorization).toBe(`Basic ${Buffer.from("ana:").toString("base64")}`);
    expect(httpConnectionRequest(connection({ connType: "http", host: "h", password: "only" }), "x").headers).toEqual({});
  });

  it("a schema other than http(s), no host, or a header that is not text fails the try without retries", () => {
    const fails = (c: Connection, message: RegExp) => {
      let thrown: unknown;
      try {
        httpConnectionRequest(c, "x");
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: "BATON_TASK_FAILED", nonRetryable: true });
      expect((thrown as Error).message).toMatch(message);
    };
    fails(connection({ connectionId: "f", connType: "http", host: "h", schema: "ftp" }), /httpSensor: connection "f" has schema "ftp": httpSensor needs http or https/);
    fails(connection({ connectionId: "e", connType: "http" }), /httpSensor: connection "e" has no host/);
    fails(connection({ connType: "http", host: "h", extra: { "X-Nested": { a: 1 } } }), /extra "X-Nested" is not a header value/);
    fails(connection({ connType: "http", host: "h", extra: { headers: ["a"] } }), /extra\.headers must be an object/);
  });
});

describe("pokes through a connection", () => {
  it("sqlSensor with connId: an unknown id throws the connection's error (retried as any poke error)", async () => {
    const sensor = sqlSensor({ connId: "missing", sql: "SELECT 1" });
    await expect(sensor.poke(ctxWith({}))).rejects.toMatchObject({ code: "BATON_CONNECTION_NOT_FOUND", message: expect.stringContaining('sqlSensor: connection "missing" is not defined') });
    await expect(sensor.poke(ctxWith({}))).rejects.not.toMatchObject({ nonRetryable: true });
  });

  it("sqlSensor with connId refuses a connection of another type before connecting", async () => {
    const sensor = sqlSensor({ connId: "pg", sql: "SELECT 1" });
    await expect(sensor.poke(ctxWith({ pg: connection({ connectionId: "pg", connType: "postgres", host: "h" }) }))).rejects.toMatchObject({
      code: "BATON_TASK_FAILED",
      nonRetryable: true,
    });
  });

  it("httpSensor with httpConnId: an unknown id throws the connection's error", async () => {
    const sensor = httpSensor({ httpConnId: "api", endpoint: "health" });
    await expect(sensor.poke(ctxWith({}))).rejects.toMatchObject({ code: "BATON_CONNECTION_NOT_FOUND", message: expect.stringContaining("httpSensor: ") });
  });
});

describe("httpSensor never shows a connection's credentials", () => {
  // A host holding user:token@ is sent as Basic auth, the URL without it (see below); the token must
  // not reach the try's log nor the poke's error, which the log keeps too.
  const secret = "s3cr3t-tok";
  const lines: string[] = [];
  const logged = (connections: Record<string, Connection>): TaskContext => {
    const record = (line: string) => void lines.push(line);
    return { ...ctxWith(connections), log: { debug: record, info: record, warn: record, error: record } };
  };

  it.each([
    ["a base URL", `https://etl:${secret}@127.0.0.1:1`],
    ["a host without a scheme", `etl:${secret}@127.0.0.1:1`],
  ])("in the log line and the poke's error, for %s", async (_, host) => {
    lines.length = 0;
    const ctx = logged({ api: connection({ connectionId: "api", connType: "http", host }) });
    expect(await httpSensor({ httpConnId: "api", endpoint: "health", tolerateErrors: true }).poke!(ctx)).toBe(false);
    const failed = await Promise.resolve(httpSensor({ httpConnId: "api", endpoint: "health" }).poke!(ctx)).catch((err: Error) => err);
    expect(failed).toBeInstanceOf(Error);
    expect(lines.join("\n")).toContain("://127.0.0.1:1/health (connection \"api\") failed (tolerated)");
    expect([...lines, (failed as Error).message]).not.toContainEqual(expect.stringContaining(secret));
  });

  it("in httpConnectionRequest's errors", () => {
    const c = connection({ connectionId: "api", connType: "http", host: `ftp://etl:${secret}@files` });
    const err = (() => {
      try {
        return httpConnectionRequest(c, "x");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("does not make an http(s) URL");
    expect((err as Error).message).not.toContain(secret);
  });
});

// fetch refuses a URL holding credentials ("Request cannot be constructed from a URL that includes
// credentials") before any request: a connection whose host was https://user:token@api, or a url written so,
// failed every poke. They are sent as Basic auth instead, as Airflow's requests session sends them, and
// the URL shown in the log and errors is the one requested, without them.
describe("httpSensor sends credentials written in a URL as Basic auth, never showing them", () => {
  const secret = "t0k/en@x";
  const encoded = encodeURIComponent(secret);
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
  const seen: { url: string; authorization?: string }[] = [];
  const lines: string[] = [];
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url!, authorization: req.headers.authorization });
      res.writeHead(req.headers.authorization ? 200 : 401).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const logged = (connections: Record<string, Connection> = {}): TaskContext => {
    const record = (line: string) => void lines.push(line);
    return { ...ctxWith(connections), log: { debug: record, info: record, warn: record, error: record } };
  };
  const poke = async (sensor: ReturnType<typeof httpSensor>, ctx: TaskContext) => {
    lines.length = 0;
    seen.length = 0;
    return await Promise.resolve(sensor.poke!(ctx)).catch((err: Error) => err);
  };

  it.each([
    ["a host holding a base URL", () => `http://etl:${encoded}@127.0.0.1:${port}`],
    ["a host without a scheme", () => `etl:${encoded}@127.0.0.1:${port}`],
  ])("through a connection: %s", async (_, host) => {
    const ctx = logged({ api: connection({ connectionId: "api", connType: "http", host: host() }) });
    expect(await poke(httpSensor({ httpConnId: "api", endpoint: "health" }), ctx)).toEqual({ done: true, value: { status: 200 } });
    expect(seen).toEqual([{ url: "/health", authorization: basic("etl", secret) }]);
    expect(lines.join("\n")).toContain(`GET http://127.0.0.1:${port}/health (connection "api") answered 200`);
    expect(lines.join("\n")).not.toContain(encoded);
  });

  it("through a connection, login and password win over the URL's", async () => {
    const ctx = logged({ api: connection({ connectionId: "api", connType: "http", host: `http://etl:${encoded}@127.0.0.1:${port}`, login: "ana", password: "pw" }) });
    expect(await poke(httpSensor({ httpConnId: "api", endpoint: "x" }), ctx)).toEqual({ done: true, value: { status: 200 } });
    expect(seen).toEqual([{ url: "/x", authorization: basic("ana", "pw") }]);
  });

  it("a url given directly: sent as Basic auth, masked in the log line", async () => {
    expect(await poke(httpSensor({ url: `http://etl:${encoded}@127.0.0.1:${port}/health?api_key=k-123` }), logged())).toEqual({ done: true, value: { status: 200 } });
    expect(seen).toEqual([{ url: "/health?api_key=k-123", authorization: basic("etl", secret) }]);
    expect(lines.join("\n")).toContain(`GET http://127.0.0.1:${port}/health?api_key=*** answered 200`);
    expect(lines.join("\n")).not.toMatch(/t0k|k-123/);
  });

  it("a url given directly: the sensor's own Authorization header wins", async () => {
    expect(await poke(httpSensor({ url: `http://etl:${encoded}@127.0.0.1:${port}/h`, headers: { authorization: "Bearer mine" } }), logged())).toEqual({ done: true, value: { status: 200 } });
    expect(seen).toEqual([{ url: "/h", authorization: "Bearer mine" }]);
  });

  it("a url given directly: no credentials in the poke's error nor the tolerated warning", async () => {
    const url = `http://etl:${encoded}@127.0.0.1:1/health?token=k-123`;
    expect(await poke(httpSensor({ url, tolerateErrors: true }), logged())).toBe(false);
    const warned = lines.join("\n");
    const failed = await poke(httpSensor({ url }), logged());
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toContain("GET http://127.0.0.1:1/health?token=*** failed");
    expect(`${warned}\n${(failed as Error).message}`).not.toMatch(/t0k|k-123/);
  });

  it("a url whose only userinfo is a token (https://TOKEN@host) is masked whole where it cannot be parsed", async () => {
    const failed = await poke(httpSensor({ url: `http://tok-abcdef@127.0.0.1:99999/x` }), logged());
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).not.toContain("tok-abcdef");
  });
});

describe("option shapes are import errors (BATON_INVALID_DAG)", () => {
  it.each([
    ["sqlSensor conn and connId", () => sqlSensor({ conn: "DB_URL", connId: "dw", sql: "SELECT 1" } as never), /give conn or connId, not both/],
    ["sqlSensor neither conn nor connId", () => sqlSensor({ sql: "SELECT 1" } as never), /conn .* or connId .* is required/],
    ["sqlSensor empty connId", () => sqlSensor({ connId: "", sql: "SELECT 1" }), /connId must be a connection id/],
    ["sqlSensor connId not a string", () => sqlSensor({ connId: 7 as never, sql: "SELECT 1" }), /connId must be a connection id/],
    ["sqlSensor connId ending with a space", () => sqlSensor({ connId: "dw ", sql: "SELECT 1" }), /connId must be a connection id/],
    ["sqlSensor connId too long", () => sqlSensor({ connId: "c".repeat(251), sql: "SELECT 1" }), /connId must be a connection id/],
    ["httpSensor url and httpConnId", () => httpSensor({ url: "http://x", httpConnId: "api" } as never), /give url or httpConnId, not both/],
    ["httpSensor neither url nor httpConnId", () => httpSensor({} as never), /url .* or httpConnId .* is required/],
    ["httpSensor bad httpConnId", () => httpSensor({ httpConnId: "" }), /httpConnId must be a connection id/],
    // Ids the API can never create (core/dagLimits.ts connectionIdProblem) fail when the file loads,
    // not at each poke with a retried BATON_CONNECTION_NOT_FOUND.
    ["sqlSensor connId with a space", () => sqlSensor({ connId: "my warehouse", sql: "SELECT 1" }), /connId must be a connection id .*"my warehouse"/],
    ["sqlSensor connId with a slash", () => sqlSensor({ connId: "dw/eu", sql: "SELECT 1" }), /connId must be a connection id/],
    ["httpSensor httpConnId with a space", () => httpSensor({ httpConnId: "jobs api" }), /httpConnId must be a connection id/],
    ["httpSensor endpoint with url", () => httpSensor({ url: "http://x", endpoint: "y" } as never), /endpoint goes with httpConnId/],
    ["httpSensor endpoint not a string", () => httpSensor({ httpConnId: "api", endpoint: 5 as never }), /endpoint must be a path/],
    ["httpSensor endpoint a whole URL", () => httpSensor({ httpConnId: "api", endpoint: "https://elsewhere/x" }), /endpoint must be a path/],
  ])("%s", (_name, make, message) => {
    expect(make).toThrow(expect.objectContaining({ code: "BATON_INVALID_DAG", message: expect.stringMatching(message) }));
  });

  it("TypeScript refuses both or neither of the two ways (a JavaScript DAG file gets the import error)", () => {
    // @ts-expect-error conn and connId together
    expect(() => sqlSensor({ conn: "DB_URL", connId: "dw", sql: "SELECT 1" })).toThrow(/not both/);
    // @ts-expect-error url and httpConnId together
    expect(() => httpSensor({ url: "http://x", httpConnId: "api" })).toThrow(/not both/);
    // @ts-expect-error endpoint without httpConnId
    expect(() => httpSensor({ url: "http://x", endpoint: "y" })).toThrow(/endpoint goes with httpConnId/);
  });

  it("the valid shapes build sensors in reschedule mode", () => {
    expect(sqlSensor({ connId: "dw", sql: "SELECT 1", retries: 2 })).toMatchObject({ mode: "reschedule", retries: 2 });
    expect(httpSensor({ httpConnId: "api" }).mode).toBe("reschedule");
    // Every character the API takes in an id.
    expect(sqlSensor({ connId: "Ab0_.:@#!-", sql: "SELECT 1" }).mode).toBe("reschedule");
    expect(httpSensor({ httpConnId: "api", endpoint: (ctx) => `jobs/${ctx.runId}` })).not.toHaveProperty("endpoint");
  });
});
