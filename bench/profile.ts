// profile: where the time of one chain hop goes, measured — not guessed.
//
// Baton's own Scheduler and Worker classes run in this process (instead of inside `baton
// standalone`) with temporary instrumentation that changes no production file:
//   - the Db handed to them wraps batchTx(): when a transaction is asked for, when it gets its
//     connection, and each round trip (statements, then COMMIT) with its first statement;
//   - Child.prototype.request is wrapped: when a try is sent to a task process over IPC and
//     when its outcome comes back;
//   - the tasks return their own start time (XCom), as in the chain benchmark.
// For each hop task i → task i+1 of a 100-task chain (5 runs after a warm-up run):
//   run + report     task i starts → its outcome is back in the worker (task body, the child's
//                    log file, IPC child → worker)
//   worker pick-up   outcome back → finishTries asks for a transaction
//   connection       → pool connection acquired
//   round trip 1     record i's success + XCom, claim i+1 for this worker (the fast path:
//                    finish and queue/claim the downstream in one statement batch)
//   commit           round trip 2: COMMIT (the fsync)
//   dispatch         committed → try i+1 sent to a warm child (shape, bundle path, log path)
//   start in child   sent → task i+1 starts (IPC worker → child, task context, log stream,
//                    bundle import from the child's cache)
// The sum is the hop. Also measured: the first task of a fresh child (cold bundle import), a
// plain claim (claimTasks, for runs' first tasks), and the floor: one `SELECT 1` round trip
// and one single-row UPDATE + COMMIT on this server.
import os from "node:os";
import path from "node:path";
import { systemClock } from "../core/clock.ts";
import { Child } from "../core/childProcess.ts";
import { createLogger } from "../core/logger.ts";
import { Worker } from "../executor/worker.ts";
import { Scheduler } from "../scheduler/loop.ts";
import type { BatchTx, Db, Statement } from "../store/db.ts";
import { createDagRun } from "../store/transitions/createDagRun.ts";
import { CHAIN_DAG } from "./dags.ts";
import {
  environment,
  freshDatabase,
  median,
  migrateDatabase,
  percentile,
  round,
  runTimes,
  serverVersion,
  spawnBaton,
  taskStarts,
  waitForDags,
  waitForRun,
  workspace,
  writeResult,
} from "./lib.ts";

const TASKS = 100;
const REPETITIONS = 5;
const now = () => performance.timeOrigin + performance.now();

interface TxTrace {
  asked: number;
  connected?: number;
  trips: { sql: string; start: number; end: number }[];
  /** The first round trip also committed (BatchTx.runCommittingIf): a hop of one round trip. */
  committedEarly?: boolean;
  end?: number;
  kind?: "finish" | "claim" | "other";
}

interface SendTrace {
  taskId: string;
  runId: string;
  pid: number;
  sent: number;
  back?: number;
}

function instrument(db: Db, traces: TxTrace[]): Db {
  const wrap = (btx: BatchTx, trace: TxTrace): BatchTx => {
    const timed = async (statements: Statement[], commit: boolean) => {
      const start = now();
      const result = commit ? await btx.commit(statements) : await btx.run(statements);
      trace.trips.push({ sql: commit ? `COMMIT after ${statements.length} statement(s)` : (statements[0]?.sql ?? "").trim().replace(/\s+/g, " "), start, end: now() });
      return result;
    };
    return {
      get conn() {
        return btx.conn;
      },
      run: (s) => timed(s, false),
      commit: (s = []) => timed(s, true),
      get conditionalCommit() {
        return btx.conditionalCommit;
      },
      runCommittingIf: async (s, condition, then, otherwise) => {
        const start = now();
        const result = await btx.runCommittingIf(s, condition, then, otherwise);
        trace.trips.push({ sql: (s[0]?.sql ?? "").trim().replace(/\s+/g, " "), start, end: now() });
        trace.trips.push({ sql: result.committed ? "(COMMIT in that round trip)" : "(no COMMIT: the condition failed)", start: now(), end: now() });
        if (result.committed) trace.committedEarly = true;
        return result;
      },
      rollback: () => btx.rollback(),
    };
  };
  return {
    pool: db.pool,
    url: db.url,
    database: db.database,
    tx: (fn) => db.tx(fn),
    actingAs: (who) => db.actingAs(who),
    actor: db.actor,
    withEventDetail: (detail) => db.withEventDetail(detail),
    eventDetail: db.eventDetail,
    withStatementTimeout: (ms) => db.withStatementTimeout(ms),
    statementTimeoutMs: db.statementTimeoutMs,
    close: () => db.close(),
    batchTx: async (fn) => {
      const trace: TxTrace = { asked: now(), trips: [] };
      traces.push(trace);
      try {
        return await db.batchTx((btx) => {
          trace.connected ??= now();
          return fn(wrap(btx, trace));
        });
      } finally {
        trace.end = now();
        const first = trace.trips[0]?.sql ?? "";
        trace.kind = /^UPDATE task_instance SET state = \?, (start_date = \?, )?end_date/.test(first) ? "finish" : first.includes("state = 'queued'") ? "claim" : "other";
      }
    },
  };
}

export async function profile(): Promise<void> {
  const db = await freshDatabase("profile");
  const ws = await workspace({ "chain.ts": CHAIN_DAG("bench_profile", TASKS) });
  const traces: TxTrace[] = [];
  const sends: SendTrace[] = [];
  const originalRequest = Child.prototype.request;
  let worker: Worker | undefined;
  let scheduler: Scheduler | undefined;
  try {
    await migrateDatabase(db);
    const processor = spawnBaton("dag-processor", ["dag-processor"], db, ws);
    await waitForDags(db, ["bench_profile"]);
    await processor.stop();

    Child.prototype.request = function (this: Child, message: Record<string, unknown>) {
      const task = message.task as { taskId?: string; runId?: string } | undefined;
      if (message.type !== "run" || !task?.taskId) return originalRequest.call(this, message) as never;
      const trace: SendTrace = { taskId: task.taskId, runId: task.runId!, pid: this.process.pid!, sent: now() };
      sends.push(trace);
      const reply = originalRequest.call(this, message) as Promise<unknown>;
      reply.then(() => (trace.back = now()), () => undefined);
      return reply as never;
    } as typeof Child.prototype.request;

    const logger = createLogger("warn");
    const idb = instrument(db, traces);
    worker = new Worker(idb, systemClock, logger, {
      concurrency: 2,
      queues: ["default"],
      hostname: os.hostname(),
      logsFolder: path.join(ws.dir, "logs"),
      cacheFolder: path.join(ws.dir, "cache"),
    });
    const w = worker;
    scheduler = new Scheduler(idb, systemClock, logger, { intervalMs: 1000, onTasksQueued: () => w.wake() });
    await worker.start();
    await scheduler.start();

    const runOnce = async () => {
      const { runId } = await createDagRun(db, systemClock.now(), { dagId: "bench_profile", runType: "manual", logicalDate: systemClock.now(), conf: {} });
      scheduler!.wake();
      if ((await waitForRun(db, "bench_profile", runId, 60_000)) !== "success") throw new Error(`profile run ${runId} failed`);
      return runId;
    };
    const warmRun = await runOnce();
    const runs: string[] = [];
    for (let r = 0; r < REPETITIONS; r++) runs.push(await runOnce());

    // Cold start: the first try each child ran (fresh process, bundle not imported yet).
    const warmStarts = await taskStarts(db, (await runTimes(db, "bench_profile", warmRun)).id);
    const firstPerChild = new Map<number, SendTrace>();
    for (const s of sends) if (s.runId === warmRun && !firstPerChild.has(s.pid)) firstPerChild.set(s.pid, s);
    const cold = [...firstPerChild.values()].map((s) => warmStarts.get(s.taskId)! - s.sent);

    const segments: Record<string, number[]> = {
      run_and_report: [],
      worker_pickup: [],
      connection: [],
      round_trip_1_record_and_claim: [],
      round_trip_2_commit: [],
      dispatch: [],
      start_in_child: [],
      hop: [],
    };
    const finishes = traces.filter((t) => t.kind === "finish" && t.connected && t.end).sort((a, b) => a.asked - b.asked);
    let batched = 0;
    for (const runId of runs) {
      const starts = await taskStarts(db, (await runTimes(db, "bench_profile", runId)).id);
      const sent = new Map(sends.filter((s) => s.runId === runId).map((s) => [s.taskId, s]));
      const ids = [...starts.keys()].sort();
      for (let i = 0; i + 1 < ids.length; i++) {
        const a = sent.get(ids[i]!);
        const b = sent.get(ids[i + 1]!);
        if (!a?.back || !b) continue;
        const tx = finishes.find((t) => t.asked >= a.back!);
        if (!tx || tx.end! > b.sent || (tx.trips.length < 2 && !tx.committedEarly)) {
          batched++;
          continue;
        }
        const startA = starts.get(ids[i]!)!;
        const startB = starts.get(ids[i + 1]!)!;
        segments.run_and_report!.push(a.back - startA);
        segments.worker_pickup!.push(tx.asked - a.back);
        segments.connection!.push(tx.connected! - tx.asked);
        segments.round_trip_1_record_and_claim!.push(tx.trips[0]!.end - tx.connected!);
        segments.round_trip_2_commit!.push(tx.trips[tx.trips.length - 1]!.end - tx.trips[0]!.end);
        segments.dispatch!.push(b.sent - tx.end!);
        segments.start_in_child!.push(startB - b.sent);
        segments.hop!.push(startB - startA);
      }
    }
    const claims = traces.filter((t) => t.kind === "claim" && t.trips.length >= 3 && t.end).map((t) => t.end! - t.asked);

    // The physical floor on this server: one round trip, and one durable single-row commit.
    const conn = await db.pool.getConnection();
    const ping: number[] = [];
    const commit: number[] = [];
    try {
      await conn.query("CREATE TABLE bench_floor (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB");
      await conn.query("INSERT INTO bench_floor VALUES (1, 0)");
      for (let i = 0; i < 200; i++) {
        let t0 = now();
        await conn.query("SELECT 1");
        ping.push(now() - t0);
        t0 = now();
        await conn.query("START TRANSACTION; UPDATE bench_floor SET n = n + 1 WHERE id = 1; COMMIT");
        commit.push(now() - t0);
      }
    } finally {
      conn.release();
    }

    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const metrics: Record<string, number> = {};
    // Means add up to the mean hop; medians show the typical hop.
    for (const [name, values] of Object.entries(segments)) metrics[`${name}_mean_ms`] = round(mean(values), 3);
    for (const [name, values] of Object.entries(segments)) metrics[`${name}_p50_ms`] = round(percentile(values, 50), 3);
    metrics.hop_p99_ms = round(percentile(segments.hop!, 99), 3);
    metrics.cold_child_first_task_ms = round(median(cold), 1);
    metrics.plain_claim_tx_p50_ms = round(median(claims), 3);
    metrics.floor_select_1_ms = round(median(ping), 3);
    metrics.floor_update_commit_ms = round(median(commit), 3);
    const sumOfMeans = Object.entries(segments).filter(([k]) => k !== "hop").reduce((s, [, v]) => s + mean(v), 0);
    // The tail: which segments make the slowest tenth of hops slow (their means there against all hops').
    const hops = segments.hop!;
    const p90 = percentile(hops, 90);
    const slow = hops.map((h, i) => (h > p90 ? i : -1)).filter((i) => i >= 0);
    const tail = Object.entries(segments)
      .filter(([k]) => k !== "hop")
      .map(([name, values]) => `${name} ${round(mean(slow.map((i) => values[i]!)), 3)} (all ${round(mean(values), 3)})`);
    const rt1Sql = finishes.find((t) => t.trips.length >= 2 || t.committedEarly)?.trips.map((t) => t.sql.slice(0, 60)) ?? [];
    await writeResult({
      name: "profile",
      metrics,
      targets: {},
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${segments.hop!.length} hops of ${REPETITIONS} runs × ${TASKS} tasks (after a warm-up run), Worker (2 slots) and Scheduler in the benchmark process, instrumented from outside; ${batched} hop(s) skipped (not a plain one-task fast-path hop)`,
        `sum of the segment means ${round(sumOfMeans, 3)} ms = mean hop ${round(mean(segments.hop!), 3)} ms`,
        `finish transaction round trips: ${rt1Sql.join(" | ")}`,
        `the slowest tenth of hops (over p90 ${round(p90, 3)} ms, ${slow.length} hops), segment means in ms: ${tail.join(", ")}`,
        `cold: first task of each fresh child (fork + tsx loader + bundle import, sent → task start) ${cold.map((c) => round(c, 1)).join(", ")} ms`,
        `floor: SELECT 1 round trip p50 ${round(median(ping), 3)} ms; UPDATE one row + COMMIT in one round trip p50 ${round(median(commit), 3)} ms (innodb_flush_log_at_trx_commit as configured)`,
      ],
    });
  } finally {
    Child.prototype.request = originalRequest;
    await scheduler?.stop().catch(() => undefined);
    await worker?.stop(2000).catch(() => undefined);
    await ws.remove();
    await db.drop();
  }
}
