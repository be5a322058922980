// fibo40: 40 sequential tasks, each computing fibo(10) — the shape other engines publish
// (Hatchet: 40 tasks in 1.22 s). total_ms is end to end: the trigger recorded in MySQL
// (dag_run.queued_at) → the last task's success recorded (dag_run.end_date), median of 5 runs
// after a warm-up run, on `baton standalone` with 2 local workers.
import { CHAIN_DAG } from "./dags.ts";
import { measureChain } from "./chain.ts";
import { environment, logNotes, freshDatabase, median, percentile, round, serverVersion, startStandalone, writeResult, type Standalone } from "./lib.ts";

const REPETITIONS = 5;

export async function fibo40(): Promise<void> {
  const db = await freshDatabase("fibo40");
  let baton: Standalone | undefined;
  try {
    baton = await startStandalone(db, { "fibo40.ts": CHAIN_DAG("bench_fibo40", 40, "fibo(10);") }, { BATON_WORKERS: "2" });
    const f = await measureChain(db, baton, "bench_fibo40", REPETITIONS);
    const problems = await logNotes([baton.baton]);
    await writeResult({
      name: "fibo40",
      metrics: {
        total_ms: round(median(f.endToEnd), 1),
        run_ms: round(median(f.totals), 1),
        hop_p50_ms: round(percentile(f.hops, 50)),
      },
      targets: { total_ms: 120 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `median of ${REPETITIONS} runs after a warm-up run, BATON_WORKERS=2; total_ms = trigger recorded → run end, run_ms = run start → run end`,
        ...problems,
      ],
    });
  } finally {
    await baton?.stop();
    await db.drop();
  }
}
