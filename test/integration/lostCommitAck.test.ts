// A COMMIT whose answer is lost (the connection drops after the server committed): the worker
// cannot tell whether its call happened. The tries that transaction claimed carry the worker's
// token, yet the worker never learned of them: they must not sit `running` until reaped as
// zombies (a try used up, the run failed although they never started). Nor may it run tries
// whose hand-back's answer was lost: they may be queued again, for another worker to run. The
// test loses the answer of one chosen transaction deterministically: its COMMIT runs on the
// server, then the call fails with mysql2's "Connection lost" error, as over a dropped link.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { capturingLogger } from "../helpers/logger.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { Db, RowDataPacket, Tx } from "../../store/db.ts";
import { Worker, type WorkerOptions } from "../../executor/worker.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";

export const finishLost = dag({ id: "lost_finish" }, (t) => {
  const a = t.task("a", { queue: "lost_finish" }, async () => "a out");
  const b = t.task("b", { queue: "lost_finish", upstream: [a] }, async (ctx) => ctx.get(a) + " via b");
  t.task("c", { queue: "lost_finish", upstream: [b] }, async () => "c out");
});

export const claimLost = dag({ id: "lost_claim" }, (t) => {
  const a = t.task("a", { queue: "lost_claim" }, async () => "a out");
  t.task("b", { queue: "lost_claim", upstream: [a] }, async () => "b out");
});

// No-op tries: they bring a fresh worker's average try duration down (claim-ahead on).
export const warm = dag({ id: "lost_warm", maxActiveTasks: 1000 }, (t) => {
  for (let i = 0; i < 30; i++) t.task("w" + i, { queue: "lost_handback" }, async () => undefined);
});

// Every try writes "task:try" to conf.ledger, then runs until conf.release exists.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const holding = (queue) => (t) => {
  for (let i = 0; i < 3; i++) {
    t.task("h" + i, { queue }, async (ctx) => {
      appendFileSync(String(ctx.conf.ledger), ctx.taskId + ":" + ctx.tryNumber + "\\n");
      while (!existsSync(String(ctx.conf.release)) && !ctx.signal.aborted) await sleep(10);
    });
  }
};
export const hold = dag({ id: "lost_hold", maxActiveTasks: 1000 }, holding("lost_handback"));
export const holdStop = dag({ id: "lost_hold_stop", maxActiveTasks: 1000 }, holding("lost_stop"));
`);

/**
 * The Db, where the next transaction (Db.tx or Db.batchTx) whose statements so far, COMMIT
 * included, match `lose` (armed by the returned function) commits on the server and then fails
 * as if the connection dropped before the answer (or, `sent: false`, fails the same way without
 * reaching the server: nothing committed). `beforeLoss` runs between the commit and the failure:
 * what the worker's processes do meanwhile, it sees only after.
 */
function losingAcks(db: Db): {
  db: Db;
  loseNext(lose: (sql: string) => boolean, sent?: boolean, beforeLoss?: () => Promise<void>): void;
  lost: () => number;
  /** Errors thrown by beforeLoss hooks: the loss is simulated all the same, and a test asserts none. */
  hookErrors: Error[];
} {
  let armed: { lose: (sql: string) => boolean; sent: boolean; beforeLoss?: () => Promise<void> } | undefined;
  let lost = 0;
  const hookErrors: Error[] = [];
  // No restore needed: each checkout of a pooled connection is a new wrapper object (mysql2/promise).
  const patch = (conn: Tx) => {
    const query = conn.query.bind(conn) as (sql: string, params?: unknown) => Promise<unknown>;
    const statements: string[] = [];
    (conn as unknown as { query: typeof query }).query = async (sql: string, params?: unknown) => {
      if (typeof sql === "string") statements.push(sql);
      const hit = armed && typeof sql === "string" && /\bCOMMIT\b/.test(sql) && armed.lose(statements.join(";\n")) ? armed : undefined;
      if (hit) armed = undefined;
      const answer = hit?.sent === false ? undefined : await query(sql, params);
      if (hit) {
        lost++;
        // The loss is what the worker must see, whatever the hook met (a deadline on a loaded
        // machine): its own error would reach the worker as an outright failure instead.
        await hit.beforeLoss?.().catch((err: Error) => void hookErrors.push(err));
        throw Object.assign(new Error("Connection lost: The server closed the connection."), { code: "PROTOCOL_CONNECTION_LOST", fatal: true });
      }
      return answer;
    };
  };
  const wrapped: Db = {
    ...db,
    tx: (fn) =>
      db.tx((conn) => {
        patch(conn);
        return fn(conn);
      }),
    batchTx: (fn) =>
      db.batchTx((btx) => {
        patch(btx.conn);
        return fn(btx);
      }),
  };
  return { db: wrapped, loseNext: (lose, sent = true, beforeLoss) => (armed = { lose, sent, beforeLoss }), lost: () => lost, hookErrors };
}

/** A hand-back's transaction (store/transitions/handBack.ts). */
const isHandBack = (sql: string) => sql.includes("steps_kept = EXISTS");

describe("worker: a COMMIT whose answer is lost", () => {
  // A short zombie timeout: an orphaned try is reaped (and the run failed) within seconds.
  // Statements as text: a fault finds its transaction by the statements' text, which a prepared
  // statement's EXECUTE does not carry (store/preparedStatements.ts).
  const h = new Harness({ worker: false, taskHeartbeatTimeoutMs: 3000, db: { preparedStatements: false } });
  const messages: string[] = [];
  const logger = capturingLogger(messages);
  let faults: ReturnType<typeof losingAcks>;
  const workers: Worker[] = [];

  let scratch: string;

  beforeAll(async () => {
    await h.start({ "lost.ts": DAGS });
    await h.run();
    faults = losingAcks(h.db);
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-lost-ack-"));
  });
  // Each test's workers stop when it ends: one left claiming ahead on its queue could hand back
  // tries (and take a fault armed for the next test) while the next test runs.
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop(2000).catch(() => undefined);
  });
  afterAll(async () => {
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  function startWorker(queue: string, options: Partial<WorkerOptions> = {}): Worker {
    const worker = new Worker(faults.db, h.clock, logger, {
      concurrency: 1,
      queues: [queue],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      heartbeatMs: 200,
      heartbeatTimeoutMs: 3000,
      pollMaxMs: 100,
      ...options,
    });
    workers.push(worker);
    worker.start();
    return worker;
  }

  async function runOf(dagId: string, runId: string) {
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id", [
      dagId,
      runId,
    ]);
    return { state: run!.state as string, tasks: Object.fromEntries(tis.map((t) => [t.task_id, `${t.state}#${t.try_number}`])) };
  }

  const ended = async (dagId: string, runId: string) => {
    const run = await runOf(dagId, runId);
    return run.state === "success" || run.state === "failed" ? run : false;
  };

  it("runs the downstream task a finish claimed when that finish's COMMIT answer was lost, and says its result was recorded", async () => {
    messages.length = 0;
    const lostBefore = faults.lost();
    // The finish of `a` (its fenced UPDATE sets end_date) that also claims `b` (the fast path).
    faults.loseNext((sql) => sql.includes("end_date = ?") && sql.includes("claim_token = ?"));
    startWorker("lost_finish");
    const runId = await h.trigger("lost_finish");
    const run = await waitFor("the run to end", () => ended("lost_finish", runId), 20_000);
    expect(faults.lost() - lostBefore).toBe(1);
    // b never ran before it was handed back: no try of it was used up, and no zombie.
    expect(run).toEqual({ state: "success", tasks: { a: "success#1", b: "success#1", c: "success#1" } });
    expect(messages.filter((m) => /no longer ours/.test(m))).toEqual([]);
    expect(messages.some((m) => /recorded by the call whose answer was lost/.test(m))).toBe(true);
    expect(messages.filter((m) => /handed back/.test(m))).toEqual([
      "warn: handed back 1 task instance(s) claimed for this worker by a database call whose answer was lost (connection lost around its COMMIT)",
    ]);
    const [[out]] = await h.db.pool.query<RowDataPacket[]>("SELECT value FROM xcom WHERE task_id = 'b' AND dag_run_id = (SELECT id FROM dag_run WHERE run_id = ? AND dag_id = 'lost_finish')", [runId]);
    expect(JSON.parse(out!.value)).toBe("a out via b");
  }, 30_000);

  it("runs the tries a claim took when that claim's COMMIT answer was lost", async () => {
    messages.length = 0;
    const lostBefore = faults.lost();
    // The claim's last batch reads back what it claimed (queued_at, for claim latency).
    faults.loseNext((sql) => sql.includes("ti.queued_at"));
    startWorker("lost_claim");
    const runId = await h.trigger("lost_claim");
    const run = await waitFor("the run to end", () => ended("lost_claim", runId), 20_000);
    expect(faults.lost() - lostBefore).toBe(1);
    expect(run).toEqual({ state: "success", tasks: { a: "success#1", b: "success#1" } });
    expect(messages.filter((m) => /handed back/.test(m))).toHaveLength(1);
  }, 30_000);

  it("hands back nothing when the call whose answer was lost did not commit: its results are recorded on the retry", async () => {
    messages.length = 0;
    const lostBefore = faults.lost();
    // The finish of `a`, lost before it reached the server: `a` is still running under the
    // worker's token with its result unrecorded, and must not be taken for an orphan.
    faults.loseNext((sql) => sql.includes("end_date = ?") && sql.includes("claim_token = ?"), false);
    startWorker("lost_finish");
    const runId = await h.trigger("lost_finish");
    const run = await waitFor("the run to end", () => ended("lost_finish", runId), 20_000);
    expect(faults.lost() - lostBefore).toBe(1);
    expect(run).toEqual({ state: "success", tasks: { a: "success#1", b: "success#1", c: "success#1" } });
    expect(messages.filter((m) => /handed back|no longer ours|answer was lost/.test(m))).toEqual([]);
  }, 30_000);

  async function ledgerLines(file: string): Promise<string[]> {
    return (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);
  }

  async function tryRows(dagId: string, runId: string) {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT task_id, state, try_number, claim_token FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id",
      [dagId, runId],
    );
    return rows.map((r) => ({ task: r.task_id as string, state: r.state as string, try: Number(r.try_number), token: r.claim_token as string | null }));
  }

  /** Runs no-op tries on `worker` until its average try (as the worker averages them) is well under the claim-ahead threshold. */
  async function warmUp(worker: Worker): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const runId = await h.trigger("lost_warm");
      expect(await waitFor("the warm-up run to end", () => ended("lost_warm", runId), 20_000)).toMatchObject({ state: "success" });
      const [rows] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT start_date, end_date FROM task_instance WHERE claim_token = ? AND end_date IS NOT NULL ORDER BY end_date, id",
        [worker.id],
      );
      let average: number | undefined;
      for (const r of rows) {
        const ms = (r.end_date as Date).getTime() - (r.start_date as Date).getTime();
        average = average === undefined ? ms : average * 0.8 + ms * 0.2;
      }
      if (average !== undefined && average < 40) return;
    }
    throw new Error("the worker's tries stayed too long on average to claim ahead");
  }

  it("does not run tries whose hand-back lost its COMMIT answer: they were queued again, and each task runs once", async () => {
    messages.length = 0;
    const worker = startWorker("lost_handback", { claimAhead: 2, claimAheadMaxWaitMs: 300 });
    await warmUp(worker);
    const ledger = path.join(scratch, "handback-ledger");
    const release = path.join(scratch, "handback-release");
    const lostBefore = faults.lost();
    let runId = "";
    // The hand-back of the tries claimed ahead (one slot, so all but the first wait, and are
    // handed back after 300 ms) commits; before its answer is lost, the try holding the slot
    // ends, so the worker has a free slot the moment it takes the hand-back for failed.
    faults.loseNext(isHandBack, true, async () => {
      await writeFile(release, "");
      await waitFor("the try holding the slot to be recorded", async () => {
        const started = (await ledgerLines(ledger)).map((l) => l.split(":")[0]);
        const rows = await tryRows("lost_hold", runId);
        return started.length > 0 && started.every((task) => rows.find((r) => r.task === task)?.state === "success");
      }, 20_000);
    });
    runId = await h.trigger("lost_hold", { conf: { ledger, release } });
    const run = await waitFor("the run to end", () => ended("lost_hold", runId), 30_000);
    // The hand-back committed, so its tries may be claimed again and the run end while the hook
    // still waits to see the try holding the slot recorded: the worker learns of the loss after.
    await waitFor("the worker to take the hand-back's answer for lost", async () =>
      messages.some((m) => /^warn: the answer to handing back \d+ task instance\(s\) was lost/.test(m)),
    );
    expect(faults.hookErrors).toEqual([]);
    expect(faults.lost() - lostBefore).toBe(1);
    // Each task ran once: no try ran here while queued in the database.
    expect((await ledgerLines(ledger)).sort()).toEqual(["h0:1", "h1:1", "h2:1"]);
    expect(run).toEqual({ state: "success", tasks: { h0: "success#1", h1: "success#1", h2: "success#1" } });
    expect(messages.filter((m) => /no longer ours|result discarded/.test(m))).toEqual([]);
  }, 60_000);

  it("hands back at stop the tries whose hand-back lost its COMMIT before it reached the server, and stops cleanly", async () => {
    messages.length = 0;
    // Nothing claimed ahead: the one running try is the only one to hand back (a try waiting for
    // the slot could be handed back by the wait limit first, and take the fault meant for stop()).
    const worker = startWorker("lost_stop", { claimAhead: 0 });
    workers.splice(workers.indexOf(worker), 1);
    const ledger = path.join(scratch, "stop-ledger");
    const release = path.join(scratch, "stop-release");
    const runId = await h.trigger("lost_hold_stop", { conf: { ledger, release } });
    await waitFor("a try to start", async () => (await ledgerLines(ledger)).length === 1);
    const lostBefore = faults.lost();
    // Nothing committed: the try stays running under the stopped worker's token unless recovery hands it back.
    faults.loseNext(isHandBack, false);
    const stopped = await worker.stop(100).then(
      () => "stopped",
      (err: Error) => err.message,
    );
    expect(faults.lost() - lostBefore).toBe(1);
    const [started] = (await ledgerLines(ledger)).map((l) => l.split(":")[0]);
    // Queued again, the try not counted: not left running to be reaped as a zombie.
    expect((await tryRows("lost_hold_stop", runId)).find((r) => r.task === started)).toEqual({ task: started, state: "queued", try: 0, token: null });
    expect(stopped).toBe("stopped");
    expect(messages.filter((m) => /^\w+: (handed back|the answer to handing back)/.test(m))).toEqual([
      "warn: the answer to handing back 1 task instance(s) was lost (connection lost around its COMMIT): they are not run here; those still claimed by this worker are handed back once the database answers",
      "warn: handed back 1 task instance(s) claimed for this worker by a database call whose answer was lost (connection lost around its COMMIT)",
    ]);
    await writeFile(release, "");
    startWorker("lost_stop");
    expect(await waitFor("the run to end", () => ended("lost_hold_stop", runId), 20_000)).toEqual({
      state: "success",
      tasks: { h0: "success#1", h1: "success#1", h2: "success#1" },
    });
  }, 60_000);
});
