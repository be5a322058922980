import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  connectionUrl,
  dateTimeSensor,
  expandGlob,
  externalTaskSensor,
  fileSensor,
  httpSensor,
  isTruthyCell,
  judgeExternal,
  matchGlob,
  mysqlOptions,
  redactUrl,
  segmentToRegExp,
  sqlSensor,
  timeDeltaSensor,
  timeDeltaTarget,
} from "../../sdk/sensors.ts";
import type { TaskContext } from "../../sdk/types.ts";

function ctxAt(logicalDate: string | null, intervalEnd: string | null = null): TaskContext {
  const silent = () => undefined;
  return {
    dagId: "d",
    runId: "r",
    taskId: "t",
    tryNumber: 1,
    maxTries: 0,
    logicalDate: logicalDate ? new Date(logicalDate) : null,
    dataInterval: { start: null, end: intervalEnd ? new Date(intervalEnd) : null },
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
      throw new Error(`no connection ${id}`);
    },
  } as TaskContext;
}

describe("glob matching", () => {
  it.each([
    ["*.csv", "a.csv", true],
    ["*.csv", "a.csv.tmp", false],
    ["*.csv", ".hidden.csv", false],
    [".*.csv", ".hidden.csv", true],
    ["data_??.csv", "data_01.csv", true],
    ["data_??.csv", "data_1.csv", false],
    ["part-[0-9].parquet", "part-7.parquet", true],
    ["part-[!0-9].parquet", "part-x.parquet", true],
    ["part-[!0-9].parquet", "part-7.parquet", false],
    ["a+b(1).txt", "a+b(1).txt", true],
    ["a.txt", "abtxt", false],
    ["[unclosed", "[unclosed", true],
  ])("segment %s vs %s → %s", (pattern, name, expected) => {
    expect(segmentToRegExp(pattern).test(name)).toBe(expected);
  });

  it.each([
    ["/data/in/*.csv", "/data/in/a.csv", true],
    ["/data/in/*.csv", "/data/in/sub/a.csv", false],
    ["/data/**/*.csv", "/data/a.csv", true],
    ["/data/**/*.csv", "/data/x/y/z/a.csv", true],
    ["/data/**/*.csv", "/data/.cache/a.csv", false],
    ["/data/**", "/data/x/y", true],
    ["/data/*/2026-*/ok", "/data/eu/2026-01-01/ok", true],
    ["/data/*/2026-*/ok", "/data/eu/2025-01-01/ok", false],
    ["/data/in/a.csv", "/data/in/a.csv", true],
  ])("path %s vs %s → %s", (pattern, file, expected) => {
    expect(matchGlob(pattern, file)).toBe(expected);
  });

  describe("expandGlob on a real folder", () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(path.join(os.tmpdir(), "baton-glob-"));
      for (const f of ["in/a.csv", "in/b.csv", "in/.partial.csv", "in/c.txt", "in/2026/01/d.csv", "in/2026/02/e.csv", "in/.cache/x.csv", "out/z.csv"]) {
        await mkdir(path.dirname(path.join(root, f)), { recursive: true });
        await writeFile(path.join(root, f), "x");
      }
    });
    afterAll(() => rm(root, { recursive: true, force: true }));

    it("matches one directory level with *", async () => {
      expect(await expandGlob(`${root}/in/*.csv`)).toEqual([`${root}/in/a.csv`, `${root}/in/b.csv`]);
    });
    it("descends with ** (not into hidden folders) and deduplicates", async () => {
      expect(await expandGlob(`${root}/in/**/*.csv`)).toEqual([
        `${root}/in/2026/01/d.csv`,
        `${root}/in/2026/02/e.csv`,
        `${root}/in/a.csv`,
        `${root}/in/b.csv`,
      ]);
      expect(await expandGlob(`${root}/**/**/z.csv`)).toEqual([`${root}/out/z.csv`]);
    });
    it("a trailing ** yields what matchGlob matches: the files below too, not only the folders", async () => {
      const found = await expandGlob(`${root}/in/**`);
      expect(found).toEqual(
        expect.arrayContaining([`${root}/in`, `${root}/in/2026`, `${root}/in/2026/01`, `${root}/in/2026/01/d.csv`, `${root}/in/a.csv`, `${root}/in/c.txt`]),
      );
      expect(found.filter((p) => p.includes("/."))).toEqual([]);
      for (const p of found) expect(matchGlob(`${root}/in/**`, p)).toBe(true);
      // So a sensor waiting for any non-empty file below a folder holds once there is one.
      await expect(fileSensor({ path: `${root}/in/**`, minSize: 1 }).poke(ctxAt(null))).resolves.toMatchObject({ done: true });
      await expect(fileSensor({ path: `${root}/out/**`, minSize: 2 }).poke(ctxAt(null))).resolves.toBe(false);
    });
    it("a trailing slash matches folders only, as in a shell or Python's glob", async () => {
      expect(await expandGlob(`${root}/in/*/`)).toEqual([`${root}/in/2026`]);
      expect(await expandGlob(`${root}/in/a.csv/`)).toEqual([]);
      expect(await expandGlob(`${root}/in/2026/`)).toEqual([`${root}/in/2026`]);
      expect(await expandGlob(`${root}/in/**/`)).toEqual([`${root}/in`, `${root}/in/2026`, `${root}/in/2026/01`, `${root}/in/2026/02`]);
      // A sensor waiting for a partition folder does not take a stray file for it.
      await expect(fileSensor({ path: `${root}/out/*/` }).poke(ctxAt(null))).resolves.toBe(false);
    });
    it("takes a plain path, a relative pattern, and a folder that does not exist", async () => {
      expect(await expandGlob(`${root}/in/c.txt`)).toEqual([`${root}/in/c.txt`]);
      expect(await expandGlob("in/2026/*/d.csv", root)).toEqual([`${root}/in/2026/01/d.csv`]);
      expect(await expandGlob(`${root}/nope/*.csv`)).toEqual([]);
      expect(await expandGlob(`${root}/nope.csv`)).toEqual([]);
    });
    it("fileSensor: matches, honours minSize, outputs the paths", async () => {
      const ctx = ctxAt(null);
      await expect(fileSensor({ path: `${root}/in/*.csv` }).poke(ctx)).resolves.toEqual({ done: true, value: [`${root}/in/a.csv`, `${root}/in/b.csv`] });
      await expect(fileSensor({ path: `${root}/in/*.csv`, minSize: 2 }).poke(ctx)).resolves.toBe(false);
      await expect(fileSensor({ path: `${root}/in`, minSize: 1 }).poke(ctx)).resolves.toBe(false); // a folder is not a file
      await expect(fileSensor({ path: (c) => `${root}/in/${c.conf.name ?? "a"}.csv` }).poke(ctx)).resolves.toMatchObject({ done: true });
    });
  });
});

describe("time sensors (fixed clock)", () => {
  const now = (iso: string) => () => new Date(iso);

  it("timeDeltaSensor waits until data interval end + delta, falling back to the logical date", async () => {
    const ctx = ctxAt("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z");
    expect(timeDeltaTarget(ctx, 2 * 3_600_000)?.toISOString()).toBe("2026-03-02T02:00:00.000Z");
    expect(timeDeltaTarget(ctxAt("2026-03-01T00:00:00Z"), 0)?.toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(timeDeltaTarget(ctxAt(null), 0)).toBeNull();
    await expect(timeDeltaSensor({ delta: "2h", now: now("2026-03-02T01:59:59Z") }).poke(ctx)).resolves.toBe(false);
    await expect(timeDeltaSensor({ delta: "2h", now: now("2026-03-02T02:00:00Z") }).poke(ctx)).resolves.toEqual({
      done: true,
      value: "2026-03-02T02:00:00.000Z",
    });
  });

  it("timeDeltaSensor defaults to reschedule mode and a timeout past its delta", () => {
    const s = timeDeltaSensor({ delta: "10d" });
    expect(s.mode).toBe("reschedule");
    expect(s.timeout).toBe(17 * 86_400_000);
    expect(timeDeltaSensor({ delta: "1h", timeout: "2h", mode: "poke" })).toMatchObject({ timeout: "2h", mode: "poke" });
  });

  it("dateTimeSensor takes a date, an ISO string or a function of the context", async () => {
    const ctx = ctxAt("2026-03-01T00:00:00Z");
    await expect(dateTimeSensor({ targetTime: "2026-03-01T12:00:00Z", now: now("2026-03-01T11:00:00Z") }).poke(ctx)).resolves.toBe(false);
    await expect(dateTimeSensor({ targetTime: new Date("2026-03-01T12:00:00Z"), now: now("2026-03-01T12:00:00Z") }).poke(ctx)).resolves.toMatchObject({ done: true });
    const fromCtx = dateTimeSensor({ targetTime: (c) => new Date(c.logicalDate!.getTime() + 3_600_000), now: now("2026-03-01T01:00:00.001Z") });
    await expect(fromCtx.poke(ctx)).resolves.toEqual({ done: true, value: "2026-03-01T01:00:00.000Z" });
    await expect(dateTimeSensor({ targetTime: "2026-03-01T13:00:00+01:00", now: now("2026-03-01T12:00:00Z") }).poke(ctx)).resolves.toMatchObject({ done: true });
    // A function's string answer has the same rule, checked when it pokes: failed, not waited for at some worker's local noon.
    await expect(dateTimeSensor({ targetTime: () => "2026-03-01T12:00:00", now: now("2026-03-01T11:00:00Z") }).poke(ctx)).rejects.toThrow(/offset/);
  });
});

describe("pure helpers", () => {
  it("isTruthyCell follows Airflow's SqlSensor rule", () => {
    for (const v of [null, undefined, 0, 0n, "0", "", false, "0.00", " 0 "]) expect(isTruthyCell(v)).toBe(false);
    for (const v of [1, -1, "1", "yes", "0.5", "false", true, new Date(0), 5n]) expect(isTruthyCell(v)).toBe(true);
    // mysql2 gives BINARY, VARBINARY, BLOB and BIT cells as Buffers: judged as the text the sensor outputs.
    // A BIT(1) column's 0 is a zero byte.
    for (const v of [Buffer.from(""), Buffer.from("0"), Buffer.from([0])]) expect(isTruthyCell(v)).toBe(false);
    for (const v of [Buffer.from("ready"), Buffer.from("1"), Buffer.from([1])]) expect(isTruthyCell(v)).toBe(true);
  });

  it("judgeExternal: allowed, failed fast, or wait", () => {
    expect(judgeExternal([], ["success"], ["failed"])).toBe("wait");
    expect(judgeExternal(["running"], ["success"], ["failed"])).toBe("wait");
    expect(judgeExternal(["success"], ["success"], [])).toBe("done");
    expect(judgeExternal(["success", "skipped"], ["success", "skipped"], [])).toBe("done");
    expect(judgeExternal(["success", "failed"], ["success"], ["failed"])).toBe("failed");
    expect(judgeExternal(["failed"], ["success"], [])).toBe("wait");
  });

  it("connectionUrl: a URL as is, or an environment variable's value", () => {
    expect(connectionUrl("mysql://u@h/db")).toBe("mysql://u@h/db");
    expect(connectionUrl("WAREHOUSE_URL", { WAREHOUSE_URL: "mysql://w@h/dw" })).toBe("mysql://w@h/dw");
    expect(() => connectionUrl("WAREHOUSE_URL", {})).toThrow(/WAREHOUSE_URL is not set/);
  });

  it("mysqlOptions reads a URL as Baton reads BATON_DATABASE_URL", () => {
    expect(mysqlOptions("mysql://u:p%40ss@db.internal:3307/warehouse")).toMatchObject({ host: "db.internal", port: 3307, user: "u", password: "p@ss", database: "warehouse", timezone: "Z" });
    expect(mysqlOptions("mariadb://127.0.0.1")).toMatchObject({ host: "127.0.0.1", port: 3306, user: "root", password: "" });
    expect(mysqlOptions("mysql://127.0.0.1")).not.toHaveProperty("database");
    expect(() => mysqlOptions("postgres://x:secret@h/db")).toThrow("not a mysql:// URL: postgres://x:***@h/db");
    expect(mysqlOptions("mysql://u@127.0.0.1/dw?socket=%2Ftmp%2Fdw.sock")).toMatchObject({ socketPath: "/tmp/dw.sock", database: "dw" });
    expect(mysqlOptions("mysql://u@127.0.0.1/dw")).not.toHaveProperty("socketPath");
  });

  it("mysqlOptions ignores query parameters other than socket, as sensor URLs always did", () => {
    const plain = mysqlOptions("mysql://u:p@db.internal:3307/dw");
    expect(mysqlOptions("mysql://u:p@db.internal:3307/dw?ssl=true&charset=utf8mb4")).toEqual(plain);
    expect(mysqlOptions("mysql://u:p@db.internal:3307/dw?flag&x=%E0%A4%A")).toEqual(plain);
    expect(mysqlOptions("mysql://u@127.0.0.1/dw?ssl=true&socket=%2Ftmp%2Fdw.sock&charset=utf8mb4")).toMatchObject({ socketPath: "/tmp/dw.sock", database: "dw" });
    // socket= itself is still checked.
    expect(() => mysqlOptions("mysql://u:secret@h/dw?socket=")).toThrow("the mysql:// URL has an empty socket parameter");
    expect(() => mysqlOptions("mysql://u:secret@h/dw?socket=/a.sock&socket=/b.sock")).toThrow("the mysql:// URL gives socket twice");
  });

  it("mysqlOptions keeps localhost on another port on TCP", () => {
    expect(mysqlOptions("mysql://u@localhost:3307/appdb")).not.toHaveProperty("socketPath");
    expect(mysqlOptions("mysql://u@localhost:3307/appdb")).toMatchObject({ host: "localhost", port: 3307, database: "appdb" });
    expect(mysqlOptions("mysql://u@localhost:3307/appdb?socket=/tmp/a.sock").socketPath).toBe("/tmp/a.sock");
  });

  it("redactUrl hides passwords", () => {
    expect(redactUrl("mysql://user:s3cret@db:3306/x")).toBe("mysql://user:***@db:3306/x");
    expect(redactUrl("mysql://root@127.0.0.1:3306/baton")).toBe("mysql://root@127.0.0.1:3306/baton");
    expect(redactUrl("mysql://u:s3cret@localhost/x?socket=/run/mysqld/mysqld.sock&password=p")).toBe("mysql://u:***@localhost/x?socket=/run/mysqld/mysqld.sock&password=***");
    // An unencoded "/" or "@" in the password made the URL unparsable, and the error quoted it whole.
    expect(redactUrl("mysql://root:p/ss@db/x")).toBe("mysql://root:***@db/x");
    expect(redactUrl("mysql://root:p@ss@db/x")).toBe("mysql://root:***@db/x");
    expect(() => mysqlOptions("mysql://root:pa/ssword@db/x")).toThrow("not a valid mysql:// URL: mysql://root:***@db/x");
  });
});

describe("bad options are definition-time errors (BATON_INVALID_DAG)", () => {
  it.each([
    ["fileSensor without path", () => fileSensor({} as never)],
    ["fileSensor negative minSize", () => fileSensor({ path: "/x", minSize: -1 })],
    ["httpSensor bad url", () => httpSensor({ url: "ftp://x" })],
    ["httpSensor bad status", () => httpSensor({ url: "http://x", expectedStatus: 99 })],
    ["httpSensor waitOnStatus not a code", () => httpSensor({ url: "http://x", waitOnStatus: 4.5 })],
    ["httpSensor waitOnStatus out of range", () => httpSensor({ url: "http://x", waitOnStatus: [404, 600] })],
    // Statuses under 400 not in expectedStatus already mean "not yet": listing one would mean nothing.
    ["httpSensor waitOnStatus not an error status", () => httpSensor({ url: "http://x", waitOnStatus: 202 })],
    // @ts-expect-error not a number (a JavaScript DAG file may still pass it)
    ["httpSensor waitOnStatus a string", () => httpSensor({ url: "http://x", waitOnStatus: "404" })],
    ["httpSensor waitOnStatus also expected", () => httpSensor({ url: "http://x", expectedStatus: [200, 409], waitOnStatus: [404, 409] })],
    // A predicate decides from every response, whatever its status: waitOnStatus would be ignored.
    ["httpSensor waitOnStatus with a predicate", () => httpSensor({ url: "http://x", predicate: () => true, waitOnStatus: 404 })],
    // fetch refuses a body on GET/HEAD at every poke, which tolerateErrors would take for a network error and wait on.
    ["httpSensor body on GET", () => httpSensor({ url: "http://x", body: "{}", tolerateErrors: true })],
    ["httpSensor body on HEAD", () => httpSensor({ url: "http://x", method: "head", body: () => "{}" })],
    // @ts-expect-error not a Duration (a JavaScript DAG file may still pass it)
    ["httpSensor bad requestTimeout", () => httpSensor({ url: "http://x", requestTimeout: "soon" })],
    ["sqlSensor bad conn", () => sqlSensor({ conn: "postgres://x", sql: "select 1" })],
    ["sqlSensor empty sql", () => sqlSensor({ conn: "DB_URL", sql: " " })],
    ["externalTaskSensor bad state", () => externalTaskSensor({ externalDagId: "a", allowedStates: ["done"] })],
    ["externalTaskSensor task state for a run", () => externalTaskSensor({ externalDagId: "a", allowedStates: ["skipped"] })],
    ["externalTaskSensor overlap", () => externalTaskSensor({ externalDagId: "a", externalTaskId: "t", allowedStates: ["success"], failedStates: ["success"] })],
    ["externalTaskSensor both dates", () => externalTaskSensor({ externalDagId: "a", logicalDate: () => new Date(), executionDelta: "1d" })],
    // @ts-expect-error not a Duration (a JavaScript DAG file may still pass it)
    ["timeDeltaSensor bad delta", () => timeDeltaSensor({ delta: "tomorrow" })],
    ["dateTimeSensor bad date", () => dateTimeSensor({ targetTime: "not a date" })],
    // Without an offset, JavaScript reads these in the worker's local time zone (or UTC for a bare date): each worker would wait for another instant.
    ["dateTimeSensor date-time without an offset", () => dateTimeSensor({ targetTime: "2026-06-01T12:00:00" })],
    ["dateTimeSensor date without a time", () => dateTimeSensor({ targetTime: "2026-06-01" })],
  ])("%s", (_name, make) => {
    expect(make).toThrow(expect.objectContaining({ code: "BATON_INVALID_DAG" }));
  });

  it("sensor options pass through; built-ins default to reschedule mode", () => {
    const s = fileSensor({ path: "/x", pokeInterval: "30s", timeout: "1h", softFail: true, retries: 2 });
    expect(s).toMatchObject({ pokeInterval: "30s", timeout: "1h", softFail: true, retries: 2, mode: "reschedule" });
    expect(typeof s.poke).toBe("function");
    expect(s).not.toHaveProperty("path");
    expect(externalTaskSensor({ externalDagId: "a", mode: "poke" }).mode).toBe("poke");
  });
});

// Airflow's HttpSensor keeps poking only on 404 (response_error_codes_allowlist); any other error status
// raises, failing the try (retries apply). Baton's kept waiting on every status but the expected one,
// so a 401 from a revoked token or a 500 waited until the sensor's timeout.
describe("httpSensor on error statuses (Airflow's response_error_codes_allowlist)", () => {
  const lines: string[] = [];
  let server: Server;
  let base = "";
  beforeAll(async () => {
    // /status/N answers N.
    server = createServer((req, res) => void res.writeHead(Number.parseInt(req.url!.split("/")[2]!, 10)).end("oops"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const poke = async (sensor: ReturnType<typeof httpSensor>) => {
    lines.length = 0;
    const record = (line: string) => void lines.push(line);
    const ctx = { ...ctxAt(null), log: { debug: record, info: record, warn: record, error: record } };
    return await Promise.resolve(sensor.poke!(ctx)).catch((err: Error) => err);
  };

  it("a 503 fails the poke, naming method, masked URL and status", async () => {
    const failed = await poke(httpSensor({ url: `${base}/status/503?token=k-123` }));
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toBe(`httpSensor: GET ${base}/status/503?token=*** answered 503 (not 200; only 404 means not yet: waitOnStatus)`);
    // A plain error: the try fails and the task's retries apply (not a FailError).
    expect((failed as Error & { code?: string }).code).toBeUndefined();
  });

  it.each([401, 403, 500])("a %i fails the poke too", async (status) => {
    expect(await poke(httpSensor({ url: `${base}/status/${status}`, method: "POST", expectedStatus: [200, 201] }))).toMatchObject({
      message: `httpSensor: POST ${base}/status/${status} answered ${status} (not 200 or 201; only 404 means not yet: waitOnStatus)`,
    });
  });

  it("a 404 waits, as do 2xx/3xx statuses not expected", async () => {
    expect(await poke(httpSensor({ url: `${base}/status/404` }))).toBe(false);
    expect(lines.join("\n")).toContain(`GET ${base}/status/404 answered 404 (waiting for 200)`);
    expect(await poke(httpSensor({ url: `${base}/status/202` }))).toBe(false);
    expect(await poke(httpSensor({ url: `${base}/status/304` }))).toBe(false);
  });

  it("a status in waitOnStatus waits; a 404 not in it fails", async () => {
    expect(await poke(httpSensor({ url: `${base}/status/503`, waitOnStatus: [404, 503] }))).toBe(false);
    expect(await poke(httpSensor({ url: `${base}/status/429`, waitOnStatus: 429 }))).toBe(false);
    expect(await poke(httpSensor({ url: `${base}/status/404`, waitOnStatus: 503 }))).toMatchObject({
      message: `httpSensor: GET ${base}/status/404 answered 404 (not 200; only 503 means not yet: waitOnStatus)`,
    });
    expect(await poke(httpSensor({ url: `${base}/status/404`, waitOnStatus: [] }))).toMatchObject({
      message: `httpSensor: GET ${base}/status/404 answered 404 (not 200; no error status means not yet: waitOnStatus)`,
    });
    expect(await poke(httpSensor({ url: `${base}/status/500`, waitOnStatus: [404, 503] }))).toMatchObject({
      message: `httpSensor: GET ${base}/status/500 answered 500 (not 200; only 404 or 503 mean not yet: waitOnStatus)`,
    });
  });

  it("an expected error status ends the sensor, even the default waitOnStatus's 404 (waiting for a resource to go)", async () => {
    expect(await poke(httpSensor({ url: `${base}/status/404`, expectedStatus: 404 }))).toEqual({ done: true, value: { status: 404 } });
    expect(await poke(httpSensor({ url: `${base}/status/410`, expectedStatus: [404, 410] }))).toEqual({ done: true, value: { status: 410 } });
  });

  it("tolerateErrors: true waits on any error status, with a warning", async () => {
    expect(await poke(httpSensor({ url: `${base}/status/503`, tolerateErrors: true }))).toBe(false);
    expect(lines.join("\n")).toContain(`GET ${base}/status/503 answered 503 (tolerated; waiting for 200)`);
    expect(await poke(httpSensor({ url: `${base}/status/401`, tolerateErrors: true, waitOnStatus: [] }))).toBe(false);
  });

  it("a predicate still decides from every response, whatever its status", async () => {
    expect(await poke(httpSensor({ url: `${base}/status/503`, predicate: (res) => res.status === 503 }))).toEqual({ done: true, value: { status: 503 } });
    expect(await poke(httpSensor({ url: `${base}/status/500`, predicate: () => false }))).toBe(false);
  });
});
