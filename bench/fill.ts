// Pre-fills a benchmark database with finished history: runs and their task instances, written
// by multi-row INSERT … SELECT from a numbers table so a million rows take seconds, not minutes.
// Rows look like what Baton leaves behind: manual runs in `success`, each with `tasksPerRun`
// task instances t0000…, all `success` on try 1, spread over the past year.
import type { Db } from "../store/db.ts";

export interface FillOptions {
  runs: number;
  tasksPerRun: number;
  /** Runs are dealt round-robin to these DAGs, pinned to each one's latest version. */
  dagIds: string[];
  /** Task instances per INSERT statement (one transaction each). */
  chunkRows?: number;
}

export interface FillReport {
  runs: number;
  taskInstances: number;
  seconds: number;
}

export async function fillHistory(db: Db, o: FillOptions): Promise<FillReport> {
  const started = performance.now();
  const conn = await db.pool.getConnection();
  try {
    await conn.query("DROP TABLE IF EXISTS bench_digit, bench_number");
    await conn.query("CREATE TABLE bench_digit (d INT NOT NULL PRIMARY KEY) ENGINE=InnoDB");
    await conn.query("INSERT INTO bench_digit VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)");
    await conn.query("CREATE TABLE bench_number (n INT NOT NULL PRIMARY KEY) ENGINE=InnoDB");
    const needed = Math.max(o.runs, o.tasksPerRun);
    const digits = Math.max(1, Math.ceil(Math.log10(needed + 1)));
    const terms = Array.from({ length: digits }, (_, i) => `d${i}.d * ${10 ** i}`).join(" + ");
    const from = Array.from({ length: digits }, (_, i) => `bench_digit d${i}`).join(", ");
    await conn.query(`INSERT INTO bench_number (n) SELECT ${terms} AS n FROM ${from} HAVING n < ${Math.floor(needed)}`);

    // Runs: one statement per DAG (round-robin by n), pinned to that DAG's latest version.
    const base = new Date(Date.now() - 366 * 24 * 3600 * 1000);
    for (let i = 0; i < o.dagIds.length; i++) {
      await conn.query(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end,
                              conf, external_trigger, unfinished_tasks, queued_at, start_date, end_date)
         SELECT d.dag_id, CONCAT('hist__', LPAD(n.n, 7, '0')), d.latest_version_hash, 'manual', 'success',
                ? + INTERVAL n.n MINUTE, ? + INTERVAL n.n MINUTE, ? + INTERVAL n.n MINUTE, '{}', 1, 0,
                ? + INTERVAL n.n MINUTE, ? + INTERVAL n.n MINUTE + INTERVAL 1 SECOND, ? + INTERVAL n.n MINUTE + INTERVAL 3 SECOND
           FROM bench_number n JOIN dag d ON d.dag_id = ?
          WHERE n.n < ? AND n.n % ? = ?`,
        [base, base, base, base, base, base, o.dagIds[i], Math.floor(o.runs), o.dagIds.length, i],
      );
    }
    const [[range]] = (await conn.query("SELECT MIN(id) AS lo, MAX(id) AS hi FROM dag_run WHERE run_id LIKE 'hist\\_\\_%'")) as unknown as [{ lo: number; hi: number }[]];

    // Task instances, in chunks of runs so each transaction stays moderate.
    const runsPerChunk = Math.max(1, Math.floor((o.chunkRows ?? 100_000) / o.tasksPerRun));
    for (let lo = Number(range.lo); lo <= Number(range.hi); lo += runsPerChunk) {
      await conn.query(
        `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, try_number, max_tries, priority_weight, pool, pool_slots,
                                    queue, trigger_rule, upstream_total, up_success, hostname, pid, queued_at, start_date, end_date, duration)
         SELECT r.id, r.dag_id, r.run_id, CONCAT('t', LPAD(k.n, 4, '0')), -1, 'success', 1, 0, 1, 'default_pool', 1,
                'default', 'all_success', IF(k.n = 0, 0, 1), IF(k.n = 0, 0, 1), 'history', 1,
                r.start_date, r.start_date + INTERVAL k.n * 100000 MICROSECOND, r.start_date + INTERVAL k.n * 100000 + 50000 MICROSECOND, 0.05
           FROM dag_run r JOIN bench_number k ON k.n < ?
          WHERE r.id BETWEEN ? AND ? AND r.run_id LIKE 'hist\\_\\_%'`,
        [o.tasksPerRun, lo, lo + runsPerChunk - 1],
      );
    }
    await conn.query("DROP TABLE bench_digit, bench_number");
    await conn.query("ANALYZE TABLE dag_run, task_instance");
    const [[counts]] = (await conn.query(
      "SELECT (SELECT COUNT(*) FROM dag_run WHERE run_id LIKE 'hist\\_\\_%') AS runs, (SELECT COUNT(*) FROM task_instance WHERE hostname = 'history') AS tis",
    )) as unknown as [{ runs: number; tis: number }[]];
    return { runs: Number(counts.runs), taskInstances: Number(counts.tis), seconds: (performance.now() - started) / 1000 };
  } finally {
    conn.release();
  }
}
