import { workerName, zombieLogLine } from "../../scheduler/zombieEnding.ts";

const now = new Date("2026-03-01T00:00:31Z");
const heartbeatAt = new Date("2026-03-01T00:00:00Z");

describe("zombieLogLine", () => {
  it("names the worker, its last heartbeat, the state and the timeout, dated by the scheduler's clock", () => {
    const line = zombieLogLine(now, { hostname: "w1", pid: 7, heartbeatAt, state: "up_for_retry" }, 30_000, "onRetry");
    expect(line).toBe(
      "[2026-03-01T00:00:31.000Z] ERROR - the worker w1 pid 7 stopped heartbeating at 2026-03-01T00:00:00.000Z; " +
        "the try was marked up_for_retry by the scheduler (zombie: no heartbeat for 31s, over the 30s timeout); " +
        "its onRetry callback runs on a live worker (BATON_TASK_ZOMBIE)\n",
    );
    expect(zombieLogLine(now, { hostname: null, pid: null, heartbeatAt, state: "failed" }, 30_000, null)).not.toContain("callback");
    expect(workerName({ hostname: null, pid: null })).toBe("unknown host");
  });
});
