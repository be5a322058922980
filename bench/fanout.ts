// fanout: one run of 1 root → 10,000 no-op tasks → 1 join, then 100 runs × 100 tasks
// (root → 98 → join), on `baton standalone`.
//   tasks_per_s       the lower of the two phases (both must sustain the target):
//                     one run: 10,002 tasks / (run start → run end);
//                     100 runs: 10,000 tasks / (first trigger recorded → last run end).
//   join_delay_ms     join's in-task start − the latest end of the 10,000 middle tasks
//                     (task_instance.end_date: when the worker got the task's result).
import type { Db } from "../store/db.ts";
import { cpuMetrics, cpuNote, databaseServerPid, meterCpu, type CpuSpent } from "./cpu.ts";
import { FANOUT_DAG } from "./dags.ts";
import {
  environment,
  failedTasks,
  logNotes,
  freshDatabase,
  mapLimit,
  round,
  runTimes,
  scrapeMetrics,
  serverVersion,
  startStandalone,
  taskStarts,
  taskSummary,
  trigger,
  waitForRun,
  waitForRunsEnd,
  writeResult,
  type Standalone,
} from "./lib.ts";

export const WIDE = 10_000;
export const RUNS = 100;
/** Local worker slots of the standalone process for this benchmark. */
export const FANOUT_WORKERS = Number(process.env.BENCH_FANOUT_WORKERS ?? 4);

export const fanoutFiles = (wide = WIDE): Record<string, string> => ({
  "fanout.ts": FANOUT_DAG("bench_fanout", wide),
  "fanout100.ts": FANOUT_DAG("bench_fanout100", 98),
});

export interface FanoutFigures {
  oneRunTasksPerS: number;
  manyRunsTasksPerS: number;
  joinDelayMs: number;
  /** The join's claim (task_instance.start_date) − the last middle task's end. */
  joinClaimDelayMs: number;
  oneRunMs: number;
  manyRunsMs: number;
  /** CPU spent during the 10,000-wide run, and during the 100 runs, by Baton, MariaDB and the benchmark. */
  oneRunCpu: CpuSpent;
  manyRunsCpu: CpuSpent;
  /** The worker loop's database calls during the 10,000-wide run (from the standalone's /metrics). */
  oneRunDbCalls: WorkerDbCalls;
  problems: string[];
}

/** What the worker loop's database calls did over a window, from two scrapes of baton_worker_db_call_*. */
export interface WorkerDbCalls {
  /** Summed duration of the calls over the window's wall time: near 1, the loop never rested. */
  busy: number;
  finishMsPerCall: number;
  finishTriesPerCall: number;
  claimMsPerCall: number;
  claimTriesPerCall: number;
}

function workerDbCalls(before: Map<string, number>, after: Map<string, number>, wallMs: number): WorkerDbCalls {
  const delta = (series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);
  const calls = (call: string) => delta(`baton_worker_db_call_duration_seconds_count{call="${call}"}`);
  const seconds = (call: string) => delta(`baton_worker_db_call_duration_seconds_sum{call="${call}"}`);
  const tries = (call: string) => delta(`baton_worker_db_call_tries_total{call="${call}"}`);
  return {
    busy: ((seconds("finish") + seconds("claim")) * 1000) / wallMs,
    finishMsPerCall: (seconds("finish") * 1000) / calls("finish"),
    finishTriesPerCall: tries("finish") / calls("finish"),
    claimMsPerCall: (seconds("claim") * 1000) / calls("claim"),
    claimTriesPerCall: tries("claim") / calls("claim"),
  };
}

/** Waits for runs; past the deadline, answers how many of their tasks had finished instead. */
async function waitForRuns(db: Db, dagId: string, runIds: string[], deadline: number): Promise<{ finished: boolean; states: string[] }> {
  try {
    const states = await waitForRunsEnd(db, dagId, runIds, Math.max(1000, deadline - Date.now()));
    return { finished: true, states };
  } catch (err) {
    if (!/timed out/.test((err as Error).message)) throw err;
    return { finished: false, states: [] };
  }
}

/** Tasks of these runs that ended, and the span from the first run's start (or queueing) to now or their last end. */
async function progress(db: Db, dagId: string, runIds: string[], from: "start_date" | "queued_at") {
  const [[row]] = (await db.pool.query(
    `SELECT MIN(r.${from}) AS first, (SELECT COUNT(*) FROM task_instance t JOIN dag_run r2 ON r2.id = t.dag_run_id
                                         WHERE r2.dag_id = ? AND r2.run_id IN (${runIds.map(() => "?").join(", ")}) AND t.end_date IS NOT NULL) AS done,
            MAX(r.end_date) AS last_end, SUM(r.end_date IS NULL) AS open
       FROM dag_run r WHERE r.dag_id = ? AND r.run_id IN (${runIds.map(() => "?").join(", ")})`,
    [dagId, ...runIds, dagId, ...runIds],
  )) as unknown as [{ first: Date; done: number; last_end: Date | null; open: number }[]];
  const end = Number(row!.open) > 0 || !row!.last_end ? Date.now() : row!.last_end.getTime();
  return { done: Number(row!.done), ms: end - row!.first.getTime() };
}

/**
 * One run of bench_fanout (root → `wide` → join), then `runs` runs of bench_fanout100, within
 * `budgetMs` (half each). A phase that does not finish in time is measured on the tasks it
 * finished (throughput = finished tasks / elapsed) and reported as a problem.
 */
export async function measureFanout(db: Db, baton: Pick<Standalone, "port" | "process">, wide = WIDE, runs = RUNS, budgetMs = 100_000): Promise<FanoutFigures> {
  const problems: string[] = [];
  const began = Date.now();
  // Warm-up: the children load the DAG bundles.
  await waitForRun(db, "bench_fanout100", await trigger(baton.port, "bench_fanout100"));
  const cpuParts = { baton: baton.process.pid, mariadb: databaseServerPid(), bench: "self" as const };

  const scrapedBefore = await scrapeMetrics(baton.port);
  let meter = meterCpu(cpuParts);
  const runId = await trigger(baton.port, "bench_fanout");
  const one = await waitForRuns(db, "bench_fanout", [runId], began + budgetMs / 2);
  const oneRunCpu = meter.stop();
  const oneRunDbCalls = workerDbCalls(scrapedBefore, await scrapeMetrics(baton.port), oneRunCpu.wallMs);
  let joinDelayMs = Number.NaN;
  let joinClaimDelayMs = Number.NaN;
  const oneProgress = await progress(db, "bench_fanout", [runId], "start_date");
  if (!one.finished) problems.push(`the ${wide + 2}-task run did not finish within ${budgetMs / 2000} s: ${oneProgress.done} tasks done`);
  else {
    const run = await runTimes(db, "bench_fanout", runId);
    const summary = await taskSummary(db, [run.id]);
    if (summary.byState.success !== wide + 2) {
      // The join never ran normally: no join delay to measure.
      problems.push(`bench_fanout run ${run.state}: task states ${JSON.stringify(summary.byState)}; join delay not measured`);
      problems.push(...(await failedTasks(db, [run.id])));
    } else {
      const [[last]] = (await db.pool.query(
        "SELECT MAX(end_date) AS last_end, (SELECT start_date FROM task_instance WHERE dag_run_id = ? AND task_id = 'join') AS join_claim FROM task_instance WHERE dag_run_id = ? AND task_id NOT IN ('root', 'join')",
        [run.id, run.id],
      )) as unknown as [{ last_end: Date; join_claim: Date | null }[]];
      const joinStart = (await taskStarts(db, run.id)).get("join");
      if (joinStart !== undefined) joinDelayMs = joinStart - last.last_end.getTime();
      if (last.join_claim) joinClaimDelayMs = last.join_claim.getTime() - last.last_end.getTime();
    }
  }

  meter = meterCpu(cpuParts);
  const runIds = await mapLimit(Array.from({ length: runs }, (_, i) => i), 10, () => trigger(baton.port, "bench_fanout100"));
  const many = await waitForRuns(db, "bench_fanout100", runIds, began + budgetMs);
  const manyRunsCpu = meter.stop();
  const manyProgress = await progress(db, "bench_fanout100", runIds, "queued_at");
  if (!many.finished) problems.push(`${runs} runs × 100 tasks did not finish within the budget: ${manyProgress.done} tasks done`);
  const failed = many.states.filter((s) => s !== "success").length;
  if (failed > 0) {
    problems.push(`${failed} of ${runs} bench_fanout100 runs did not succeed`);
    const [ids] = (await db.pool.query(`SELECT id FROM dag_run WHERE dag_id = 'bench_fanout100' AND state = 'failed'`)) as unknown as [{ id: number }[]];
    problems.push(...(await failedTasks(db, ids.map((r) => Number(r.id)))));
  }
  return {
    oneRunTasksPerS: oneProgress.done / (oneProgress.ms / 1000),
    manyRunsTasksPerS: manyProgress.done / (manyProgress.ms / 1000),
    joinDelayMs,
    joinClaimDelayMs,
    oneRunMs: oneProgress.ms,
    manyRunsMs: manyProgress.ms,
    oneRunCpu,
    manyRunsCpu,
    oneRunDbCalls,
    problems,
  };
}

export async function fanout(): Promise<void> {
  const db = await freshDatabase("fanout");
  let baton: Standalone | undefined;
  try {
    baton = await startStandalone(db, fanoutFiles(), { BATON_WORKERS: String(FANOUT_WORKERS) });
    const f = await measureFanout(db, baton);
    const logProblems = await logNotes([baton.baton]);
    await writeResult({
      name: "fanout",
      metrics: {
        tasks_per_s: round(Math.min(f.oneRunTasksPerS, f.manyRunsTasksPerS), 0),
        join_delay_ms: round(f.joinDelayMs),
        tasks_per_s_one_run: round(f.oneRunTasksPerS, 0),
        tasks_per_s_100_runs: round(f.manyRunsTasksPerS, 0),
        join_claim_delay_ms: round(f.joinClaimDelayMs),
        // The 10,000-wide run: the CPU each task costs, and the rate the cores allow at that cost.
        ...cpuMetrics(f.oneRunCpu, WIDE + 2, "task"),
        // The same run: how busy the worker's one-at-a-time database loop was, and its calls.
        worker_db_busy: round(f.oneRunDbCalls.busy),
        worker_db_finish_ms_per_call: round(f.oneRunDbCalls.finishMsPerCall),
        worker_db_finish_tries_per_call: round(f.oneRunDbCalls.finishTriesPerCall, 1),
        worker_db_claim_ms_per_call: round(f.oneRunDbCalls.claimMsPerCall),
        worker_db_claim_tries_per_call: round(f.oneRunDbCalls.claimTriesPerCall, 1),
      },
      targets: { tasks_per_s: 5000, join_delay_ms: 20 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `BATON_WORKERS=${FANOUT_WORKERS}; one run of ${WIDE + 2} tasks took ${round(f.oneRunMs, 0)} ms (run start → end); ${RUNS} runs × 100 tasks took ${round(f.manyRunsMs, 0)} ms (first trigger recorded → last run end)`,
        "tasks_per_s is the lower of the two phases; join_delay_ms = join's in-task start − the last middle task's end_date",
        cpuNote(`the ${WIDE + 2}-task run (baton = the standalone process and its task processes)`, f.oneRunCpu, WIDE + 2, "task"),
        cpuNote(`the ${RUNS} runs × 100 tasks`, f.manyRunsCpu, RUNS * 100, "task"),
        `worker_db_* (baton_worker_db_call_* scraped from the standalone around the ${WIDE + 2}-task run): its worker's database loop, which makes one call at a time, ` +
          `was in a call ${Math.round(f.oneRunDbCalls.busy * 100)} % of the run; near 100 %, throughput = tries per call ÷ time per call`,
        ...f.problems.map((p) => `PROBLEM: ${p}`),
        ...logProblems,
      ],
    });
  } finally {
    await baton?.stop();
    await db.drop();
  }
}
