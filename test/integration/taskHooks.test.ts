import { readFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimRunCallbacks, releaseRunCallbacks } from "../../store/transitions/runCallbacks.ts";

const HOOKS = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");

export const hooks = dag({
  id: "hooks",
  defaultArgs: { retries: 1, retryDelay: 50, onRetry: (ctx, err) => mark(ctx, "retry:" + ctx.taskId + ":" + err.message) },
  onSuccess: (ctx) => mark(ctx, "dag-success:" + ctx.runId),
  onFailure: (ctx) => { mark(ctx, "dag-failed:" + ctx.state); ctx.log.info("dag failure callback ran"); },
}, (t) => {
  const ok = t.task("ok", { onSuccess: (ctx, out) => mark(ctx, "success:" + JSON.stringify(out)) }, async () => ({ n: 1 }));
  const flaky = t.task("flaky", {
    onFailure: (ctx, err) => mark(ctx, "failure:" + err.message),
    onSuccess: () => { throw new Error("callbacks must not change the state"); },
  }, async (ctx) => {
    if (ctx.conf.fail) throw new Error("boom " + ctx.tryNumber);
    return "fine";
  });
  ok.then(flaky);
});

// Runs that no worker ends: the scheduler fails them (dagrunTimeout) or the API does.
export const stalled = dag({
  id: "stalled",
  dagrunTimeout: "600ms",
  onFailure: (ctx) => mark(ctx, "stalled-failed:" + ctx.runId),
}, (t) => {
  t.task("wait", async (ctx) => { while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20)); });
});

// Paused: its runs never start, so a test can end them by hand without leaving a task running.
export const parked = dag({
  id: "parked",
  isPausedUponCreation: true,
  onFailure: (ctx) => mark(ctx, "parked-failed:" + ctx.runId),
}, (t) => {
  t.task("never", async () => 1);
});

// Prints as a task would: its console output goes to dag_callbacks.log with its ctx.log lines,
// not what code it left running prints once it ended.
export const chatty = dag({
  id: "chatty",
  onSuccess: (ctx) => {
    console.log("printed by console.log in " + ctx.runId);
    process.stdout.write("written to process.stdout\\n");
    console.error("printed by console.error");
    ctx.log.info("logged by ctx.log");
    setTimeout(() => { console.log("printed after the callback ended"); mark(ctx, "chatty-late:" + ctx.runId); }, 50);
  },
}, (t) => {
  t.task("one", async () => 1);
});

export const past = dag({ id: "past" }, (t) => {
  t.task("a", { dependsOnPast: true }, async (ctx) => { if (ctx.conf.fail) throw new Error("no"); return "a"; });
});
`);

describe("callbacks and dependsOnPast", () => {
  const h = new Harness();
  let marks: string;
  beforeAll(async () => {
    marks = path.join(await scratchDir("baton-marks-"), "marks.txt");
    await h.start({ "hooks.ts": HOOKS });
    await h.run();
  });
  afterAll(() => h.stop());

  const taskState = async (dagId: string, runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?", [dagId, runId, taskId]);
    return rows[0]?.state as string | undefined;
  };
  const lines = async () => (await readFile(marks, "utf8").catch(() => "")).split("\n").filter(Boolean);

  it("runs task and DAG callbacks on success; a throwing callback changes nothing", async () => {
    const runId = await h.trigger("hooks", { conf: { marks } });
    await waitFor("success", async () => (await h.runState("hooks", runId)) === "success");
    await waitFor("dag success callback", async () => (await lines()).includes(`dag-success:${runId}`));
    expect(await lines()).toEqual(expect.arrayContaining(['success:{"n":1}']));
    expect(await taskState("hooks", runId, "flaky")).toBe("success");
    const log = await h.taskLog("hooks", runId, "flaky", 1);
    expect(log).toContain("onSuccess callback failed (the task's state is unchanged)");
  });

  it("runs onRetry, then onFailure, then the DAG's onFailure", async () => {
    const before = (await lines()).length;
    const runId = await h.trigger("hooks", { conf: { marks, fail: true } });
    await waitFor("failure", async () => (await h.runState("hooks", runId)) === "failed");
    await waitFor("dag failure callback", async () => (await lines()).includes("dag-failed:failed"));
    const added = (await lines()).slice(before);
    expect(added.filter((l) => !l.startsWith("success:"))).toEqual(["retry:flaky:boom 1", "failure:boom 2", "dag-failed:failed"]);
    const log = await readFile(path.join(h.logsFolder, "dag_id=hooks", `run_id=${runId}`, "dag_callbacks.log"), "utf8");
    expect(log).toContain("dag failure callback ran");
  });

  // dag_callbacks.log had only ctx.log lines: what the callback printed went to the worker's output.
  it("logs a DAG callback's console output to the run's callback log, not what it prints after it ended", async () => {
    const runId = await h.trigger("chatty", { conf: { marks } });
    await waitFor("success", async () => (await h.runState("chatty", runId)) === "success");
    await waitFor("the callback's late print", async () => (await lines()).includes(`chatty-late:${runId}`));
    const log = await readFile(path.join(h.logsFolder, "dag_id=chatty", `run_id=${runId}`, "dag_callbacks.log"), "utf8");
    expect(log).toContain(`printed by console.log in ${runId}\n`);
    expect(log).toContain("written to process.stdout\n");
    expect(log).toContain("printed by console.error\n");
    expect(log).toContain("INFO - logged by ctx.log\n");
    expect(log).not.toContain("printed after the callback ended");
  });

  const callbackDue = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT callback_due, callback_claimed_at FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return { due: Number(rows[0]?.callback_due), claimed: rows[0]?.callback_claimed_at !== null };
  };

  it("runs the DAG's onFailure for a run the scheduler failed (dagrunTimeout) and for one failed over the API", async () => {
    const timedOut = await h.trigger("stalled", { conf: { marks } });
    await waitFor("the run's timeout to fail it", async () => (await h.runState("stalled", timedOut)) === "failed", 15_000);
    await waitFor("its onFailure", async () => (await lines()).includes(`stalled-failed:${timedOut}`));

    const cancelled = await h.trigger("stalled", { conf: { marks }, logicalDate: "2026-03-01T00:00:00Z" });
    await waitFor("its task to run", async () => (await taskState("stalled", cancelled, "wait")) === "running");
    const patched = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/stalled/dagRuns/${encodeURIComponent(cancelled)}`, payload: { state: "failed" } });
    expect(patched.statusCode).toBe(200);
    await waitFor("its onFailure", async () => (await lines()).includes(`stalled-failed:${cancelled}`));
    await waitFor("both callbacks cleared", async () => (await callbackDue("stalled", timedOut)).due === 0 && (await callbackDue("stalled", cancelled)).due === 0);
    expect((await lines()).filter((l) => l.startsWith("stalled-failed:"))).toEqual([`stalled-failed:${timedOut}`, `stalled-failed:${cancelled}`]);
    // Their tasks were aborted; the next tests need the worker's slots back.
    await waitFor("the aborted tasks to give their slots back", async () => h.worker!.runningCount === 0, 20_000);
  });

  it("a callback claimed by a worker that died runs again once its lease expires", async () => {
    const runId = await h.trigger("parked", { conf: { marks }, logicalDate: "2026-03-02T00:00:00Z" });
    // The run ends, and a worker claims its callback and dies: its lease is fresh, so nobody takes it over yet.
    const conn = await h.db.pool.getConnection();
    try {
      await conn.query("START TRANSACTION");
      await conn.query("UPDATE dag_run SET state = 'failed', end_date = UTC_TIMESTAMP(6) WHERE dag_id = 'parked' AND run_id = ?", [runId]);
      await conn.query("UPDATE dag_run SET callback_claimed_at = UTC_TIMESTAMP(6) WHERE dag_id = 'parked' AND run_id = ?", [runId]);
      await conn.query("COMMIT");
    } finally {
      conn.release();
    }
    expect(await callbackDue("parked", runId)).toEqual({ due: 1, claimed: true });
    const claimable = await claimRunCallbacks(h.db, new Date(), 100, 150_000);
    expect(claimable.map((c) => c.runId)).not.toContain(runId);
    expect((await lines()).includes(`parked-failed:${runId}`)).toBe(false);

    await h.db.pool.query("UPDATE dag_run SET callback_claimed_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE dag_id = 'parked' AND run_id = ?", [runId]);
    await waitFor("another worker to run it", async () => (await lines()).includes(`parked-failed:${runId}`), 10_000);
    await waitFor("it to be cleared", async () => (await callbackDue("parked", runId)).due === 0);
  });

  it("owes the callback of a run's latest end: a run reopened before a worker took it owes none until it ends again", async () => {
    const runId = await h.trigger("hooks", { conf: { marks }, logicalDate: "2026-04-01T00:00:00Z" });
    await waitFor("success", async () => (await h.runState("hooks", runId)) === "success");
    // Within one transaction, so no worker claims anything between the steps; rolled back after.
    const conn = await h.db.pool.getConnection();
    const owed = async () => {
      const [[row]] = await conn.query<RowDataPacket[]>("SELECT callback_due, callback_state FROM dag_run WHERE dag_id = 'hooks' AND run_id = ?", [runId]);
      return [Number(row!.callback_due), row!.callback_state];
    };
    const setState = (state: string) => conn.query("UPDATE dag_run SET state = ? WHERE dag_id = 'hooks' AND run_id = ?", [state, runId]);
    try {
      await conn.query("START TRANSACTION");
      await conn.query("UPDATE dag_run SET callback_due = 0, callback_claimed_at = NULL WHERE dag_id = 'hooks' AND run_id = ?", [runId]);
      await setState("running"); // cleared
      expect(await owed()).toEqual([0, "success"]);
      await setState("failed");
      expect(await owed()).toEqual([1, "failed"]);
      // Failed, then compensating (cancelRun with compensate does both in one transaction): nothing owed yet.
      await setState("running");
      expect(await owed()).toEqual([0, "failed"]);
      await setState("success");
      expect(await owed()).toEqual([1, "success"]);
      // A callback a worker already runs stays due when the run reopens: that worker clears it.
      await conn.query("UPDATE dag_run SET callback_claimed_at = UTC_TIMESTAMP(6) WHERE dag_id = 'hooks' AND run_id = ?", [runId]);
      await setState("queued");
      expect(await owed()).toEqual([1, "success"]);
    } finally {
      await conn.query("ROLLBACK");
      conn.release();
    }
  });

  it("a stopping worker gives back the callbacks it did not run, except of runs reopened since", async () => {
    const ended = await h.trigger("parked", { conf: { marks }, logicalDate: "2026-05-01T00:00:00Z" });
    const reopened = await h.trigger("parked", { conf: { marks }, logicalDate: "2026-05-02T00:00:00Z" });
    const claimedAt = new Date(Date.now() - 1000);
    // Both ended and were claimed by a worker that then stops before running them; one is reopened meanwhile.
    const conn = await h.db.pool.getConnection();
    try {
      await conn.query("START TRANSACTION");
      for (const runId of [ended, reopened]) {
        await conn.query("UPDATE dag_run SET state = 'failed', end_date = UTC_TIMESTAMP(6) WHERE dag_id = 'parked' AND run_id = ?", [runId]);
        await conn.query("UPDATE dag_run SET callback_claimed_at = ? WHERE dag_id = 'parked' AND run_id = ?", [claimedAt, runId]);
      }
      await conn.query("UPDATE dag_run SET state = 'queued', end_date = NULL WHERE dag_id = 'parked' AND run_id = ?", [reopened]);
      await conn.query("COMMIT");
    } finally {
      conn.release();
    }
    expect(await callbackDue("parked", reopened)).toEqual({ due: 1, claimed: true });
    const [ids] = await h.db.pool.query<RowDataPacket[]>("SELECT id, run_id FROM dag_run WHERE dag_id = 'parked' AND run_id IN (?, ?)", [ended, reopened]);
    await releaseRunCallbacks(h.db, ids.map((r) => ({ dagRunId: Number(r.id), claimedAt })));
    expect(await callbackDue("parked", reopened)).toEqual({ due: 0, claimed: false });
    // The other is due and free again: a worker runs it.
    await waitFor("the given-back callback to run", async () => (await lines()).includes(`parked-failed:${ended}`));
  });

  it("marks no callback due for a run of a DAG without callbacks", async () => {
    const runId = await h.trigger("past", { logicalDate: "2024-06-01T00:00:00Z" });
    await waitFor("success", async () => (await h.runState("past", runId)) === "success");
    expect(await callbackDue("past", runId)).toEqual({ due: 0, claimed: false });
  });

  it("dependsOnPast holds a task until the same task succeeded in the previous run", async () => {
    const first = await h.trigger("past", { conf: { fail: true }, logicalDate: "2026-01-01T00:00:00Z" });
    await waitFor("first run fails", async () => (await h.runState("past", first)) === "failed");
    const second = await h.trigger("past", { logicalDate: "2026-01-02T00:00:00Z" });
    await waitFor("second run starts", async () => (await taskState("past", second, "a")) !== undefined);
    await h.scheduler.tick();
    await h.scheduler.tick();
    expect(await taskState("past", second, "a")).toBe("scheduled");

    // The previous run's task now counts as done: the held task is released and runs.
    await h.db.pool.query("UPDATE task_instance SET state = 'success' WHERE dag_id = 'past' AND run_id = ?", [first]);
    await h.scheduler.tick();
    await waitFor("second run succeeds", async () => (await h.runState("past", second)) === "success");

    const firstOfAll = await h.trigger("past", { logicalDate: "2025-01-01T00:00:00Z" });
    await waitFor("a run with no previous run is not held", async () => (await h.runState("past", firstOfAll)) === "success");
  });
});

// Tries the worker ends: their own process cannot run their callbacks, so the worker does.
const ENDED = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
const seen = (ctx, err) => [ctx.taskId, ctx.tryNumber, err.code, ctx.get("up").v, ctx.conf.tag, ctx.params.p].join(":");
const hooks = {
  onRetry: (ctx, err) => { mark(ctx, "retry:" + seen(ctx, err)); ctx.log.info("onRetry ran for try " + ctx.tryNumber); },
  onFailure: (ctx, err) => { mark(ctx, "failure:" + seen(ctx, err)); ctx.log.info("onFailure ran for try " + ctx.tryNumber); },
};

export const ended = dag({ id: "ended", params: { p: "param" } }, (t) => {
  const up = t.task("up", async () => ({ v: 7 }));
  // Ignores ctx.signal: killed after the grace, every try.
  const busy = t.task("busy", { retries: 1, retryDelay: 50, executionTimeout: 300, ...hooks }, async () => {
    const end = Date.now() + 60_000;
    while (Date.now() < end) {}
  });
  const crash = t.task("crash", { retries: 1, retryDelay: 50, isolation: "process", ...hooks }, async (ctx) => {
    ctx.log.info("about to exit");
    process.exit(2);
  });
  // Honours the abort: its own process runs its onFailure, which then hangs until the process is
  // killed; the worker must not run it a second time.
  // (A timeout long enough for a fresh process to start the try and see the abort.)
  const polite = t.task("polite", {
    executionTimeout: "2s",
    onFailure: (ctx, err) => { mark(ctx, "polite-failure:" + err.message); const end = Date.now() + 60_000; while (Date.now() < end) {} },
  }, async (ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    throw new Error("aborted as asked");
  });
  up.then([busy, crash, polite]);
});

// Stop at the abort of their execution timeout, then return, or give up for good: the try timed
// out all the same (recorded BATON_TASK_TIMEOUT, retried), and its callbacks must say so.
const late = (ctx, what) => mark(ctx, "late-" + what + ":" + ctx.taskId + ":" + ctx.tryNumber);
const lateHooks = { onSuccess: (ctx) => late(ctx, "success"), onRetry: (ctx) => late(ctx, "retry"), onFailure: (ctx) => late(ctx, "failure") };
const aborted = (ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
export const lateDag = dag({ id: "late", defaultArgs: { retries: 1, retryDelay: 50, executionTimeout: "2s", ...lateHooks } }, (t) => {
  t.task("returns", async (ctx) => { if (ctx.tryNumber === 1) await aborted(ctx); return "done"; });
  t.task("gives_up", async (ctx) => { if (ctx.tryNumber === 1) { await aborted(ctx); throw new FailError("giving up"); } return "done"; });
});
`);

describe("callbacks of tries the worker ends (execution timeout, process died)", () => {
  const h = new Harness({ workers: 4, killGraceMs: 300 });
  let marks: string;
  beforeAll(async () => {
    marks = path.join(await scratchDir("baton-marks-"), "marks.txt");
    await h.start({ "ended.ts": ENDED });
    await h.run();
  });
  afterAll(() => h.stop());

  const lines = async () => (await readFile(marks, "utf8").catch(() => "")).split("\n").filter(Boolean);
  const task = async (runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number FROM task_instance WHERE dag_id = 'ended' AND run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0];
  };

  it("runs onRetry, then onFailure, with the try's ctx and the worker's error, once each, logged in the try's log", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/ended/dagRuns", payload: { conf: { marks, tag: "conf" } } });
    expect(res.statusCode).toBe(200);
    const runId = res.json().dag_run_id as string;
    await waitFor("the run to fail", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'ended' AND run_id = ?", [runId]);
      return rows[0]?.state === "failed";
    }, 30_000);
    const expected = [
      "retry:busy:1:BATON_TASK_TIMEOUT:7:conf:param",
      "failure:busy:2:BATON_TASK_TIMEOUT:7:conf:param",
      "retry:crash:1:BATON_WORKER_CHILD_EXITED:7:conf:param",
      "failure:crash:2:BATON_WORKER_CHILD_EXITED:7:conf:param",
    ];
    await waitFor("the callbacks to run", async () => (await lines()).filter((l) => expected.includes(l)).length >= expected.length, 15_000);
    // Callbacks never change the state.
    expect(await task(runId, "busy")).toEqual({ state: "failed", try_number: 2 });
    expect(await task(runId, "crash")).toEqual({ state: "failed", try_number: 2 });
    expect(await task(runId, "polite")).toMatchObject({ state: "failed" });

    for (const [taskId, code] of [["busy", "BATON_TASK_TIMEOUT"], ["crash", "BATON_WORKER_CHILD_EXITED"]] as const) {
      for (const [tryNumber, name] of [[1, "onRetry"], [2, "onFailure"]] as const) {
        const log = (await h.taskLog("ended", runId, taskId, tryNumber)) ?? "";
        const reason = log.indexOf(`(${code})`);
        const ran = log.indexOf(`${name} ran for try ${tryNumber}`);
        expect(reason).toBeGreaterThanOrEqual(0);
        // After the reason the worker wrote, in the same try's log.
        expect(ran).toBeGreaterThan(reason);
      }
    }
    expect((await h.taskLog("ended", runId, "crash", 1)) ?? "").toContain("about to exit");

    // Once each: nothing ran twice, and the polite task's hanging onFailure (run by its own
    // process, which was then killed) was not run again by the worker.
    await waitFor("the worker to be idle", async () => h.worker!.runningCount === 0, 10_000);
    const all = await lines();
    for (const l of expected) expect(all.filter((x) => x === l)).toHaveLength(1);
    expect(all.filter((x) => x.startsWith("polite-failure:"))).toEqual(["polite-failure:aborted as asked"]);
    expect(all).toHaveLength(expected.length + 1);
  });

  it("runs onRetry, not onSuccess or onFailure, for a try that timed out and then returned or gave up, as it is recorded", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/late/dagRuns", payload: { conf: { marks } } });
    const runId = res.json().dag_run_id as string;
    expect(await h.runEnded("late", runId, 30_000)).toBe("success");
    for (const taskId of ["returns", "gives_up"]) {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT try_number FROM task_instance WHERE dag_id = 'late' AND run_id = ? AND task_id = ?", [runId, taskId]);
      expect(Number(rows[0]!.try_number)).toBe(2);
      expect((await h.taskLog("late", runId, taskId, 1)) ?? "").toMatch(/execution timeout of 2s \(BATON_TASK_TIMEOUT\)\n$/);
    }
    // Was: late-success:returns:1 (it returned: onSuccess, for a try recorded failed) and
    // late-failure:gives_up:1 (a FailError: onFailure, for a try recorded up_for_retry).
    const all = (await lines()).filter((l) => l.startsWith("late-")).sort();
    expect(all).toEqual(["late-retry:gives_up:1", "late-retry:returns:1", "late-success:gives_up:2", "late-success:returns:2"]);
  });
});
