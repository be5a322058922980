import { workerOptionsFromConfig } from "../../cli/workerOptions.ts";
import { loadConfig } from "../../core/config.ts";

// `baton worker`, `standalone` and `baton dags test` take their worker's configured settings from
// this one function: dags test had its own list, and BATON_XCOM_MAX_BYTES (among others) was not on it.
describe("workerOptionsFromConfig", () => {
  it("carries every worker setting of the configuration", () => {
    const config = loadConfig({
      BATON_LOGS_FOLDER: "/tmp/qa-logs",
      BATON_CACHE_FOLDER: "/tmp/qa-cache",
      BATON_TASK_KILL_GRACE: "3s",
      BATON_XCOM_MAX_BYTES: "100",
      BATON_TASK_LOG_MAX_BYTES: "2048",
      BATON_TASK_HEARTBEAT_TIMEOUT: "6s",
    });
    expect(workerOptionsFromConfig(config)).toEqual({
      logsFolder: "/tmp/qa-logs",
      cacheFolder: "/tmp/qa-cache",
      killGraceMs: 3000,
      maxValueBytes: 100,
      maxLogBytes: 2048,
      heartbeatMs: 2000,
      heartbeatTimeoutMs: 6000,
    });
  });

  it("beats at most every 5 s, several times within the zombie timeout", () => {
    expect(workerOptionsFromConfig(loadConfig({ BATON_TASK_HEARTBEAT_TIMEOUT: "60s" })).heartbeatMs).toBe(5000);
    expect(workerOptionsFromConfig(loadConfig({ BATON_TASK_HEARTBEAT_TIMEOUT: "1s" })).heartbeatMs).toBe(333);
  });
});
