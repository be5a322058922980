import os from "node:os";
import path from "node:path";
import { isLoopbackHost, loadConfig, trustProxyWarning } from "../../core/config.ts";
import { BatonError } from "../../core/errors.ts";
import { thrown } from "../helpers/expect.ts";


describe("BATON_TRUST_PROXY (whose X-Forwarded-For the API believes)", () => {
  it.each([
    ["", false],
    ["false", false],
    ["off", false],
    ["true", true],
    ["1", 1],
    ["2", 2],
    ["loopback", ["loopback"]],
    ["127.0.0.1, ::1, fd00::/8, uniquelocal, linklocal", ["127.0.0.1", "::1", "fd00::/8", "uniquelocal", "linklocal"]],
  ] as const)("%p reads as %p", (raw, value) => {
    expect(loadConfig({ BATON_TRUST_PROXY: raw }).trustProxy).toEqual(value);
  });

  it.each(["proxy.internal", "10.0.0.0/33", "::1/129", "1.2.3", "-1", "0x10", "10.0.0.1,,"])("refuses %p with one BATON_CONFIG_INVALID line", (raw) => {
    const err = thrown(() => loadConfig({ BATON_TRUST_PROXY: raw }));
    expect(err).toBeInstanceOf(BatonError);
    expect((err as BatonError).code).toBe("BATON_CONFIG_INVALID");
    expect((err as BatonError).message).toContain("BATON_TRUST_PROXY");
  });
});

// true and a hop count believe whoever connects: a client reaching the API without the proxy picks the address
// the refusal throttle and the rate limit count (test/integration/apiTrustProxy.test.ts); the API says so at start.
describe("trustProxyWarning", () => {
  it.each([
    [true, "BATON_TRUST_PROXY=true believes X-Forwarded-For from any sender, and its leftmost address, which every client writes"],
    [1, "BATON_TRUST_PROXY=1 believes X-Forwarded-For from the 1 nearest sender(s), whoever they are"],
  ] as const)("warns for %p", (trust, start) => {
    const warning = trustProxyWarning(trust);
    expect(warning?.startsWith(start)).toBe(true);
    expect(warning).toContain("list the proxies' addresses or CIDR ranges instead");
  });
  it.each([[false], [["10.0.0.0/8"]]] as const)("is quiet for %p", (trust) => {
    expect(trustProxyWarning(trust as boolean | string[])).toBeUndefined();
  });
});

describe("loadConfig", () => {
  describe("defaults (empty environment)", () => {
    const config = loadConfig({});

    it.each([
      ["databaseUrl", "mysql://root@localhost:3306/baton"],
      ["port", 8080],
      ["host", "127.0.0.1"],
      ["workers", 2],
      ["logLevel", "info"],
      ["dagsPausedAtCreation", false],
      ["dagParseTimeoutMs", 30_000],
      ["dagRescanIntervalMs", 5_000],
      ["dagReparseIntervalMs", 300_000],
      ["schedulerIntervalMs", 1_000],
      ["shutdownGraceMs", 8_000],
      ["taskHeartbeatTimeoutMs", 30_000],
      ["backfillMaxRuns", 100_000],
      ["dbStatementTimeoutMs", 30_000],
      ["healthTimeoutMs", 3_000],
      ["trustProxy", false],
      ["taskLogMaxBytes", 100 * 1024 * 1024],
    ] as const)("%s = %p", (key, value) => {
      expect(config[key]).toBe(value);
    });

    it("resolves folders to absolute paths", () => {
      expect(config.dagsFolder).toBe(path.resolve("dags"));
      expect(config.logsFolder).toBe(path.resolve("logs"));
      expect(path.isAbsolute(config.cacheFolder)).toBe(true);
      expect(config.cacheFolder.startsWith(os.tmpdir())).toBe(true);
      expect(path.basename(config.cacheFolder)).toMatch(/^baton-cache-/);
    });

    it("treats empty strings as unset", () => {
      const env = Object.fromEntries(
        [
          "BATON_DATABASE_URL",
          "BATON_DAGS_FOLDER",
          "BATON_PORT",
          "BATON_HOST",
          "BATON_WORKERS",
          "BATON_LOG_LEVEL",
          "BATON_LOGS_FOLDER",
          "BATON_CACHE_FOLDER",
          "BATON_DAGS_PAUSED_AT_CREATION",
          "BATON_DAG_PARSE_TIMEOUT",
          "BATON_DAG_RESCAN_INTERVAL",
          "BATON_DAG_REPARSE_INTERVAL",
          "BATON_SCHEDULER_INTERVAL",
          "BATON_SHUTDOWN_GRACE",
          "BATON_TASK_KILL_GRACE",
          "BATON_TASK_HEARTBEAT_TIMEOUT",
          "BATON_XCOM_MAX_BYTES",
          "BATON_BACKFILL_MAX_RUNS",
          "BATON_DB_STATEMENT_TIMEOUT",
          "BATON_HEALTH_TIMEOUT",
          "BATON_TASK_LOG_MAX_BYTES",
        ].map((k) => [k, ""]),
      );
      expect(loadConfig(env)).toEqual(config);
    });

    it("returns a fresh object each time", () => {
      const a = loadConfig({});
      a.port = 1;
      expect(loadConfig({}).port).toBe(8080);
    });
  });

  describe("environment", () => {
    it("reads every variable", () => {
      const config = loadConfig({
        BATON_DATABASE_URL: "mysql://u:p@db.example:3307/other",
        BATON_DAGS_FOLDER: "/srv/dags",
        BATON_PORT: "9090",
        BATON_HOST: "0.0.0.0",
        BATON_WORKERS: "8",
        BATON_LOG_LEVEL: "debug",
        BATON_LOGS_FOLDER: "/var/log/baton",
        BATON_CACHE_FOLDER: "/var/cache/baton",
        BATON_DAGS_PAUSED_AT_CREATION: "true",
        BATON_DAG_PARSE_TIMEOUT: "1m",
        BATON_DAG_RESCAN_INTERVAL: "250ms",
        BATON_DAG_REPARSE_INTERVAL: "90s",
        BATON_SCHEDULER_INTERVAL: "2s",
        BATON_SHUTDOWN_GRACE: "1h30m",
        BATON_TASK_KILL_GRACE: "3s",
        BATON_XCOM_MAX_BYTES: "2048",
        BATON_TASK_HEARTBEAT_TIMEOUT: "2m",
        BATON_BACKFILL_MAX_RUNS: "5000",
        BATON_LOG_FORMAT: "json",
        BATON_AUTH: "off",
        BATON_ADMIN_TOKEN: "automation-token-123456",
        BATON_ADMIN_TOKEN_FILE: "/etc/baton/admin-token",
        BATON_API_RATE_LIMIT: "50/10s",
        BATON_API_BODY_LIMIT: "4096",
        BATON_API_REQUEST_TIMEOUT: "5s",
        BATON_CORS_ORIGINS: "https://a.example, https://b.example",
        BATON_METRICS_PORT: "9464",
        BATON_METRICS_HOST: "10.0.0.2",
        BATON_DB_TRACE: "on",
        BATON_DB_STATEMENT_TIMEOUT: "45s",
        BATON_HEALTH_TIMEOUT: "2s",
        BATON_TRUST_PROXY: "10.0.0.0/8, 192.168.1.7",
        BATON_TASK_LOG_MAX_BYTES: "1048576",
        BATON_DB_PREPARED_STATEMENTS: "false",
      });
      expect(config).toEqual({
        databaseUrl: "mysql://u:p@db.example:3307/other",
        dagsFolder: "/srv/dags",
        port: 9090,
        host: "0.0.0.0",
        workers: 8,
        logLevel: "debug",
        logsFolder: "/var/log/baton",
        cacheFolder: "/var/cache/baton",
        dagsPausedAtCreation: true,
        dagParseTimeoutMs: 60_000,
        dagRescanIntervalMs: 250,
        dagReparseIntervalMs: 90_000,
        schedulerIntervalMs: 2_000,
        shutdownGraceMs: 5_400_000,
        taskKillGraceMs: 3_000,
        xcomMaxBytes: 2048,
        taskHeartbeatTimeoutMs: 120_000,
        backfillMaxRuns: 5000,
        logFormat: "json",
        auth: "off",
        adminToken: "automation-token-123456",
        adminTokenFile: "/etc/baton/admin-token",
        apiRateLimit: { max: 50, windowMs: 10_000 },
        apiBodyLimitBytes: 4096,
        apiRequestTimeoutMs: 5_000,
        corsOrigins: ["https://a.example", "https://b.example"],
        metricsPort: 9464,
        metricsHost: "10.0.0.2",
        dbTraceQueries: true,
        dbStatementTimeoutMs: 45_000,
        dbPreparedStatements: false,
        healthTimeoutMs: 2_000,
        trustProxy: ["10.0.0.0/8", "192.168.1.7"],
        taskLogMaxBytes: 1_048_576,
      });
    });

    it("refuses a malformed rate limit or admin token, and turns the limit off with off", () => {
      expect(() => loadConfig({ BATON_API_RATE_LIMIT: "fast" })).toThrow(/BATON_API_RATE_LIMIT must look like/);
      expect(() => loadConfig({ BATON_API_RATE_LIMIT: "0/1m" })).toThrow(/BATON_API_RATE_LIMIT/);
      expect(() => loadConfig({ BATON_ADMIN_TOKEN: "short" })).toThrow(/BATON_ADMIN_TOKEN must be/);
      expect(() => loadConfig({ BATON_AUTH: "maybe" })).toThrow(/BATON_AUTH must be true or false/);
      expect(loadConfig({ BATON_API_RATE_LIMIT: "off" }).apiRateLimit.max).toBe(0);
      expect(loadConfig({}).auth).toBe("on");
      expect(loadConfig({}).dbTraceQueries).toBe(false);
      expect(loadConfig({}).dbPreparedStatements).toBe(true);
    });

    it("turns the periodic re-parse of unchanged DAG files off with off", () => {
      expect(loadConfig({ BATON_DAG_REPARSE_INTERVAL: "off" }).dagReparseIntervalMs).toBe(0);
      expect(loadConfig({ BATON_DAG_REPARSE_INTERVAL: "OFF" }).dagReparseIntervalMs).toBe(0);
      expect(() => loadConfig({ BATON_DAG_REPARSE_INTERVAL: "0" })).toThrow(/more than 0, or "off"/);
    });

    // Below a second every scan re-parsed the whole folder, the watcher's too (100 ms after any write in it).
    it("refuses a re-parse interval under a second", () => {
      const err = thrown(() => loadConfig({ BATON_DAG_REPARSE_INTERVAL: "1ms" }));
      expect(err.code).toBe("BATON_CONFIG_INVALID");
      expect(err.message).toBe('BATON_DAG_REPARSE_INTERVAL must be at least 1s, or "off", got "1ms"');
      expect(() => loadConfig({ BATON_DAG_REPARSE_INTERVAL: "999ms" })).toThrow(/at least 1s/);
      expect(loadConfig({ BATON_DAG_REPARSE_INTERVAL: "1s" }).dagReparseIntervalMs).toBe(1_000);
    });

    it("reads the try log limit in decimal bytes, 0 or off for none, and refuses anything else", () => {
      expect(loadConfig({ BATON_TASK_LOG_MAX_BYTES: "0" }).taskLogMaxBytes).toBe(0);
      expect(loadConfig({ BATON_TASK_LOG_MAX_BYTES: "off" }).taskLogMaxBytes).toBe(0);
      expect(loadConfig({ BATON_TASK_LOG_MAX_BYTES: " OFF " }).taskLogMaxBytes).toBe(0);
      expect(loadConfig({ BATON_TASK_LOG_MAX_BYTES: "4096" }).taskLogMaxBytes).toBe(4096);
      for (const raw of ["1e6", "0x10", "100MiB", "-1", "1.5", " "]) {
        const err = thrown(() => loadConfig({ BATON_TASK_LOG_MAX_BYTES: raw }));
        expect(err.code).toBe("BATON_CONFIG_INVALID");
        expect(err.message).toBe(`BATON_TASK_LOG_MAX_BYTES must be a number of bytes in decimal digits, or 0 or "off" for no limit, got "${raw}"`);
      }
    });

    it("knows which hosts are loopback", () => {
      expect(["127.0.0.1", "127.1.2.3", "localhost", "::1"].map(isLoopbackHost)).toEqual([true, true, true, true]);
      expect(["0.0.0.0", "10.0.0.5", "::", "example.com"].map(isLoopbackHost)).toEqual([false, false, false, false]);
    });

    it("resolves relative folders against the working directory", () => {
      const config = loadConfig({ BATON_DAGS_FOLDER: "my/dags", BATON_LOGS_FOLDER: "./l", BATON_CACHE_FOLDER: "c" });
      expect(config.dagsFolder).toBe(path.resolve("my/dags"));
      expect(config.logsFolder).toBe(path.resolve("l"));
      expect(config.cacheFolder).toBe(path.resolve("c"));
    });

    it("accepts ports up to 65535", () => {
      expect(loadConfig({ BATON_PORT: "65535", BATON_METRICS_PORT: "65535" })).toMatchObject({ port: 65535, metricsPort: 65535 });
    });

    it("accepts 0 workers and port 0", () => {
      expect(loadConfig({ BATON_WORKERS: "0", BATON_PORT: "0" })).toMatchObject({ workers: 0, port: 0 });
    });

    it("reads durations given as plain milliseconds", () => {
      expect(loadConfig({ BATON_SHUTDOWN_GRACE: "1500" }).shutdownGraceMs).toBe(1500);
    });

    it.each(["debug", "info", "warn", "error", "silent"])("accepts log level %p", (level) => {
      expect(loadConfig({ BATON_LOG_LEVEL: level }).logLevel).toBe(level);
    });

    it.each([
      ["1", true],
      ["true", true],
      ["TRUE", true],
      ["yes", true],
      ["on", true],
      ["0", false],
      ["false", false],
      ["False", false],
      ["no", false],
      ["off", false],
    ] as const)("reads boolean %p as %p", (raw, value) => {
      expect(loadConfig({ BATON_DAGS_PAUSED_AT_CREATION: raw }).dagsPausedAtCreation).toBe(value);
    });

    it("ignores variables it does not know", () => {
      expect(loadConfig({ BATON_NOT_A_SETTING: "x", PATH: "/bin" })).toEqual(loadConfig({}));
    });
  });

  describe("invalid values throw BATON_CONFIG_INVALID naming the variable and the value", () => {
    it.each([
      ["BATON_PORT", "abc"],
      ["BATON_PORT", "-1"],
      ["BATON_PORT", "80.5"],
      ["BATON_PORT", "8080x"],
      ["BATON_PORT", "65536"],
      ["BATON_PORT", "99999"],
      ["BATON_METRICS_PORT", "99999"],
      ["BATON_METRICS_PORT", "-1"],
      ["BATON_WORKERS", "two"],
      ["BATON_WORKERS", "-3"],
      ["BATON_WORKERS", "1.5"],
      ["BATON_LOG_LEVEL", "verbose"],
      ["BATON_LOG_LEVEL", "INFO"],
      ["BATON_DAGS_PAUSED_AT_CREATION", "maybe"],
      ["BATON_DAGS_PAUSED_AT_CREATION", "2"],
      ["BATON_DAG_PARSE_TIMEOUT", "soon"],
      ["BATON_DAG_PARSE_TIMEOUT", "-5s"],
      ["BATON_DAG_RESCAN_INTERVAL", "5x"],
      ["BATON_DAG_REPARSE_INTERVAL", "never"],
      ["BATON_SCHEDULER_INTERVAL", "1 second"],
      ["BATON_SHUTDOWN_GRACE", "8 s s"],
      ["BATON_TASK_HEARTBEAT_TIMEOUT", "soon"],
      ["BATON_TASK_HEARTBEAT_TIMEOUT", "500ms"],
      ["BATON_DB_STATEMENT_TIMEOUT", "soon"],
      ["BATON_HEALTH_TIMEOUT", "0"],
      // Were read by Number(): a blank value was 0 workers, hex and exponents passed as numbers,
      // and a byte count past 2^53 was kept rounded.
      ["BATON_WORKERS", " "],
      ["BATON_WORKERS", "0x10"],
      ["BATON_WORKERS", "1e2"],
      ["BATON_PORT", "0x50"],
      ["BATON_METRICS_PORT", "9e3"],
      ["BATON_XCOM_MAX_BYTES", "99999999999999999999"],
      // Were accepted: every DAG file became an import error (parse timeout), the scheduler and the
      // folder rescan ran back to back without a pause, and a rate limit window of 0 limited nothing.
      ["BATON_DAG_PARSE_TIMEOUT", "0"],
      ["BATON_DAG_RESCAN_INTERVAL", "0s"],
      // 0 would not say whether it means never (use "off") or all the time (Airflow's reading).
      ["BATON_DAG_REPARSE_INTERVAL", "0"],
      ["BATON_DAG_REPARSE_INTERVAL", "500ms"],
      ["BATON_SCHEDULER_INTERVAL", "0"],
      ["BATON_API_RATE_LIMIT", "100/0"],
    ])("%s=%p", (name, value) => {
      const err = thrown(() => loadConfig({ [name]: value }));
      expect(err).toBeInstanceOf(BatonError);
      expect(err.code).toBe("BATON_CONFIG_INVALID");
      expect(err.status).toBe(500);
      expect(err.message).toContain(name);
      expect(err.message).toContain(value);
    });

    it("reports the first invalid variable even when others are valid", () => {
      const err = thrown(() => loadConfig({ BATON_PORT: "8080", BATON_WORKERS: "lots" }));
      expect(err.message).toMatch(/BATON_WORKERS/);
      expect(err.message).not.toMatch(/BATON_PORT/);
    });
  });

  describe("overrides (CLI flags) win over the environment", () => {
    it("replaces environment values", () => {
      const config = loadConfig({ BATON_PORT: "9090", BATON_HOST: "0.0.0.0", BATON_WORKERS: "4" }, { port: 7070, workers: 1 });
      expect(config.port).toBe(7070);
      expect(config.workers).toBe(1);
      expect(config.host).toBe("0.0.0.0");
    });

    it("ignores overrides that are undefined", () => {
      const config = loadConfig({ BATON_PORT: "9090" }, { port: undefined, host: undefined });
      expect(config.port).toBe(9090);
      expect(config.host).toBe("127.0.0.1");
    });

    it("resolves an overridden DAG folder to an absolute path", () => {
      expect(loadConfig({ BATON_DAGS_FOLDER: "/env/dags" }, { dagsFolder: "flag/dags" }).dagsFolder).toBe(path.resolve("flag/dags"));
    });

    it("keeps an override of 0 and false", () => {
      const config = loadConfig({ BATON_WORKERS: "4", BATON_DAGS_PAUSED_AT_CREATION: "true" }, { workers: 0, dagsPausedAtCreation: false });
      expect(config.workers).toBe(0);
      expect(config.dagsPausedAtCreation).toBe(false);
    });
  });
});
