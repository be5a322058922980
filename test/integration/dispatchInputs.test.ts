// A try whose inputs the worker cannot read when it starts it (its upstream outputs, its durable
// steps: a connection blip, a statement timeout) must not run without them. It ran with empty
// inputs: a downstream task saw null for its upstream's output, and a retry ran again the steps
// its earlier try had recorded (a charge made twice). Now such a try is not started: it is
// handed back (queued again, the try not counted) and runs with its inputs once they can be read.
// One try whose inputs fail to read even alone does not hold back the tries claimed with it.
// Only a read the database did not answer (isConnectionError) is handed back: one that fails
// otherwise (a value too big to send, ER_NET_PACKET_TOO_LARGE) would fail the same way at every
// claim, so its try fails (BATON_TASK_INPUTS_UNREADABLE), counted, and retries apply; handed back,
// it was claimed and handed back by each worker forever, its run hanging silently.
// The worker's reads of those inputs fail on demand through its pool (the statements it sends).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
import { openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const DAGS = dagSource(`
import { appendFileSync, readFileSync } from "node:fs";

export const outputs = dag({ id: "di_outputs", maxActiveRuns: 5 }, (t) => {
  const a = t.task("a", { queue: "di_prep" }, async () => "a out");
  t.task("b", { queue: "di_out", upstream: [a] }, async (ctx) => ctx.get(a) + " via b");
});

export const isolated = dag({ id: "di_isolated", maxActiveRuns: 5 }, (t) => {
  const a = t.task("a", { queue: "di_prep" }, async (ctx) => "a of " + ctx.runId);
  t.task("b", { queue: "di_iso", upstream: [a] }, async (ctx) => ctx.get(a) + " via b");
});

export const steps = dag({ id: "di_steps", defaultArgs: { retries: 1, retryDelay: 0 } }, (t) => {
  t.task("charge", { queue: "di_steps" }, async (ctx) => {
    const id = await ctx.step("charge", () => {
      appendFileSync(String(ctx.conf.ledger), "charged in try " + ctx.tryNumber + "\\n");
      return "ch_1";
    });
    if (ctx.tryNumber === 1) throw new Error("flaky after charging");
    return id;
  });
});

export const unreadable = dag({ id: "di_unreadable", defaultArgs: { retries: 1, retryDelay: 0 } }, (t) => {
  const a = t.task("a", { queue: "di_prep" }, async () => "a out");
  t.task("b", { queue: "di_unr", upstream: [a] }, async (ctx) => ctx.get(a) + " via b");
});

export const code = dag({ id: "di_code" }, (t) => {
  t.task("only", { queue: "di_code" }, async () => "ran");
});

export const codeRefused = dag({ id: "di_code_refused", defaultArgs: { retries: 1, retryDelay: 0 } }, (t) => {
  t.task("only", { queue: "di_code_refused" }, async () => "ran");
});

// Pokes twice, both as try 1: the second poke loads the step of the first (steps_kept).
export const sensing = dag({ id: "di_sensor" }, (t) => {
  t.sensor("wait", {
    queue: "di_sensor",
    mode: "reschedule",
    pokeInterval: 1,
    poke: async (ctx) => {
      const ledger = String(ctx.conf.ledger);
      const token = await ctx.step("reserve", () => { appendFileSync(ledger, "reserved\\n"); return "tok"; });
      appendFileSync(ledger, "poke " + ctx.tryNumber + " " + token + "\\n");
      return readFileSync(ledger, "utf8").split("\\n").filter((l) => l.startsWith("poke")).length >= 2 ? { done: true, value: token } : false;
    },
  });
});
`);

/** The statements of the worker's input reads (store/xcom.ts: upstreamOutputs, store/transitions/recordStep.ts: stepsOf). */
const OUTPUTS_READ = "FROM xcom WHERE map_index = -1 AND xcom_key = 'return_value'";
const STEPS_READ = "FROM task_step WHERE task_instance_id IN";
/** The worker's read of a DAG version's bundled code (store/versions.ts: loadCode). */
const CODE_READ = "FROM dag_version v JOIN dag_code c";

const connectionLost = () => Object.assign(new Error("Connection lost: The server closed the connection. (test)"), { code: "PROTOCOL_CONNECTION_LOST" });

/** A Db whose plain queries matching `fails` fail with `error()` (as over a dropped connection unless told); counts them. */
function failingReads(real: Db, fails: (sql: string, params: unknown[]) => boolean, error: () => Error = connectionLost): { db: Db; failed: () => number } {
  let failed = 0;
  const pool = new Proxy(real.pool, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "query") return typeof value === "function" ? value.bind(target) : value;
      return (sql: unknown, params?: unknown) => {
        if (typeof sql === "string" && fails(sql, Array.isArray(params) ? params : [])) {
          failed++;
          return Promise.reject(error());
        }
        return (value as (...args: unknown[]) => unknown).call(target, sql, params);
      };
    },
  });
  return { db: { ...real, pool }, failed: () => failed };
}

const h = new Harness({ clock: systemClock, worker: false });
const lines: string[] = [];
const logger = createLogger("debug", {}, (line) => lines.push(line), { format: "json" });
const workers: Worker[] = [];
const pools: Db[] = [];
const scratch: string[] = [];

function worker(queue: string, db: Db): Worker {
  // A cache of its own: it fetches the bundles of its tries itself.
  const w = new Worker(db, h.clock, logger, { concurrency: 4, queues: [queue], logsFolder: h.logsFolder, cacheFolder: path.join(h.cacheFolder, queue), heartbeatMs: 500, pollMaxMs: 100 });
  workers.push(w);
  w.start();
  return w;
}

beforeAll(async () => {
  await h.start({ "di.ts": DAGS });
  await h.run();
  // Upstream tasks run on a worker of their own: their downstream tasks are queued, for the
  // worker under test to claim and read their outputs (the fast path would hand them over).
  worker("di_prep", h.db);
});
afterAll(async () => {
  // The workers' log lines, to read when a test failed.
  if (process.env.BATON_TEST_LOG) console.log(lines.join("\n"));
  for (const w of workers) await w.stop(0).catch(() => undefined);
  for (const p of pools) await p.close().catch(() => undefined);
  await h.stop();
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

async function ti(dagId: string, runId: string, taskId: string): Promise<RowDataPacket> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    `SELECT ti.state, ti.try_number, ti.dag_run_id, r.state AS run_state, x.value AS output
       FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
       LEFT JOIN xcom x ON x.dag_run_id = ti.dag_run_id AND x.task_id = ti.task_id AND x.map_index = -1 AND x.xcom_key = 'return_value'
      WHERE ti.dag_id = ? AND r.run_id = ? AND ti.task_id = ?`,
    [dagId, runId, taskId],
  );
  return row!;
}

function newDb(): Db {
  const db = openDb(h.db.url);
  pools.push(db);
  return db;
}

it("a try whose upstream outputs cannot be read is not started: it runs with them, as the same try, once they can be", async () => {
  let failing = true;
  const reads = failingReads(newDb(), (sql) => failing && sql.includes(OUTPUTS_READ));
  worker("di_out", reads.db);
  await h.trigger("di_outputs", { runId: "o1" });
  await waitFor("b's outputs read to fail", async () => reads.failed() > 0, 20_000);
  // Without its upstream output it must not run; it is tried again (not run) while the read fails.
  await waitFor("b's outputs read to fail again, or b to end", async () => reads.failed() > 1 || (await ti("di_outputs", "o1", "b")).output !== null, 20_000);
  expect((await ti("di_outputs", "o1", "b")).output).toBeNull();
  failing = false;
  await waitFor("the run to succeed", async () => (await ti("di_outputs", "o1", "b")).run_state === "success", 20_000);
  const b = await ti("di_outputs", "o1", "b");
  expect(JSON.parse(b.output)).toBe("a out via b");
  // Handed back, not failed: the try that ran is its first.
  expect(b.try_number).toBe(1);
  expect(lines.some((l) => l.includes("could not read the inputs of try 1 of di_outputs.b (run o1)"))).toBe(true);
});

it("a retry whose durable steps cannot be read does not run its recorded steps again", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "baton-di-"));
  scratch.push(dir);
  const ledger = path.join(dir, "ledger");
  await writeFile(ledger, "");
  let failing = true;
  const reads = failingReads(newDb(), (sql) => failing && sql.includes(STEPS_READ));
  worker("di_steps", reads.db);
  await h.trigger("di_steps", { runId: "s1", conf: { ledger } });
  await waitFor("the retry's steps read to fail", async () => reads.failed() > 0, 20_000);
  await waitFor("its steps read to fail again, or the retry to end", async () => reads.failed() > 1 || (await ti("di_steps", "s1", "charge")).state === "success", 20_000);
  expect(await readFile(ledger, "utf8")).toBe("charged in try 1\n");
  failing = false;
  await waitFor("the run to succeed", async () => (await ti("di_steps", "s1", "charge")).run_state === "success", 20_000);
  const charge = await ti("di_steps", "s1", "charge");
  expect(JSON.parse(charge.output)).toBe("ch_1");
  expect(charge.try_number).toBe(2);
  expect(await readFile(ledger, "utf8")).toBe("charged in try 1\n");
});

it("a rescheduled sensor whose kept steps cannot be read does not run them again at its next poke", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "baton-di-"));
  scratch.push(dir);
  const ledger = path.join(dir, "ledger");
  await writeFile(ledger, "");
  let failing = true;
  const reads = failingReads(newDb(), (sql) => failing && sql.includes(STEPS_READ));
  worker("di_sensor", reads.db);
  await h.trigger("di_sensor", { runId: "p1", conf: { ledger } });
  await waitFor("the second poke's steps read to fail", async () => reads.failed() > 0, 20_000);
  await waitFor("its steps read to fail again, or the sensor to end", async () => reads.failed() > 1 || (await ti("di_sensor", "p1", "wait")).state === "success", 20_000);
  expect(await readFile(ledger, "utf8")).toBe("reserved\npoke 1 tok\n");
  failing = false;
  await waitFor("the run to succeed", async () => (await ti("di_sensor", "p1", "wait")).run_state === "success", 20_000);
  expect((await ti("di_sensor", "p1", "wait")).try_number).toBe(1);
  expect(await readFile(ledger, "utf8")).toBe("reserved\npoke 1 tok\npoke 1 tok\n");
});

it("a try whose DAG version's code the database does not answer for is not failed: it runs once it does", async () => {
  let failing = true;
  const reads = failingReads(newDb(), (sql) => failing && sql.includes(CODE_READ));
  worker("di_code", reads.db);
  await h.trigger("di_code", { runId: "c1" });
  const waiting = ["scheduled", "queued", "running"];
  await waitFor("the code read to fail twice, or the try to end", async () => reads.failed() > 1 || !waiting.includes((await ti("di_code", "c1", "only")).state), 20_000);
  expect(waiting).toContain((await ti("di_code", "c1", "only")).state);
  failing = false;
  await waitFor("the run to succeed", async () => (await ti("di_code", "c1", "only")).run_state === "success", 20_000);
  const only = await ti("di_code", "c1", "only");
  expect(JSON.parse(only.output)).toBe("ran");
  expect(only.try_number).toBe(1);
});

it("a try whose DAG version's code the database refuses to read (not unanswered) fails with a stable code, counted", async () => {
  // As an inputs read refused (below): it would fail the same way at every claim. It failed as a
  // bare { name: "Error" }, no code to tell it from a task's own error.
  const tooBig = () => Object.assign(new Error("Got a packet bigger than 'max_allowed_packet' bytes (test)"), { code: "ER_NET_PACKET_TOO_LARGE", errno: 1153 });
  const reads = failingReads(newDb(), (sql) => sql.includes(CODE_READ), tooBig);
  worker("di_code_refused", reads.db);
  await h.trigger("di_code_refused", { runId: "r1" });
  await waitFor("the run to fail", async () => (await ti("di_code_refused", "r1", "only")).run_state === "failed", 20_000);
  const only = await ti("di_code_refused", "r1", "only");
  expect(only.output).toBeNull();
  // Both tries counted: the first failed and was retried, the retry failed likewise.
  expect(only.try_number).toBe(2);
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT ti.error FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.dag_id = 'di_code_refused' AND r.run_id = 'r1' AND ti.task_id = 'only'",
  );
  const error = typeof row!.error === "string" ? JSON.parse(row!.error) : row!.error;
  expect(error).toMatchObject({ name: "TaskInputsUnreadableError", code: "BATON_TASK_INPUTS_UNREADABLE" });
  expect(error.message).toContain("its DAG version (structure, bundled code) could not be read");
  expect(error.message).toContain("ER_NET_PACKET_TOO_LARGE");
  expect(lines.some((l) => l.includes("di_code_refused.only (run r1)") && l.includes("BATON_TASK_INPUTS_UNREADABLE"))).toBe(true);
});

it("one try whose inputs cannot be read even alone does not hold back the tries claimed with it", async () => {
  await h.trigger("di_isolated", { runId: "bad" });
  await h.trigger("di_isolated", { runId: "good" });
  // Both b's queued before the worker under test starts: its first claim takes them together.
  await waitFor("both b's to be queued", async () => (await ti("di_isolated", "bad", "b")).state === "queued" && (await ti("di_isolated", "good", "b")).state === "queued", 20_000);
  const bad = Number((await ti("di_isolated", "bad", "b")).dag_run_id);
  // Any read of the bad run's outputs fails, for as long as the test lasts.
  const reads = failingReads(newDb(), (sql, params) => sql.includes(OUTPUTS_READ) && params.includes(bad));
  worker("di_iso", reads.db);
  await waitFor("the good run to succeed", async () => (await ti("di_isolated", "good", "b")).run_state === "success", 20_000);
  expect(JSON.parse((await ti("di_isolated", "good", "b")).output)).toBe("a of good via b");
  // The bad one never ran; it is set aside for longer each time its read fails alone.
  await waitFor("the bad try to be set aside twice", async () => lines.filter((l) => l.includes("di_isolated.b (run bad)") && l.includes("set aside")).length >= 2, 20_000);
  const setAside = lines.filter((l) => l.includes("di_isolated.b (run bad)") && l.includes("set aside"));
  expect(setAside[0]).toContain("set aside for 1 s");
  expect(setAside[1]).toContain("set aside for 2 s");
  expect((await ti("di_isolated", "bad", "b")).output).toBeNull();
  expect(["queued", "running"]).toContain((await ti("di_isolated", "bad", "b")).state);
});

it("a try whose inputs fail to read otherwise than unanswered fails, counted, and its retries apply", async () => {
  const tooBig = () => Object.assign(new Error("Got a packet bigger than 'max_allowed_packet' bytes (test)"), { code: "ER_NET_PACKET_TOO_LARGE", errno: 1153 });
  const reads = failingReads(newDb(), (sql) => sql.includes(OUTPUTS_READ), tooBig);
  worker("di_unr", reads.db);
  await h.trigger("di_unreadable", { runId: "u1" });
  await waitFor("the run to fail", async () => (await ti("di_unreadable", "u1", "b")).run_state === "failed", 20_000);
  const b = await ti("di_unreadable", "u1", "b");
  expect(b.state).toBe("failed");
  expect(b.output).toBeNull();
  // Both tries counted: the first failed and was retried, the retry failed likewise.
  expect(b.try_number).toBe(2);
  expect(reads.failed()).toBe(2);
  const [[row]] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT ti.error FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.dag_id = 'di_unreadable' AND r.run_id = 'u1' AND ti.task_id = 'b'",
  );
  const error = typeof row!.error === "string" ? JSON.parse(row!.error) : row!.error;
  expect(error).toMatchObject({ code: "BATON_TASK_INPUTS_UNREADABLE" });
  expect(error.message).toContain("ER_NET_PACKET_TOO_LARGE");
  expect(lines.some((l) => l.includes("di_unreadable.b (run u1)") && l.includes("set aside"))).toBe(false);
});
