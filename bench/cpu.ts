// Where a benchmark's CPU goes, read from /proc: per process tree (a Baton process and the task or
// parser processes under it, live or already reaped), MariaDB, the benchmark process itself, and
// the whole machine. It answers whether a throughput figure is bounded by the cores: when the
// machine is nearly all busy, cores ÷ (CPU per unit of work) is the most the workload can reach
// here, whatever the latency of each step.
import { execSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import os from "node:os";

/** A process tree (root pid) or this process ("self"). */
export type CpuPart = number | "self";

export interface CpuSpent {
  wallMs: number;
  /** CPU milliseconds of each part over the window. */
  byPart: Record<string, number>;
  /** Share of the machine's cores busy over the window (every process and the kernel), 0–1. */
  machineBusy: number;
  cores: number;
}

export interface CpuMeter {
  stop(): CpuSpent;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execSync("getconf CLK_TCK", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks: its own CPU and that of children it reaped. */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) };
  } catch {
    return undefined; // gone, or not Linux
  }
}

/** CPU ticks of a process and all its live descendants (reaped ones are in their parents' cutime/cstime). */
function treeTicks(root: number): number {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.set(Number(name), stat);
  }
  const children = new Map<number, number[]>();
  for (const [pid, stat] of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  let ticks = 0;
  const queue = [root];
  while (queue.length) {
    const pid = queue.pop()!;
    ticks += stats.get(pid)?.ticks ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

/** Busy and total jiffies of the machine (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest time is inside user
    const idle = fields[3]! + fields[4]!; // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** The local MariaDB/MySQL server's pid, or undefined (remote server, or not Linux). */
export function databaseServerPid(): number | undefined {
  for (const name of ["mariadbd", "mysqld"]) {
    try {
      const pid = Number(execSync(`pgrep -x -o ${name}`, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim());
      if (pid > 0) return pid;
    } catch {
      // not running under this name
    }
  }
  return undefined;
}

/** Starts counting CPU of each part; stop() answers what each spent since. */
export function meterCpu(parts: Record<string, CpuPart | undefined>): CpuMeter {
  const present = Object.entries(parts).filter((e): e is [string, CpuPart] => e[1] !== undefined);
  const read = () => ({
    at: performance.now(),
    self: process.cpuUsage(),
    trees: present.map(([, p]) => (p === "self" ? 0 : treeTicks(p))),
    machine: machineTicks(),
  });
  const start = read();
  return {
    stop(): CpuSpent {
      const end = read();
      const msPerTick = 1000 / clockTicks();
      const selfMs = (end.self.user - start.self.user + end.self.system - start.self.system) / 1000;
      const byPart = Object.fromEntries(present.map(([name, p], i) => [name, p === "self" ? selfMs : (end.trees[i]! - start.trees[i]!) * msPerTick]));
      const total = end.machine.total - start.machine.total;
      return { wallMs: end.at - start.at, byPart, machineBusy: total > 0 ? (end.machine.busy - start.machine.busy) / total : Number.NaN, cores: os.cpus().length };
    },
  };
}

/**
 * Metrics of CPU per unit of work (`cpu_ms_per_<unit>_<part>` and their sum), the machine's busy
 * share, and `cpu_bound_<unit>s_per_s`: the cores divided by the CPU one unit takes, the rate
 * this machine cannot exceed at that cost.
 */
export function cpuMetrics(spent: CpuSpent, units: number, unit: string): Record<string, number> {
  const r = (n: number) => Math.round(n * 1000) / 1000;
  const perPart = Object.fromEntries(Object.entries(spent.byPart).map(([name, ms]) => [`cpu_ms_per_${unit}_${name}`, r(ms / units)]));
  const total = Object.values(spent.byPart).reduce((a, b) => a + b, 0) / units;
  return {
    ...perPart,
    [`cpu_ms_per_${unit}`]: r(total),
    machine_busy: Math.round(spent.machineBusy * 100) / 100,
    [`cpu_bound_${unit}s_per_s`]: total > 0 ? Math.round((spent.cores * 1000) / total) : Number.NaN,
  };
}

/** One line for a result's notes. */
export function cpuNote(what: string, spent: CpuSpent, units: number, unit: string): string {
  const parts = Object.entries(spent.byPart).map(([name, ms]) => `${name} ${(ms / units).toFixed(3)}`);
  const total = Object.values(spent.byPart).reduce((a, b) => a + b, 0) / units;
  return (
    `CPU per ${unit} during ${what}: ${parts.join(", ")} ms (${total.toFixed(3)} together); the ${spent.cores} cores were ` +
    `${Math.round(spent.machineBusy * 100)} % busy over ${(spent.wallMs / 1000).toFixed(1)} s: at this cost they cannot exceed ` +
    `${Math.round((spent.cores * 1000) / total)} ${unit}s/s`
  );
}
