// scheduler/deps/signalWait.ts: GET …/dependencies of a task deferred on a signal.
import { signalWaitDep } from "../../scheduler/deps/signalWait.ts";

const wait = { dagId: "docs", runId: "manual__2026-11-27T10:00:00+00:00", signal: "signed" };
const deadline = new Date("2026-12-02T10:00:00Z");
const before = new Date("2026-12-01T00:00:00Z");
const send = "POST /api/v1/dags/docs/dagRuns/manual__2026-11-27T10%3A00%3A00%2B00%3A00/signals/signed";

describe("signalWaitDep", () => {
  it("names the signal, where to send it (the run id encoded), the deadline and each onTimeout", () => {
    const reason = (onTimeout: "fail" | "skip" | "succeed" | undefined) => signalWaitDep({ ...wait, timeoutAt: deadline, onTimeout }, before).reason;
    expect(reason("fail")).toBe(`waiting for signal "signed" (${send}) until 2026-12-02T10:00:00.000Z; then it fails (BATON_SIGNAL_TIMEOUT)`);
    expect(reason("skip")).toContain("; then it is skipped");
    expect(reason("succeed")).toContain("; then it succeeds with output null");
    expect(reason(undefined)).toContain("; then it ends as its onTimeout says"); // the run's version cannot be read
    expect(signalWaitDep({ ...wait, timeoutAt: null, onTimeout: "fail" }, before)).toEqual({
      dep: "signal",
      passed: false,
      reason: `waiting for signal "signed" (${send}), with no timeout`,
    });
  });

  it("once the deadline is reached, says the scheduler ends the wait and a signal now is too late (as sendSignal decides: at the deadline itself)", () => {
    const status = signalWaitDep({ ...wait, timeoutAt: deadline, onTimeout: "fail" }, deadline);
    expect(status).toEqual({
      dep: "signal",
      passed: false,
      reason:
        'waited for signal "signed" until 2026-12-02T10:00:00.000Z, which has passed: the scheduler fails it (BATON_SIGNAL_TIMEOUT) ' +
        "at its next pass, and a signal sent now is too late for it",
    });
  });
});
