// A run or a try never starts before it was queued. The scheduler's tick and a worker's claim take
// `now` before they read what to start, so a run triggered (or a try queued) after that instant,
// but read by the same tick or claim, would show a start_date earlier than its queued_at
// (seen: queued_at 11:24:21.150Z, start_date 11:24:21.142Z). The fake clock plays that late read.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-03-01T10:00:00Z");
const h = new Harness({ manualTicks: true, worker: false, clock });

beforeAll(async () => {
  await h.start({ "snbq.ts": dagSource(`export default dag({ id: "snbq" }, (t) => { t.task("first", { queue: "snbq_q" }, async () => 1); });`) });
  await h.run();
});
afterAll(() => h.stop());

const row = async (sql: string, params: unknown[]) => (await h.db.pool.query<RowDataPacket[]>(sql, params))[0][0]!;

it("a run queued after the tick's now starts at its queued_at, its tries start no earlier than queued and end no earlier than started", async () => {
  const tickNow = clock.now();
  clock.advance(5_000); // the trigger commits after the tick took its now
  const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/snbq/dagRuns", payload: {} });
  expect(res.statusCode).toBe(200);
  const runId = res.json().dag_run_id as string;
  clock.set(tickNow); // …and the tick, with that earlier now, reads the run
  expect((await h.scheduler.tick()).runsStarted).toBe(1);

  const run = await row("SELECT queued_at, start_date FROM dag_run WHERE dag_id = 'snbq' AND run_id = ?", [runId]);
  expect(run.start_date.getTime()).toBeGreaterThanOrEqual(run.queued_at.getTime());
  const ti = await row("SELECT queued_at FROM task_instance WHERE dag_id = 'snbq' AND run_id = ? AND task_id = 'first'", [runId]);
  expect(ti.queued_at.getTime()).toBeGreaterThanOrEqual(run.start_date.getTime());

  // A claim whose now was taken before the try was queued.
  const [claimed] = await claimTasks(h.db, { now: tickNow, limit: 1, queues: ["snbq_q"], hostname: "w", pid: 1, token: randomBytes(16).toString("hex") });
  expect(claimed?.taskId).toBe("first");
  const started = await row("SELECT queued_at, start_date FROM task_instance WHERE id = ?", [claimed!.id]);
  expect(started.start_date.getTime()).toBeGreaterThanOrEqual(started.queued_at.getTime());
  expect(claimed!.startedAt.getTime()).toBe(started.start_date.getTime());

  // Its end, recorded with a now from before that start, is not before it either (no negative duration).
  const versions = new VersionCache(h.db.pool);
  await finishTries(h.db, tickNow, [{ task: claimed!, outcome: "success", endedAt: tickNow }], (hash) => versions.shape(hash));
  const ended = await row("SELECT state, start_date, end_date, duration FROM task_instance WHERE id = ?", [claimed!.id]);
  expect(ended.state).toBe("success");
  expect(ended.end_date.getTime()).toBeGreaterThanOrEqual(ended.start_date.getTime());
  expect(Number(ended.duration)).toBeGreaterThanOrEqual(0);
  const finished = await row("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = 'snbq' AND run_id = ?", [runId]);
  expect(finished.state).toBe("success");
  expect(finished.end_date.getTime()).toBeGreaterThanOrEqual(finished.start_date.getTime());
});
