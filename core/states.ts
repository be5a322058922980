/** Task instance states, as in Airflow. `none` is Airflow's null state: created, not yet scheduled. */
export const TaskState = {
  None: "none",
  Scheduled: "scheduled",
  Queued: "queued",
  Running: "running",
  Success: "success",
  Failed: "failed",
  UpForRetry: "up_for_retry",
  UpForReschedule: "up_for_reschedule",
  Deferred: "deferred",
  Skipped: "skipped",
  UpstreamFailed: "upstream_failed",
  Removed: "removed",
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

/** States a task instance never leaves on its own (only a clear moves it again). */
export const TERMINAL_TASK_STATES: readonly TaskState[] = [
  TaskState.Success,
  TaskState.Failed,
  TaskState.Skipped,
  TaskState.UpstreamFailed,
  TaskState.Removed,
];

/** States a task instance is still on its way out of: everything not terminal. */
export const UNFINISHED_TASK_STATES: readonly TaskState[] = [
  TaskState.None,
  TaskState.Scheduled,
  TaskState.Queued,
  TaskState.Running,
  TaskState.UpForRetry,
  TaskState.UpForReschedule,
  TaskState.Deferred,
];

export function isTerminalTaskState(state: string): boolean {
  return (TERMINAL_TASK_STATES as readonly string[]).includes(state);
}

/**
 * Whether a task instance in this state is done with its try: it keeps the state (a clear
 * aside), or waits to be retried. Then the row's `error` is that try's; otherwise (queued,
 * running, deferred, …) a try is on its way and what the row still holds of an earlier
 * one's failure is not its own.
 */
export function currentTryEnded(state: string): boolean {
  return state === TaskState.UpForRetry || isTerminalTaskState(state);
}

/**
 * Whether try `asked` of a task instance has ended, so its log is complete (Airflow's end_of_log:
 * the task's current try while it runs or is deferred is the only try still written).
 * `tryNumber`: the row's. A try is counted when it is claimed (running), so outside running and
 * deferred the row's try number is that of a try that ended: a retry keeps the failed try's number
 * while it waits and while it is queued. A reschedule-mode sensor gives its try number back between
 * pokes (as a hand-back does): its poke is the try after the row's, under way until the task ends.
 */
export function tryEnded(asked: number, tryNumber: number, state: string): boolean {
  if (asked < tryNumber) return true;
  if (asked === tryNumber) return state !== TaskState.Running && state !== TaskState.Deferred;
  return currentTryEnded(state);
}

export const RunState = {
  Queued: "queued",
  Running: "running",
  Success: "success",
  Failed: "failed",
} as const;
export type RunState = (typeof RunState)[keyof typeof RunState];

export const RunType = {
  Manual: "manual",
  Scheduled: "scheduled",
  Backfill: "backfill",
} as const;
export type RunType = (typeof RunType)[keyof typeof RunType];
