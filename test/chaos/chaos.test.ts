// Chaos: 2 schedulers and 3 workers as real `node bin/baton.js` processes run 50 runs of a
// 40-task DAG (chains, fan-out, fan-in) while the test kills processes with -9 (first test) or
// KILLs every MySQL connection they hold (second test). Every run must succeed, every task
// instance must record exactly one successful try — the one whose execution it stored — and
// no success may be counted twice downstream. Task code may run more than once (at-least-once).
// Figures are printed: tasks, executions, kills, zombies reaped, longest recovery.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { dropDatabase } from "../../store/db.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { createTestDb } from "../helpers/db.ts";
import { Cluster, Observer, parseFolder } from "./cluster.ts";

const RUNS = 50;
const TASKS_PER_RUN = 40;
const FINISH_WITHIN_MS = 110_000;
/** Faults injected before the runs may end (their last tasks wait at the gate until then). */
const KILLS_BEFORE_GATE = 3;
const KILL_ROUNDS_BEFORE_GATE = 2;

// 1 + 6 chains of 5 + join + 7 leaves + end = 40 tasks. Each execution appends a line to its
// run's file, so executions can be counted; the output names the try that produced it.
const CHAOS_DAG = `import { appendFileSync, existsSync } from "node:fs";
import { dag } from "baton";

const work = async (ctx) => {
  await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 20)));
  const mark = ctx.runId + ":" + ctx.taskId + ":" + ctx.tryNumber;
  appendFileSync(ctx.conf.dir + "/" + ctx.runId + ".log", mark + "\\n");
  return mark;
};
// A run's last task waits until the test opens the gate, so no run ends before the faults the
// test counts have happened, however fast the machine (at most a minute, then it goes on).
const gated = async (ctx) => {
  for (let waited = 0; !existsSync(ctx.conf.gate) && waited < 60000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  return work(ctx);
};

export default dag({ id: "chaos", maxActiveRuns: ${RUNS}, maxActiveTasks: 1000, defaultArgs: { retries: 10, retryDelay: 0 } }, (t) => {
  const start = t.task("start", work);
  const tails = [];
  for (let b = 0; b < 6; b++) {
    let prev = start;
    for (let i = 0; i < 5; i++) prev = t.task("b" + b + "_" + i, { upstream: [prev] }, work);
    tails.push(prev);
  }
  const join = t.task("join", { upstream: tails }, work);
  const leaves = [];
  for (let l = 0; l < 7; l++) leaves.push(t.task("l" + l, { upstream: [join] }, work));
  t.task("end", { upstream: leaves }, gated);
});
`;

interface World {
  url: string;
  root: string;
  execDir: string;
  /** The file whose existence lets the runs' last tasks finish. */
  gate: string;
  observer: Observer;
  cluster: Cluster;
  zombieWarnings: number;
}

const worlds: World[] = [];
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

async function setUp(): Promise<World> {
  const db = await createTestDb();
  const root = await mkdtemp(path.join(os.tmpdir(), "baton-chaos-"));
  const world = { url: db.url, root, execDir: path.join(root, "exec"), gate: path.join(root, "gate") } as World;
  worlds.push(world);
  await mkdir(path.join(root, "dags"), { recursive: true });
  await mkdir(world.execDir);
  await writeFile(path.join(root, "dags", "chaos.ts"), CHAOS_DAG);
  try {
    await parseFolder(db, path.join(root, "dags"), path.join(root, "parse"));
    const now = new Date();
    for (let i = 0; i < RUNS; i++) {
      const runId = `chaos_${String(i).padStart(2, "0")}`;
      await createDagRun(db, now, { dagId: "chaos", runId, runType: "manual", logicalDate: new Date(now.getTime() + i), conf: { dir: world.execDir, gate: world.gate } });
    }
  } finally {
    await db.close();
  }
  world.observer = new Observer(db.url);
  world.zombieWarnings = 0;
  world.cluster = new Cluster(
    {
      BATON_DATABASE_URL: db.url,
      BATON_TASK_HEARTBEAT_TIMEOUT: "3s",
      BATON_SCHEDULER_INTERVAL: "200ms",
      BATON_SHUTDOWN_GRACE: "1s",
      BATON_LOG_LEVEL: "info",
      BATON_LOGS_FOLDER: path.join(root, "logs"),
      BATON_CACHE_FOLDER: path.join(root, "cache"),
    },
    (name, line) => {
      if (line.includes("zombie: try")) world.zombieWarnings++;
      // BATON_TEST_LOG=1 shows what the processes say (the harness's switch for component logs).
      if (process.env.BATON_TEST_LOG) process.stderr.write(`[${name}] ${line}\n`);
    },
  );
  for (const name of ["scheduler-1", "scheduler-2"]) world.cluster.start(name, ["scheduler"]);
  for (const name of ["worker-1", "worker-2", "worker-3"]) world.cluster.start(name, ["worker", "--concurrency", "4"]);
  return world;
}

async function tearDown(world: World): Promise<void> {
  await world.cluster?.stopAll();
  await world.observer?.close().catch(() => undefined);
  await dropDatabase(world.url).catch(() => undefined);
  await rm(world.root, { recursive: true, force: true });
}

afterAll(async () => {
  for (const world of worlds.splice(0)) await tearDown(world);
});

/** Waits (with a deadline) until every run has ended, failing with the states and the processes' last lines. */
async function waitForRuns(world: World): Promise<void> {
  const { observer: o, cluster } = world;
  const deadline = Date.now() + FINISH_WITHIN_MS;
  for (;;) {
    const [row] = await o.rows(`SELECT COUNT(*) AS n, SUM(state IN ('success', 'failed')) AS ended FROM ${o.t("dag_run")}`).catch(() => [undefined]);
    if (row && Number(row.n) === RUNS && Number(row.ended) === RUNS) return;
    if (cluster.crashes.length > 0) break;
    if (Date.now() > deadline) break;
    await pause(250);
  }
  const runs = await o.rows(`SELECT state, COUNT(*) AS n FROM ${o.t("dag_run")} GROUP BY state`);
  const tis = await o.rows(`SELECT state, COUNT(*) AS n FROM ${o.t("task_instance")} GROUP BY state`);
  throw new Error(
    `runs did not all finish within ${FINISH_WITHIN_MS} ms or a process crashed\n` +
      `runs: ${JSON.stringify(runs)}\ntask instances: ${JSON.stringify(tis)}\n` +
      `crashes: ${JSON.stringify(cluster.crashes, null, 1)}\nlast lines:\n${cluster.tail(undefined, 15)}`,
  );
}

/** Waits until each process has heartbeated once, so the faults start on a running cluster. */
async function waitForCluster(world: World): Promise<void> {
  const { observer: o, cluster } = world;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await o.rows(`SELECT SUM(kind = 'scheduler') AS s, SUM(kind = 'worker') AS w FROM ${o.t("baton_process")}`);
    if (Number(row?.s) >= 2 && Number(row?.w) >= 3) return;
    if (Date.now() > deadline || cluster.crashes.length > 0) throw new Error(`the cluster did not come up\n${cluster.tail(undefined, 15)}`);
    await pause(100);
  }
}

interface Outcome {
  tasks: number;
  executions: number;
  tries: number;
}

/** The assertions both tests share; returns the figures. */
async function verify(world: World): Promise<Outcome> {
  const { observer: o, cluster } = world;
  expect(cluster.crashes).toEqual([]);
  const runs = await o.rows(`SELECT run_id, state, unfinished_tasks FROM ${o.t("dag_run")} ORDER BY run_id`);
  expect(runs).toHaveLength(RUNS);
  expect(runs.filter((r) => r.state !== "success" || Number(r.unfinished_tasks) !== 0)).toEqual([]);

  const tis = await o.rows(
    `SELECT ti.run_id, ti.task_id, ti.state, ti.try_number, ti.upstream_total, ti.up_success, ti.up_failed, ti.up_skipped,
            ti.up_upstream_failed, x.value
       FROM ${o.t("task_instance")} ti
       LEFT JOIN ${o.t("xcom")} x ON x.dag_run_id = ti.dag_run_id AND x.task_id = ti.task_id AND x.map_index = ti.map_index AND x.xcom_key = 'return_value'`,
  );
  expect(tis).toHaveLength(RUNS * TASKS_PER_RUN);
  // One success per task instance, recorded by the try that produced it (the fence), and
  // counted exactly once by each downstream task (a success recorded twice would count twice).
  const wrong = tis.filter(
    (t) =>
      t.state !== "success" ||
      JSON.parse(t.value ?? "null") !== `${t.run_id}:${t.task_id}:${t.try_number}` ||
      Number(t.up_success) !== Number(t.upstream_total) ||
      Number(t.up_failed) + Number(t.up_skipped) + Number(t.up_upstream_failed) !== 0,
  );
  expect(wrong.slice(0, 5)).toEqual([]);

  // Executions (at least once): every recorded try did run, and every task ran at least once.
  const executed = new Map<string, number>();
  let executions = 0;
  for (const file of await readdir(world.execDir)) {
    for (const line of (await readFile(path.join(world.execDir, file), "utf8")).split("\n")) {
      if (!line) continue;
      executions++;
      executed.set(line, (executed.get(line) ?? 0) + 1);
    }
  }
  const unexecuted = tis.filter((t) => !executed.has(`${t.run_id}:${t.task_id}:${t.try_number}`));
  expect(unexecuted.slice(0, 5)).toEqual([]);

  const [pool] = await o.rows(`SELECT occupied_slots FROM ${o.t("pool")} WHERE name = 'default_pool'`);
  expect(Number(pool!.occupied_slots)).toBe(0);
  return { tasks: tis.length, executions, tries: tis.reduce((n, t) => n + Number(t.try_number), 0) };
}

describe("chaos", () => {
  it("kill -9 of random workers and schedulers every 2–3 s: every run succeeds, every success recorded once", async () => {
    const started = Date.now();
    const world = await setUp();
    const { cluster, observer: o } = world;
    await waitForCluster(world);

    // Tries that were running on a killed worker, until someone else takes them over.
    const orphans = new Map<number, { token: string; killedAt: number }>();
    const recoveries: number[] = [];
    const kills = { worker: 0, scheduler: 0 };
    let stop = false;

    const watchOrphans = async () => {
      if (orphans.size === 0) return;
      const rows = await o.rows(`SELECT id, state, claim_token FROM ${o.t("task_instance")} WHERE id IN (${[...orphans.keys()].join(",")})`);
      for (const r of rows) {
        const orphan = orphans.get(Number(r.id))!;
        if (r.state === "running" && r.claim_token === orphan.token) continue;
        recoveries.push(Date.now() - orphan.killedAt);
        orphans.delete(Number(r.id));
      }
    };
    const watcher = (async () => {
      while (!stop && !cluster.closed) {
        await watchOrphans().catch(() => undefined);
        await pause(100);
      }
    })();
    const driver = (async () => {
      while (!stop) {
        await pause(2000 + Math.random() * 1000);
        if (stop || cluster.closed) break;
        const name = pick([...cluster.procs.keys()]);
        const killed = await cluster.kill9(name);
        const killedAt = Date.now();
        if (name.startsWith("worker")) {
          kills.worker++;
          const running = await o.rows(`SELECT id, claim_token FROM ${o.t("task_instance")} WHERE state = 'running' AND pid = ?`, [killed.pid]);
          for (const r of running) orphans.set(Number(r.id), { token: r.claim_token, killedAt });
        } else {
          kills.scheduler++;
        }
        cluster.restart(name);
        if (kills.worker + kills.scheduler === KILLS_BEFORE_GATE) await writeFile(world.gate, "");
      }
    })().catch(async (err) => {
      // A driver that failed opens the gate, so the runs end and the error is what the test reports.
      await writeFile(world.gate, "").catch(() => undefined);
      // After teardown (a timed-out test) the observer is closed: nothing left to drive.
      if (!cluster.closed) throw err;
    });

    try {
      await waitForRuns(world);
    } finally {
      stop = true;
      await Promise.all([driver, watcher]);
    }
    await watchOrphans();
    expect([...orphans.keys()]).toEqual([]);
    await cluster.stopAll();
    const outcome = await verify(world);
    expect(kills.worker + kills.scheduler).toBeGreaterThanOrEqual(KILLS_BEFORE_GATE);

    process.stdout.write(
      `chaos kill -9: ${RUNS} runs, ${outcome.tasks} tasks, ${outcome.executions} executions ` +
        `(${outcome.executions - outcome.tasks} re-executed), ${outcome.tries} tries recorded; ` +
        `${kills.worker + kills.scheduler} kills (${kills.worker} workers, ${kills.scheduler} schedulers), ` +
        `${world.zombieWarnings} zombie tries reaped, ${recoveries.length} orphaned tries, ` +
        `max recovery ${recoveries.length ? Math.max(...recoveries) : 0} ms (heartbeat timeout 3 s); ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }, 150_000);

  it("KILL of every MySQL connection of the test database every 2–3 s: every run succeeds, every success recorded once", async () => {
    const started = Date.now();
    const world = await setUp();
    const { cluster, observer: o } = world;
    await waitForCluster(world);
    let stop = false;
    let rounds = 0;
    let connections = 0;
    const driver = (async () => {
      while (!stop) {
        await pause(2000 + Math.random() * 1000);
        if (stop || cluster.closed) break;
        connections += await o.killConnections();
        rounds++;
        if (rounds === KILL_ROUNDS_BEFORE_GATE) await writeFile(world.gate, "");
      }
    })().catch(async (err) => {
      await writeFile(world.gate, "").catch(() => undefined);
      if (!cluster.closed) throw err;
    });
    try {
      await waitForRuns(world);
    } finally {
      stop = true;
      await driver;
    }
    // Every process lived through it: none exited.
    expect(cluster.crashes).toEqual([]);
    await cluster.stopAll();
    const outcome = await verify(world);
    expect(rounds).toBeGreaterThanOrEqual(KILL_ROUNDS_BEFORE_GATE);

    process.stdout.write(
      `chaos KILL connections: ${RUNS} runs, ${outcome.tasks} tasks, ${outcome.executions} executions ` +
        `(${outcome.executions - outcome.tasks} re-executed), ${outcome.tries} tries recorded; ` +
        `${rounds} rounds killed ${connections} connections, ${world.zombieWarnings} zombie tries reaped; ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }, 150_000);
});
