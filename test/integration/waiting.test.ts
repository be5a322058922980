import { FakeClock } from "../../core/clock.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { existsSync, appendFileSync, readFileSync } from "node:fs";

export const approval = dag({ id: "approval" }, (t) => {
  const prepare = t.task("prepare", async () => "doc-1");
  const signed = t.waitForSignal("wait_signed", { signal: "signed", timeout: "5d", onTimeout: "skip" });
  const file = t.task("file", async (ctx) => ({ filedBy: ctx.get(signed).by }));
  const remind = t.task("remind", { triggerRule: "all_skipped" }, async () => "reminder sent");
  prepare.then(signed).then([file, remind]);
});

export const early = dag({ id: "early" }, (t) => {
  const slow = t.task("slow", async (ctx) => { while (!existsSync(String(ctx.conf.go))) await new Promise((r) => setTimeout(r, 20)); return 1; });
  const wait = t.waitForSignal("wait", { signal: "go" });
  const after = t.task("after", async (ctx) => ctx.get(wait));
  slow.then(wait).then(after);
  // A second name a run waits for ("other"), once "slow" ends.
  slow.then(t.waitForSignal("other_wait", { signal: "other" }));
});

export const resched = dag({ id: "resched" }, (t) => {
  const sensor = t.sensor("third_time", {
    mode: "reschedule",
    pokeInterval: 100,
    timeout: "1m",
    poke: async (ctx) => {
      appendFileSync(String(ctx.conf.pokes), "poke\\n");
      const n = readFileSync(String(ctx.conf.pokes), "utf8").split("\\n").filter(Boolean).length;
      return n >= 3 ? { done: true, value: { pokes: n } } : false;
    },
  });
  sensor.then(t.task("use", async (ctx) => ctx.get(sensor)));
  for (let i = 0; i < 4; i++) t.task("other" + i, async () => { await new Promise((r) => setTimeout(r, 50)); return i; });
});

// Poke mode: pokes for about a second, then a poke throws (try 1); try 2 only waits.
export const pokeRetry = dag({ id: "poke_retry" }, (t) => {
  t.sensor("s", {
    mode: "poke",
    pokeInterval: 200,
    timeout: "3s",
    retries: 3,
    retryDelay: "1s",
    poke: async (ctx) => {
      appendFileSync(String(ctx.conf.pokes), ctx.tryNumber + " " + Date.now() + "\\n");
      const first = Number(readFileSync(String(ctx.conf.pokes), "utf8").split("\\n")[0].split(" ")[1]);
      if (ctx.tryNumber === 1 && Date.now() - first >= 1000) throw new Error("flaky poke");
      return false;
    },
  });
});

export const timeouts = dag({ id: "timeouts" }, (t) => {
  t.sensor("hard", { pokeInterval: 50, timeout: 200, poke: async () => false });
  t.sensor("soft", { pokeInterval: 50, timeout: 200, softFail: true, poke: async () => false });
  // An Airflow-style truthy answer from a JavaScript DAG: not waited on silently until the timeout.
  t.sensor("truthy", { pokeInterval: 50, timeout: "1h", retries: 2, poke: async () => "ready" as never });
});
`);

describe("sensors and signals", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ workers: 1, clock });
  beforeAll(async () => {
    await h.start({ "waiting.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const tasks = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id, r]));
  };
  const signal = (dagId: string, runId: string, name: string, body: Record<string, unknown>) =>
    h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/signals/${name}`, payload: body });

  it("a signal sent while the task waits resumes it with the payload; the other branch is skipped", async () => {
    const runId = await h.trigger("approval");
    await waitFor("the task to defer", async () => (await tasks("approval", runId)).wait_signed?.state === "deferred");
    const res = await signal("approval", runId, "signed", { payload: { by: "ana" }, signal_id: "sig-1" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ delivered_to: "wait_signed", duplicate: false });
    await waitFor("the run to succeed", async () => (await h.runState("approval", runId)) === "success");
    const t = await tasks("approval", runId);
    expect([t.wait_signed.state, t.file.state, t.remind.state]).toEqual(["success", "success", "skipped"]);
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/approval/dagRuns/${encodeURIComponent(runId)}/taskInstances/file/xcomEntries/return_value` });
    expect(out.json().value).toEqual({ filedBy: "ana" });
    // A retry of the signal that finished the run is a duplicate (keys in any order), not a 409:
    // webhooks may retry freely.
    const retry = await signal("approval", runId, "signed", { signal_id: "sig-1", payload: { by: "ana" } });
    expect({ status: retry.statusCode, body: retry.json() }).toEqual({
      status: 200,
      body: { dag_id: "approval", dag_run_id: runId, name: "signed", signal_id: "sig-1", duplicate: true, delivered_to: "wait_signed" },
    });
    // The same id with another payload is a conflict; a finished run takes no new signal.
    const other = await signal("approval", runId, "signed", { payload: { by: "bob" }, signal_id: "sig-1" });
    expect({ status: other.statusCode, code: other.json().code }).toEqual({ status: 409, code: "BATON_IDEMPOTENCY_CONFLICT" });
    for (const body of [{ payload: { by: "ana" } }, { payload: { by: "ana" }, signal_id: "sig-2" }]) {
      const again = await signal("approval", runId, "signed", body);
      expect(again.statusCode).toBe(409);
      // The run's state also travels as a member a client can branch on (no parsing of detail).
      expect(again.json()).toMatchObject({ code: "BATON_DAG_RUN_FINISHED", details: { state: "success" } });
      expect(again.json().detail).toContain("success");
    }
    const [stored] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM run_signal s JOIN dag_run r ON r.id = s.dag_run_id WHERE r.run_id = ?", [runId]);
    expect(Number(stored[0]!.n)).toBe(1);
  });

  it("a signal that arrives before the task waits is kept and delivered; signal_id deduplicates", async () => {
    const go = `/tmp/baton-go-${process.pid}-${Date.now()}`;
    const runId = await h.trigger("early", { conf: { go } });
    await waitFor("slow to run", async () => (await tasks("early", runId)).slow?.state === "running");
    const first = await signal("early", runId, "go", { payload: 42, signal_id: "once" });
    expect(first.json()).toMatchObject({ delivered_to: null, duplicate: false });
    const dup = await signal("early", runId, "go", { payload: 42, signal_id: "once" });
    expect(dup.json()).toMatchObject({ duplicate: true, delivered_to: null });
    // The same signal_id for another payload or another signal name is a 409 that stores nothing,
    // like an Idempotency-Key sent with another body; it was a silent duplicate: true.
    for (const [name, body] of [
      ["go", { payload: 43, signal_id: "once" }],
      ["go", { signal_id: "once" }],
      ["other", { payload: 42, signal_id: "once" }],
    ] as const) {
      const res = await signal("early", runId, name, body);
      expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 409, code: "BATON_IDEMPOTENCY_CONFLICT" });
      expect(res.json().detail).toContain('"once"');
    }
    const listed = await h.app.inject({ method: "GET", url: `/api/v1/dags/early/dagRuns/${encodeURIComponent(runId)}/signals` });
    expect(listed.json()).toMatchObject({ total_entries: 1, signals: [{ name: "go", signal_id: "once", payload: 42 }] });
    expect((await signal("early", runId, "other", { payload: 1 })).json()).toMatchObject({ delivered_to: null }); // for other_wait, later
    const { writeFileSync } = await import("node:fs");
    writeFileSync(go, "");
    await waitFor("the run to succeed", async () => (await h.runState("early", runId)) === "success");
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/early/dagRuns/${encodeURIComponent(runId)}/taskInstances/after/xcomEntries/return_value` });
    expect(out.json().value).toBe(42);
  });

  it("a signal_id reused under another name is refused, so the signal that waits still gets its own id through", async () => {
    const go = `/tmp/baton-go-${process.pid}-${Date.now()}-reuse`;
    const runId = await h.trigger("early", { conf: { go } });
    await waitFor("slow to run", async () => (await tasks("early", runId)).slow?.state === "running");
    const { writeFileSync } = await import("node:fs");
    try {
      expect((await signal("early", runId, "other", { signal_id: "rs" })).json()).toMatchObject({ duplicate: false, delivered_to: null });
      const reused = await signal("early", runId, "go", { signal_id: "rs" });
      expect({ status: reused.statusCode, code: reused.json().code }).toEqual({ status: 409, code: "BATON_IDEMPOTENCY_CONFLICT" });
      expect(reused.json().detail).toContain('signal "other"');
    } finally {
      writeFileSync(go, ""); // lets "slow" end, failed or not: the worker has one slot
    }
    await waitFor("the task to defer", async () => (await tasks("early", runId)).wait?.state === "deferred");
    expect((await signal("early", runId, "go", { signal_id: "rs-go", payload: "ok" })).json()).toMatchObject({ duplicate: false, delivered_to: "wait" });
    await waitFor("the run to succeed", async () => (await h.runState("early", runId)) === "success");
  });

  it("a signal payload nested 5,000 deep is a 400 (it was a stack overflow, 500); one at the depth limit is delivered", async () => {
    const runId = await h.trigger("approval");
    const url = `/api/v1/dags/approval/dagRuns/${encodeURIComponent(runId)}/signals/signed`;
    const post = (payload: string) => h.app.inject({ method: "POST", url, headers: { "content-type": "application/json" }, payload });
    const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
    const deep = await post(`{"signal_id": "deep", "payload": ${nested(5000)}}`);
    expect({ status: deep.statusCode, code: deep.json().code }).toEqual({ status: 400, code: "BATON_VALIDATION_FAILED" });
    // The body is level 1: a payload of 99 levels is the deepest allowed, and a retry of it is a duplicate.
    expect((await post(`{"signal_id": "deep", "payload": ${nested(99)}}`)).json()).toMatchObject({ duplicate: false });
    expect((await post(`{"payload": ${nested(99)}, "signal_id": "deep"}`)).json()).toMatchObject({ duplicate: true });
    const listed = await h.app.inject({ method: "GET", url: `/api/v1/dags/approval/dagRuns/${encodeURIComponent(runId)}/signals` });
    expect(listed.json().total_entries).toBe(1);
    expect(JSON.stringify(listed.json().signals[0].payload)).toBe(nested(99));
  });

  it("a signal that never comes takes the timeout branch (fake clock)", async () => {
    const runId = await h.trigger("approval");
    await waitFor("the task to defer", async () => (await tasks("approval", runId)).wait_signed?.state === "deferred");
    clock.advance(4 * 86_400_000);
    await h.scheduler.tick();
    expect((await tasks("approval", runId)).wait_signed.state).toBe("deferred");
    clock.advance(86_400_000 + 1000);
    await h.scheduler.tick();
    await waitFor("the run to end", async () => (await h.runState("approval", runId)) === "success");
    const t = await tasks("approval", runId);
    expect([t.wait_signed.state, t.file.state, t.remind.state]).toEqual(["skipped", "skipped", "success"]);
  });

  it("a signal sent after the timeout passed, before a scheduler ended the wait, is too late", async () => {
    const runId = await h.trigger("approval");
    await waitFor("the task to defer", async () => (await tasks("approval", runId)).wait_signed?.state === "deferred");
    clock.advance(5 * 86_400_000 + 1000);
    const res = await signal("approval", runId, "signed", { payload: { by: "late" } });
    // Stored, not delivered (or, had a tick already ended the wait and the run, refused as finished).
    if (res.statusCode === 200) expect(res.json()).toMatchObject({ delivered_to: null });
    else expect(res.json().code).toBe("BATON_DAG_RUN_FINISHED");
    await h.scheduler.tick();
    await waitFor("the run to end", async () => (await h.runState("approval", runId)) === "success");
    const t = await tasks("approval", runId);
    expect([t.wait_signed.state, t.file.state, t.remind.state]).toEqual(["skipped", "skipped", "success"]);
  });

  it("bad signals: unknown run 404, bad name 400, payload over the cap 413", async () => {
    expect((await signal("approval", "nope", "signed", {})).json().code).toBe("BATON_DAG_RUN_NOT_FOUND");
    expect((await signal("approval", "nope", "bad name!", {})).statusCode).toBe(400);
    const runId = await h.trigger("approval");
    const big = await signal("approval", runId, "signed", { payload: "x".repeat(70 * 1024) });
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe("BATON_PAYLOAD_TOO_LARGE");
  });
});

describe("sensors", () => {
  const h = new Harness({ workers: 1 });
  beforeAll(async () => {
    await h.start({ "waiting.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const tasks = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT id, task_id, state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id, r]));
  };

  it("a reschedule-mode sensor succeeds on its third poke while a one-slot worker runs other tasks between pokes", async () => {
    const pokes = `/tmp/baton-pokes-${process.pid}-${Date.now()}`;
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/resched/dagRuns", payload: { conf: { pokes } } });
    const runId = res.json().dag_run_id as string;
    await waitFor("the run to succeed", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'resched' AND run_id = ?", [runId]);
      return rows[0]?.state === "success";
    }, 20_000);
    const t = await tasks("resched", runId);
    expect(t.third_time).toMatchObject({ state: "success", try_number: 1 });
    const [reschedules] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM task_reschedule WHERE task_instance_id = ? ORDER BY id", [t.third_time.id]);
    expect(reschedules).toHaveLength(2);
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/resched/dagRuns/${encodeURIComponent(runId)}/taskInstances/use/xcomEntries/return_value` });
    expect(out.json().value).toEqual({ pokes: 3 });
    // With a single slot, other tasks ran while the sensor waited between pokes.
    const [spans] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id = 'resched' AND run_id = ? AND task_id LIKE 'other%'",
      [runId],
    );
    const firstReschedule = new Date(reschedules[0]!.end_date).getTime();
    const lastPoke = new Date(reschedules[1]!.reschedule_date).getTime();
    expect(spans.some((s) => new Date(s.start_date).getTime() >= firstReschedule && new Date(s.start_date).getTime() <= lastPoke + 1000)).toBe(true);
  });

  it("a poke-mode sensor's timeout counts from its first poke across retries, not from each try's", async () => {
    const pokes = `/tmp/baton-poke-retry-${process.pid}-${Date.now()}`;
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/poke_retry/dagRuns", payload: { conf: { pokes } } });
    const runId = res.json().dag_run_id as string;
    await waitFor("the run to fail", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'poke_retry' AND run_id = ?", [runId]);
      return rows[0]?.state === "failed";
    }, 20_000);
    const t = await tasks("poke_retry", runId);
    expect(t.s).toMatchObject({ state: "failed", try_number: 2 });
    expect(JSON.parse(t.s.error)).toMatchObject({ code: "BATON_SENSOR_TIMEOUT" });
    const { readFileSync } = await import("node:fs");
    const times = readFileSync(pokes, "utf8").split("\n").filter(Boolean).map((l) => l.split(" ").map(Number) as [number, number]);
    const first = times[0]![1];
    const secondTry = times.filter(([tryNumber]) => tryNumber === 2);
    expect(secondTry.length).toBeGreaterThan(0);
    // Try 1 pokes ≈ 1 s, try 2 starts ≈ 1 s later: it must give up 3 s after try 1's first poke,
    // not 3 s after its own first poke (≈ 5 s), which is what a timeout restarted per try did.
    expect(secondTry[0]![1] - first).toBeGreaterThan(1500);
    const last = times[times.length - 1]![1];
    expect(last - first).toBeGreaterThanOrEqual(2900);
    expect(last - first).toBeLessThan(4000);
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT first_poke_at FROM task_instance WHERE id = ?", [t.s.id]);
    expect(Math.abs(new Date(row!.first_poke_at).getTime() - first)).toBeLessThan(200);
  });

  it("a sensor that times out fails without retries, or is skipped with softFail", async () => {
    const runId = await h.trigger("timeouts");
    await h.runEnded("timeouts", runId, 10_000);
    const t = await tasks("timeouts", runId);
    expect(t.hard.state).toBe("failed");
    expect(JSON.parse(t.hard.error)).toMatchObject({ code: "BATON_SENSOR_TIMEOUT" });
    expect(t.soft.state).toBe("skipped");
    expect(t.truthy).toMatchObject({ state: "failed", try_number: 1 });
    expect(JSON.parse(t.truthy.error).message).toContain('poke returned "ready"');
  });
});
