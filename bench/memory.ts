// memory: a `baton worker` process's RSS across 100,000 no-op tasks (no leak), with `baton
// scheduler`, `baton api` and `baton dag-processor` as their own processes. Ten runs of 1 root →
// 10,000 → 1 join are triggered at once; the worker's RSS (from /proc) and the tasks done are
// sampled every 500 ms.
//   worker_rss_growth_mb   mean RSS over the last fifth of the tasks − mean RSS over the second
//                          fifth (by then V8's heap, the bundle cache and the task processes have
//                          warmed up; means, because single samples swing ±20 MB with GC)
//   worker_rss_*_mb        at the first sample, those two means, at the end, and the peak
//   worker_heap_floor_growth_mb  the lowest V8 heap in use (the worker's /metrics) over the last fifth
//                          − over the second fifth: what survives collections, so a leak shows there
//                          whatever the collector's timing does to RSS (which swung +40 / −35 MB
//                          between two runs of the same code in the twentieth session)
//   tasks_done             tasks that succeeded within the time bound (100,020 expected)
// Bounded: the runs get 100 s; fewer tasks done is flagged. The standalone process's RSS with
// 1,000 DAGs loaded is measured by `parse` (rss_peak_mb).
import type { Db } from "../store/db.ts";
import { FANOUT_DAG } from "./dags.ts";
import {
  environment,
  freePort,
  freshDatabase,
  logNotes,
  round,
  rssMb,
  scrapeMetrics,
  serverVersion,
  spawnBaton,
  startServices,
  trigger,
  waitForDags,
  waitForWorkers,
  workspace,
  writeResult,
  type BatonProcess,
} from "./lib.ts";

const RUNS = 10;
const WIDTH = 10_000;
const TASKS = RUNS * (WIDTH + 2);
const RUN_BUDGET_MS = 100_000;
const CONCURRENCY = 4;

interface Sample {
  atMs: number;
  done: number;
  rssMb: number;
  /** V8's heap in use (nodejs_heap_size_used_bytes), MB; NaN when the scrape failed. */
  heapMb: number;
}

async function tasksDone(db: Db, dagId: string): Promise<number> {
  const [[row]] = (await db.pool.query("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND state = 'success'", [dagId])) as unknown as [{ n: number }[]];
  return Number(row!.n);
}

/** RSS at the first sample with at least `share` of the tasks done (the last sample if none). */
function rssAt(samples: Sample[], share: number): number {
  return (samples.find((s) => s.done >= TASKS * share) ?? samples.at(-1)!).rssMb;
}

/** The samples taken while between `from` and `to` of the tasks were done (to 1: up to the end). */
function within(samples: Sample[], from: number, to: number): Sample[] {
  return samples.filter((s) => s.done >= TASKS * from && (to >= 1 || s.done < TASKS * to));
}

/** The lowest heap in use among the samples taken while between `from` and `to` of the tasks were done (NaN if none). */
function heapFloor(samples: Sample[], from: number, to: number): number {
  const heaps = within(samples, from, to).map((s) => s.heapMb).filter((mb) => !Number.isNaN(mb));
  return heaps.length === 0 ? NaN : Math.min(...heaps);
}

/** Mean RSS of the samples taken while between `from` and `to` of the tasks were done (NaN if none). */
function meanRss(samples: Sample[], from: number, to: number): number {
  const part = within(samples, from, to);
  return part.reduce((sum, s) => sum + s.rssMb, 0) / part.length;
}

export async function memory(): Promise<void> {
  const db = await freshDatabase("memory");
  const ws = await workspace({ "memory.ts": FANOUT_DAG("bench_memory", WIDTH) });
  const procs: BatonProcess[] = [];
  try {
    const { port } = await startServices(db, ws, procs);
    const metricsPort = freePort();
    const worker = spawnBaton("worker", ["worker", "--concurrency", String(CONCURRENCY)], db, ws, { BATON_METRICS_PORT: String(metricsPort) });
    const heapMb = async () => ((await scrapeMetrics(metricsPort).catch(() => new Map<string, number>())).get("baton_nodejs_heap_size_used_bytes") ?? NaN) / 1e6;
    procs.push(worker);
    await waitForDags(db, ["bench_memory"]);
    await waitForWorkers(db, 1);

    const samples: Sample[] = [{ atMs: 0, done: 0, rssMb: await rssMb(worker.pid), heapMb: await heapMb() }];
    const started = performance.now();
    for (let i = 0; i < RUNS; i++) await trigger(port, "bench_memory");
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const done = await tasksDone(db, "bench_memory");
      samples.push({ atMs: performance.now() - started, done, rssMb: await rssMb(worker.pid), heapMb: await heapMb() });
      if (done >= TASKS || performance.now() - started > RUN_BUDGET_MS) break;
    }
    const last = samples.at(-1)!;
    const secondFifth = meanRss(samples, 0.2, 0.4);
    const lastFifth = meanRss(samples, 0.8, 1);
    const tenths = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((share) => `${share * 100} %: ${round(rssAt(samples, share), 1)}`);
    await writeResult({
      name: "memory",
      metrics: {
        worker_rss_growth_mb: round(lastFifth - secondFifth, 1),
        worker_rss_start_mb: round(samples[0]!.rssMb, 1),
        worker_rss_second_fifth_mb: round(secondFifth, 1),
        worker_rss_last_fifth_mb: round(lastFifth, 1),
        worker_rss_end_mb: round(last.rssMb, 1),
        worker_rss_peak_mb: round(Math.max(...samples.map((s) => s.rssMb)), 1),
        worker_heap_floor_growth_mb: round(heapFloor(samples, 0.8, 1) - heapFloor(samples, 0.2, 0.4), 1),
        worker_heap_floor_second_fifth_mb: round(heapFloor(samples, 0.2, 0.4), 1),
        worker_heap_floor_last_fifth_mb: round(heapFloor(samples, 0.8, 1), 1),
        tasks_done: last.done,
        tasks_per_s: round(last.done / (last.atMs / 1000), 0),
      },
      targets: { worker_rss_growth_mb: 20, tasks_done: TASKS },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${RUNS} runs of 1 root → ${WIDTH} no-op tasks → 1 join, triggered at once; one \`baton worker --concurrency ${CONCURRENCY}\` (its task processes not counted); scheduler, API and DAG processor are separate processes`,
        `worker RSS (MB) by share of the ${TASKS} tasks done: ${tenths.join(", ")}; ${samples.length} samples`,
        ...(last.done < TASKS ? [`PROBLEM: ${last.done} of ${TASKS} tasks done within ${RUN_BUDGET_MS / 1000} s`] : []),
        ...(await logNotes(procs)),
      ],
    });
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await ws.remove();
    await db.drop();
  }
}
