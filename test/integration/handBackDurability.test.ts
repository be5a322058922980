// What a try made durable outlives its worker: durable steps after a SIGTERM hand-back (the
// try runs again under the same number, 1), and a poke-mode sensor's first poke after a
// hand-back or a worker that died (its timeout counts from that poke, not from the next try's),
// and a first poke its worker died before storing never ran.
// Workers here are this file's own, each on a queue no other worker serves: each test stops its
// workers when it ends, or one left serving a queue could claim the next test's try.
import { readFile, writeFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import { FakeClock } from "../../core/clock.ts";
import { Worker } from "../../executor/worker.ts";
import { openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");

export const handedSteps = dag({ id: "handed_steps" }, (t) => {
  t.task("charge", { queue: "hb_steps" }, async (ctx) => {
    const one = await ctx.step("one", () => { mark(ctx, "one"); return 1; });
    // Long: the worker is stopped in here, on the first run.
    const two = await ctx.step("two", async () => {
      while (!existsSync(String(ctx.conf.release))) await new Promise((r) => setTimeout(r, 20));
      mark(ctx, "two");
      return one + 1;
    });
    return { one, two };
  });
});

export const raced = dag({ id: "raced_step" }, (t) => {
  t.task("racer", { queue: "hb_race" }, async (ctx) => {
    const v = await ctx.step("one", async () => {
      mark(ctx, "started");
      while (!existsSync(String(ctx.conf.release))) await new Promise((r) => setTimeout(r, 20));
      return "mine";
    });
    return v;
  });
});

export const sensing = dag({ id: "sensing", defaultArgs: { retries: 1, retryDelay: 0 } }, (t) => {
  t.sensor("wait", {
    queue: "hb_sensor",
    mode: "poke",
    pokeInterval: 50,
    timeout: "1h",
    poke: async (ctx) => { mark(ctx, "poke " + ctx.tryNumber); return false; },
  });
});

export const sensingSlowStore = dag({ id: "sensing_slow_store" }, (t) => {
  t.sensor("wait", {
    queue: "hb_sensor_slow",
    mode: "poke",
    pokeInterval: 50,
    timeout: "1h",
    executionTimeout: 300,
    poke: async (ctx) => { mark(ctx, "poke " + ctx.tryNumber); return false; },
  });
});

export const sensingLost = dag({ id: "sensing_lost", defaultArgs: { retries: 1, retryDelay: 0 } }, (t) => {
  t.sensor("wait", {
    queue: "hb_sensor_lost",
    mode: "poke",
    pokeInterval: 50,
    timeout: "1h",
    poke: async (ctx) => { mark(ctx, "poke " + ctx.tryNumber); return false; },
  });
});
`);

describe("durability across a hand-back or a lost worker", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ clock, worker: false, taskHeartbeatTimeoutMs: 30_000 });
  const workers: Worker[] = [];
  /** Workers' own pools, closed at the end even when a test fails before it closes its own. */
  const pools: Db[] = [];
  beforeAll(async () => {
    await h.start({ "handback.ts": DAGS });
    await h.run();
  });
  // A worker left over from a test (the sensor tests share a queue) would claim the next test's
  // try: 'a poke-mode sensor whose worker died' then killed a worker that held nothing, and the
  // survivor kept heartbeating the try, so no zombie was ever reaped.
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop(0).catch(() => undefined);
  });
  afterAll(async () => {
    for (const db of pools) await db.close().catch(() => undefined);
    await h.stop();
  });

  function worker(queue: string, db: Db = h.db, options: { stopRecordTimeoutMs?: number; killGraceMs?: number } = {}): Worker {
    const w = new Worker(db, clock, h.logger, { concurrency: 1, queues: [queue], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, heartbeatMs: 200, ...options });
    workers.push(w);
    w.start();
    return w;
  }

  async function ti(dagId: string, runId: string): Promise<RowDataPacket> {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return row!;
  }

  async function files() {
    const dir = await scratchDir("baton-handback-");
    return { marks: path.join(dir, "marks.txt"), release: path.join(dir, "release") };
  }

  const lines = async (file: string) => (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);

  it("a try handed back on SIGTERM runs again as try 1 without re-running the steps it recorded", async () => {
    const conf = await files();
    const runId = await h.trigger("handed_steps", { conf });
    const first = worker("hb_steps");
    await waitFor("step one recorded", async () => {
      const [steps] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT s.step_name FROM task_step s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_id = 'handed_steps' AND ti.run_id = ?",
        [runId],
      );
      return steps.length === 1;
    }, 20_000);
    await first.stop(0);
    expect(await ti("handed_steps", runId)).toMatchObject({ state: "queued", try_number: 0, steps_kept: 1 });

    await writeFile(conf.release, "");
    worker("hb_steps");
    await waitFor("the task to succeed", async () => (await ti("handed_steps", runId)).state === "success", 20_000);
    expect(await ti("handed_steps", runId)).toMatchObject({ try_number: 1 });
    expect(await lines(conf.marks)).toEqual(["one", "two"]);
    const log = await h.taskLog("handed_steps", runId, "charge", 1);
    expect(log).toContain('Step "one": recorded by an earlier try, not run again');
    // The stop ended its process: a hand-back, logged as one, not as a crash.
    expect(log).toContain("INFO - the worker stopped (shutdown): its process was ended and the try handed back");
    expect(log).not.toContain("the task's process died");
  });

  it("logs a step another try recorded meanwhile as run again, and uses the recorded result", async () => {
    const conf = await files();
    const runId = await h.trigger("raced_step", { conf });
    worker("hb_race");
    await waitFor("the step to start", async () => (await lines(conf.marks)).includes("started"), 20_000);
    // What a try whose steps were not given to this one leaves (e.g. recorded during its claim).
    const row = await ti("raced_step", runId);
    await h.db.pool.query("INSERT INTO task_step (task_instance_id, step_name, try_number, value, created_at) VALUES (?, 'one', 1, '\"theirs\"', ?)", [row.id, clock.now()]);
    await writeFile(conf.release, "");
    await waitFor("the task to succeed", async () => (await ti("raced_step", runId)).state === "success", 20_000);
    const [[xcom]] = await h.db.pool.query<RowDataPacket[]>("SELECT value FROM xcom WHERE dag_run_id = ? AND task_id = 'racer'", [row.dag_run_id]);
    expect(JSON.parse(xcom!.value)).toBe("theirs");
    const log = await h.taskLog("raced_step", runId, "racer", 1);
    expect(log).toContain('Step "one" ran again: an earlier try had recorded it; its recorded result is used');
    expect(log).not.toContain('Step "one" recorded');
  });

  it("a poke-mode sensor handed back keeps its first poke: the timeout counts from it", async () => {
    const conf = await files();
    const runId = await h.trigger("sensing", { conf });
    const first = worker("hb_sensor");
    const pokedAt = clock.now().getTime();
    // Stored as soon as the sensor's process reports it, while the try still runs.
    const stored = await waitFor("the first poke stored", async () => (await ti("sensing", runId)).first_poke_at as Date | null, 20_000);
    expect(Math.abs(stored.getTime() - pokedAt)).toBeLessThan(60_000);
    await first.stop(0);
    expect(await ti("sensing", runId)).toMatchObject({ state: "queued", try_number: 0 });
    expect((await ti("sensing", runId)).first_poke_at).toEqual(stored);

    clock.advance(2 * 3_600_000);
    worker("hb_sensor");
    const ended = await waitFor("the sensor to time out", async () => {
      const row = await ti("sensing", runId);
      return row.state === "failed" ? row : null;
    }, 20_000);
    expect(ended).toMatchObject({ try_number: 1 });
    expect(JSON.parse(ended.error).code).toBe("BATON_SENSOR_TIMEOUT");
    expect(ended.first_poke_at).toEqual(stored);
  });

  it("a poke-mode sensor whose worker died keeps its first poke: the retry times out from it", async () => {
    const conf = await files();
    const runId = await h.trigger("sensing", { conf });
    const workerDb = openDb(h.db.url);
    const dying = worker("hb_sensor", workerDb);
    const stored = await waitFor("the first poke stored", async () => (await ti("sensing", runId)).first_poke_at as Date | null, 20_000);
    // The try this test kills must be the dying worker's (no other worker serves its queue).
    expect((await ti("sensing", runId)).claim_token).toBe(dying.id);
    // The worker loses its database: nothing is handed back or recorded, the try is left running.
    await workerDb.close();
    await expect(dying.stop(0)).rejects.toThrow(/closed/i);
    expect(await ti("sensing", runId)).toMatchObject({ state: "running", try_number: 1 });

    // Past the zombie timeout (30 s) and the sensor's (1 h): reaped, retried as try 2.
    clock.advance(2 * 3_600_000);
    worker("hb_sensor");
    // Time goes on meanwhile (a second per look, far from the sensor's hour): a scheduler tick
    // that failed after the jump holds reaping for one zombie timeout, which a frozen clock would
    // never end.
    const ended = await waitFor("the retry to time out", async () => {
      clock.advance(1000);
      const row = await ti("sensing", runId);
      return row.state === "failed" ? row : null;
    }, 20_000);
    expect(ended).toMatchObject({ try_number: 2 });
    expect(JSON.parse(ended.error).code).toBe("BATON_SENSOR_TIMEOUT");
    expect(ended.first_poke_at).toEqual(stored);
    expect(await lines(conf.marks)).toContain("poke 2");
  });

  it("a sensor pokes only once its first poke is stored: a worker that dies before storing it leaves no poke behind", async () => {
    const conf = await files();
    const runId = await h.trigger("sensing_lost", { conf });
    const workerDb = openDb(h.db.url);
    pools.push(workerDb);
    // The worker is killed between the child's first-poke message and the UPDATE storing it:
    // that UPDATE never reaches the server.
    let firstPokeSent = false;
    const query = workerDb.pool.query.bind(workerDb.pool);
    (workerDb.pool as { query: unknown }).query = (sql: unknown, ...rest: unknown[]) => {
      if (typeof sql === "string" && sql.includes("SET first_poke_at")) {
        firstPokeSent = true;
        return new Promise(() => undefined);
      }
      return (query as (...args: unknown[]) => unknown)(sql, ...rest);
    };
    const dying = worker("hb_sensor_lost", workerDb, { stopRecordTimeoutMs: 200 });
    await waitFor("the worker to store the first poke", async () => firstPokeSent, 20_000);
    // The child was told nothing yet, so it has not poked: the poke whose time is not stored did not run.
    expect(await lines(conf.marks)).toEqual([]);
    expect(await ti("sensing_lost", runId)).toMatchObject({ state: "running", try_number: 1, first_poke_at: null });
    await workerDb.close();
    await dying.stop(0).catch(() => undefined);
    expect(await ti("sensing_lost", runId)).toMatchObject({ state: "running", try_number: 1, first_poke_at: null });

    // Reaped (past the 30 s zombie timeout), retried as try 2: its first poke is the first.
    clock.advance(60_000);
    worker("hb_sensor_lost");
    const retried = await waitFor("the retry's first poke stored", async () => {
      clock.advance(1000);
      const row = await ti("sensing_lost", runId);
      return row.try_number === 2 && row.first_poke_at ? row : null;
    }, 20_000);
    await waitFor("the retry to poke", async () => (await lines(conf.marks)).length > 0, 20_000);
    expect((await lines(conf.marks))[0]).toBe("poke 2");
    expect(retried.state).toBe("running");
  });

  it("a sensor whose first poke is still being stored stops at its execution timeout, not when killed after the grace", async () => {
    const conf = await files();
    const runId = await h.trigger("sensing_slow_store", { conf });
    const workerDb = openDb(h.db.url);
    pools.push(workerDb);
    // The database never answers the first poke's UPDATE.
    const query = workerDb.pool.query.bind(workerDb.pool);
    (workerDb.pool as { query: unknown }).query = (sql: unknown, ...rest: unknown[]) =>
      typeof sql === "string" && sql.includes("SET first_poke_at") ? new Promise(() => undefined) : (query as (...args: unknown[]) => unknown)(sql, ...rest);
    // A kill only after a minute: a sensor deaf to the abort while it waits would end far past the deadline below.
    worker("hb_sensor_slow", workerDb, { killGraceMs: 60_000 });
    const ended = await waitFor("the try to end at its execution timeout", async () => {
      const row = await ti("sensing_slow_store", runId);
      return row.state === "failed" ? row : null;
    }, 20_000);
    expect(JSON.parse(ended.error).code).toBe("BATON_TASK_TIMEOUT");
    expect(await lines(conf.marks)).toEqual([]);
    expect(await h.taskLog("sensing_slow_store", runId, "wait", 1)).not.toContain("process died");
  });
});

