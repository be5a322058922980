// history: does Baton slow down as history grows? The chain and a smaller fanout are measured
// on the empty database, then again after 100,000 finished runs and 1,000,000 finished task
// instances were written into the same tables (of the same DAGs), on the same standalone.
//   chain_ratio   chain run (start → end) median with history / without
//   fanout_ratio  fanout throughput without history / with (so > 1 means slower with history)
// Both aim at ≤ 1.10. The fanout is smaller than the `fanout` benchmark's (2,000 wide, then
// 20 runs × 100) to keep the whole benchmark under two minutes.
import { measureChain } from "./chain.ts";
import { CHAIN_DAG } from "./dags.ts";
import { FANOUT_WORKERS, fanoutFiles, measureFanout } from "./fanout.ts";
import { fillHistory } from "./fill.ts";
import { environment, freshDatabase, logNotes, median, round, serverVersion, startStandalone, writeResult, type Standalone } from "./lib.ts";

const CHAIN_REPETITIONS = 5;
const WIDE = 2000;
const RUNS = 20;

export async function history(): Promise<void> {
  const db = await freshDatabase("history");
  let baton: Standalone | undefined;
  try {
    baton = await startStandalone(db, { "chain.ts": CHAIN_DAG("bench_chain", 100), ...fanoutFiles(WIDE) }, { BATON_WORKERS: String(FANOUT_WORKERS) });
    const emptyChain = await measureChain(db, baton, "bench_chain", CHAIN_REPETITIONS);
    const emptyFanout = await measureFanout(db, baton, WIDE, RUNS, 30_000);

    const fill = await fillHistory(db, { runs: 100_000, tasksPerRun: 10, dagIds: ["bench_chain", "bench_fanout", "bench_fanout100"] });

    const fullChain = await measureChain(db, baton, "bench_chain", CHAIN_REPETITIONS);
    const fullFanout = await measureFanout(db, baton, WIDE, RUNS, 30_000);
    const throughput = (f: typeof emptyFanout) => Math.min(f.oneRunTasksPerS, f.manyRunsTasksPerS);
    await writeResult({
      name: "history",
      metrics: {
        chain_ratio: round(median(fullChain.totals) / median(emptyChain.totals)),
        fanout_ratio: round(throughput(emptyFanout) / throughput(fullFanout)),
        chain_empty_ms: round(median(emptyChain.totals), 1),
        chain_history_ms: round(median(fullChain.totals), 1),
        fanout_empty_tasks_per_s: round(throughput(emptyFanout), 0),
        fanout_history_tasks_per_s: round(throughput(fullFanout), 0),
        fill_s: round(fill.seconds, 1),
      },
      targets: { chain_ratio: 1.1, fanout_ratio: 1.1 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `history: ${fill.runs} runs and ${fill.taskInstances} task instances written in ${round(fill.seconds, 1)} s (INSERT … SELECT from a numbers table), spread over bench_chain, bench_fanout and bench_fanout100`,
        `chain: median of ${CHAIN_REPETITIONS} runs of 100 tasks (run start → end); fanout: 1 root → ${WIDE} → join, then ${RUNS} runs × 100 tasks, lower of the two throughputs; BATON_WORKERS=${FANOUT_WORKERS}`,
        ...[...emptyFanout.problems, ...fullFanout.problems].map((p) => `PROBLEM: ${p}`),
        ...(await logNotes([baton.baton])),
      ],
    });
  } finally {
    await baton?.stop();
    await db.drop();
  }
}
