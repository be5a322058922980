import { createHash } from "node:crypto";

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
 * Delay before the next try, as Airflow computes it: with exponential backoff the delay is
 * retryDelay × 2^(try−1) plus a jitter in [0, that) derived from a hash of the task
 * instance and try (deterministic, so every scheduler computes the same), capped by
 * maxRetryDelay.
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
  return Math.min(delay, 365 * 86_400_000);
}
