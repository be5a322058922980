// The scheduler times out due signal waits (timeoutDeferred) a page at a time, oldest due first.
// It stopped once a page ended fewer waits than its size: a page full of waits it cannot end
// (their run's DAG version cannot be read, and the run cannot be failed for it: here it already
// ended) stopped it at the first page of every tick, so the waits due after them never timed out.
// Now the tick goes on, past the waits it could not end, until a page comes back short.
import { randomBytes } from "node:crypto";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { startRuns } from "../../store/transitions/startRuns.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
export const bad = dag({ id: "tdp_bad", maxActiveRuns: 16 }, (t) => {
  t.waitForSignal("wait", { signal: "go", queue: "tdp", timeout: "1h" });
});
export const good = dag({ id: "tdp_good", maxActiveRuns: 16 }, (t) => {
  t.waitForSignal("wait", { signal: "go", queue: "tdp", timeout: "1h" });
});
`);

const h = new Harness({ clock: systemClock, manualTicks: true, worker: false });
const logger = createLogger("info", {}, () => undefined, { format: "json" });

beforeAll(async () => {
  await h.start({ "tdp.ts": DAGS });
  await h.processor.scan();
});
afterAll(() => h.stop());

async function waitState(dagId: string, runId: string): Promise<string> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT ti.state FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.dag_id = ? AND r.run_id = ? AND ti.task_id = 'wait'",
    [dagId, runId],
  );
  return row!.state;
}

it("times out the waits due after a full page of waits it cannot end", async () => {
  const bad = [await h.trigger("tdp_bad"), await h.trigger("tdp_bad")];
  const good = await h.trigger("tdp_good");
  const cache = new VersionCache(h.db.pool);
  await startRuns(h.db, systemClock.now(), (v) => cache.shape(v));
  // Their waits deferred by a worker, then past their timeouts: the bad runs' first.
  const claimed = await claimTasks(h.db, { now: systemClock.now(), limit: 10, queues: ["tdp"], hostname: "w", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed).toHaveLength(3);
  await finishTries(h.db, systemClock.now(), claimed.map((task) => ({ task, outcome: "deferred" as const, endedAt: systemClock.now() })), (v) => cache.shape(v));
  await h.db.pool.query("UPDATE task_instance SET next_check_at = ? WHERE dag_id = 'tdp_bad' AND task_id = 'wait'", [new Date(Date.now() - 120_000)]);
  await h.db.pool.query("UPDATE task_instance SET next_check_at = ? WHERE dag_id = 'tdp_good' AND task_id = 'wait'", [new Date(Date.now() - 60_000)]);
  // The bad runs' version cannot be read, and their runs cannot be failed for it (they ended):
  // their waits stay due.
  await h.db.pool.query("UPDATE dag_version SET structure = '{not json' WHERE dag_id = 'tdp_bad'");
  await h.db.pool.query("UPDATE dag_run SET state = 'success' WHERE dag_id = 'tdp_bad'");

  const scheduler = new Scheduler(h.db, h.clock, logger, { intervalMs: 100, timeoutDeferredPage: 2 });
  try {
    await scheduler.tick();
  } finally {
    await scheduler.stop();
  }
  expect(await waitState("tdp_good", good)).toBe("failed");
  for (const runId of bad) expect(await waitState("tdp_bad", runId)).toBe("deferred");
});
