import type { DepStatus } from "./dependsOnPast.ts";

/** The workers that heartbeated lately (within the zombie timeout) and the queues they serve. */
export interface LiveWorkers {
  count: number;
  queues: ReadonlySet<string>;
}

/**
 * A queued try is claimed only by a worker serving its queue, and waits without a word for as
 * long as none runs (Airflow: a Celery queue no worker consumes; Temporal: a task queue with no
 * pollers). Passed while a live worker serves the queue, whether or not it has a free slot.
 */
export function queueServedDep(ti: { queue: string }, live: LiveWorkers): DepStatus {
  const dep = "queue";
  if (live.queues.has(ti.queue)) return { dep, passed: true, reason: `a live worker serves queue "${ti.queue}"` };
  if (live.count === 0) {
    return { dep, passed: false, reason: `No worker is running (none heartbeated lately): the task stays queued until one serving queue "${ti.queue}" starts` };
  }
  const served = [...live.queues].sort().map((q) => `"${q}"`);
  return {
    dep,
    passed: false,
    reason: `No live worker serves queue "${ti.queue}" (live workers serve ${served.join(", ") || "no queue"}): start one with \`baton worker --queues ${shellWord(ti.queue)}\``,
  };
}

/**
 * `value` as one POSIX shell word: as it is when it holds only characters no shell treats
 * specially, else single-quoted (a quote inside written '\''), so a suggested command can be pasted.
 */
function shellWord(value: string): string {
  return /^[A-Za-z0-9_.:/@%+=-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}
