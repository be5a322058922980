// Task execution end to end: failures and retries, FailError/SkipError, trigger-rule
// propagation, a diamond and a 200-way fan-in, outputs and conf, timeouts and fencing.
// Real MariaDB, real worker child processes, the API through inject().
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { handBack } from "../../store/transitions/handBack.ts";
import { VersionCache } from "../../store/versions.ts";

const FAIL = dagSource(`
export default dag({ id: "ex_fail" }, (t) => {
  const boom = t.task("boom", async () => { throw new Error("kaboom: no retries here"); });
  const down = t.task("down", { upstream: [boom] }, async () => "never runs");
  t.task("down_down", { upstream: [down] }, async () => "never runs either");
  t.task("cleanup", { upstream: [boom], triggerRule: "all_done" }, async () => "cleaned");
  t.task("bystander", async () => "unaffected");
});
`);

const RETRY = dagSource(`
export default dag({ id: "ex_retry" }, (t) => {
  const flaky = t.task("flaky", { retries: 2, retryDelay: 200 }, async (ctx) => {
    console.log("attempt marker " + ctx.tryNumber + " maxTries " + ctx.maxTries);
    if (ctx.tryNumber < 3) throw new Error("flaky failure on try " + ctx.tryNumber);
    return { succeededOn: ctx.tryNumber };
  });
  t.task("after_flaky", { upstream: [flaky] }, async (ctx) => ctx.get(flaky).succeededOn * 10);
});
`);

const FATAL = `import { dag, FailError, nonRetryable } from "baton";
export default dag({ id: "ex_fatal", defaultArgs: { retries: 3, retryDelay: 100 } }, (t) => {
  t.task("fail_error", async () => { throw new FailError("fatal: bad input"); });
  t.task("non_retryable", async () => { throw nonRetryable(new Error("wrapped: give up")); });
});
`;

const SKIP = dagSource(`
export default dag({ id: "ex_skip" }, (t) => {
  const byError = t.task("skip_by_error", { retries: 2 }, async () => { throw new SkipError("nothing to do today"); });
  t.task("after_error_skip", { upstream: [byError] }, async () => "must not run");
  const byCtx = t.task("skip_by_ctx", async (ctx) => ctx.skip("ctx says skip"));
  const afterCtx = t.task("after_ctx_skip", { upstream: [byCtx] }, async () => "must not run");
  t.task("after_after_ctx_skip", { upstream: [afterCtx] }, async () => "must not run");
  const runs = t.task("runs", async () => "ran");
  t.task("after_mixed", { upstream: [byError, runs] }, async () => "must not run");
  t.task("none_failed_join", { upstream: [byError, runs], triggerRule: "none_failed" }, async () => "ran anyway");
});
`);

const DIAMOND = `import { appendFileSync } from "node:fs";
import { dag } from "baton";
export default dag({ id: "ex_diamond" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", { upstream: [a] }, async (ctx) => { await new Promise((r) => setTimeout(r, 150)); return ctx.get(a) + 10; });
  const c = t.task("c", { upstream: [a] }, async (ctx) => { await new Promise((r) => setTimeout(r, 20)); return ctx.get(a) + 100; });
  t.task("d", { upstream: [b, c] }, async (ctx) => {
    appendFileSync(String(ctx.conf.marker), "d ran on try " + ctx.tryNumber + "\\n");
    return { b: ctx.get(b), c: ctx.get(c), sum: ctx.get(b) + ctx.get(c) };
  });
});
`;

const FAN = 200;
const FANOUT = dagSource(`
export default dag({ id: "ex_fanout" }, (t) => {
  const start = t.task("start", async () => ${FAN});
  const parts = [];
  for (let i = 0; i < ${FAN}; i++) {
    parts.push(t.task("part_" + String(i).padStart(3, "0"), { upstream: [start] }, async (ctx) => ctx.get(start) + i));
  }
  t.task("join", { upstream: parts }, async (ctx) => ({ count: parts.length, sum: parts.reduce((s, p) => s + ctx.get(p), 0) }));
});
`);

// Task ids are the user's strings: Object.prototype's names are ids like any other.
const PROTO_IDS = dagSource(`
export default dag({ id: "ex_proto_ids" }, (t) => {
  const proto = t.task("__proto__", async () => ({ from: "__proto__" }));
  const ctor = t.task("constructor", async () => "from constructor");
  const str = t.task("toString", async () => 3);
  t.task("join", { upstream: [proto, ctor, str] }, async (ctx) => [ctx.get(proto), ctx.get(ctor), ctx.get(str)]);
});
`);

// The same names returning nothing: ctx.get answers undefined, not Object.prototype's members.
const PROTO_IDS_SILENT = dagSource(`
export default dag({ id: "ex_proto_silent" }, (t) => {
  const ids = ["__proto__", "constructor", "toString", "hasOwnProperty"].map((id) => t.task(id, async () => undefined));
  t.task("join", { upstream: ids }, async (ctx) => ids.map((id) => typeof ctx.get(id)));
});
`);

const OUTPUTS = dagSource(`
export default dag({ id: "ex_outputs", params: { region: "eu", greeting: "default" } }, (t) => {
  const obj = t.task("obj", async () => ({ id: 7, tags: ["x", "y"], nested: { ok: true, at: null } }));
  const arr = t.task("arr", async () => [1, "two", { three: 3 }]);
  const str = t.task("str", async () => "plain string");
  const num = t.task("num", async () => 3.25);
  const bool = t.task("bool", async () => false);
  const nul = t.task("nul", async () => null);
  const none = t.task("none", async () => undefined);
  t.task("consume", { upstream: [obj, arr, str, num, bool, nul, none] }, async (ctx) => ({
    id: ctx.get(obj).id,
    secondTag: ctx.get(obj).tags[1],
    nestedOk: ctx.get(obj).nested.ok,
    three: ctx.get(arr)[2].three,
    upper: ctx.get(str).toUpperCase(),
    doubled: ctx.get(num) * 2,
    bool: ctx.get(bool),
    nul: ctx.get(nul),
    noneType: typeof ctx.get(none),
  }));
  t.task("conf", async (ctx) => ({ conf: ctx.conf, params: ctx.params, dagId: ctx.dagId, runId: ctx.runId, taskId: ctx.taskId }));
  t.task("not_upstream", async (ctx) => { try { ctx.get(obj); return "read it"; } catch (err) { return err.message; } });
});
`);

const BIGINT = dagSource(`
export default dag({ id: "ex_bigint" }, (t) => {
  const big = t.task("big", { retries: 2, retryDelay: 100 }, async () => ({ total: BigInt(10) }));
  t.task("after_big", { upstream: [big] }, async () => "never");
  // A function (one forgot to call) or a symbol has no JSON text at all.
  t.task("func", { retries: 2, retryDelay: 100 }, async () => () => 1);
  t.task("sym", { retries: 2, retryDelay: 100 }, async () => Symbol("s"));
  t.task("step_func", { retries: 2, retryDelay: 100 }, async (ctx) => ctx.step("make", () => () => 1));
});
`);

const TIMEOUTS = dagSource(`
export default dag({ id: "ex_timeout" }, (t) => {
  const cpu = t.task("cpu_hog", { executionTimeout: 300 }, async (ctx) => {
    ctx.log.info("spinning, ignoring the abort signal");
    const until = Date.now() + 60_000;
    while (Date.now() < until) {}
    return "should never get here";
  });
  t.task("after_cpu_hog", { upstream: [cpu] }, async () => "never");
  t.task("polite", { executionTimeout: 300 }, async (ctx) => {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, 60_000);
      ctx.signal.addEventListener("abort", () => { clearTimeout(timer); reject(new Error("aborted: " + String(ctx.signal.reason?.message ?? ctx.signal.reason))); });
    });
    return "should never get here";
  });
  t.task("fast_enough", { executionTimeout: 5000 }, async () => "in time");
  // Longer than setTimeout's 2^31-1 ms: it once fired after 1 ms and failed the try at once.
  t.task("weeks_to_spare", { executionTimeout: "30d" }, async () => { await new Promise((r) => setTimeout(r, 100)); return "in time"; });
});
`);

// Tasks in a queue no worker serves: the test claims and finishes them itself.
const FENCE = dagSource(`
export default dag({ id: "ex_fence" }, (t) => {
  const held = t.task("held", { queue: "fence_q" }, async () => "never run by a worker");
  const held2 = t.task("held2", { queue: "fence_q" }, async () => "never run by a worker");
  t.task("after_held", { upstream: [held, held2] }, async (ctx) => ({ held: ctx.get(held), held2: ctx.get(held2) }));
});
`);

interface TaskRow {
  task_id: string;
  state: string;
  try_number: number;
  max_tries: number;
  start_date: Date | null;
  end_date: Date | null;
  error: string | null;
}

// Task code runs from its DAG's bundle in the worker's cache: imports the bundler can see work,
// one whose path is computed at run time fails with an explanation (executor/child.ts).
const IMPORTS = dagSource(`
export default dag({ id: "ex_imports" }, (t) => {
  t.task("literal", async () => (await import("./lib/imported.ts")).VALUE);
  t.task("template", async () => { const name = "imported"; return (await import(\`./lib/\${name}.ts\`)).VALUE; });
  t.task("computed", async () => { const spec = ["./lib", "imported.ts"].join("/"); return (await import(spec)).VALUE; });
});
`);

describe("task execution", () => {
  const h = new Harness({ workers: 4, killGraceMs: 500, runIds: "numbered" });
  const enc = encodeURIComponent;

  async function finished(dagId: string, runId: string, timeoutMs = 20_000) {
    return waitFor(
      `run ${dagId}/${runId} to finish`,
      async () => {
        const r = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${enc(runId)}` });
        return ["success", "failed"].includes(r.json().state) ? r.json() : null;
      },
      timeoutMs,
    );
  }

  async function tasks(runId: string): Promise<Map<string, TaskRow>> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT task_id, state, try_number, max_tries, start_date, end_date, error FROM task_instance WHERE run_id = ?",
      [runId],
    );
    return new Map(rows.map((r) => [r.task_id as string, r as unknown as TaskRow]));
  }

  async function taskJson(dagId: string, runId: string, taskId: string) {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${enc(runId)}/taskInstances/${taskId}` });
    expect(res.statusCode).toBe(200);
    return res.json();
  }

  async function xcom(dagId: string, runId: string, taskId: string) {
    return h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${enc(runId)}/taskInstances/${taskId}/xcomEntries/return_value` });
  }

  beforeAll(async () => {
    await h.start({
      "fail.ts": FAIL,
      "retry.ts": RETRY,
      "fatal.ts": FATAL,
      "skip.ts": SKIP,
      "diamond.ts": DIAMOND,
      "fanout.ts": FANOUT,
      "outputs.ts": OUTPUTS,
      "protoIds.ts": PROTO_IDS,
      "protoIdsSilent.ts": PROTO_IDS_SILENT,
      "bigint.ts": BIGINT,
      "timeouts.ts": TIMEOUTS,
      "fence.ts": FENCE,
      "imports.ts": IMPORTS,
      "lib/imported.ts": `export const VALUE = "from a local module";\n`,
    });
    await h.run();
    const errors = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
    expect(errors.json().import_errors).toEqual([]);
  });
  afterAll(() => h.stop());

  it("a task that throws without retries fails, its downstream is upstream_failed, the run fails, and the error is stored", async () => {
    const runId = await h.trigger("ex_fail");
    const run = await finished("ex_fail", runId);
    expect(run.state).toBe("failed");
    expect(run.end_date).not.toBeNull();

    const ts = await tasks(runId);
    expect(Object.fromEntries([...ts].map(([id, t]) => [id, [t.state, t.try_number]]))).toEqual({
      boom: ["failed", 1],
      down: ["upstream_failed", 0],
      down_down: ["upstream_failed", 0],
      cleanup: ["success", 1],
      bystander: ["success", 1],
    });
    const boom = await taskJson("ex_fail", runId, "boom");
    expect(boom).toMatchObject({ state: "failed", try_number: 1, max_tries: 0, next_retry_at: null });
    expect(boom.error).toMatchObject({ name: "Error", message: "kaboom: no retries here" });
    expect(boom.error.stack).toContain("kaboom");
    expect(boom.end_date).not.toBeNull();
    const down = await taskJson("ex_fail", runId, "down");
    expect(down).toMatchObject({ state: "upstream_failed", error: null });
    expect((await xcom("ex_fail", runId, "boom")).statusCode).toBe(404);
    expect(await h.taskLog("ex_fail", runId, "down", 1)).toBeNull();
    const log = await h.taskLog("ex_fail", runId, "boom", 1);
    expect(log).toContain("kaboom: no retries here");
  });

  it("retries a flaky task after retryDelay until it succeeds on try 3, with one log per try", async () => {
    const runId = await h.trigger("ex_retry");
    const run = await finished("ex_retry", runId);
    expect(run.state).toBe("success");

    const flaky = await taskJson("ex_retry", runId, "flaky");
    expect(flaky).toMatchObject({ state: "success", try_number: 3, max_tries: 2, next_retry_at: null });
    expect((await xcom("ex_retry", runId, "flaky")).json().value).toEqual({ succeededOn: 3 });
    expect((await xcom("ex_retry", runId, "after_flaky")).json().value).toBe(30);

    const logs: string[] = [];
    for (const n of [1, 2, 3]) {
      logs.push((await h.taskLog("ex_retry", runId, "flaky", n)) ?? "");
      expect(logs[n - 1]).toContain(`Starting try ${n} of 3`);
      // ctx.maxTries is retries (Airflow's max_tries), not the "of 3" of the log: the last try is maxTries + 1.
      expect(logs[n - 1]).toContain(`attempt marker ${n} maxTries 2`);
    }
    expect(logs[0]).toContain("flaky failure on try 1");
    expect(logs[1]).toContain("flaky failure on try 2");
    expect(logs[2]).not.toContain("flaky failure");
    expect(logs[2]).toContain("Task succeeded");
    expect(await h.taskLog("ex_retry", runId, "flaky", 4)).toBeNull();

    // Each retry started no sooner than retryDelay after the failure before it.
    const stamp = (log: string, text: string) => Date.parse(log.split("\n").find((l) => l.includes(text))!.slice(1, 25));
    expect(stamp(logs[1]!, "Starting try 2") - stamp(logs[0]!, "Task failed")).toBeGreaterThanOrEqual(195);
    expect(stamp(logs[2]!, "Starting try 3") - stamp(logs[1]!, "Task failed")).toBeGreaterThanOrEqual(195);

    // The API serves every try's log.
    for (const n of [1, 2, 3]) {
      const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/ex_retry/dagRuns/${enc(runId)}/taskInstances/flaky/logs/${n}` });
      expect(res.body).toBe(logs[n - 1]);
    }
  });

  it("FailError and nonRetryable() fail at once despite retries", async () => {
    const runId = await h.trigger("ex_fatal");
    expect((await finished("ex_fatal", runId)).state).toBe("failed");
    const fe = await taskJson("ex_fatal", runId, "fail_error");
    expect(fe).toMatchObject({ state: "failed", try_number: 1, max_tries: 3 });
    expect(fe.error).toMatchObject({ name: "FailError", code: "BATON_TASK_FAILED", message: "fatal: bad input", nonRetryable: true });
    const nr = await taskJson("ex_fatal", runId, "non_retryable");
    expect(nr).toMatchObject({ state: "failed", try_number: 1 });
    expect(nr.error).toMatchObject({ code: "BATON_TASK_FAILED", message: "wrapped: give up" });
    expect(await h.taskLog("ex_fatal", runId, "fail_error", 2)).toBeNull();
  });

  it("SkipError and ctx.skip() skip the task, all_success downstream is skipped, and the run succeeds", async () => {
    const runId = await h.trigger("ex_skip");
    const run = await finished("ex_skip", runId);
    expect(run.state).toBe("success");
    const ts = await tasks(runId);
    expect(Object.fromEntries([...ts].map(([id, t]) => [id, [t.state, t.try_number]]))).toEqual({
      skip_by_error: ["skipped", 1],
      after_error_skip: ["skipped", 0],
      skip_by_ctx: ["skipped", 1],
      after_ctx_skip: ["skipped", 0],
      after_after_ctx_skip: ["skipped", 0],
      runs: ["success", 1],
      after_mixed: ["skipped", 0],
      none_failed_join: ["success", 1],
    });
    expect((await xcom("ex_skip", runId, "none_failed_join")).json().value).toBe("ran anyway");
    expect(await h.taskLog("ex_skip", runId, "skip_by_error", 1)).toContain("nothing to do today");
    expect(await h.taskLog("ex_skip", runId, "skip_by_ctx", 1)).toContain("ctx says skip");
    for (const id of ["skip_by_error", "after_error_skip"]) expect(ts.get(id)!.error).toBeNull();
  });

  it("runs the join of a diamond exactly once, after both branches", async () => {
    const marker = path.join(path.dirname(h.logsFolder), "diamond-marker.txt");
    const runId = await h.trigger("ex_diamond", { conf: { marker } });
    expect((await finished("ex_diamond", runId)).state).toBe("success");
    const ts = await tasks(runId);
    for (const id of ["a", "b", "c", "d"]) expect([id, ts.get(id)!.state, ts.get(id)!.try_number]).toEqual([id, "success", 1]);
    const d = ts.get("d")!;
    for (const branch of ["b", "c"]) expect(d.start_date!.getTime()).toBeGreaterThanOrEqual(ts.get(branch)!.end_date!.getTime());
    expect(ts.get("b")!.start_date!.getTime()).toBeGreaterThanOrEqual(ts.get("a")!.end_date!.getTime());
    expect(await readFile(marker, "utf8")).toBe("d ran on try 1\n");
    expect((await xcom("ex_diamond", runId, "d")).json().value).toEqual({ b: 11, c: 101, sum: 112 });
    expect(await h.taskLog("ex_diamond", runId, "d", 2)).toBeNull();
  });

  it(`fans out to ${FAN} tasks and joins them once all have ended`, async () => {
    const runId = await h.trigger("ex_fanout");
    expect((await finished("ex_fanout", runId, 40_000)).state).toBe("success");
    const ts = await tasks(runId);
    expect(ts.size).toBe(FAN + 2);
    const notSuccess = [...ts.values()].filter((t) => t.state !== "success" || t.try_number !== 1).map((t) => `${t.task_id}:${t.state}:${t.try_number}`);
    expect(notSuccess).toEqual([]);
    const join = ts.get("join")!;
    const parts = [...ts.values()].filter((t) => t.task_id.startsWith("part_"));
    expect(parts).toHaveLength(FAN);
    const lastEnd = Math.max(...parts.map((p) => p.end_date!.getTime()));
    expect(join.start_date!.getTime()).toBeGreaterThanOrEqual(lastEnd);
    const firstStart = Math.min(...parts.map((p) => p.start_date!.getTime()));
    expect(firstStart).toBeGreaterThanOrEqual(ts.get("start")!.end_date!.getTime());
    // 200 + 201 + … + 399
    expect((await xcom("ex_fanout", runId, "join")).json().value).toEqual({ count: FAN, sum: (FAN * (FAN + 2 * FAN - 1)) / 2 });
  });

  it("passes typed outputs between tasks with ctx.get, and conf as ctx.conf", async () => {
    const runId = await h.trigger("ex_outputs", { conf: { greeting: "hi", nested: { n: 5 } } });
    expect((await finished("ex_outputs", runId)).state).toBe("success");
    expect((await xcom("ex_outputs", runId, "consume")).json().value).toEqual({
      id: 7,
      secondTag: "y",
      nestedOk: true,
      three: 3,
      upper: "PLAIN STRING",
      doubled: 6.5,
      bool: false,
      nul: null,
      noneType: "undefined",
    });
    expect((await xcom("ex_outputs", runId, "obj")).json().value).toEqual({ id: 7, tags: ["x", "y"], nested: { ok: true, at: null } });
    expect((await xcom("ex_outputs", runId, "nul")).json().value).toBeNull();
    expect((await xcom("ex_outputs", runId, "none")).statusCode).toBe(404);
    expect((await xcom("ex_outputs", runId, "conf")).json().value).toEqual({
      conf: { greeting: "hi", nested: { n: 5 } },
      params: { region: "eu", greeting: "hi", nested: { n: 5 } },
      dagId: "ex_outputs",
      runId,
      taskId: "conf",
    });
    expect((await xcom("ex_outputs", runId, "not_upstream")).json().value).toContain("only direct upstream tasks");
  });

  it("runs tasks named __proto__, constructor and toString, and hands their outputs downstream", async () => {
    const runId = await h.trigger("ex_proto_ids");
    expect((await finished("ex_proto_ids", runId)).state).toBe("success");
    expect((await xcom("ex_proto_ids", runId, "join")).json().value).toEqual([{ from: "__proto__" }, "from constructor", 3]);
  });

  // Was: ["object", "function", "function", "function"] — the outputs map crossed to the task process
  // as JSON, a plain object whose prototype answered the ids no upstream had returned.
  it("answers undefined from ctx.get for upstreams named like Object's members that returned nothing", async () => {
    const runId = await h.trigger("ex_proto_silent");
    expect((await finished("ex_proto_silent", runId)).state).toBe("success");
    expect((await xcom("ex_proto_silent", runId, "join")).json().value).toEqual(["undefined", "undefined", "undefined", "undefined"]);
  });

  it("fails a task whose return value is not JSON-serializable, with a clear message and no retries", async () => {
    const runId = await h.trigger("ex_bigint");
    expect((await finished("ex_bigint", runId)).state).toBe("failed");
    const big = await taskJson("ex_bigint", runId, "big");
    expect(big).toMatchObject({ state: "failed", try_number: 1, max_tries: 2 });
    expect(big.error.message).toMatch(/not JSON-serializable/);
    expect(big.error.message).toMatch(/BigInt/);
    expect((await taskJson("ex_bigint", runId, "after_big")).state).toBe("upstream_failed");
    expect((await xcom("ex_bigint", runId, "big")).statusCode).toBe(404);
    // Was: a TypeError from Buffer.byteLength(undefined), "The "string" argument must be of type string…", retried.
    for (const [id, what] of [["func", "the task's return value is a function"], ["sym", "the task's return value is a symbol"], ["step_func", 'the result of step "make" is a function']]) {
      const ti = await taskJson("ex_bigint", runId, id);
      expect(ti).toMatchObject({ state: "failed", try_number: 1 });
      expect(ti.error.message).toContain(`${what}: not JSON-serializable`);
    }
  });

  it("imports local modules named by a literal or a ./ template; a path computed at run time fails with an explanation", async () => {
    const runId = await h.trigger("ex_imports");
    expect((await finished("ex_imports", runId)).state).toBe("failed");
    expect((await xcom("ex_imports", runId, "literal")).json().value).toBe("from a local module");
    expect((await xcom("ex_imports", runId, "template")).json().value).toBe("from a local module");
    const computed = await taskJson("ex_imports", runId, "computed");
    expect(computed).toMatchObject({ state: "failed", error: { code: "ERR_MODULE_NOT_FOUND" } });
    expect(computed.error.message).toContain("whose path is computed at run time is not bundled with the DAG file");
    expect(computed.error.message).toContain(path.join(h.cacheFolder, "bundles"));
    expect(await h.taskLog("ex_imports", runId, "computed", 1)).toContain("whose path is computed at run time is not bundled");
  });

  it("kills a task that ignores its execution timeout and fails it with BATON_TASK_TIMEOUT; a cooperative one stops at the signal", async () => {
    const runId = await h.trigger("ex_timeout");
    expect((await finished("ex_timeout", runId, 20_000)).state).toBe("failed");
    const ts = await tasks(runId);
    expect(Object.fromEntries([...ts].map(([id, t]) => [id, t.state]))).toEqual({
      cpu_hog: "failed",
      after_cpu_hog: "upstream_failed",
      polite: "failed",
      fast_enough: "success",
      weeks_to_spare: "success",
    });
    for (const id of ["cpu_hog", "polite"]) {
      const ti = await taskJson("ex_timeout", runId, id);
      expect(ti.error).toMatchObject({ code: "BATON_TASK_TIMEOUT", name: "TaskTimeoutError" });
      expect(ti.error.message).toContain("execution timeout");
      expect(ti.try_number).toBe(1);
      // 300 ms timeout + 500 ms kill grace, with room for a loaded machine; far below the 60 s the task wanted.
      expect(ti.duration).toBeGreaterThanOrEqual(0.29);
      expect(ti.duration).toBeLessThan(5);
    }
    // The cooperative one stopped at the signal: its own code wrote why (the killed one could not).
    // Not compared by duration: 0.3 s against 0.8 s came out equal on a loaded machine.
    expect(await h.taskLog("ex_timeout", runId, "polite", 1)).toContain("aborted: execution timeout");
    // Each log ends with the reason the worker ended the try, even the killed one's (whose process
    // could write nothing more: its lines still in memory died with it).
    for (const id of ["cpu_hog", "polite"]) {
      await waitFor(`${id}'s log to name the timeout`, async () => /ERROR - task exceeded its execution timeout of 300ms \(BATON_TASK_TIMEOUT\)\n$/.test((await h.taskLog("ex_timeout", runId, id, 1)) ?? ""));
    }

    // The worker replaced the killed process and keeps running tasks.
    const again = await h.trigger("ex_outputs");
    expect((await finished("ex_outputs", again)).state).toBe("success");
  });

  describe("fenced results", () => {
    const versions = () => new VersionCache(h.db.pool);
    const tokenA = "a".repeat(32);
    const tokenB = "b".repeat(32);
    const tokenC = "c".repeat(32);

    async function claim(token: string, limit = 1): Promise<ClaimedTask[]> {
      return claimTasks(h.db, { now: new Date(), limit, queues: ["fence_q"], hostname: "fence-test", pid: 1, token });
    }
    function result(task: ClaimedTask, output: unknown): FinishedTry {
      return { task, outcome: "success", output, endedAt: new Date() };
    }
    async function row(id: number) {
      const [[r]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, claim_token FROM task_instance WHERE id = ?", [id]);
      return r!;
    }
    async function xcomCount(id: number) {
      const [[r]] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT COUNT(*) AS n FROM xcom x JOIN task_instance ti ON ti.dag_run_id = x.dag_run_id AND ti.task_id = x.task_id WHERE ti.id = ?",
        [id],
      );
      return Number(r!.n);
    }

    it("discards the result of a try whose claim token changed or that was handed back, and records the rightful owner's", async () => {
      const runId = await h.trigger("ex_fence");
      await waitFor("both fence tasks to be queued", async () => {
        const ts = await tasks(runId);
        return ts.get("held")?.state === "queued" && ts.get("held2")?.state === "queued";
      });
      const shapes = versions();
      const shapeOf = (hash: string) => shapes.shape(hash);

      // A claims held; its claim is then taken over (as a zombie reaper + new claim would).
      const [zombie] = await claim(tokenA);
      expect(zombie).toMatchObject({ taskId: "held", tryNumber: 1, token: tokenA });
      await h.db.pool.query("UPDATE task_instance SET claim_token = ? WHERE id = ?", [tokenB, zombie!.id]);
      const stolen = await finishTries(h.db, new Date(), [result(zombie!, "from the zombie")], shapeOf);
      expect(stolen).toMatchObject({ fenced: [zombie!.id], finished: [], retrying: [], runsFinished: [] });
      expect(await row(zombie!.id)).toMatchObject({ state: "running", try_number: 1, claim_token: tokenB });
      expect(await xcomCount(zombie!.id)).toBe(0);

      // B hands it back; neither A's nor B's result counts any more.
      expect(await handBack(h.db, new Date(), [{ id: zombie!.id, tryNumber: 1, token: tokenB, pool: zombie!.pool, poolSlots: zombie!.poolSlots }], "handed back by a test")).toBe(1);
      expect(await row(zombie!.id)).toMatchObject({ state: "queued", try_number: 0, claim_token: null });
      const late = await finishTries(h.db, new Date(), [result(zombie!, "zombie again"), result({ ...zombie!, token: tokenB }, "from B")], shapeOf);
      expect(late.fenced.sort()).toEqual([zombie!.id, zombie!.id]);
      expect(late.finished).toEqual([]);
      expect(await row(zombie!.id)).toMatchObject({ state: "queued", try_number: 0 });

      // C claims both tasks. A stale try number is fenced too; in a mixed batch only the
      // fenced result is dropped and the rest is recorded.
      const owned = await claim(tokenC, 2);
      expect(owned.map((t) => [t.taskId, t.tryNumber]).sort()).toEqual([
        ["held", 1],
        ["held2", 1],
      ]);
      const held = owned.find((t) => t.taskId === "held")!;
      const held2 = owned.find((t) => t.taskId === "held2")!;
      const mixed = await finishTries(
        h.db,
        new Date(),
        [result(zombie!, "zombie a third time"), result({ ...held, tryNumber: 2 }, "wrong try"), result(held2, "held2 by C")],
        shapeOf,
      );
      expect(mixed.fenced.sort()).toEqual([held.id, held.id]);
      expect(mixed.finished).toEqual([held2.id]);
      expect(await row(held.id)).toMatchObject({ state: "running", try_number: 1, claim_token: tokenC });
      expect(await row(held2.id)).toMatchObject({ state: "success", try_number: 1 });
      expect(await xcomCount(held.id)).toBe(0);

      // The rightful owner's result counts and the run carries on to success.
      const good = await finishTries(h.db, new Date(), [result(held, "held by C")], shapeOf);
      expect(good).toMatchObject({ fenced: [], finished: [held.id] });
      h.worker?.wake();
      expect((await finished("ex_fence", runId)).state).toBe("success");
      expect((await xcom("ex_fence", runId, "after_held")).json().value).toEqual({ held: "held by C", held2: "held2 by C" });
      // A zombie waking after the run ended changes nothing.
      const afterEnd = await finishTries(h.db, new Date(), [result(held, "replayed")], shapeOf);
      expect(afterEnd.fenced).toEqual([held.id]);
      expect((await xcom("ex_fence", runId, "held")).json().value).toBe("held by C");
    });
  });
});
