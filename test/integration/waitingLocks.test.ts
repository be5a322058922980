// Several schedulers split the waiting tasks that are due (queueRetries, timeoutDeferred) with
// `… ORDER BY <time> LIMIT n FOR UPDATE SKIP LOCKED`. That locks only the rows it returns when
// MariaDB reads the time index in order; with a filesort plan it locks every due row before LIMIT
// keeps n, and the other schedulers skip the rest as locked: 12 due retries, two schedulers
// asking for 5 each, 10 queued (zombies.test.ts failed so, now and then). Reading one state at a
// time through the shared index had the same effect: a scan for retries locked due reschedules
// while it checked their state, and the scans for reschedules skipped them. The data here makes
// the filesort plan MariaDB's choice (a state with few rows, a time range with many) and mixes
// both states in the range; on a busy machine either hazard showed within a few rounds.
import { FakeClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { openDb } from "../../store/db.ts";
import { QUEUE_RETRIES_BATCH, queueRetries } from "../../store/transitions/queueRetries.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

const DUE = new Date("2026-01-01T00:00:10.000Z");
const RETRIES = 12;
const RESCHEDULES = 3000;

let db: Db;
let second: Db;

beforeAll(async () => {
  db = await createTestDb();
  second = openDb(db.url, { connectionLimit: 2 });
});

afterAll(async () => {
  await second?.close();
  if (db) await dropTestDb(db);
});

async function fill(round: number): Promise<void> {
  await db.pool.query("DELETE FROM task_instance");
  const rows = Array.from({ length: RETRIES + RESCHEDULES }, (_, i) => [round * 100_000 + i + 1, "d", `r${i}`, "t", i < RETRIES ? "up_for_retry" : "up_for_reschedule", DUE]);
  await db.pool.query("INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, state, next_retry_at) VALUES ?", [rows]);
  await db.pool.query("ANALYZE TABLE task_instance");
}

describe("due waiting tasks split between schedulers", () => {
  it("the data makes MariaDB choose a filesort for the unforced statement (what the forced index prevents)", async () => {
    await fill(0);
    const [plan] = await db.pool.query<RowDataPacket[]>(
      "EXPLAIN SELECT id FROM task_instance WHERE state = 'up_for_retry' AND next_retry_at <= ? ORDER BY next_retry_at LIMIT 5 FOR UPDATE SKIP LOCKED",
      [DUE],
    );
    // If a MariaDB version stops choosing it, this test no longer shows the hazard: make the data sharper.
    expect(String(plan[0]!.Extra)).toContain("filesort");
  });

  it("four schedulers at once, two asking for 5 and two for all, queue every due retry and reschedule exactly once", async () => {
    for (let round = 1; round <= 10; round++) {
      await fill(round);
      const counts = await Promise.all([queueRetries(db, DUE, 5), queueRetries(second, DUE, 5), queueRetries(db, DUE, 10_000), queueRetries(second, DUE, 10_000)]);
      const [[left]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE state <> 'queued'");
      expect({ round, queued: counts.reduce((a, b) => a + b, 0), left: Number(left!.n) }).toEqual({ round, queued: RETRIES + RESCHEDULES, left: 0 });
    }
  });

  it("one scheduler tick queues every due row, in batches, when there are more than one batch holds", async () => {
    await fill(11);
    expect(RETRIES + RESCHEDULES).toBeGreaterThan(2 * QUEUE_RETRIES_BATCH);
    const scheduler = new Scheduler(db, new FakeClock(DUE.toISOString()), silentLogger, { intervalMs: 60_000 });
    try {
      const report = await scheduler.tick();
      const [[left]] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE state <> 'queued'");
      expect({ retriesQueued: report.retriesQueued, left: Number(left!.n) }).toEqual({ retriesQueued: RETRIES + RESCHEDULES, left: 0 });
    } finally {
      await scheduler.stop();
    }
  });
});
