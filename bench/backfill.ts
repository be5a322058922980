// backfill: ten years of a daily DAG (3,650 runs of one no-op task) on `baton standalone`
// with 2 local workers, max_active_runs 32. Reports the wall time (created → completed, from
// the backfill row), runs/s, and how a second DAG's trigger → success latency changes while
// the backfill runs (the "not affected beyond 10 %").
import { AUTH, cleanupDatabase, environment, freshDatabase, migrateDatabase, percentile, round, serverVersion, startStandalone, trigger, waitForRun, writeResult } from "./lib.ts";

const DAILY = `
import { dag } from "baton";
export default dag({ id: "bench_daily", schedule: "@daily", startDate: "2016-01-01", catchup: false, isPausedUponCreation: true }, (t) => {
  t.task("load", async (ctx) => ctx.logicalDate?.toISOString());
});
`;
const PROBE = `
import { dag } from "baton";
export default dag({ id: "bench_probe" }, (t) => { t.task("ping", async () => 1); });
`;

/**
 * Trigger → the run's recorded end (end_date, written by the same host's clock). Timing until
 * waitForRun saw it added its 10 ms polling: p50s of 10 probes flipped between ≈ 16 and ≈ 26 ms
 * with the same code, and the ratio with them (0.75–1.62 in eight runs of two commits).
 */
async function probeLatency(db: Parameters<typeof waitForRun>[0], port: number): Promise<number> {
  const started = Date.now();
  const runId = await trigger(port, "bench_probe");
  await waitForRun(db, "bench_probe", runId, 30_000);
  // With the fraction MySQL keeps (end_date comes from the worker's Date: whole milliseconds).
  const [rows] = await db.pool.query("SELECT DATE_FORMAT(end_date, '%Y-%m-%dT%H:%i:%sZ') AS second, MICROSECOND(end_date) AS us FROM dag_run WHERE dag_id = 'bench_probe' AND run_id = ?", [runId]);
  const end = (rows as { second: string; us: number }[])[0]!;
  return Date.parse(end.second) + Number(end.us) / 1000 - started;
}

export async function backfill(): Promise<void> {
  const db = await freshDatabase("backfill");
  await migrateDatabase(db);
  const baton = await startStandalone(db, { "daily.ts": DAILY, "probe.ts": PROBE }, { BATON_WORKERS: "2" });
  try {
    const before: number[] = [];
    for (let i = 0; i < 10; i++) before.push(await probeLatency(db, baton.port));

    const res = await fetch(`http://127.0.0.1:${baton.port}/api/v1/backfills`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH },
      body: JSON.stringify({ dag_id: "bench_daily", from_date: "2016-01-01", to_date: "2025-12-28", max_active_runs: 32 }),
    });
    if (!res.ok) throw new Error(`create backfill: ${res.status} ${await res.text()}`);
    const created = (await res.json()) as { id: number; total_dates: number };

    const during: number[] = [];
    const deadline = Date.now() + 100_000;
    let status: { state: string; done: number; failed: number; created_at: string; completed_at: string | null } | undefined;
    for (;;) {
      during.push(await probeLatency(db, baton.port));
      status = (await (await fetch(`http://127.0.0.1:${baton.port}/api/v1/backfills/${created.id}`, { headers: AUTH })).json()) as typeof status;
      if (status!.state === "completed" || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const finished = status!.state === "completed";
    const wallS = finished ? (Date.parse(status!.completed_at!) - Date.parse(status!.created_at)) / 1000 : (Date.now() - Date.parse(status!.created_at)) / 1000;
    const p50Before = percentile(before, 50);
    const p50During = percentile(during, 50);
    await writeResult({
      name: "backfill",
      metrics: {
        runs: created.total_dates,
        runs_done: status!.done,
        runs_failed: status!.failed,
        wall_s: round(wallS, 1),
        runs_per_s: round(status!.done / wallS, 1),
        probe_p50_before_ms: round(p50Before, 1),
        probe_p50_during_ms: round(p50During, 1),
        probe_latency_ratio: round(p50During / p50Before, 2),
      },
      targets: { runs_failed: 0, probe_latency_ratio: 1.1 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `3,650 daily runs (2016-01-01 … 2025-12-28) of one no-op task, max_active_runs 32, 2 local workers`,
        finished ? "the backfill completed" : `stopped after 100 s with ${status!.done} of ${created.total_dates} dates done: runs_per_s is the rate so far`,
        "probe: trigger → success of a one-task manual DAG, sampled before and while the backfill runs",
      ],
    });
  } finally {
    await baton.stop();
    await cleanupDatabase(db);
  }
}
