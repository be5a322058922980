// bullmq: the chain, fibo40 and fanout shapes on BullMQ's FlowProducer (the real `bullmq`
// package), against (1) the Redis already running at 127.0.0.1:6379 and (2) a Redis this
// benchmark starts on a spare port with `--appendonly yes --appendfsync always` (every write
// fsynced, like a MariaDB commit), then Baton's figures of this same `npm run bench` divided by
// BullMQ's (`baton_over_bullmq_*`; Baton's figures are measured first when this runs alone).
//
// Shapes, in BullMQ terms (a flow is a tree whose children finish before their parent starts):
//   chain    100 no-op jobs nested 100 deep; total = flow.add() called → last job completed
//   fibo40   40 jobs nested 40 deep, each computing fibo(10); same total
//   fanout   a root job whose processor adds a flow {join ← 10,000 no-op children}; then 100 runs
//            of root → 98 → join. tasks/s is the lower of the two phases, as for Baton.
// One BullMQ Worker in this process: concurrency 2 for the chains (Baton: 2 worker slots), and
// as many as Baton's fanout slots for the fanout. Jobs run in-process (no child process).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { FlowProducer, Queue, Worker, type FlowJob, type Job } from "bullmq";
import { chain, measureChain } from "./chain.ts";
import { CHAIN_DAG } from "./dags.ts";
import { fanout, FANOUT_WORKERS } from "./fanout.ts";
import { fibo40 } from "./fibo40.ts";
import {
  environment,
  freePort,
  freshDatabase,
  mapLimit,
  median,
  onCleanup,
  percentile,
  resultsOfThisRun,
  round,
  startStandalone,
  waitFor,
  writeResult,
  type Standalone,
} from "./lib.ts";

const CHAIN = 100;
const FIBO = 40;
const REPETITIONS = 5;
const WIDE = 10_000;
const RUNS = 100;

const stamp = () => performance.timeOrigin + performance.now();
function fibo(n: number): number {
  return n < 2 ? n : fibo(n - 1) + fibo(n - 2);
}

/** Answers PING within a second? */
function redisAnswers(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

async function redisInfo(port: number, section: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    let text = "";
    socket.setTimeout(2000, () => socket.destroy());
    socket.once("error", () => resolve(""));
    socket.once("connect", () => socket.write(`INFO ${section}\r\n`));
    socket.on("data", (d) => {
      text += d.toString();
      if (text.length > 10 && text.endsWith("\r\n\r\n")) socket.destroy();
    });
    socket.once("close", () => resolve(text));
  });
}

/** A durable Redis of our own: every write is appended and fsynced before the reply. */
async function startDurableRedis(): Promise<{ port: number; version: string; stop: () => Promise<void> } | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "baton-bench-redis-"));
  const port = freePort();
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", dir], {
    stdio: "ignore",
  });
  const failed = new Promise<boolean>((r) => {
    proc.once("error", () => r(true));
    proc.once("exit", () => r(true));
  });
  const stop = onCleanup(`redis-server on port ${port} (pid ${proc.pid})`, async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });
  try {
    await Promise.race([
      waitFor(`redis-server on port ${port}`, 10_000, () => redisAnswers(port), 50),
      failed.then(() => {
        throw new Error("redis-server could not be started");
      }),
    ]);
  } catch (err) {
    process.stdout.write(`  durable Redis unavailable: ${(err as Error).message}\n`);
    await stop();
    return undefined;
  }
  const version = /redis_version:(\S+)/.exec(await redisInfo(port, "server"))?.[1] ?? "unknown";
  return { port, version, stop };
}

interface BullFigures {
  chainTotalMs: number;
  chainHopP50Ms: number;
  fibo40TotalMs: number;
  fanoutTasksPerS: number;
  fanoutOneRunTasksPerS: number;
  fanoutManyRunsTasksPerS: number;
  joinDelayMs: number;
}

const connectionTo = (port: number) => ({ host: "127.0.0.1", port, maxRetriesPerRequest: null });

/** A queue of its own on the Redis at `port` (obliterated by close()). */
function openQueue(port: number) {
  const name = `baton-bench-${randomBytes(4).toString("hex")}`;
  const queue = new Queue(name, { connection: connectionTo(port) });
  const flows = new FlowProducer({ connection: connectionTo(port) });
  const close = async () => {
    await flows.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch((err) => process.stderr.write(`could not remove BullMQ queue ${name}: ${(err as Error).message}\n`));
    await queue.close().catch(() => undefined);
  };
  return { name, queue, flows, close };
}

/**
 * Chains as BullMQ flows nested `length` deep (the last task is the flow's root, the first the
 * deepest child) on a Worker of concurrency 2, as Baton's chain has 2 worker slots.
 */
async function openChains(port: number) {
  const q = openQueue(port);
  const starts = new Map<string, number>();
  const completed = new Map<string, (at: number) => void>();
  const worker = new Worker(
    q.name,
    async (job: Job) => {
      starts.set(job.name, stamp());
      if (job.name.startsWith("fibo:")) fibo(10);
    },
    { connection: connectionTo(port), concurrency: 2 },
  );
  worker.on("completed", (job: Job) => completed.get(job.name)?.(stamp()));
  await worker.waitUntilReady();
  const name = (kind: string, tag: string, i: number) => `${kind}:${tag}:${String(i).padStart(4, "0")}`;
  const chainOnce = async (tag: string, length: number, kind: "chain" | "fibo") => {
    let node: FlowJob | undefined;
    for (let i = 0; i < length; i++) node = { name: name(kind, tag, i), queueName: q.name, data: {}, children: node ? [node] : undefined };
    const done = new Promise<number>((resolve) => completed.set(name(kind, tag, length - 1), resolve));
    const t0 = stamp();
    await q.flows.add(node!);
    const end = await done;
    const hops: number[] = [];
    for (let i = 1; i < length; i++) hops.push(starts.get(name(kind, tag, i))! - starts.get(name(kind, tag, i - 1))!);
    return { total: end - t0, hops };
  };
  const close = async () => {
    await worker.close().catch(() => undefined);
    await q.close();
  };
  return { chainOnce, close };
}

/** Runs every shape against the Redis on `port`, in queues of their own that are obliterated after. */
export async function measureBullmq(port: number): Promise<BullFigures> {
  const chains = await openChains(port);
  const chainTotals: number[] = [];
  const chainHops: number[] = [];
  const fiboTotals: number[] = [];
  try {
    await chains.chainOnce("warm", CHAIN, "chain");
    for (let r = 0; r < REPETITIONS; r++) {
      const f = await chains.chainOnce(`r${r}`, CHAIN, "chain");
      chainTotals.push(f.total);
      chainHops.push(...f.hops);
    }
    await chains.chainOnce("warm", FIBO, "fibo");
    for (let r = 0; r < REPETITIONS; r++) fiboTotals.push((await chains.chainOnce(`r${r}`, FIBO, "fibo")).total);
  } finally {
    await chains.close();
  }

  // Fanout, with as many concurrent jobs as Baton's fanout has worker slots.
  const q = openQueue(port);
  const starts = new Map<string, number>();
  const completed = new Map<string, (at: number) => void>();
  const childEnds: number[] = [];
  let collectEnds = false;
  const worker = new Worker(
    q.name,
    async (job: Job) => {
      starts.set(job.name, stamp());
      const [kind, key] = job.name.split(":") as [string, string];
      if (kind === "root") {
        const width = Number(job.data.width);
        await q.flows.add({
          name: `join:${key}`,
          queueName: q.name,
          children: Array.from({ length: width }, (_, i) => ({ name: `m:${key}:${i}`, queueName: q.name, data: {} })),
        });
      }
    },
    { connection: connectionTo(port), concurrency: FANOUT_WORKERS },
  );
  worker.on("completed", (job: Job) => {
    const at = stamp();
    if (collectEnds && job.name.startsWith("m:")) childEnds.push(at);
    completed.get(job.name)?.(at);
  });
  try {
    await worker.waitUntilReady();
    const fanoutOnce = async (key: string, width: number) => {
      const done = new Promise<number>((resolve) => completed.set(`join:${key}`, resolve));
      await q.queue.add(`root:${key}`, { width });
      return done;
    };
    await fanoutOnce("warm", 98);
    collectEnds = true;
    const t0 = stamp();
    const joinEnd = await fanoutOnce("wide", WIDE);
    collectEnds = false;
    const rootStart = starts.get("root:wide")!;
    const joinDelayMs = starts.get("join:wide")! - Math.max(...childEnds);
    const oneRun = (WIDE + 2) / ((joinEnd - Math.min(rootStart, t0)) / 1000);
    const t1 = stamp();
    const ends = await mapLimit(Array.from({ length: RUNS }, (_, i) => i), RUNS, (i) => fanoutOnce(`many${i}`, 98));
    const many = (RUNS * 100) / ((Math.max(...ends) - t1) / 1000);
    return {
      chainTotalMs: median(chainTotals),
      chainHopP50Ms: percentile(chainHops, 50),
      fibo40TotalMs: median(fiboTotals),
      fanoutTasksPerS: Math.min(oneRun, many),
      fanoutOneRunTasksPerS: oneRun,
      fanoutManyRunsTasksPerS: many,
      joinDelayMs,
    };
  } finally {
    await worker.close().catch(() => undefined);
    await q.close();
  }
}

/**
 * Baton's chain and BullMQ's chain on the durable Redis, one run each in turn, REPETITIONS
 * times: both meet the machine as it is at that moment. The other ratios divide figures
 * measured minutes apart, and this VM's commit and fsync latencies drift over minutes (durable
 * BullMQ's chain took 146.6 ms in one full run and 82.2 ms in the next, 35 minutes later).
 */
async function interleavedDurableChain(port: number): Promise<{ batonMs: number; bullmqMs: number }> {
  const db = await freshDatabase("bullmq_chain");
  let baton: Standalone | undefined;
  const chains = await openChains(port);
  try {
    baton = await startStandalone(db, { "chain.ts": CHAIN_DAG("bench_chain_beside", CHAIN) }, { BATON_WORKERS: "2" });
    await measureChain(db, baton, "bench_chain_beside", 0);
    await chains.chainOnce("warm", CHAIN, "chain");
    const batonTotals: number[] = [];
    const bullTotals: number[] = [];
    for (let r = 0; r < REPETITIONS; r++) {
      batonTotals.push(...(await measureChain(db, baton, "bench_chain_beside", 1, { warmUp: false })).totals);
      bullTotals.push((await chains.chainOnce(`beside${r}`, CHAIN, "chain")).total);
    }
    return { batonMs: median(batonTotals), bullmqMs: median(bullTotals) };
  } finally {
    await chains.close();
    await baton?.stop();
    await db.drop();
  }
}

export async function bullmq(): Promise<void> {
  if (!(await redisAnswers(6379))) {
    process.stdout.write("\nbullmq\n  skipped: no Redis answers at 127.0.0.1:6379 (start redis-server to compare Baton with BullMQ); no result written\n");
    return;
  }
  // Baton's side of the ratios comes from this same `npm run bench`; measure it now if it did not run.
  for (const [name, run] of [["chain", chain], ["fibo40", fibo40], ["fanout", fanout]] as const) {
    if (!resultsOfThisRun.has(name)) {
      process.stdout.write(`  (bullmq needs Baton's ${name} figures from this run: running ${name} first)\n`);
      await run();
    }
  }
  process.stdout.write("  measuring BullMQ…\n");
  const started = Date.now();
  const plain = await measureBullmq(6379);
  const plainPersistence = await redisInfo(6379, "persistence");
  const aof = /aof_enabled:(\d)/.exec(plainPersistence)?.[1] === "1";
  const plainVersion = /redis_version:(\S+)/.exec(await redisInfo(6379, "server"))?.[1] ?? "unknown";

  const durableRedis = await startDurableRedis();
  let durable: BullFigures | undefined;
  let beside: { batonMs: number; bullmqMs: number } | undefined;
  try {
    if (durableRedis) {
      durable = await measureBullmq(durableRedis.port);
      beside = await interleavedDurableChain(durableRedis.port);
    }
  } finally {
    await durableRedis?.stop();
  }

  const baton = (name: string, metric: string) => resultsOfThisRun.get(name)?.metrics[metric] ?? Number.NaN;
  const metrics: Record<string, number> = {
    chain_total_ms: round(plain.chainTotalMs, 1),
    fibo40_total_ms: round(plain.fibo40TotalMs, 1),
    fanout_tasks_per_s: round(plain.fanoutTasksPerS, 0),
    chain_hop_p50_ms: round(plain.chainHopP50Ms, 2),
    fanout_join_delay_ms: round(plain.joinDelayMs, 2),
  };
  if (durable) {
    Object.assign(metrics, {
      durable_chain_total_ms: round(durable.chainTotalMs, 1),
      durable_fibo40_total_ms: round(durable.fibo40TotalMs, 1),
      durable_fanout_tasks_per_s: round(durable.fanoutTasksPerS, 0),
      durable_chain_hop_p50_ms: round(durable.chainHopP50Ms, 2),
    });
  }
  const ratios = (prefix: string, f: BullFigures) => ({
    [`baton_over_bullmq_${prefix}chain_total_ms`]: round(baton("chain", "total_ms") / f.chainTotalMs),
    [`baton_over_bullmq_${prefix}fibo40_total_ms`]: round(baton("fibo40", "total_ms") / f.fibo40TotalMs),
    [`baton_over_bullmq_${prefix}fanout_tasks_per_s`]: round(baton("fanout", "tasks_per_s") / f.fanoutTasksPerS),
  });
  Object.assign(metrics, ratios("", plain), durable ? ratios("durable_", durable) : {});
  if (beside) {
    Object.assign(metrics, {
      interleaved_baton_chain_total_ms: round(beside.batonMs, 1),
      interleaved_durable_chain_total_ms: round(beside.bullmqMs, 1),
      baton_over_bullmq_durable_chain_interleaved: round(beside.batonMs / beside.bullmqMs),
    });
  }
  await writeResult({
    name: "bullmq",
    metrics,
    targets: durable ? { baton_over_bullmq_durable_chain_total_ms: 3 } : {},
    env: environment({ version: String(resultsOfThisRun.get("chain")?.env.mariadb ?? "unknown") }),
    notes: [
      `default Redis at 127.0.0.1:6379 (Redis ${plainVersion}, appendonly ${aof ? "yes" : "no"}); ${durable ? `durable Redis ${durableRedis!.version} started on a spare port with --appendonly yes --appendfsync always` : "durable Redis could not be started: durable_* figures missing"}`,
      `BullMQ: median of ${REPETITIONS} runs after a warm-up, flow.add() → last job completed; fanout = lower of 1 root → ${WIDE} → join and ${RUNS} runs × 100; Worker concurrency 2 (chains) / ${FANOUT_WORKERS} (fanout), jobs in-process`,
      `fanout one run ${round(plain.fanoutOneRunTasksPerS, 0)}/s, ${RUNS} runs ${round(plain.fanoutManyRunsTasksPerS, 0)}/s${durable ? `; durable: ${round(durable.fanoutOneRunTasksPerS, 0)}/s and ${round(durable.fanoutManyRunsTasksPerS, 0)}/s, join delay ${round(durable.joinDelayMs, 2)} ms` : ""}`,
      "ratios = Baton's figure of this run / BullMQ's: for *_ms lower is better for Baton, for *_tasks_per_s higher is better for Baton",
      `Baton side: chain.total_ms ${baton("chain", "total_ms")}, fibo40.total_ms ${baton("fibo40", "total_ms")}, fanout.tasks_per_s ${baton("fanout", "tasks_per_s")}`,
      ...(beside
        ? [
            `interleaved: a Baton chain run, then a BullMQ chain on the durable Redis, ${REPETITIONS} times in turn (medians ${round(beside.batonMs, 1)} and ${round(beside.bullmqMs, 1)} ms): the durable chain ratio with both measured on the machine as it was at that moment`,
          ]
        : []),
      `BullMQ part took ${round((Date.now() - started) / 1000, 1)} s`,
    ],
  });
}
