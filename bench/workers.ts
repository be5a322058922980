// workers: a fanout (1 root → 2,000 no-op tasks → 1 join) run by 1, 2 and then 4 separate
// `baton worker --concurrency 4` processes, with `baton scheduler`, `baton api` and
// `baton dag-processor` as their own processes (the distributed deployment; nothing is woken
// in-process, workers find work by polling MySQL).
//   tasks_per_s_N   tasks of the run / (first task's start_date → last task's end_date), so
//                   the scheduler's and the workers' pick-up delays are not counted.
// Every middle task appends its id to a ledger file: the benchmark fails the configuration if
// any task ran zero times (lost) or more than once (duplicated), or if MySQL shows a task that
// did not succeed on its first try.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Db } from "../store/db.ts";
import { FANOUT_DAG } from "./dags.ts";
import {
  environment,
  failedTasks,
  freshDatabase,
  logNotes,
  round,
  runTimes,
  serverVersion,
  spawnBaton,
  startServices,
  taskSummary,
  trigger,
  waitForDags,
  waitForRun,
  waitForWorkers,
  workspace,
  writeResult,
  type BatonProcess,
} from "./lib.ts";

const WIDTH = Number(process.env.BENCH_WORKERS_WIDTH ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 4);
const COUNTS = [1, 2, 4];

/**
 * Samples InnoDB lock waits on this benchmark's database every 20 ms until stopped: which
 * table and index the waiting transactions want, counted over samples. Evidence of what
 * serializes the workers.
 */
function sampleLockWaits(db: Db): { stop: () => Promise<{ samples: number; withWaits: number; top: string[] }> } {
  let running = true;
  let samples = 0;
  let withWaits = 0;
  const counts = new Map<string, number>();
  const prefix = "`" + db.database + "`.";
  const loop = (async () => {
    while (running) {
      try {
        const [rows] = await db.pool.query(
          `SELECT l.lock_table AS t, l.lock_index AS i, l.lock_mode AS m, COUNT(*) AS n
             FROM information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id
            WHERE l.lock_table LIKE ? GROUP BY l.lock_table, l.lock_index, l.lock_mode`,
          [prefix.replace(/[_%]/g, "\\$&") + "%"],
        );
        samples++;
        const list = rows as { t: string; i: string | null; m: string; n: number }[];
        if (list.length > 0) withWaits++;
        for (const r of list) {
          const key = `${r.t.slice(prefix.length)} ${r.i ?? "(table)"} ${r.m}`;
          counts.set(key, (counts.get(key) ?? 0) + Number(r.n));
        }
      } catch {
        running = false; // the server does not expose lock waits: no evidence, no failure
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, n]) => `${k} ×${n}`);
      return { samples, withWaits, top };
    },
  };
}

export async function workers(): Promise<void> {
  const db = await freshDatabase("workers");
  const ws = await workspace();
  const procs: BatonProcess[] = [];
  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  const problems: string[] = [];
  try {
    for (const n of COUNTS) await writeFile(path.join(ws.dagsFolder, `workers_${n}.ts`), FANOUT_DAG(`bench_workers_${n}`, WIDTH, path.join(ws.dir, `ledger_${n}.txt`)));
    const { port } = await startServices(db, ws, procs);
    await waitForDags(db, COUNTS.map((n) => `bench_workers_${n}`));

    for (const n of COUNTS) {
      const dagId = `bench_workers_${n}`;
      const pool: BatonProcess[] = [];
      for (let i = 0; i < n; i++) pool.push(spawnBaton(`worker${n}-${i}`, ["worker", "--concurrency", String(CONCURRENCY), "--hostname", `bench-w${i}`], db, ws));
      procs.push(...pool);
      await waitForWorkers(db, n);
      const sampler = sampleLockWaits(db);
      const runId = await trigger(port, dagId).catch(async (err) => {
        await sampler.stop();
        throw err;
      });
      const state = await waitForRun(db, dagId, runId, 35_000).catch(async (err) => {
        await sampler.stop();
        throw err;
      });
      const waits = await sampler.stop();
      const run = await runTimes(db, dagId, runId);
      const [[span]] = (await db.pool.query(
        "SELECT MIN(start_date) AS first_start, MAX(end_date) AS last_end, COUNT(DISTINCT hostname) AS hosts FROM task_instance WHERE dag_run_id = ?",
        [run.id],
      )) as unknown as [{ first_start: Date; last_end: Date; hosts: number }[]];
      const spanMs = span.last_end.getTime() - span.first_start.getTime();
      metrics[`tasks_per_s_${n}`] = round((WIDTH + 2) / (spanMs / 1000), 0);

      // Lost or duplicated work, from the tasks' own ledger and from MySQL.
      const ledger = (await readFile(path.join(ws.dir, `ledger_${n}.txt`), "utf8").catch(() => "")).split("\n").filter(Boolean);
      const counts = new Map<string, number>();
      for (const id of ledger) counts.set(id, (counts.get(id) ?? 0) + 1);
      const lost = WIDTH - counts.size;
      const duplicated = [...counts.values()].filter((c) => c > 1).length;
      const summary = await taskSummary(db, [run.id]);
      metrics[`lost_${n}`] = lost;
      metrics[`duplicated_${n}`] = duplicated;
      notes.push(
        `${n} worker(s): ${WIDTH + 2} tasks in ${spanMs} ms on ${span.hosts} host name(s); run ${state}; ledger ${ledger.length} lines, ${counts.size} distinct; states ${JSON.stringify(summary.byState)}, ${summary.retried} with try_number ≠ 1`,
        `${n} worker(s): lock waits seen in ${waits.withWaits} of ${waits.samples} samples (every 20 ms); waited-for locks (table index mode ×waiters summed over samples): ${waits.top.join(", ") || "none"}`,
      );
      if (state !== "success" || lost !== 0 || duplicated !== 0 || summary.retried !== 0) {
        problems.push(`${n} worker(s): run ${state}, ${lost} lost, ${duplicated} duplicated, ${summary.retried} retried`);
        problems.push(...(await failedTasks(db, [run.id])));
      }
      for (const w of pool) await w.stop();
    }
    await writeResult({
      name: "workers",
      metrics,
      targets: { lost_1: 0, lost_2: 0, lost_4: 0, duplicated_1: 0, duplicated_2: 0, duplicated_4: 0 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `1 root → ${WIDTH} no-op tasks → 1 join per configuration; each worker is \`baton worker --concurrency ${CONCURRENCY}\`; scheduler, API and DAG processor are separate processes`,
        ...notes,
        ...problems.map((p) => `PROBLEM: ${p}`),
        ...(await logNotes(procs)),
      ],
    });
    if (problems.length > 0) throw new Error(`workers: ${problems.join("; ")}`);
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await ws.remove();
    await db.drop();
  }
}
