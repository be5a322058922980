import { readFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync, readFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
const pokes = (ctx) => readFileSync(String(ctx.conf.marks), "utf8").split("\\n").filter((l) => l.startsWith("poke")).length;

export const steps = dag({ id: "steps", defaultArgs: { retries: 1, retryDelay: 50 } }, (t) => {
  t.task("charge", async (ctx) => {
    const one = await ctx.step("one", (s) => { mark(ctx, "one:" + s.idempotencyKey); return 1; });
    const two = await ctx.step("two", () => { mark(ctx, "two"); return one + 1; });
    // kill -9 of the task's own process after two of three steps, on the first try only
    if (ctx.tryNumber === 1) process.kill(process.pid, "SIGKILL");
    const three = await ctx.step("three", () => { mark(ctx, "three"); return two + 1; });
    return { one, two, three };
  });
});

// Pokes 4 times (3 reschedules, each lowering try_number back to 1), all as try 1: the step
// recorded at the first poke is the same try's, so later pokes must reuse it.
export const sensorStep = dag({ id: "sensor_step" }, (t) => {
  t.sensor("wait", {
    mode: "reschedule",
    pokeInterval: 1,
    poke: async (ctx) => {
      const token = await ctx.step("x", () => { mark(ctx, "x"); return "tok"; });
      mark(ctx, "poke " + ctx.tryNumber + " " + token);
      return pokes(ctx) >= 4 ? { done: true, value: token } : false;
    },
  });
});

// A real retry in between (poke 2 throws: try 2), then reschedules again: steps survive
// retries (README), so the step still ran once.
export const sensorStepRetry = dag({ id: "sensor_step_retry", defaultArgs: { retries: 1, retryDelay: 1 } }, (t) => {
  t.sensor("wait", {
    mode: "reschedule",
    pokeInterval: 1,
    poke: async (ctx) => {
      const token = await ctx.step("x", () => { mark(ctx, "x"); return "tok"; });
      mark(ctx, "poke " + ctx.tryNumber + " " + token);
      if (pokes(ctx) === 2) throw new Error("flaky poke");
      return pokes(ctx) >= 4 ? { done: true, value: token } : false;
    },
  });
});

// A poke-mode sensor pokes several times in one try: its poke calls the same step each time
// and gets the recorded result, not a reused-name error.
export const pokeStep = dag({ id: "poke_step" }, (t) => {
  t.sensor("wait", {
    mode: "poke",
    pokeInterval: 1,
    poke: async (ctx) => {
      const token = await ctx.step("x", () => { mark(ctx, "x"); return "tok"; });
      mark(ctx, "poke " + ctx.tryNumber + " " + token);
      return pokes(ctx) >= 3 ? { done: true, value: token } : false;
    },
  });
});

// Step names are the user's strings: "__proto__" (or "constructor") is a name like any other, and a
// retry, or a later poke, must get its recorded result instead of running it again.
export const protoSteps = dag({ id: "proto_steps", defaultArgs: { retries: 1, retryDelay: 50 } }, (t) => {
  t.task("charge", async (ctx) => {
    const a = await ctx.step("__proto__", () => { mark(ctx, "__proto__ " + ctx.tryNumber); return { chargeId: "ch_1" }; });
    const b = await ctx.step("constructor", () => { mark(ctx, "constructor " + ctx.tryNumber); return 2; });
    if (ctx.tryNumber === 1) throw new Error("flaky after the steps");
    return { a, b };
  });
  t.sensor("wait", {
    mode: "poke",
    pokeInterval: 1,
    poke: async (ctx) => {
      const token = await ctx.step("__proto__", () => { mark(ctx, "x"); return { token: "tok" }; });
      mark(ctx, "poke " + token.token);
      return pokes(ctx) >= 2;
    },
  });
});

export const misuse = dag({ id: "misuse", defaultArgs: { retries: 2, retryDelay: 50 } }, (t) => {
  t.task("reuse", async (ctx) => {
    await ctx.step("same", () => 1);
    await ctx.step("same", () => 2);
  });
  t.task("huge", async () => "x".repeat(1024 * 1024 + 10));
  t.task("not_json", async (ctx) => ctx.step("bigint", () => 10n));
  // The same name and the same closure at each turn of a loop: each call is a step of its own
  // to a Temporal user, and returning the first turn's result would skip the other charges.
  t.task("loop", async (ctx) => {
    const out = [];
    for (const i of [1, 2, 3]) out.push(await ctx.step("charge", () => { mark(ctx, "charge " + i); return i; }));
    return out;
  });
  t.task("padded", async (ctx) => {
    const a = await ctx.step("a", () => "first");
    const padded = await ctx.step("a ", () => "second");
    return [a, padded];
  });
});
`);

describe("durable steps", () => {
  const h = new Harness({ workers: 2 });
  beforeAll(async () => {
    await h.start({ "steps.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  async function run(dagId: string, conf: Record<string, unknown> = {}) {
    const runId = await h.trigger(dagId, { conf });
    await h.runEnded(dagId, runId);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT id, task_id, state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return { runId, tasks: Object.fromEntries(tis.map((r) => [r.task_id, r])) };
  }

  it("a task killed with kill -9 after two of three steps resumes at step three on retry", async () => {
    const marks = path.join(await scratchDir("baton-steps-"), "marks.txt");
    const { runId, tasks } = await run("steps", { marks });
    expect(tasks.charge).toMatchObject({ state: "success", try_number: 2 });
    const lines = (await readFile(marks, "utf8")).split("\n").filter(Boolean);
    expect(lines).toEqual([`one:steps:${runId}:charge:-1:one`, "two", "three"]);
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/steps/dagRuns/${encodeURIComponent(runId)}/taskInstances/charge/xcomEntries/return_value` });
    expect(out.json().value).toEqual({ one: 1, two: 2, three: 3 });
    const [steps] = await h.db.pool.query<RowDataPacket[]>("SELECT step_name, try_number, value FROM task_step WHERE task_instance_id = ? ORDER BY step_name", [tasks.charge.id]);
    expect(steps.map((s) => [s.step_name, s.try_number, JSON.parse(s.value)])).toEqual([
      ["one", 1, 1],
      ["three", 2, 3],
      ["two", 1, 2],
    ]);
  });

  it("a reschedule-mode sensor runs a step once across its pokes of one try, and across a retry", async () => {
    for (const [dagId, tries] of [["sensor_step", [1, 1, 1, 1]], ["sensor_step_retry", [1, 1, 2, 2]]] as const) {
      const marks = path.join(await scratchDir("baton-steps-"), "marks.txt");
      const { runId, tasks } = await run(dagId, { marks });
      expect(tasks.wait).toMatchObject({ state: "success", try_number: tries[3] });
      const lines = (await readFile(marks, "utf8")).split("\n").filter(Boolean);
      expect(lines).toEqual(["x", ...tries.map((n) => `poke ${n} tok`)]);
      // Later pokes are told the step was recorded, not left to find out by running it again.
      const log = (await h.taskLog(dagId, runId, "wait", tries[3])) ?? "";
      expect(log).not.toContain('Step "x" ran again');
    }
  });

  it("a poke-mode sensor runs a step once across the pokes of one try", async () => {
    const marks = path.join(await scratchDir("baton-steps-"), "marks.txt");
    const { tasks } = await run("poke_step", { marks });
    expect(tasks.wait).toMatchObject({ state: "success", try_number: 1 });
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["x", "poke 1 tok", "poke 1 tok", "poke 1 tok"]);
  });

  it("a step named __proto__ or constructor is recorded like any other: a retry and a later poke do not run it again", async () => {
    const marks = path.join(await scratchDir("baton-steps-"), "marks.txt");
    const { runId, tasks } = await run("proto_steps", { marks });
    expect(tasks.charge).toMatchObject({ state: "success", try_number: 2 });
    expect(tasks.wait).toMatchObject({ state: "success", try_number: 1 });
    const lines = (await readFile(marks, "utf8")).split("\n").filter(Boolean);
    expect(lines.filter((l) => !l.startsWith("poke") && l !== "x")).toEqual(["__proto__ 1", "constructor 1"]);
    expect(lines.filter((l) => l.startsWith("poke") || l === "x")).toEqual(["x", "poke tok", "poke tok"]);
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/proto_steps/dagRuns/${encodeURIComponent(runId)}/taskInstances/charge/xcomEntries/return_value` });
    expect(out.json().value).toEqual({ a: { chargeId: "ch_1" }, b: 2 });
  });

  it("rejects a reused step name (even with the same function, as in a loop), a name ending with a space, an output over the cap and a result that is not JSON, without retries", async () => {
    const marks = path.join(await scratchDir("baton-steps-"), "marks.txt");
    const { tasks } = await run("misuse", { marks });
    expect(tasks.loop).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(tasks.loop.error).message).toContain('ctx.step("charge") was already called in this try: step names must be unique in a task');
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["charge 1"]);
    expect(tasks.reuse).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(tasks.reuse.error).message).toContain('ctx.step("same") was already called in this try: step names must be unique in a task');
    expect(tasks.huge).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(tasks.huge.error).message).toContain("over the 1048576-byte cap (BATON_XCOM_MAX_BYTES)");
    expect(tasks.not_json).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(tasks.not_json.error).message).toContain('the result of step "bigint" is not JSON-serializable');
    // task_step's key ignores trailing spaces: "a " would have returned the result of "a".
    expect(tasks.padded).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(tasks.padded.error).message).toBe('ctx.step(name, fn): name must not end with a space, got "a "');
  });
});
