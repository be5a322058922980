// chain: one run of 100 sequential no-op tasks on `baton standalone` with 2 local workers,
// 5 repetitions. A hop is the time from one task starting to the next one starting, as
// measured inside the task processes (the no-op itself takes microseconds), so it covers
// returning the result to the worker, recording the success, queueing the next task,
// claiming it and handing it to a child: an upper bound of "success recorded → next started".
import type { Db } from "../store/db.ts";
import { CHAIN_DAG } from "./dags.ts";
import { environment, logNotes, freshDatabase, median, percentile, round, runTimes, serverVersion, startStandalone, taskStarts, trigger, waitForRun, writeResult, type Standalone } from "./lib.ts";

export { CHAIN_DAG };

const TASKS = 100;
const REPETITIONS = 5;

export interface ChainFigures {
  hops: number[];
  /** Run start → run end (MySQL), per repetition. */
  totals: number[];
  /** Run queued (trigger recorded) → run end, per repetition. */
  endToEnd: number[];
}

/** Triggers `repetitions` runs of a chain DAG one after the other, after one warm-up run (unless told it is warm). */
export async function measureChain(
  db: Db,
  baton: Pick<Standalone, "port">,
  dagId: string,
  repetitions: number,
  options: { warmUp?: boolean } = {},
): Promise<ChainFigures> {
  const figures: ChainFigures = { hops: [], totals: [], endToEnd: [] };
  // One warm-up run so child processes and bundles are loaded, as in a long-running deployment.
  if (options.warmUp ?? true) {
    const warm = await trigger(baton.port, dagId);
    if ((await waitForRun(db, dagId, warm)) !== "success") throw new Error(`warm-up run of ${dagId} did not succeed`);
  }
  for (let r = 0; r < repetitions; r++) {
    const runId = await trigger(baton.port, dagId);
    const state = await waitForRun(db, dagId, runId);
    if (state !== "success") throw new Error(`run ${runId} of ${dagId} ended ${state}`);
    const run = await runTimes(db, dagId, runId);
    const starts = [...(await taskStarts(db, run.id)).entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([, t]) => t);
    for (let i = 1; i < starts.length; i++) figures.hops.push(starts[i]! - starts[i - 1]!);
    figures.totals.push(run.endedAt - run.startedAt);
    figures.endToEnd.push(run.endedAt - run.queuedAt);
  }
  return figures;
}

export async function chain(): Promise<void> {
  const db = await freshDatabase("chain");
  let baton: Standalone | undefined;
  try {
    baton = await startStandalone(db, { "chain.ts": CHAIN_DAG("bench_chain", TASKS) }, { BATON_WORKERS: "2" });
    const f = await measureChain(db, baton, "bench_chain", REPETITIONS);
    const problems = await logNotes([baton.baton]);
    await writeResult({
      name: "chain",
      metrics: {
        hop_p50_ms: round(percentile(f.hops, 50)),
        hop_p99_ms: round(percentile(f.hops, 99)),
        total_ms: round(median(f.totals), 1),
        end_to_end_ms: round(median(f.endToEnd), 1),
      },
      targets: { hop_p50_ms: 2, hop_p99_ms: 10, total_ms: 250 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${REPETITIONS} runs of ${TASKS} tasks after one warm-up run, BATON_WORKERS=2; hops are in-task start → next in-task start (${f.hops.length} hops)`,
        "total_ms is the median run start → end in MySQL; end_to_end_ms adds the wait from the trigger being recorded to the scheduler starting the run",
        hopSpread(f.hops),
        ...problems,
      ],
    });
  } finally {
    await baton?.stop();
    await db.drop();
  }
}

/** Where a chain's time goes beyond its median hop: the spread of hops and what the slow ones add per run. */
function hopSpread(hops: number[]): string {
  const at = (p: number) => round(percentile(hops, p));
  const mean = hops.reduce((a, b) => a + b, 0) / Math.max(1, hops.length);
  const p50 = percentile(hops, 50);
  const runs = Math.max(1, Math.round(hops.length / (TASKS - 1)));
  const slowExtra = hops.filter((h) => h > 2 * p50).reduce((a, h) => a + (h - p50), 0) / runs;
  return (
    `hops (ms): p10 ${at(10)}, p50 ${at(50)}, p90 ${at(90)}, p99 ${at(99)}, max ${round(Math.max(...hops))}, mean ${round(mean)}; ` +
    `hops over twice the median add ${round(slowExtra, 1)} ms per run`
  );
}
