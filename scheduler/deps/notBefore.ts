import type { DepStatus } from "./dependsOnPast.ts";

/** A task instance waiting for a date to be queued again: a retry's delay, or a reschedule-mode sensor's next poke. */
export interface NotBeforeInput {
  state: "up_for_retry" | "up_for_reschedule";
  /** task_instance.next_retry_at */
  nextAt: Date;
}

/**
 * Airflow's NotInRetryPeriodDep / ReadyToRescheduleDep: until next_retry_at the task waits by
 * design, and the API says until when (a sensor's next poke), not that nothing holds it back.
 * Past it, the dep passes: the scheduler queues it at its next pass (queueRetries).
 */
export function notBeforeDep(w: NotBeforeInput, now: Date): DepStatus {
  const sensor = w.state === "up_for_reschedule";
  const dep = sensor ? "reschedule" : "retry_period";
  const at = w.nextAt.toISOString();
  if (w.nextAt.getTime() <= now.getTime()) return { dep, passed: true, reason: `${sensor ? "its next poke" : "its retry"} was due at ${at}` };
  return {
    dep,
    passed: false,
    reason: sensor
      ? `a reschedule-mode sensor between pokes: its condition did not hold, it pokes again at ${at} (queued then automatically)`
      : `waiting for its retry delay: the next try is queued at ${at}`,
  };
}
