// deferred: one run of 10,000 `waitForSignal` tasks (each its own signal) → 1 join, then
// 10,000 signals sent over the API by 50 concurrent clients.
//   loop_p99_ms   p99 duration of the scheduler's tick while the 10,000 tasks wait (sampled
//                 for 5 s with a 100 ms interval): Baton's own Scheduler class runs in this
//                 process and its tick() is timed from outside; API, worker and DAG processor
//                 are separate `baton` processes (the distributed deployment)
//   resume_s      last signal answered → the join task's success recorded: every waiting task
//                 resumed (the signal transaction completes it) and its downstream ran
// Needs `t.waitForSignal` and POST …/signals/{name} (issue 6); without them it says so and
// writes nothing.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { systemClock } from "../core/clock.ts";
import { createLogger } from "../core/logger.ts";
import { Scheduler } from "../scheduler/loop.ts";
import {
  environment,
  freePort,
  freshDatabase,
  logNotes,
  mapLimit,
  migrateDatabase,
  percentile,
  ROOT,
  round,
  runTimes,
  serverVersion,
  spawnBaton,
  taskSummary,
  trigger,
  waitFor,
  waitForDags,
  waitForHealth,
  waitForRun,
  workspace,
  writeResult,
  type BatonProcess,
  AUTH,
} from "./lib.ts";

const WAITING = 10_000;
const CLIENTS = 50;
const SAMPLE_MS = 5000;

const DEFERRED_DAG = (id: string, n: number) => `
import { dag } from "baton";
export default dag({ id: "${id}", maxActiveTasks: 100000 }, (t) => {
  const join = t.task("join", async () => performance.timeOrigin + performance.now());
  for (let i = 0; i < ${n}; i++) {
    const name = String(i).padStart(5, "0");
    t.waitForSignal("w" + name, { signal: "s" + name }).then(join);
  }
});
`;

export async function deferred(): Promise<void> {
  const sdk = await readFile(path.join(ROOT, "sdk/types.ts"), "utf8").catch(() => "");
  if (!sdk.includes("waitForSignal")) {
    process.stdout.write("\ndeferred\n  not available: needs waitForSignal (issue 6); no result written\n");
    return;
  }
  const db = await freshDatabase("deferred");
  const ws = await workspace({ "deferred.ts": DEFERRED_DAG("bench_deferred", WAITING) });
  const procs: BatonProcess[] = [];
  let scheduler: Scheduler | undefined;
  const ticks: { at: number; ms: number }[] = [];
  try {
    await migrateDatabase(db);
    const port = freePort();
    procs.push(spawnBaton("dag-processor", ["dag-processor"], db, ws));
    const api = spawnBaton("api", ["api"], db, ws, { BATON_PORT: String(port) });
    procs.push(api);
    procs.push(spawnBaton("worker", ["worker", "--concurrency", "32"], db, ws));
    await waitForHealth(port, api);
    await waitForDags(db, ["bench_deferred"], 60_000);

    // The scheduler loop, in this process, with every tick timed.
    scheduler = new Scheduler(db, systemClock, createLogger("warn"), { intervalMs: 100 });
    const tick = scheduler.tick.bind(scheduler);
    scheduler.tick = async () => {
      const t0 = performance.now();
      try {
        return await tick();
      } finally {
        ticks.push({ at: t0, ms: performance.now() - t0 });
      }
    };
    await scheduler.start();

    const runId = await trigger(port, "bench_deferred");
    const deferStarted = performance.now();
    const [[run]] = (await db.pool.query("SELECT id FROM dag_run WHERE dag_id = 'bench_deferred' AND run_id = ?", [runId])) as unknown as [{ id: number }[]];
    await waitFor(`${WAITING} tasks deferred`, 60_000, async () => {
      const [[row]] = (await db.pool.query("SELECT COUNT(*) AS n FROM task_instance WHERE dag_run_id = ? AND state = 'deferred'", [run!.id])) as unknown as [
        { n: number }[],
      ];
      return Number(row!.n) === WAITING;
    }, 100);
    const deferS = (performance.now() - deferStarted) / 1000;

    // While they wait.
    const sampleFrom = performance.now();
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const waiting = ticks.filter((t) => t.at >= sampleFrom).map((t) => t.ms);

    // 10,000 signals over the API.
    const signalsFrom = performance.now();
    const statuses = await mapLimit(Array.from({ length: WAITING }, (_, i) => i), CLIENTS, async (i) => {
      const name = `s${String(i).padStart(5, "0")}`;
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/dags/bench_deferred/dagRuns/${encodeURIComponent(runId)}/signals/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH },
        body: JSON.stringify({ payload: { i } }),
      });
      await res.arrayBuffer();
      return res.status;
    });
    const lastSignal = Date.now();
    const signalsS = (performance.now() - signalsFrom) / 1000;
    const failedSignals = statuses.filter((s) => s !== 200).length;
    const state = await waitForRun(db, "bench_deferred", runId, 30_000);
    const times = await runTimes(db, "bench_deferred", runId);
    const summary = await taskSummary(db, [times.id]);
    const during = ticks.filter((t) => t.at >= signalsFrom).map((t) => t.ms);
    const problems = [
      ...(failedSignals ? [`${failedSignals} signal request(s) did not answer 200`] : []),
      ...(state !== "success" ? [`run ended ${state}: ${JSON.stringify(summary.byState)}`] : []),
    ];
    await writeResult({
      name: "deferred",
      metrics: {
        loop_p99_ms: round(percentile(waiting, 99)),
        resume_s: round((times.endedAt - lastSignal) / 1000, 3),
        loop_p50_ms: round(percentile(waiting, 50)),
        loop_p99_during_signals_ms: round(percentile(during, 99)),
        defer_all_s: round(deferS),
        signals_per_s: round(WAITING / signalsS, 0),
      },
      targets: { loop_p99_ms: 50, resume_s: 10 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${WAITING} waitForSignal tasks → join in one run; ${waiting.length} scheduler ticks sampled while waiting, ${during.length} while signals arrived; one \`baton worker --concurrency 32\`, \`baton api\`, \`baton dag-processor\``,
        `${WAITING} signals in ${round(signalsS)} s from ${CLIENTS} concurrent clients; deferring all tasks took ${round(deferS)} s; resume_s includes the worker's idle poll (≤ 1 s) for the join`,
        `final task states ${JSON.stringify(summary.byState)}`,
        ...problems.map((p) => `PROBLEM: ${p}`),
        ...(await logNotes(procs)),
      ],
    });
  } finally {
    await scheduler?.stop().catch(() => undefined);
    for (const p of procs.reverse()) await p.stop();
    await ws.remove();
    await db.drop();
  }
}
