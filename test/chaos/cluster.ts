// Real Baton processes for the chaos tests: `node bin/baton.js scheduler|worker` against one
// test database, each in its own process group so a test can always kill it (its task processes
// lead groups of their own and exit, with what they started, once their worker is gone); output
// is kept (last lines) to explain a failure.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import mysql from "mysql2/promise";
import { silentLogger } from "../../core/logger.ts";
import { DagProcessor } from "../../parser/processor.ts";
import { systemClock } from "../../core/clock.ts";
import { connectionOptions, databaseNameOf, type Db, type RowDataPacket } from "../../store/db.ts";
import { BIN, cleanEnv, ROOT } from "../helpers/cli.ts";

const KEPT_LINES = 200;

export interface Proc {
  name: string;
  args: string[];
  child: ChildProcess;
  pid: number;
  startedAt: number;
  /** Set before the test kills it, so its exit is not reported as a crash. */
  expectExit: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Crash {
  name: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

export class Cluster {
  readonly procs = new Map<string, Proc>();
  readonly crashes: Crash[] = [];
  /** Set by stopAll: nothing starts again (a driver loop left running by a timed-out test stops). */
  closed = false;
  /** Process groups ever started: all are killed at the end, task processes included. */
  private readonly groups = new Set<number>();
  private readonly output = new Map<string, string[]>();

  constructor(
    private readonly env: Record<string, string>,
    /** Sees every output line (e.g. to count the schedulers' zombie warnings). */
    private readonly onLine?: (name: string, line: string) => void,
  ) {}

  start(name: string, args: string[]): Proc {
    if (this.closed) throw new Error(`cluster stopped: not starting ${name}`);
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(this.env), stdio: ["ignore", "pipe", "pipe"], detached: true });
    const pid = child.pid!;
    this.groups.add(pid);
    const lines = this.output.get(name) ?? [];
    this.output.set(name, lines);
    const keep = (chunk: string) => {
      for (const line of chunk.split("\n")) {
        if (!line.trim()) continue;
        this.onLine?.(name, line);
        lines.push(`[${name} ${pid}] ${line}`);
        if (lines.length > KEPT_LINES) lines.shift();
      }
    };
    child.stdout!.setEncoding("utf8").on("data", keep);
    child.stderr!.setEncoding("utf8").on("data", keep);
    const proc: Proc = {
      name,
      args,
      child,
      pid,
      startedAt: Date.now(),
      expectExit: false,
      exited: new Promise((resolve) =>
        child.once("exit", (code, signal) => {
          if (!proc.expectExit) this.crashes.push({ name, pid, code, signal, output: this.tail(name, 40) });
          resolve({ code, signal });
        }),
      ),
    };
    this.procs.set(name, proc);
    return proc;
  }

  /** kill -9 of the Baton process alone (its task processes notice and exit); resolves once it is gone. */
  async kill9(name: string): Promise<Proc> {
    const proc = this.procs.get(name)!;
    proc.expectExit = true;
    proc.child.kill("SIGKILL");
    await proc.exited;
    return proc;
  }

  restart(name: string): Proc | undefined {
    return this.closed ? undefined : this.start(name, this.procs.get(name)!.args);
  }

  tail(name?: string, n = 30): string {
    const names = name ? [name] : [...this.output.keys()];
    return names.flatMap((k) => (this.output.get(k) ?? []).slice(-n)).join("\n");
  }

  /** Kills every process group this cluster started (Baton processes; their task processes exit when they go). */
  async stopAll(): Promise<void> {
    this.closed = true;
    for (const proc of this.procs.values()) proc.expectExit = true;
    for (const group of this.groups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await Promise.all([...this.procs.values()].map((p) => p.exited));
  }
}

/** Parses a DAG folder once, in-process, into the database (instead of a dag-processor process). */
export async function parseFolder(db: Db, dagsFolder: string, scratch: string): Promise<void> {
  await mkdir(scratch, { recursive: true });
  const processor = new DagProcessor(db, systemClock, silentLogger, {
    dagsFolder,
    parseTimeoutMs: 60_000,
    rescanIntervalMs: 3_600_000,
    pausedAtCreation: false,
    scratchFolder: scratch,
    poolSize: 1,
  });
  try {
    const report = await processor.scan();
    if (report.errors > 0 || report.dags === 0) throw new Error(`parsing ${dagsFolder} failed: ${JSON.stringify(report)}`);
  } finally {
    await processor.stop();
  }
}

/**
 * A connection pool to the test database's server with no default database, so the test's own
 * connections are never among those it kills (PROCESSLIST.DB is NULL for them).
 */
export class Observer {
  readonly pool: mysql.Pool;
  readonly database: string;

  constructor(url: string) {
    this.database = databaseNameOf(url);
    this.pool = mysql.createPool({ ...connectionOptions(url), connectionLimit: 3 });
  }

  /** `table` in the test database, quoted. */
  t(table: string): string {
    return `\`${this.database}\`.\`${table}\``;
  }

  async rows(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(sql, params);
    return rows;
  }

  /** KILLs every connection Baton's processes hold to the test database; returns how many. */
  async killConnections(): Promise<number> {
    const ids = await this.rows("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", [this.database]);
    let killed = 0;
    for (const { ID } of ids) {
      try {
        await this.pool.query(`KILL CONNECTION ${Number(ID)}`);
        killed++;
      } catch {
        // closed meanwhile
      }
    }
    return killed;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
