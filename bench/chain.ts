// chain: one run of 100 sequential no-op tasks on `baton standalone` with 2 local workers,
// 5 repetitions. A hop is the time from one task starting to the next one starting, as
// measured inside the task processes (the no-op itself takes microseconds), so it covers
// recording the success, queueing the next task, claiming it and handing it to a child.
import { cleanupDatabase, environment, freshDatabase, percentile, round, serverVersion, startStandalone, trigger, waitForRun, writeResult } from "./lib.ts";

const TASKS = 100;
const REPETITIONS = 5;

export const CHAIN_DAG = (id: string, tasks: number, body = "") => `
import { dag } from "baton";
export default dag({ id: "${id}" }, (t) => {
  let previous;
  for (let i = 0; i < ${tasks}; i++) {
    const task = t.task("t" + String(i).padStart(4, "0"), async () => { ${body} return performance.timeOrigin + performance.now(); });
    if (previous) previous.then(task);
    previous = task;
  }
});
`;

export async function chain(): Promise<void> {
  const db = await freshDatabase("chain");
  const baton = await startStandalone(db, { "chain.ts": CHAIN_DAG("bench_chain", TASKS) }, { BATON_WORKERS: "2" });
  try {
    const hops: number[] = [];
    const totals: number[] = [];
    // One warm-up run so child processes and bundles are loaded, as in a long-running deployment.
    await waitForRun(db, "bench_chain", await trigger(baton.port, "bench_chain"));
    for (let r = 0; r < REPETITIONS; r++) {
      const runId = await trigger(baton.port, "bench_chain");
      await waitForRun(db, "bench_chain", runId);
      const [rows] = await db.pool.query(
        `SELECT x.value FROM xcom x JOIN dag_run d ON d.id = x.dag_run_id WHERE d.run_id = ? ORDER BY x.task_id`,
        [runId],
      );
      const starts = (rows as { value: string }[]).map((row) => Number(JSON.parse(row.value)));
      for (let i = 1; i < starts.length; i++) hops.push(starts[i]! - starts[i - 1]!);
      const [[run]] = (await db.pool.query("SELECT start_date, end_date FROM dag_run WHERE run_id = ?", [runId])) as unknown as [
        { start_date: Date; end_date: Date }[],
      ];
      totals.push(run!.end_date.getTime() - run!.start_date.getTime());
    }
    await writeResult({
      name: "chain",
      metrics: { hop_p50_ms: round(percentile(hops, 50)), hop_p99_ms: round(percentile(hops, 99)), total_ms: round(percentile(totals, 50), 1) },
      targets: { hop_p50_ms: 2, hop_p99_ms: 10, total_ms: 250 },
      env: environment({ version: await serverVersion(db) }),
      notes: [`${REPETITIONS} runs of ${TASKS} tasks after one warm-up run; total_ms is the median run (start → end in MySQL)`],
    });
  } finally {
    await baton.stop();
    await cleanupDatabase(db);
  }
}
