import type { Config } from "../core/config.ts";
import type { WorkerOptions } from "../executor/worker.ts";

/** The worker's settings that come from the configuration (BATON_*), not from the command that runs it. */
export type ConfiguredWorkerOptions = Pick<WorkerOptions, "logsFolder" | "cacheFolder" | "killGraceMs" | "maxValueBytes" | "maxLogBytes" | "heartbeatMs" | "heartbeatTimeoutMs">;

/**
 * The one place a Worker's configured settings are derived from Config: `baton worker`, `standalone`
 * (cli/services.ts) and `baton dags test` each add only what is their own (slots, queues, hooks).
 * Two lists drifted: dags test ignored BATON_XCOM_MAX_BYTES, BATON_TASK_KILL_GRACE and
 * BATON_TASK_HEARTBEAT_TIMEOUT.
 */
export function workerOptionsFromConfig(config: Config): ConfiguredWorkerOptions {
  return {
    logsFolder: config.logsFolder,
    cacheFolder: config.cacheFolder,
    killGraceMs: config.taskKillGraceMs,
    maxValueBytes: config.xcomMaxBytes,
    maxLogBytes: config.taskLogMaxBytes,
    // Several beats fit in the scheduler's zombie timeout, so one slow beat is not a death.
    heartbeatMs: Math.min(5000, Math.floor(config.taskHeartbeatTimeoutMs / 3)),
    heartbeatTimeoutMs: config.taskHeartbeatTimeoutMs,
  };
}
