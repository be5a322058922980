// Shared plumbing for benchmarks: a fresh database, a real `baton standalone` process,
// environment facts, and the JSON result file.
import { execSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dropDatabase, ensureDatabase, openDb, type Db } from "../store/db.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SERVER = process.env.BATON_BENCH_DATABASE_SERVER ?? "mysql://root@127.0.0.1:3306";

export interface BenchResult {
  name: string;
  metrics: Record<string, number>;
  targets: Record<string, number>;
  env: Record<string, string | number>;
  notes?: string[];
}

export function environment(db?: { version?: string }): Record<string, string | number> {
  let commit = "unknown";
  try {
    commit = execSync("git rev-parse --short HEAD", { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    // not a checkout
  }
  return { node: process.version, mariadb: db?.version ?? "unknown", cores: os.cpus().length, commit };
}

export async function freshDatabase(tag: string): Promise<Db> {
  const url = `${SERVER}/baton_bench_${tag}_${randomBytes(3).toString("hex")}`;
  await ensureDatabase(url);
  return openDb(url, { connectionLimit: 4 });
}

export async function serverVersion(db: Db): Promise<string> {
  const [rows] = await db.pool.query("SELECT VERSION() AS v");
  return (rows as { v: string }[])[0]!.v;
}

export async function cleanupDatabase(db: Db): Promise<void> {
  await db.close();
  await dropDatabase(db.url);
}

export interface Standalone {
  process: ChildProcess;
  port: number;
  dagsFolder: string;
  stop(): Promise<void>;
}

/** Starts `baton standalone` on a temp DAG folder holding `files`, and waits for /health. */
export async function startStandalone(db: Db, files: Record<string, string>, env: Record<string, string> = {}): Promise<Standalone> {
  const work = await mkdtemp(path.join(os.tmpdir(), "baton-bench-"));
  const dagsFolder = path.join(work, "dags");
  await mkdir(dagsFolder, { recursive: true });
  for (const [name, source] of Object.entries(files)) await writeFile(path.join(dagsFolder, name), source);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), "standalone"], {
    cwd: work,
    env: {
      ...process.env,
      BATON_DATABASE_URL: db.url,
      BATON_DAGS_FOLDER: dagsFolder,
      BATON_LOGS_FOLDER: path.join(work, "logs"),
      BATON_PORT: String(port),
      BATON_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`baton standalone exited with ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("baton standalone did not answer within 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: child,
    port,
    dagsFolder,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      await rm(work, { recursive: true, force: true });
    },
  };
}

export async function trigger(port: number, dagId: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/dags/${dagId}/dagRuns`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`trigger ${dagId}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { dag_run_id: string }).dag_run_id;
}

export async function waitForRun(db: Db, dagId: string, runId: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [rows] = await db.pool.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    const state = (rows as { state: string }[])[0]?.state;
    if (state === "success" || state === "failed") return state;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not finish within ${timeoutMs} ms (state ${state})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

export async function writeResult(result: BenchResult): Promise<void> {
  await mkdir(path.join(ROOT, "bench/results"), { recursive: true });
  await writeFile(path.join(ROOT, "bench/results", `${result.name}.json`), JSON.stringify(result, null, 2) + "\n");
  const rows = Object.entries(result.metrics).map(([metric, value]) => {
    const target = result.targets[metric];
    return `  ${metric.padEnd(28)} ${String(value).padStart(12)}   target ${target === undefined ? "-" : target}`;
  });
  process.stdout.write(`\n${result.name}\n${rows.join("\n")}\n`);
  for (const note of result.notes ?? []) process.stdout.write(`  note: ${note}\n`);
}
