// A zombie whose reaping the database refuses: its try failing fails its run, whose saga
// compensation task, from a DAG version stored before ids were bounded, has an id longer than
// task_instance.task_id (the case a worker parks its result for: parkedResult.test.ts). The
// reaper hit the same INSERT in the batch with every other zombie, so every scheduler tick
// failed once the zombie timeout had passed, and no zombie anywhere was reaped again. Now that
// one is left running, logged with its code and tried again each minute; the others are reaped.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { PARKED_RETRY_MS } from "../../core/parked.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { ReapInterrupted, reapZombies } from "../../store/transitions/reapZombies.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const TIMEOUT = 30_000;
const clock = new FakeClock("2026-03-01T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, worker: false, taskHeartbeatTimeoutMs: TIMEOUT });
const lines: string[] = [];
let scheduler: Scheduler;

const DAGS = dagSource(`
export const bad = dag({ id: "unreap_bad" }, (t) => {
  const charge = t.task("charge", { compensate: async () => undefined }, async () => "charged");
  charge.then(t.task("boom", async () => 1));
});
export const other = dag({ id: "unreap_other", maxActiveRuns: 5, defaultArgs: { retries: 1 } }, (t) => {
  t.task("a", async () => 1);
});
`);

const ghost = () => ({ queues: ["default"], hostname: "ghost-host", pid: 4242, token: randomBytes(16).toString("hex") });

async function claimOne(): Promise<ClaimedTask> {
  const [claimed] = await claimTasks(h.db, { now: clock.now(), limit: 1, ...ghost() });
  return claimed!;
}

async function state(dagId: string, runId: string, taskId: string): Promise<string> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?", [dagId, runId, taskId]);
  return row!.state;
}

const refusals = () => lines.filter((l) => l.includes("could not be reaped"));

beforeAll(async () => {
  await h.start({ "unreap.ts": DAGS });
  await h.processor.scan();
  // As stored before compensable ids were bounded: the compensation's id no longer fits.
  const [res] = await h.db.pool.query(`UPDATE dag_version SET structure = REPLACE(structure, '"charge__compensate"', '"${"c".repeat(260)}"') WHERE dag_id = 'unreap_bad'`);
  expect((res as { affectedRows: number }).affectedRows).toBeGreaterThan(0);
  const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
  scheduler = new Scheduler(h.db, clock, logger, { intervalMs: 100, taskHeartbeatTimeoutMs: TIMEOUT });
});
afterAll(async () => {
  await scheduler.stop();
  await h.stop();
});

it("leaves it running, reaps the other zombies, and the tick goes on", async () => {
  const versions = new VersionCache(h.db.pool);
  await h.trigger("unreap_bad", { runId: "b1", via: "store" });
  await scheduler.tick();
  const charge = await claimOne();
  expect(charge.taskId).toBe("charge");
  await finishTries(h.db, clock.now(), [{ task: charge, outcome: "success", output: 1, endedAt: clock.now() }], (v) => versions.shape(v));
  expect((await claimOne()).taskId).toBe("boom");
  await h.trigger("unreap_other", { runId: "o1", via: "store" });
  await scheduler.tick();
  expect((await claimOne()).taskId).toBe("a");

  // Both workers went silent; a new run waits to start in the same tick.
  clock.advance(TIMEOUT + 1000);
  await h.trigger("unreap_other", { runId: "o2", via: "store" });
  const report = await scheduler.tick();
  expect(report).toMatchObject({ zombiesReaped: 1, runsStarted: 1 });
  expect(await state("unreap_other", "o1", "a")).toBe("up_for_retry");
  expect(await state("unreap_bad", "b1", "boom")).toBe("running");
  expect(refusals()).toHaveLength(1);
  expect(refusals()[0]).toContain("try 1 of unreap_bad.boom (run b1)");
  expect(refusals()[0]).toContain("BATON_RESULT_UNRECORDABLE");
  expect(refusals()[0]).toContain("Data too long for column 'task_id'");
  expect(lines.filter((l) => l.includes("scheduler tick failed"))).toEqual([]);

  // Set aside: the next ticks leave it out, until a minute has passed.
  clock.advance(1000);
  await scheduler.tick();
  expect(refusals()).toHaveLength(1);
  clock.advance(PARKED_RETRY_MS);
  await scheduler.tick();
  expect(refusals()).toHaveLength(2);
  expect(await state("unreap_bad", "b1", "boom")).toBe("running");
});

// Reaping one by one after a refused batch: an error other than a refused value partway through
// (the database gone, say) threw away what the tries reaped and committed before it had done, so
// their warnings (and the runs they finished) were never told. It now comes with the error.
it("an error partway through the one-by-one pass keeps what was reaped before it", async () => {
  const versions = new VersionCache(h.db.pool);
  await h.trigger("unreap_other", { runId: "o3", via: "store" });
  await scheduler.tick();
  // Two tries of unreap_other (o2's, queued above, and o3's), claimed by workers that go silent.
  const [first, second] = [await claimOne(), await claimOne()];
  expect([first!.dagId, second!.dagId]).toEqual(["unreap_other", "unreap_other"]);
  // Oldest heartbeat first: the first try, then the refused one (still running from above), then the second.
  const ago = (ms: number) => new Date(clock.now().getTime() - TIMEOUT - ms);
  await h.db.pool.query("UPDATE task_instance SET heartbeat_at = ? WHERE id = ?", [ago(3000), first!.id]);
  await h.db.pool.query("UPDATE task_instance SET heartbeat_at = ? WHERE dag_id = 'unreap_bad' AND state = 'running'", [ago(2000)]);
  await h.db.pool.query("UPDATE task_instance SET heartbeat_at = ? WHERE id = ?", [ago(1000), second!.id]);
  const [[other]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_run WHERE dag_id = 'unreap_other' AND run_id = ?", [first!.runId]);
  // unreap_other's version is read for each of the refused batch's two runs, again for the first
  // try alone, and fails on the next read, for the second try.
  let reads = 0;
  const shapeOf = async (hash: string) => {
    if (hash === other!.version_hash && ++reads === 4) throw new Error("connection lost (simulated)");
    return versions.shape(hash);
  };
  const err = await reapZombies(h.db, clock.now(), TIMEOUT, shapeOf).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ReapInterrupted);
  const { partial, cause } = err as ReapInterrupted;
  expect((cause as Error).message).toBe("connection lost (simulated)");
  expect(partial.reaped.map((z) => [z.id, z.state])).toEqual([[first!.id, "up_for_retry"]]);
  expect(partial.refused.map((z) => [z.runId, z.code])).toEqual([["b1", "BATON_RESULT_UNRECORDABLE"]]);
  expect(await state("unreap_other", first!.runId, "a")).toBe("up_for_retry");
  expect(await state("unreap_other", second!.runId, "a")).toBe("running");
});
