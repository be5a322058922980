// Sensors reaching outside systems through stored Connections, as Airflow's SqlSensor(conn_id=…)
// and HttpSensor(http_conn_id=…, endpoint=…): connections stored encrypted through the API, read
// by the sensor at each poke (so one added or fixed between tries is used), passwords that log in
// for real and never show in the task's log. Real MariaDB, a local HTTP server.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Harness } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const SECRET_KEY = "test-key-for-connection-sensors";
const SQL_PASSWORD = "pw-Sensor-Db-7731";
const HTTP_PASSWORD = "pw-Sensor-Http-4417";

const DAGS = `
import { dag, httpSensor, sqlSensor } from "baton";

export const conn_sql = dag({ id: "conn_sql", schedule: null }, (t) => {
  t.sensor("ready", sqlSensor({ connId: "cs_dw", sql: "SELECT ready FROM cs_flag WHERE ds = ?", params: (ctx) => [ctx.conf.ds], pokeInterval: 100, timeout: "1m" }));
  // A postgres connection can never serve a sqlSensor: failed at once, its retries unused.
  t.sensor("wrong_type", sqlSensor({ connId: "cs_pg", sql: "SELECT 1", retries: 3, retryDelay: 100, pokeInterval: 100 }));
  t.sensor("missing", sqlSensor({ connId: "cs_nowhere", sql: "SELECT 1", pokeInterval: 100 }));
});

export const conn_late = dag({ id: "conn_late", schedule: null }, (t) => {
  // An unknown connection fails the poke and the try; retries apply, and read the connection afresh.
  t.sensor("late", sqlSensor({ connId: "cs_late", sql: "SELECT 1", retries: 20, retryDelay: 100, pokeInterval: 100, timeout: "1m" }));
});

export const conn_http = dag({ id: "conn_http", schedule: null }, (t) => {
  t.sensor("health", httpSensor({ httpConnId: "cs_api", endpoint: "health", pokeInterval: 100, timeout: "1m" }));
  t.sensor("job", httpSensor({ httpConnId: "cs_api", endpoint: (ctx) => "/jobs/" + ctx.conf.job, headers: { "x-team": "ops" }, pokeInterval: 100, timeout: "1m" }));
  t.sensor("bad_schema", httpSensor({ httpConnId: "cs_ftp", endpoint: "x", retries: 3, retryDelay: 100, pokeInterval: 100 }));
});
`;

describe("sensors through stored connections", () => {
  const savedKey = process.env.BATON_SECRET_KEY;
  const h = new Harness({ workers: 2 });
  const user = `baton_cs_${randomBytes(4).toString("hex")}`;
  let database: string;

  beforeAll(async () => {
    process.env.BATON_SECRET_KEY = SECRET_KEY;
    await h.start({ "connSensors.ts": DAGS });
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT DATABASE() AS name");
    database = row!.name as string;
    // A user that only this password logs in as: the sensor's success proves it used the stored one.
    await h.db.pool.query(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${SQL_PASSWORD}'`);
    await h.db.pool.query(`GRANT SELECT ON \`${database}\`.* TO '${user}'@'127.0.0.1'`);
    await h.run();
  });
  afterAll(async () => {
    await h.db?.pool.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'`).catch(() => undefined);
    await h.stop();
    if (savedKey === undefined) delete process.env.BATON_SECRET_KEY;
    else process.env.BATON_SECRET_KEY = savedKey;
  });

  const addConnection = async (body: Record<string, unknown>) => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/connections", payload: body });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
  };
  const tasks = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id as string, r]));
  };
  const output = async (dagId: string, runId: string, taskId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/xcomEntries/return_value` })).json().value;
  const pokes = async (dagId: string, runId: string, taskId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/reschedules` })).json().total_entries as number;
  /** Every try's log of a task, joined. */
  const logs = async (dagId: string, runId: string, taskId: string, tries: number) => {
    let all = "";
    for (let n = 1; n <= tries; n++) all += (await h.taskLog(dagId, runId, taskId, n)) ?? "";
    return all;
  };

  it("sqlSensor with connId logs in with the stored (encrypted) password at each poke; another conn_type fails without retries", async () => {
    await h.db.pool.query("CREATE TABLE cs_flag (ds VARCHAR(10) PRIMARY KEY, ready INT NOT NULL)");
    await h.db.pool.query("INSERT INTO cs_flag VALUES ('2026-03-01', 0)");
    await addConnection({
      connection_id: "cs_dw",
      conn_type: "mysql",
      host: "127.0.0.1",
      port: 3306,
      login: user,
      password: SQL_PASSWORD,
      schema: database,
      extra: JSON.stringify({ charset: "utf8mb4" }),
    });
    await addConnection({ connection_id: "cs_pg", conn_type: "postgres", host: "127.0.0.1", port: 5432, login: "etl", password: "pg-pass-9876" });
    const [[stored]] = await h.db.pool.query<RowDataPacket[]>("SELECT password FROM connection WHERE connection_id = 'cs_dw'");
    expect(String(stored!.password)).not.toContain(SQL_PASSWORD);

    const runId = await h.trigger("conn_sql", { conf: { ds: "2026-03-01" } });
    await waitFor("two unsuccessful pokes", async () => (await pokes("conn_sql", runId, "ready")) >= 2);
    await h.db.pool.query("UPDATE cs_flag SET ready = 5 WHERE ds = '2026-03-01'");
    expect(await h.runEnded("conn_sql", runId)).toBe("failed"); // wrong_type fails
    const t = await tasks("conn_sql", runId);
    expect(t.ready).toMatchObject({ state: "success", try_number: 1 });
    expect(await output("conn_sql", runId, "ready")).toBe(5);
    const log = await logs("conn_sql", runId, "ready", 1);
    expect(log).toContain(`on connection "cs_dw" (${user}@127.0.0.1:3306/${database})`);
    expect(log).not.toContain(SQL_PASSWORD);

    expect(t.wrong_type).toMatchObject({ state: "failed", try_number: 1 });
    const error = JSON.parse(t.wrong_type.error);
    expect(error).toMatchObject({ name: "FailError", code: "BATON_TASK_FAILED", nonRetryable: true });
    expect(error.message).toBe('sqlSensor: connection "cs_pg" has conn_type "postgres": sqlSensor needs mysql or mariadb');
    // An unknown id is an error like any other in a poke: retryable (none configured here), with the connection's code.
    expect(t.missing).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(t.missing.error)).toMatchObject({ code: "BATON_CONNECTION_NOT_FOUND", nonRetryable: false });
    expect(JSON.parse(t.missing.error).message).toContain('sqlSensor: connection "cs_nowhere" is not defined');
  });

  it("sqlSensor with an unknown connId fails the try with BATON_CONNECTION_NOT_FOUND; a retry after the connection is added succeeds", async () => {
    const runId = await h.trigger("conn_late");
    await waitFor("a failed try", async () => ((await tasks("conn_late", runId)).late?.try_number ?? 0) >= 2, 20_000);
    const firstLog = await h.taskLog("conn_late", runId, "late", 1);
    expect(firstLog).toContain('sqlSensor: connection "cs_late" is not defined');
    const [events] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT to_state FROM event_log WHERE kind = 'task' AND dag_id = 'conn_late' AND run_id = ? AND task_id = 'late' AND try_number = 1",
      [runId],
    );
    expect(events.map((e) => e.to_state)).toContain("up_for_retry");
    await addConnection({ connection_id: "cs_late", conn_type: "mariadb", host: "127.0.0.1", login: user, password: SQL_PASSWORD });
    expect(await h.runEnded("conn_late", runId)).toBe("success");
    const t = await tasks("conn_late", runId);
    expect(t.late.state).toBe("success");
    expect(t.late.try_number).toBeGreaterThanOrEqual(2);
    expect(await output("conn_late", runId, "late")).toBe(1);
  });

  it("httpSensor with httpConnId: base URL from the connection, endpoint joined, Basic auth and extra headers sent, sensor headers win", async () => {
    const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
    let health = 0;
    const expectedAuth = `Basic ${Buffer.from(`ana:${HTTP_PASSWORD}`).toString("base64")}`;
    const server: Server = createServer((req, res) => {
      seen.push({ url: req.url!, headers: req.headers });
      if (req.headers.authorization !== expectedAuth) return void res.writeHead(401).end();
      if (req.url === "/health") {
        health++;
        return void res.writeHead(health >= 3 ? 200 : 404).end(); // 404: "not yet" (waitOnStatus's default)
      }
      if (req.url === "/jobs/7") return void res.writeHead(req.headers["x-team"] === "ops" ? 200 : 409).end();
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      await addConnection({
        connection_id: "cs_api",
        conn_type: "http",
        host: "127.0.0.1",
        port,
        login: "ana",
        password: HTTP_PASSWORD,
        extra: JSON.stringify({ "X-Team": "data", headers: { "X-Source": "baton" }, timeout: 30 }),
      });
      await addConnection({ connection_id: "cs_ftp", conn_type: "ftp", host: "127.0.0.1", schema: "ftp" });
      const runId = await h.trigger("conn_http", { conf: { job: 7 } });
      expect(await h.runEnded("conn_http", runId)).toBe("failed"); // bad_schema fails
      const t = await tasks("conn_http", runId);
      expect(t.health.state).toBe("success");
      expect(t.job.state).toBe("success");
      expect(await output("conn_http", runId, "health")).toEqual({ status: 200 });
      expect(health).toBeGreaterThanOrEqual(3);
      const healthCalls = seen.filter((s) => s.url === "/health");
      for (const call of healthCalls) expect(call.headers).toMatchObject({ authorization: expectedAuth, "x-team": "data", "x-source": "baton" });
      expect(healthCalls.every((c) => c.headers.timeout === undefined)).toBe(true);
      expect(seen.filter((s) => s.url === "/jobs/7").at(-1)!.headers["x-team"]).toBe("ops");

      const log = await logs("conn_http", runId, "health", 1);
      expect(log).toContain(`GET http://127.0.0.1:${port}/health (connection "cs_api") answered 200`);
      expect(log).not.toContain(HTTP_PASSWORD);

      expect(t.bad_schema).toMatchObject({ state: "failed", try_number: 1 });
      expect(JSON.parse(t.bad_schema.error)).toMatchObject({
        code: "BATON_TASK_FAILED",
        nonRetryable: true,
        message: 'httpSensor: connection "cs_ftp" has schema "ftp": httpSensor needs http or https',
      });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
