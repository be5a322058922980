// A COMMIT whose answer is lost (the connection drops after the server committed): the worker
// cannot tell whether its call happened. The tries that transaction claimed carry the worker's
// token, yet the worker never learned of them: they must not sit `running` until reaped as
// zombies (a try used up, the run failed although they never started). The test loses the
// answer of one chosen transaction deterministically: its batch with COMMIT runs on the
// server, then the call fails with mysql2's "Connection lost" error, as over a dropped link.
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { Logger } from "../../core/logger.ts";
import type { Db, RowDataPacket, Tx } from "../../store/db.ts";
import { Worker } from "../../executor/worker.ts";

const DAGS = dagSource(`
export const finishLost = dag({ id: "lost_finish" }, (t) => {
  const a = t.task("a", { queue: "lost_finish" }, async () => "a out");
  const b = t.task("b", { queue: "lost_finish", upstream: [a] }, async (ctx) => ctx.get(a) + " via b");
  t.task("c", { queue: "lost_finish", upstream: [b] }, async () => "c out");
});

export const claimLost = dag({ id: "lost_claim" }, (t) => {
  const a = t.task("a", { queue: "lost_claim" }, async () => "a out");
  t.task("b", { queue: "lost_claim", upstream: [a] }, async () => "b out");
});
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
} {
  let armed: { lose: (sql: string) => boolean; sent: boolean; beforeLoss?: () => Promise<void> } | undefined;
  let lost = 0;
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
        await hit.beforeLoss?.();
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
  return { db: wrapped, loseNext: (lose, sent = true, beforeLoss) => (armed = { lose, sent, beforeLoss }), lost: () => lost };
}

describe("worker: a COMMIT whose answer is lost", () => {
  // A short zombie timeout: an orphaned try is reaped (and the run failed) within seconds.
  const h = new Harness({ worker: false, taskHeartbeatTimeoutMs: 3000 });
  const messages: string[] = [];
  const logger: Logger = {
    debug() {},
    info: (m) => messages.push(`info: ${m}`),
    warn: (m) => messages.push(`warn: ${m}`),
    error: (m) => messages.push(`error: ${m}`),
    scope: () => logger,
  };
  let faults: ReturnType<typeof losingAcks>;
  const workers: Worker[] = [];

  beforeAll(async () => {
    await h.start({ "lost.ts": DAGS });
    await h.run();
    faults = losingAcks(h.db);
  });
  afterAll(async () => {
    for (const w of workers) await w.stop(2000);
    await h.stop();
  });

  function startWorker(queue: string): Worker {
    const worker = new Worker(faults.db, h.clock, logger, {
      concurrency: 1,
      queues: [queue],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      heartbeatMs: 200,
      heartbeatTimeoutMs: 3000,
      pollMaxMs: 100,
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

  async function trigger(dagId: string): Promise<string> {
    const res = await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: {} });
    expect(res.statusCode).toBe(200);
    return res.json().dag_run_id as string;
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
    const runId = await trigger("lost_finish");
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
    const runId = await trigger("lost_claim");
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
    const runId = await trigger("lost_finish");
    const run = await waitFor("the run to end", () => ended("lost_finish", runId), 20_000);
    expect(faults.lost() - lostBefore).toBe(1);
    expect(run).toEqual({ state: "success", tasks: { a: "success#1", b: "success#1", c: "success#1" } });
    expect(messages.filter((m) => /handed back|no longer ours|answer was lost/.test(m))).toEqual([]);
  }, 30_000);
});
