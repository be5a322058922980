import { createHash } from "node:crypto";
import { MAX_DURATION_MS } from "../core/durations.ts";

export interface RetryPolicy {
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
}

/** Whether a failed try gets another one (Airflow: max_tries = retries; tries are 1-based). */
export function shouldRetry(tryNumber: number, maxTries: number, nonRetryable: boolean): boolean {
  return !nonRetryable && tryNumber <= maxTries;
}

/**
 * The cap of an exponential backoff that declares no maxRetryDelay: Airflow's (≥ 2.6) default
 * `[core] max_task_retry_delay` of 86,400 s, applied in its next_retry_datetime.
 */
export const DEFAULT_MAX_BACKOFF_DELAY_MS = 86_400_000;

/**
 * Delay before the next try, as Airflow computes it: with exponential backoff the delay is
 * retryDelay × 2^(try−1) plus a jitter in [0, that) derived from a hash of the task
 * instance and try (deterministic, so every scheduler computes the same), capped by
 * maxRetryDelay, or without one at 24 h (DEFAULT_MAX_BACKOFF_DELAY_MS, Airflow's default; a
 * backoff doubles past any date a DATETIME holds, and to Infinity) but never below the declared
 * retryDelay. A declared retryDelay or maxRetryDelay is honoured in full, up to the longest
 * duration a DAG may declare (MAX_DURATION_MS, 100 years; the parser refuses longer ones). The
 * delay is only added to now into next_retry_at, never armed as a timer.
 */
export function retryDelayMs(policy: RetryPolicy, tryNumber: number, jitterKey: string): number {
  let delay = policy.retryDelayMs;
  if (policy.retryExponentialBackoff && delay > 0) {
    const base = delay * 2 ** Math.max(0, tryNumber - 1);
    const hash = createHash("sha1").update(`${jitterKey}#${tryNumber}`).digest();
    const jitter = hash.readUInt32BE(0) % Math.max(1, Math.ceil(base));
    delay = base + jitter;
  }
  if (policy.maxRetryDelayMs !== null && policy.maxRetryDelayMs !== undefined) delay = Math.min(delay, policy.maxRetryDelayMs);
  else if (policy.retryExponentialBackoff) delay = Math.min(delay, Math.max(DEFAULT_MAX_BACKOFF_DELAY_MS, policy.retryDelayMs));
  return Math.min(delay, MAX_DURATION_MS);
}

/** The task instance a retry delay is jittered by (retryDelayMs' jitterKey). */
export interface RetryKey {
  dagId: string;
  taskId: string;
  logicalDate: Date | string | null | undefined;
}

/**
 * When a failed try's task is queued again: now plus its retry delay, jittered by the task
 * instance and try, so the delay does not depend on who ended the try (the worker recording it,
 * the reaper, a signal wait's timeout).
 */
export function nextRetryAt(now: Date, policy: RetryPolicy, ti: RetryKey, tryNumber: number): Date {
  const jitterKey = `${ti.dagId}#${ti.taskId}#${ti.logicalDate ? new Date(ti.logicalDate).toISOString() : ""}`;
  return new Date(now.getTime() + retryDelayMs(policy, tryNumber, jitterKey));
}
