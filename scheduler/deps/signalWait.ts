import type { DepStatus } from "./dependsOnPast.ts";

export type OnTimeout = "fail" | "skip" | "succeed";

/** A task instance deferred on a signal (waitForSignal), as GET …/dependencies sees it. */
export interface SignalWaitInput {
  dagId: string;
  runId: string;
  /** task_instance.deferred_on */
  signal: string;
  /** task_instance.next_check_at: when the wait times out; null without a timeout. */
  timeoutAt: Date | null;
  /** The task's onTimeout in the run's DAG version; undefined when that version cannot be read. */
  onTimeout: OnTimeout | undefined;
}

const THEN: Record<OnTimeout, string> = {
  fail: "then it fails (BATON_SIGNAL_TIMEOUT)",
  skip: "then it is skipped",
  succeed: "then it succeeds with output null",
};
const AT_NEXT_PASS: Record<OnTimeout, string> = {
  fail: "the scheduler fails it (BATON_SIGNAL_TIMEOUT)",
  skip: "the scheduler skips it",
  succeed: "the scheduler succeeds it (output null)",
};

/**
 * A signal wait never passes: the task runs on when its signal arrives (or its timeout ends it),
 * nothing else lifts it. Before the deadline the reason says where to send the signal; after it,
 * that the scheduler will end the wait as onTimeout says (store/transitions/signals.ts
 * timeoutDeferred) and that a signal sent meanwhile is stored but not delivered (sendSignal).
 */
export function signalWaitDep(w: SignalWaitInput, now: Date): DepStatus {
  const dep = "signal";
  const send = `POST /api/v1/dags/${encodeURIComponent(w.dagId)}/dagRuns/${encodeURIComponent(w.runId)}/signals/${w.signal}`;
  if (w.timeoutAt === null) return { dep, passed: false, reason: `waiting for signal "${w.signal}" (${send}), with no timeout` };
  const at = w.timeoutAt.toISOString();
  if (w.timeoutAt.getTime() > now.getTime()) {
    return { dep, passed: false, reason: `waiting for signal "${w.signal}" (${send}) until ${at}; ${w.onTimeout ? THEN[w.onTimeout] : "then it ends as its onTimeout says"}` };
  }
  return {
    dep,
    passed: false,
    reason:
      `waited for signal "${w.signal}" until ${at}, which has passed: ` +
      `${w.onTimeout ? AT_NEXT_PASS[w.onTimeout] : "the scheduler ends it as its onTimeout says"} at its next pass, and a signal sent now is too late for it`,
  };
}
