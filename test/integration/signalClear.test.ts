// Signals across a clear: a cleared wait starts afresh, so a signal the run received before the
// clear (one the earlier attempt got too late, or a second copy it never took) is not delivered
// to it; signals sent after the clear are, with their own payload. A re-drive of a dead letter
// goes on where the task stopped: it keeps them, as it keeps recorded steps. Another task waiting
// for the same name still gets what was kept for it. A fake clock and manual ticks make timeouts
// deterministic: a late signal is sent after the timeout passed, before any tick ends the wait.
import { writeFileSync } from "node:fs";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
import { existsSync } from "node:fs";
const until = async (path) => { while (!existsSync(String(path))) await new Promise((r) => setTimeout(r, 20)); };

// A wait skipped when its day is up; "use" returns the payload it got.
export const late = dag({ id: "sc_late" }, (t) => {
  const wait = t.waitForSignal("wait", { signal: "approved", timeout: "1d", onTimeout: "skip" });
  wait.then(t.task("use", async (ctx) => ctx.get(wait)));
});

// "gate" runs until conf.open exists: signals sent meanwhile are kept for "wait".
export const early = dag({ id: "sc_early" }, (t) => {
  const gate = t.task("gate", async (ctx) => { await until(ctx.conf.open); });
  const wait = t.waitForSignal("wait", { signal: "approved" });
  gate.then(wait).then(t.task("use", async (ctx) => ctx.get(wait)));
});

// A wait that fails when its day is up: a dead letter.
export const dead = dag({ id: "sc_dead" }, (t) => {
  const wait = t.waitForSignal("wait", { signal: "approved", timeout: "1d" });
  wait.then(t.task("use", async (ctx) => ctx.get(wait)));
});

// Two waits for one name: "first" at once, "second" once "gate" ends.
export const shared = dag({ id: "sc_shared" }, (t) => {
  t.waitForSignal("first", { signal: "signed", timeout: "1d", onTimeout: "skip" });
  const gate = t.task("gate", async (ctx) => { await until(ctx.conf.open); });
  gate.then(t.waitForSignal("second", { signal: "signed" }));
});

// "prep" fails once conf.open exists: the wait behind it ends upstream_failed.
export const marked = dag({ id: "sc_marked" }, (t) => {
  const prep = t.task("prep", { retries: 0 }, async (ctx) => { await until(ctx.conf.open); throw new FailError("prep broke"); });
  const wait = t.waitForSignal("wait", { signal: "approved" });
  prep.then(wait).then(t.task("use", async (ctx) => ctx.get(wait)));
});
`);

const DAY = 86_400_000;

describe("signals across a clear", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ workers: 2, clock, manualTicks: true, runIds: "numbered" });
  const enc = encodeURIComponent;
  let seq = 0;
  beforeAll(async () => {
    await h.start({ "signal_clear.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const file = (name: string) => `/tmp/baton-sc-${process.pid}-${Date.now()}-${++seq}-${name}`;
  const state = async (runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | undefined;
  };
  const send = (dagId: string, runId: string, name: string, body: Record<string, unknown>) =>
    h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns/${enc(runId)}/signals/${name}`, payload: body });
  const output = async (dagId: string, runId: string, taskId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${enc(runId)}/taskInstances/${taskId}/xcomEntries/return_value` })).json().value;
  /**
   * Waits until the task deferred again or ended, and returns which: a task that defers takes a
   * kept signal in the same transaction, so "deferred" means it took none.
   */
  const settledWait = (runId: string, taskId: string) =>
    waitFor(`${taskId} to wait or end`, async () => {
      const s = await state(runId, taskId);
      return s && !["none", "scheduled", "queued", "running"].includes(s) ? s : null;
    });
  const clear = async (dagId: string, payload: Record<string, unknown>) => {
    const res = await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/clearTaskInstances`, payload: { dry_run: false, ...payload } });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
  };

  it("a signal that came too late for the earlier attempt is not delivered to the cleared wait; one sent after the clear is", async () => {
    const runId = await h.trigger("sc_late", { tick: true });
    expect(await settledWait(runId, "wait")).toBe("deferred");
    clock.advance(DAY + 1000);
    // Too late: stored, not delivered; the tick ends the wait as skipped and the run succeeds.
    expect((await send("sc_late", runId, "approved", { payload: "late", signal_id: "late-1" })).json()).toMatchObject({ delivered_to: null });
    await h.scheduler.tick();
    await waitFor("the run to succeed", async () => (await h.runState("sc_late", runId)) === "success");
    expect(await state(runId, "wait")).toBe("skipped");

    await clear("sc_late", { dag_run_id: runId, task_ids: ["wait"], only_failed: false, include_downstream: true });
    expect(await settledWait(runId, "wait")).toBe("deferred");
    // The late signal's retry is still a duplicate: it changes nothing, now as before the clear.
    expect((await send("sc_late", runId, "approved", { payload: "late", signal_id: "late-1" })).json()).toMatchObject({ duplicate: true, delivered_to: null });
    expect(await state(runId, "wait")).toBe("deferred");

    expect((await send("sc_late", runId, "approved", { payload: "fresh" })).json()).toMatchObject({ delivered_to: "wait" });
    await waitFor("the run to succeed again", async () => (await h.runState("sc_late", runId)) === "success");
    expect(await output("sc_late", runId, "use")).toBe("fresh");
  });

  it("a second copy the earlier attempt never took is not delivered after the run is re-run from scratch", async () => {
    const open = file("open");
    const runId = await h.trigger("sc_early", { conf: { open }, tick: true });
    await waitFor("gate to run", async () => (await state(runId, "gate")) === "running");
    // Both kept while nobody waits; the wait takes the oldest.
    expect((await send("sc_early", runId, "approved", { payload: 1 })).json()).toMatchObject({ delivered_to: null });
    expect((await send("sc_early", runId, "approved", { payload: 2 })).json()).toMatchObject({ delivered_to: null });
    writeFileSync(open, "");
    await waitFor("the run to succeed", async () => (await h.runState("sc_early", runId)) === "success");
    expect(await output("sc_early", runId, "use")).toBe(1);

    const rerun = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/sc_early/dagRuns/${enc(runId)}`, payload: { state: "queued" } });
    expect(rerun.statusCode).toBe(200);
    expect(await settledWait(runId, "wait")).toBe("deferred");
    expect((await send("sc_early", runId, "approved", { payload: 3 })).json()).toMatchObject({ delivered_to: "wait" });
    await waitFor("the re-run to succeed", async () => (await h.runState("sc_early", runId)) === "success");
    expect(await output("sc_early", runId, "use")).toBe(3);
    // The list still shows every signal: the copy nobody took stays undelivered.
    const listed = (await h.app.inject({ method: "GET", url: `/api/v1/dags/sc_early/dagRuns/${enc(runId)}/signals` })).json();
    expect(listed.signals.map((s: { payload: number; delivered_to: string | null }) => [s.payload, s.delivered_to])).toEqual([
      [1, "wait"],
      [2, null],
      [3, "wait"],
    ]);
  });

  it("a re-drive of a wait that timed out keeps the late signal: the wait takes it at once", async () => {
    const runId = await h.trigger("sc_dead", { tick: true });
    expect(await settledWait(runId, "wait")).toBe("deferred");
    clock.advance(DAY + 1000);
    expect((await send("sc_dead", runId, "approved", { payload: "late" })).json()).toMatchObject({ delivered_to: null });
    await h.scheduler.tick();
    await waitFor("the run to fail", async () => (await h.runState("sc_dead", runId)) === "failed");
    const letters = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=sc_dead" })).json().dead_letters;
    const letter = letters.find((l: { dag_run_id: string }) => l.dag_run_id === runId);
    expect(letter).toMatchObject({ task_id: "wait", error_class: "SignalTimeoutError" });

    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [letter.task_instance_id] } });
    expect(redrive.json()).toMatchObject({ redriven: 1 });
    await waitFor("the re-driven run to succeed", async () => (await h.runState("sc_dead", runId)) === "success");
    expect(await output("sc_dead", runId, "use")).toBe("late");
  });

  it("a clear of one wait leaves a kept signal to another task that waits for the same name", async () => {
    const open = file("open");
    const runId = await h.trigger("sc_shared", { conf: { open }, tick: true });
    expect(await settledWait(runId, "first")).toBe("deferred");
    clock.advance(DAY + 1000);
    // Too late for "first": kept for the next task that waits for "signed", i.e. "second".
    expect((await send("sc_shared", runId, "signed", { payload: "ana" })).json()).toMatchObject({ delivered_to: null });
    await h.scheduler.tick();
    await waitFor("first to be skipped", async () => (await state(runId, "first")) === "skipped");

    await clear("sc_shared", { dag_run_id: runId, task_ids: ["first"], only_failed: false });
    expect(await settledWait(runId, "first")).toBe("deferred");
    writeFileSync(open, "");
    expect(await settledWait(runId, "second")).toBe("success");
    expect(await output("sc_shared", runId, "second")).toBe("ana");
    expect(await state(runId, "first")).toBe("deferred");
  });

  it("the tasks a mark clears downstream start afresh too: a signal sent before the mark is not delivered to them", async () => {
    const open = file("open");
    const runId = await h.trigger("sc_marked", { conf: { open }, tick: true });
    await waitFor("prep to run", async () => (await state(runId, "prep")) === "running");
    expect((await send("sc_marked", runId, "approved", { payload: "before" })).json()).toMatchObject({ delivered_to: null });
    writeFileSync(open, "");
    await waitFor("the run to fail", async () => (await h.runState("sc_marked", runId)) === "failed");
    expect(await state(runId, "wait")).toBe("upstream_failed");

    const mark = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/sc_marked/dagRuns/${enc(runId)}/taskInstances/prep`, payload: { new_state: "success" } });
    expect(mark.statusCode).toBe(200);
    expect(await settledWait(runId, "wait")).toBe("deferred");
    expect((await send("sc_marked", runId, "approved", { payload: "after" })).json()).toMatchObject({ delivered_to: "wait" });
    await waitFor("the run to succeed", async () => (await h.runState("sc_marked", runId)) === "success");
    expect(await output("sc_marked", runId, "use")).toBe("after");
  });
});
