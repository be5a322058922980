// api: read endpoints under load with 100,000 runs (and 1,000,000 task instances) of one DAG,
// 50 concurrent clients (autocannon, in this process), 10 s per endpoint after a 2 s warm-up:
//   GET /api/v1/dags/bench_api/dagRuns?limit=100                 (first page)
//   GET /api/v1/dags/bench_api/dagRuns?limit=100&offset=99900    (deep page)
//   GET /api/v1/dags/bench_api/dagRuns/<random run>/taskInstances
//   GET /api/v1/dags/bench_api/dagRuns?limit=100&cursor=<next_cursor of page 999>  (cursor deep
//       page: the deep page's rows, reached in setup by following next_cursor from the first page)
// p99_ms is the worst p99 of the first page, the cursor deep page and a run's task instances: the
// issue asks deep pages to be as fast as the first "by keyset or indexed offset", and the cursor is
// the API's keyset. The offset deep page is measured and reported beside them (it walks the index). The
// API runs in `baton standalone` (1 worker slot, nothing to run); autocannon, Node and MariaDB
// share the machine's cores.
import autocannon from "autocannon";
import type { Db } from "../store/db.ts";
import { dagRunPageStatements } from "../store/queries/read.ts";
import { cpuMetrics, cpuNote, databaseServerPid, meterCpu, type CpuPart, type CpuSpent } from "./cpu.ts";
import { CHAIN_DAG } from "./dags.ts";
import { fillHistory } from "./fill.ts";
import { AUTH, environment, freshDatabase, logNotes, median, round, serverVersion, startStandalone, waitForDags, writeResult, type Standalone } from "./lib.ts";

const RUNS = 100_000;
const CONNECTIONS = 50;
const SECONDS = 10;
/** The whole benchmark stays within two minutes: the load runs shrink (to 3 s) when filling the history took long. */
const BUDGET_S = 115;

interface Load {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  requests: number;
  /** CPU of the API process, MariaDB and autocannon (this process) over the measured run. */
  cpu: CpuSpent;
}

async function load(url: string, path: () => string, seconds: number, cpuParts: Record<string, CpuPart | undefined>): Promise<Load> {
  const meter = meterCpu(cpuParts);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    headers: AUTH,
    duration: seconds,
    requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: path() }) }],
  });
  // No request answered within the run: latency is at least the run's length.
  const cpu = meter.stop();
  const errors = result.errors + result.non2xx + result.timeouts;
  if (result.requests.total === 0) return { p50: Number.NaN, p99: Number.NaN, rps: 0, errors, requests: 0, cpu };
  return { p50: result.latency.p50, p99: result.latency.p99, rps: result.requests.average, errors, requests: result.requests.total, cpu };
}

/** How MariaDB plans a statement: access type, key and estimated rows, one line per table. */
async function explain(db: Db, sql: string, params: unknown[]): Promise<string> {
  const [rows] = await db.pool.query(`EXPLAIN ${sql}`, params);
  return (rows as { table: string; type: string; key: string | null; rows: number; Extra: string | null }[])
    .map((r) => `${r.table}: ${r.type} on ${r.key ?? "no index"}, ~${r.rows} rows${r.Extra ? `, ${r.Extra}` : ""}`)
    .join("; ");
}

export async function api(): Promise<void> {
  const began = performance.now();
  const db = await freshDatabase("api");
  let baton: Standalone | undefined;
  try {
    baton = await startStandalone(db, { "api.ts": CHAIN_DAG("bench_api", 10) }, { BATON_WORKERS: "1" });
    await waitForDags(db, ["bench_api"]);
    const fill = await fillHistory(db, { runs: RUNS, tasksPerRun: 10, dagIds: ["bench_api"] });
    const base = `http://127.0.0.1:${baton.port}`;
    const runPath = "/api/v1/dags/bench_api/dagRuns";
    const pages = {
      first: () => `${runPath}?limit=100`,
      deep: () => `${runPath}?limit=100&offset=${RUNS - 100}`,
      taskInstances: () => `${runPath}/hist__${String(Math.floor(Math.random() * RUNS)).padStart(7, "0")}/taskInstances`,
    };
    // Sanity: each endpoint answers with data.
    for (const [name, p] of Object.entries(pages)) {
      const res = await fetch(base + p(), { headers: AUTH });
      const body = (await res.json()) as { total_entries?: number };
      if (!res.ok || !body.total_entries) throw new Error(`GET ${name} answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
    }
    // The cursor deep page: next_cursor followed from the first page to the page the deep offset asks.
    const walkStarted = performance.now();
    let cursor: string | null = null;
    for (let hop = 0; hop < RUNS / 100 - 1; hop++) {
      const res = await fetch(base + (cursor === null ? pages.first() : `${runPath}?limit=100&cursor=${cursor}`), { headers: AUTH });
      const body = (await res.json()) as { next_cursor?: string | null };
      if (!res.ok || typeof body.next_cursor !== "string") throw new Error(`cursor walk, page ${hop + 1}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      cursor = body.next_cursor;
    }
    const walkSeconds = (performance.now() - walkStarted) / 1000;
    const cursorDeep = () => `${runPath}?limit=100&cursor=${cursor}`;
    // Four endpoints, each a 2-s warm-up then a measured run, and ≈ 5 s of single-client timings after.
    const left = BUDGET_S - (performance.now() - began) / 1000;
    const seconds = Math.max(3, Math.min(SECONDS, Math.floor((left - 4 * 2 - 5) / 4)));
    const results: Record<string, Load> = {};
    const cpuParts = { api: baton.process.pid, mariadb: databaseServerPid(), autocannon: "self" as const };
    for (const [name, p] of Object.entries({ ...pages, cursorDeep })) {
      await load(base, p, 2, cpuParts);
      results[name] = await load(base, p, seconds, cpuParts);
    }
    const { first, deep, taskInstances, cursorDeep: cursorLoad } = results as Record<"first" | "deep" | "taskInstances" | "cursorDeep", Load>;
    const gated = [first, cursorLoad, taskInstances];
    // The statements the API sends for these pages (listDagRuns).
    const firstPage = dagRunPageStatements({ dagIds: ["bench_api"] }, { limit: 100, offset: 0 });
    const deepPage = dagRunPageStatements({ dagIds: ["bench_api"] }, { limit: 100, offset: RUNS - 100 });
    const plans = [
      `first page: ${await explain(db, firstPage.rows.sql, firstPage.rows.params)}`,
      `deep page: ${await explain(db, deepPage.rows.sql, deepPage.rows.params)}`,
      `total_entries: ${await explain(db, firstPage.count.sql, firstPage.count.params)}`,
    ];
    // The same statements from one client, no concurrency: where the time of a request goes.
    const timed = async (sql: string, params: unknown[]) => {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await db.pool.query(sql, params);
        times.push(performance.now() - t0);
      }
      return round(median(times));
    };
    const single = [
      `first page SELECT ${await timed(firstPage.rows.sql, firstPage.rows.params)} ms`,
      `deep page SELECT (deferred join) ${await timed(deepPage.rows.sql, deepPage.rows.params)} ms`,
      `COUNT(*) for total_entries ${await timed(firstPage.count.sql, firstPage.count.params)} ms`,
      `a run's task instances, SELECT * ${await timed("SELECT * FROM task_instance WHERE dag_run_id = ? ORDER BY id LIMIT 100 OFFSET 0", [50_000])} ms`,
    ];
    const errors = Object.values(results).reduce((n, r) => n + r.errors, 0);
    const firstPageCpu = cpuMetrics(first.cpu, first.requests, "request");
    await writeResult({
      name: "api",
      metrics: {
        p99_ms: gated.some((r) => r.rps === 0) ? Number.NaN : Math.max(...gated.map((r) => r.p99)),
        dag_runs_first_page_p99_ms: first.p99,
        dag_runs_cursor_deep_page_p99_ms: cursorLoad.p99,
        task_instances_p99_ms: taskInstances.p99,
        dag_runs_offset_deep_page_p99_ms: deep.p99,
        dag_runs_first_page_rps: round(first.rps, 0),
        dag_runs_cursor_deep_page_rps: round(cursorLoad.rps, 0),
        task_instances_rps: round(taskInstances.rps, 0),
        dag_runs_offset_deep_page_rps: round(deep.rps, 0),
        cursor_deep_over_first_p99: round(cursorLoad.p99 / first.p99),
        offset_deep_over_first_p99: round(deep.p99 / first.p99),
        errors,
        // The first page: the CPU a request costs each process, the rate the cores allow at that
        // cost, and the mean latency 50 clients must then see at least (Little's law).
        ...firstPageCpu,
        min_mean_latency_ms: round((CONNECTIONS * 1000) / firstPageCpu.cpu_bound_requests_per_s!),
      },
      targets: { p99_ms: 20, errors: 0 },
      env: environment({ version: await serverVersion(db) }),
      notes: [
        `${fill.runs} runs and ${fill.taskInstances} task instances of bench_api (filled in ${round(fill.seconds, 1)} s); ${CONNECTIONS} connections, ${seconds} s per endpoint after 2 s warm-up`,
        ...Object.entries(results).filter(([, r]) => r.rps === 0).map(([name]) => `PROBLEM: no ${name} request completed within ${seconds} s`),
        `cursor deep page: next_cursor followed ${RUNS / 100 - 1} pages from the first (${round(walkSeconds, 1)} s)`,
        `p50: first page ${first.p50} ms, cursor deep page ${cursorLoad.p50} ms, taskInstances ${taskInstances.p50} ms, offset deep page ${deep.p50} ms`,
        ...Object.entries(results).map(([name, r]) => cpuNote(`the ${name} load`, r.cpu, r.requests, "request")),
        `${CONNECTIONS} clients see a mean latency of at least ${CONNECTIONS} ÷ (requests/s the cores allow): a p99 of 20 ms needs more than ${CONNECTIONS * 50} requests/s`,
        ...plans.map((p) => `EXPLAIN ${p}`),
        `one client, median of 20: ${single.join(", ")}`,
        ...(await logNotes([baton.baton])),
      ],
    });
  } finally {
    await baton?.stop();
    await db.drop();
  }
}
