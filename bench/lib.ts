// Shared plumbing for benchmarks: fresh databases, real `baton` processes, environment facts,
// the JSON result files, and cleanup of everything a benchmark started, even when it fails.
import { execSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connectionOptions, databaseUrlOn, dropDatabase, ensureDatabase, openDb, type Db } from "../store/db.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Output of every Baton process a benchmark starts (kept after the run for inspection). */
export const LOGS = path.join(os.tmpdir(), "baton-bench-logs");
// localhost: the local server's Unix socket, as Baton uses by default (mysql://root@127.0.0.1:3306 measures TCP).
const SERVER = process.env.BATON_BENCH_DATABASE_SERVER ?? "mysql://root@localhost:3306";

export interface BenchResult {
  name: string;
  metrics: Record<string, number>;
  targets: Record<string, number>;
  env: Record<string, string | number>;
  notes?: string[];
}

/** Results written by this process, so `bullmq` compares with Baton figures of the same run. */
export const resultsOfThisRun = new Map<string, BenchResult>();

export function environment(db?: { version?: string }): Record<string, string | number> {
  let commit = process.env.BATON_BENCH_COMMIT ?? "unknown";
  if (!process.env.BATON_BENCH_COMMIT) try {
    commit = execSync("git rev-parse --short HEAD", { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    // not a checkout
  }
  const dbTransport = connectionOptions(SERVER).socketPath === undefined ? "tcp" : "socket";
  return { node: process.version, mariadb: db?.version ?? "unknown", db_transport: dbTransport, cores: os.cpus().length, commit };
}

export function loadNote(): string {
  return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min) on ${os.cpus().length} cores at the end`;
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every process, database and folder a benchmark creates is registered here and
// released by its own stop function, or by cleanupAll() when the benchmark (or the run) fails.

type Cleanup = () => Promise<void>;
const cleanups = new Map<number, { what: string; fn: Cleanup }>();
let nextCleanup = 1;

export function onCleanup(what: string, fn: Cleanup): () => Promise<void> {
  const id = nextCleanup++;
  cleanups.set(id, { what, fn });
  return async () => {
    if (!cleanups.delete(id)) return;
    await fn();
  };
}

/** Releases everything still registered, newest first (processes before their databases). */
export async function cleanupAll(): Promise<void> {
  const pending = [...cleanups.entries()].sort((a, b) => b[0] - a[0]);
  cleanups.clear();
  for (const [, { what, fn }] of pending) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`cleanup of ${what} failed: ${(err as Error).message}\n`);
    }
  }
}

let exiting = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\n${signal}: stopping benchmark processes and dropping benchmark databases…\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Databases

export interface BenchDb extends Db {
  /** Drops the database (closing the pool first). */
  drop(): Promise<void>;
}

export async function freshDatabase(tag: string, connectionLimit = 4): Promise<BenchDb> {
  const url = databaseUrlOn(SERVER, `baton_bench_${tag}_${randomBytes(3).toString("hex")}`);
  await ensureDatabase(url);
  // As the Baton processes the benchmarks start read it (BATON_DB_PREPARED_STATEMENTS), for the in-process ones (profile).
  const db = openDb(url, { connectionLimit, preparedStatements: !["false", "off", "0", "no"].includes(process.env.BATON_DB_PREPARED_STATEMENTS ?? "") });
  const drop = onCleanup(`database ${db.database}`, async () => {
    await db.close().catch(() => undefined);
    await dropDatabase(url);
  });
  return Object.assign(db, { drop });
}

export async function serverVersion(db: Db): Promise<string> {
  const [rows] = await db.pool.query("SELECT VERSION() AS v");
  return (rows as { v: string }[])[0]!.v;
}

export async function cleanupDatabase(db: BenchDb): Promise<void> {
  await db.drop();
}

/** Applies Baton's migrations to the database, by running `baton db migrate`. */
export async function migrateDatabase(db: Db): Promise<void> {
  const proc = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), "db", "migrate"], {
    env: { ...process.env, BATON_DATABASE_URL: db.url, BATON_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  if (code !== 0) throw new Error(`baton db migrate exited with ${code}`);
}

// ---------------------------------------------------------------------------------------------
// Baton processes

export interface BatonProcess {
  process: ChildProcess;
  pid: number;
  name: string;
  logFile: string;
  /** SIGTERM, wait (then SIGKILL to its process group after graceMs). Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** Lines of its output that look like warnings or errors. */
  problems(): Promise<string[]>;
}

export interface Workspace {
  dir: string;
  dagsFolder: string;
  remove(): Promise<void>;
}

export async function workspace(files: Record<string, string> = {}): Promise<Workspace> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "baton-bench-"));
  const dagsFolder = path.join(dir, "dags");
  await mkdir(dagsFolder, { recursive: true });
  await mkdir(path.join(dir, "logs"), { recursive: true });
  for (const [name, source] of Object.entries(files)) await writeFile(path.join(dagsFolder, name), source);
  const remove = onCleanup(`folder ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return { dir, dagsFolder, remove };
}

/** The admin token every benchmark's Baton accepts (registered through BATON_ADMIN_TOKEN). */
export const BENCH_TOKEN = "baton_bench_token_not_secret_0123456789";
export const AUTH = { authorization: `Bearer ${BENCH_TOKEN}` };

/** Starts `baton <args>` with the benchmark's database and folders; its output goes to a log file. */
export function spawnBaton(name: string, args: string[], db: Db, ws: Workspace, env: Record<string, string> = {}): BatonProcess {
  // Outside the workspace, so a failed benchmark's output survives its cleanup.
  mkdirSync(LOGS, { recursive: true });
  const logFile = path.join(LOGS, `${path.basename(ws.dir)}-${name}.log`);
  const out = createWriteStream(logFile);
  // BENCH_CPU_PROFILE=<folder>: each Baton process writes a V8 CPU profile there when it exits.
  const profile = process.env.BENCH_CPU_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROFILE)}`] : [];
  const child = spawn(process.execPath, [...profile, path.join(ROOT, "bin/baton.js"), ...args], {
    cwd: ws.dir,
    detached: true, // its own process group: a hard stop also ends its task children
    env: {
      ...process.env,
      BATON_DATABASE_URL: db.url,
      BATON_DAGS_FOLDER: ws.dagsFolder,
      BATON_LOGS_FOLDER: path.join(ws.dir, "logs"),
      BATON_CACHE_FOLDER: path.join(ws.dir, "cache"),
      BATON_LOG_LEVEL: "warn",
      // Auth stays on (its cost is part of every figure); the rate limit would cap the load benchmarks.
      BATON_ADMIN_TOKEN: BENCH_TOKEN,
      BATON_ADMIN_TOKEN_FILE: path.join(ws.dir, ".baton", "admin-token"),
      BATON_API_RATE_LIMIT: "off",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stopNow = async (graceMs = 15_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    }
    // Children of a process that exited (task or parser processes) must not outlive it.
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // none left
    }
    await new Promise<void>((r) => out.end(r));
  };
  const release = onCleanup(`baton ${name} (pid ${child.pid})`, () => stopNow(5000));
  return {
    process: child,
    pid: child.pid!,
    name,
    logFile,
    stop: async (graceMs?: number) => {
      await stopNow(graceMs);
      await release();
    },
    problems: async () => {
      const text = await readFile(logFile, "utf8").catch(() => "");
      return text.split("\n").filter((line) => /\b(warn|error|fatal)\b|Error:|discarded/i.test(line));
    },
  };
}

/**
 * The distributed deployment's services as their own processes on a migrated database: `baton
 * dag-processor`, `baton scheduler` and `baton api` (healthy, on a free port). Each is pushed onto
 * `procs`, which the caller stops and summarises (logNotes).
 */
export async function startServices(db: Db, ws: Workspace, procs: BatonProcess[]): Promise<{ port: number }> {
  await migrateDatabase(db);
  const port = freePort();
  procs.push(spawnBaton("dag-processor", ["dag-processor"], db, ws));
  procs.push(spawnBaton("scheduler", ["scheduler"], db, ws));
  const api = spawnBaton("api", ["api"], db, ws, { BATON_PORT: String(port) });
  procs.push(api);
  await waitForHealth(port, api);
  return { port };
}

/** Notes for a result: how many warning/error lines each process printed, the first, and its log. */
export async function logNotes(procs: (BatonProcess | undefined)[]): Promise<string[]> {
  const notes: string[] = [];
  for (const p of procs) {
    if (!p) continue;
    const lines = await p.problems();
    if (lines.length > 0) notes.push(`baton ${p.name} printed ${lines.length} warning/error line(s) (log ${p.logFile}); first: ${lines[0]!.slice(0, 400)}`);
  }
  return notes;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitForHealth(port: number, proc?: BatonProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(`the API on port ${port}`, timeoutMs, async () => {
    if (proc && proc.process.exitCode !== null) {
      const tail = (await readFile(proc.logFile, "utf8").catch(() => "")).trim().split("\n").slice(-15).join("\n  ");
      throw new Error(`baton ${proc.name} exited with ${proc.process.exitCode}; its last output:\n  ${tail}`);
    }
    try {
      return (await fetch(`http://127.0.0.1:${port}/api/v1/health`)).ok;
    } catch {
      return false;
    }
  }, 100);
}

export function freePort(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

export interface Standalone {
  process: ChildProcess;
  baton: BatonProcess;
  port: number;
  dagsFolder: string;
  workspace: Workspace;
  stop(): Promise<void>;
}

/** Starts `baton standalone` on a temp DAG folder holding `files`, and waits for /health. */
export async function startStandalone(db: Db, files: Record<string, string>, env: Record<string, string> = {}): Promise<Standalone> {
  const ws = await workspace(files);
  const port = freePort();
  const baton = spawnBaton("standalone", ["standalone"], db, ws, { BATON_PORT: String(port), ...env });
  try {
    await waitForHealth(port, baton);
  } catch (err) {
    await baton.stop();
    await ws.remove();
    throw err;
  }
  return {
    process: baton.process,
    baton,
    port,
    dagsFolder: ws.dagsFolder,
    workspace: ws,
    stop: async () => {
      await baton.stop();
      await ws.remove();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Runs

export async function trigger(port: number, dagId: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/dags/${dagId}/dagRuns`, {
    method: "POST",
    headers: { "content-type": "application/json", ...AUTH },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`trigger ${dagId}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { dag_run_id: string }).dag_run_id;
}

/** A Baton process's Prometheus metrics (GET /metrics), by series: `name{label="value",…}` or `name`. */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: AUTH });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${await res.text()}`);
  const series = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    // `name{labels} value [timestamp]`: label values may hold spaces, and a sample may end with a timestamp.
    const nameEnd = line.includes("{") ? line.lastIndexOf("}") + 1 : line.indexOf(" ");
    const [value] = line.slice(nameEnd).trim().split(/\s+/);
    series.set(line.slice(0, nameEnd), Number(value));
  }
  return series;
}

export async function waitForRun(db: Db, dagId: string, runId: string, timeoutMs = 120_000): Promise<string> {
  return (await waitForRunsEnd(db, dagId, [runId], timeoutMs))[0]!;
}

/**
 * Waits until every one of these runs has ended; their end states in the same order. One query per
 * poll whatever the number of runs: a probe per run every 10 ms (100 runs) took a core of MariaDB
 * away from the scheduler being measured. Many runs are polled every 50 ms: the query reads an
 * index entry per run, and at 10 ms the 100-run poll was ≈ 5 % of MariaDB's statement time in
 * `fanout` (its slow log at long_query_time = 0). The figures come from the runs' own dates, so
 * a later poll only ends the CPU meters' windows a little later.
 */
export async function waitForRunsEnd(db: Db, dagId: string, runIds: string[], timeoutMs = 120_000): Promise<string[]> {
  const everyMs = runIds.length > 1 ? 50 : 10;
  return waitFor(`${runIds.length === 1 ? `run ${runIds[0]}` : `${runIds.length} runs`} of ${dagId}`, timeoutMs, async () => {
    const [rows] = await db.pool.query(`SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_id IN (${runIds.map(() => "?").join(", ")})`, [dagId, ...runIds]);
    const states = new Map((rows as { run_id: string; state: string }[]).map((r) => [r.run_id, r.state]));
    const ended = runIds.map((id) => states.get(id));
    return ended.every((state) => state === "success" || state === "failed") ? (ended as string[]) : undefined;
  }, everyMs);
}

/** Waits until at least `count` worker processes have registered (heartbeated once). */
export async function waitForWorkers(db: Db, count: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${count} worker(s) registered`, timeoutMs, async () => {
    const [[row]] = (await db.pool.query("SELECT COUNT(*) AS c FROM baton_process WHERE kind = 'worker'")) as unknown as [{ c: number }[]];
    return Number(row!.c) >= count;
  }, 50);
}

/** Waits until the DAG processor has stored every one of these DAGs. */
export async function waitForDags(db: Db, dagIds: string[], timeoutMs = 60_000): Promise<void> {
  await waitFor(`DAGs ${dagIds.join(", ")}`, timeoutMs, async () => {
    const [rows] = await db.pool.query(`SELECT COUNT(*) AS n FROM dag WHERE latest_version_hash IS NOT NULL AND dag_id IN (${dagIds.map(() => "?").join(", ")})`, dagIds);
    return Number((rows as { n: number }[])[0]!.n) === dagIds.length;
  }, 50);
}

export interface RunTimes {
  id: number;
  state: string;
  queuedAt: number;
  startedAt: number;
  endedAt: number;
}

export async function runTimes(db: Db, dagId: string, runId: string): Promise<RunTimes> {
  const [rows] = await db.pool.query("SELECT id, state, queued_at, start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  const r = (rows as { id: number; state: string; queued_at: Date; start_date: Date; end_date: Date }[])[0]!;
  return { id: Number(r.id), state: r.state, queuedAt: r.queued_at.getTime(), startedAt: r.start_date.getTime(), endedAt: r.end_date.getTime() };
}

/** The in-task start timestamps that tasks returned (their XCom), by task id. */
export async function taskStarts(db: Db, dagRunId: number): Promise<Map<string, number>> {
  const [rows] = await db.pool.query("SELECT task_id, value FROM xcom WHERE dag_run_id = ? AND xcom_key = 'return_value'", [dagRunId]);
  return new Map((rows as { task_id: string; value: string }[]).map((r) => [r.task_id, Number(JSON.parse(r.value))]));
}

/** States of a run's task instances, and any task that ran more than one try. */
export async function taskSummary(db: Db, dagRunIds: number[]): Promise<{ total: number; byState: Record<string, number>; retried: number }> {
  if (dagRunIds.length === 0) return { total: 0, byState: {}, retried: 0 };
  const [rows] = await db.pool.query(
    `SELECT state, COUNT(*) AS n, SUM(try_number <> 1) AS retried FROM task_instance WHERE dag_run_id IN (${dagRunIds.map(() => "?").join(", ")}) GROUP BY state`,
    dagRunIds,
  );
  const byState: Record<string, number> = {};
  let total = 0;
  let retried = 0;
  for (const r of rows as { state: string; n: number; retried: string | number }[]) {
    byState[r.state] = Number(r.n);
    total += Number(r.n);
    retried += Number(r.retried);
  }
  return { total, byState, retried };
}

/** Task instances of these runs that did not succeed, with their error, for a benchmark's notes. */
export async function failedTasks(db: Db, dagRunIds: number[], limit = 5): Promise<string[]> {
  if (dagRunIds.length === 0) return [];
  const [rows] = await db.pool.query(
    `SELECT dag_id, run_id, task_id, state, try_number, hostname, start_date, end_date, error FROM task_instance
      WHERE dag_run_id IN (${dagRunIds.map(() => "?").join(", ")}) AND state NOT IN ('success', 'upstream_failed') ORDER BY id LIMIT ${limit}`,
    dagRunIds,
  );
  return (rows as { dag_id: string; run_id: string; task_id: string; state: string; try_number: number; start_date: Date | null; end_date: Date | null; error: string | null }[]).map(
    (r) =>
      `${r.dag_id}.${r.task_id} (run ${r.run_id}) ended ${r.state} on try ${r.try_number} (started ${r.start_date?.toISOString() ?? "-"}, ended ${r.end_date?.toISOString() ?? "-"}): ${r.error ?? "no error recorded"}`,
  );
}

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// Figures

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

/** Memory (RSS) of a process in MB, from /proc; NaN where /proc is not available. */
export async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

export async function writeResult(result: BenchResult): Promise<void> {
  result.notes = [...(result.notes ?? []), loadNote()];
  resultsOfThisRun.set(result.name, result);
  await mkdir(path.join(ROOT, "bench/results"), { recursive: true });
  await writeFile(path.join(ROOT, "bench/results", `${result.name}.json`), JSON.stringify(result, null, 2) + "\n");
  const rows = Object.entries(result.metrics).map(([metric, value]) => {
    const target = result.targets[metric];
    const verdict = target === undefined ? "" : meets(metric, value, target) ? "  ok" : "  MISSED";
    return `  ${metric.padEnd(40)} ${String(value).padStart(12)}   target ${target === undefined ? "-" : target}${verdict}`;
  });
  process.stdout.write(`\n${result.name}\n${rows.join("\n")}\n`);
  for (const note of result.notes) process.stdout.write(`  note: ${note}\n`);
}

/** Throughputs (`*_per_s*`, `*_rps`) and counts of work done must reach their target; everything else must stay under it. */
export function meets(metric: string, value: number, target: number): boolean {
  return /(per_s(_\d+)?|_rps|_done)$/.test(metric) ? value >= target : value <= target;
}
