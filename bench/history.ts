// history: does Baton slow down as history grows? Two databases of the same DAGs, one empty, one
// pre-filled with 100,000 finished runs and 1,000,000 finished task instances, each with a
// standalone of its own; the chain and a smaller fanout are measured on them in turn (empty,
// history, empty, …), so both sides meet the machine as it is at that moment. Measured one after
// the other (the earlier design, on one database before and after its fill), the ratio moved
// 0.67–1.24 between runs: this VM drifts over minutes, and the history side ran right after the
// bulk load, while InnoDB was still flushing it.
//   chain_ratio   chain run (start → end) median with history / without
//   fanout_ratio  fanout throughput without history / with (so > 1 means slower with history)
// Both aim at ≤ 1.10. The fanout is smaller than the `fanout` benchmark's (2,000 wide, then
// 20 runs × 100) to keep the whole benchmark under two minutes.
import { measureChain } from "./chain.ts";
import { CHAIN_DAG } from "./dags.ts";
import { FANOUT_WORKERS, fanoutFiles, measureFanout, type FanoutFigures } from "./fanout.ts";
import { fillHistory } from "./fill.ts";
import { environment, freshDatabase, logNotes, median, round, serverVersion, startStandalone, writeResult, type Standalone } from "./lib.ts";

const CHAIN_REPETITIONS = 10;
const FANOUT_REPETITIONS = 2;
const WIDE = 2000;
const RUNS = 20;

export async function history(): Promise<void> {
  const emptyDb = await freshDatabase("history_empty");
  const fullDb = await freshDatabase("history");
  const files = { "chain.ts": CHAIN_DAG("bench_chain", 100), ...fanoutFiles(WIDE) };
  const env = { BATON_WORKERS: String(FANOUT_WORKERS) };
  let empty: Standalone | undefined;
  let full: Standalone | undefined;
  try {
    // The history side first (its DAGs must be parsed before the fill pins runs to their versions),
    // then the empty side, so neither measures during the bulk load.
    full = await startStandalone(fullDb, files, env);
    const fill = await fillHistory(fullDb, { runs: 100_000, tasksPerRun: 10, dagIds: ["bench_chain", "bench_fanout", "bench_fanout100"] });
    empty = await startStandalone(emptyDb, files, env);
    const sides = [
      { db: emptyDb, baton: empty },
      { db: fullDb, baton: full },
    ];
    for (const side of sides) await measureChain(side.db, side.baton, "bench_chain", 0);

    const chainTotals: [number[], number[]] = [[], []];
    for (let r = 0; r < CHAIN_REPETITIONS; r++) {
      for (const [i, side] of sides.entries()) chainTotals[i]!.push(...(await measureChain(side.db, side.baton, "bench_chain", 1, { warmUp: false })).totals);
    }
    const throughput = (f: FanoutFigures) => Math.min(f.oneRunTasksPerS, f.manyRunsTasksPerS);
    const fanouts: [FanoutFigures[], FanoutFigures[]] = [[], []];
    for (let r = 0; r < FANOUT_REPETITIONS; r++) {
      for (const [i, side] of sides.entries()) fanouts[i]!.push(await measureFanout(side.db, side.baton, WIDE, RUNS, 30_000));
    }
    const [emptyChain, fullChain] = chainTotals.map((totals) => median(totals)) as [number, number];
    const [emptyFanout, fullFanout] = fanouts.map((f) => median(f.map(throughput))) as [number, number];
    await writeResult({
      name: "history",
      metrics: {
        chain_ratio: round(fullChain / emptyChain),
        fanout_ratio: round(emptyFanout / fullFanout),
        chain_empty_ms: round(emptyChain, 1),
        chain_history_ms: round(fullChain, 1),
        fanout_empty_tasks_per_s: round(emptyFanout, 0),
        fanout_history_tasks_per_s: round(fullFanout, 0),
        fill_s: round(fill.seconds, 1),
      },
      targets: { chain_ratio: 1.1, fanout_ratio: 1.1 },
      env: environment({ version: await serverVersion(fullDb) }),
      notes: [
        `history: ${fill.runs} runs and ${fill.taskInstances} task instances written in ${round(fill.seconds, 1)} s (INSERT … SELECT from a numbers table), spread over bench_chain, bench_fanout and bench_fanout100`,
        `two databases and two standalones (BATON_WORKERS=${FANOUT_WORKERS} each), measured in turn: chain ${CHAIN_REPETITIONS} × (empty, history), median run start → end; fanout ${FANOUT_REPETITIONS} × (empty, history) of 1 root → ${WIDE} → join then ${RUNS} runs × 100 tasks, median of the lower of the two throughputs`,
        `chain runs ms, empty: ${chainTotals[0].map((t) => round(t, 0)).join(", ")}; history: ${chainTotals[1].map((t) => round(t, 0)).join(", ")}`,
        `fanout tasks/s, empty: ${fanouts[0].map((f) => round(throughput(f), 0)).join(", ")}; history: ${fanouts[1].map((f) => round(throughput(f), 0)).join(", ")}`,
        ...[...fanouts[0], ...fanouts[1]].flatMap((f) => f.problems).map((p) => `PROBLEM: ${p}`),
        ...(await logNotes([empty.baton, full.baton])),
      ],
    });
  } finally {
    await empty?.stop();
    await full?.stop();
    await emptyDb.drop();
    await fullDb.drop();
  }
}
