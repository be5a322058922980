// GET …/taskInstances/{task_id}/steps and GET …/dagRuns/{dag_run_id}/signals: the durable
// steps a task recorded (across its tries) and the signals a run received, paged, with 404s
// for unknown DAGs, runs and tasks and 400s for bad paging.
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
export const stepper = dag({ id: "stepper", defaultArgs: { retries: 1, retryDelay: 50 } }, (t) => {
  t.task("charge", async (ctx) => {
    const quote = await ctx.step("quote", () => ({ amount: 42, currency: "EUR" }));
    // Recorded times have millisecond precision: apart, so recorded order is not a tie broken by name.
    await new Promise((r) => setTimeout(r, 10));
    const big = await ctx.step("big", () => "x".repeat(70 * 1024));
    // The first try fails after two steps; the retry reuses them and records a third.
    if (ctx.tryNumber === 1) throw new Error("flaky after two steps");
    const receipt = await ctx.step("receipt", () => "r-" + quote.amount);
    return { receipt, bigLength: big.length };
  });
  t.task("plain", async () => 1);
});

export const approval = dag({ id: "approval" }, (t) => {
  const signed = t.waitForSignal("wait_signed", { signal: "signed", timeout: "5d" });
  signed.then(t.task("file", async (ctx) => ctx.get(signed))).then(t.waitForSignal("wait_note", { signal: "note", timeout: "5d" }));
});
`);

describe("steps and signals over the API", () => {
  const h = new Harness({ workers: 2 });
  beforeAll(async () => {
    await h.start({ "steps_signals.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const get = (url: string) => h.app.inject({ method: "GET", url: `/api/v1${url}` });
  const tiState = async (runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | undefined;
  };

  describe("durable steps", () => {
    const steps = "/dags/stepper/dagRuns/steps_1/taskInstances/charge/steps";
    beforeAll(async () => {
      await h.trigger("stepper", { runId: "steps_1" });
      await waitFor("the stepper run to succeed", async () => (await h.runState("stepper", "steps_1")) === "success", 20_000);
    });

    it("lists a task's steps in the order recorded, with the try that recorded each and its result", async () => {
      const res = await get(steps);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.total_entries).toBe(3);
      expect(body.steps.map((s: { name: string; try_number: number }) => [s.name, s.try_number])).toEqual([
        ["quote", 1],
        ["big", 1],
        ["receipt", 2],
      ]);
      expect(body.steps[0]).toEqual({
        dag_id: "stepper",
        dag_run_id: "steps_1",
        task_id: "charge",
        map_index: -1,
        name: "quote",
        try_number: 1,
        recorded_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        result: { amount: 42, currency: "EUR" },
        result_bytes: JSON.stringify({ amount: 42, currency: "EUR" }).length,
        result_omitted: false,
      });
      expect(body.steps[2]).toMatchObject({ result: "r-42", result_omitted: false });
      const recorded = body.steps.map((s: { recorded_at: string }) => Date.parse(s.recorded_at));
      expect([...recorded].sort((a, b) => a - b)).toEqual(recorded);
    });

    it("leaves a result over 64 KiB out of the list, saying how big it is", async () => {
      const big = (await get(steps)).json().steps[1];
      expect(big).toMatchObject({ name: "big", result: null, result_omitted: true, result_bytes: 70 * 1024 + 2 });
    });

    it("pages with limit and offset; a task without steps has none", async () => {
      const page = (await get(`${steps}?limit=1&offset=1`)).json();
      expect(page).toMatchObject({ total_entries: 3, steps: [expect.objectContaining({ name: "big" })] });
      expect((await get(`${steps}?offset=3`)).json()).toEqual({ steps: [], total_entries: 3 });
      expect((await get("/dags/stepper/dagRuns/steps_1/taskInstances/plain/steps")).json()).toEqual({ steps: [], total_entries: 0 });
    });

    it("answers 404 problem JSON for an unknown DAG, run or task", async () => {
      for (const [url, code] of [
        ["/dags/nope/dagRuns/steps_1/taskInstances/charge/steps", "BATON_DAG_NOT_FOUND"],
        ["/dags/stepper/dagRuns/nope/taskInstances/charge/steps", "BATON_DAG_RUN_NOT_FOUND"],
        ["/dags/stepper/dagRuns/steps_1/taskInstances/nope/steps", "BATON_TASK_NOT_FOUND"],
      ]) {
        const res = await get(url!);
        expect([url, res.statusCode, res.headers["content-type"]]).toEqual([url, 404, expect.stringContaining("application/problem+json")]);
        expect(res.json()).toMatchObject({ status: 404, code });
      }
    });

    it("answers 400 for bad paging", async () => {
      for (const q of ["limit=-1", "offset=-1", "limit=abc", "offset=1.5"]) {
        const res = await get(`${steps}?${q}`);
        expect([q, res.statusCode, res.json().code]).toEqual([q, 400, "BATON_VALIDATION_FAILED"]);
      }
    });
  });

  describe("signals", () => {
    const signals = "/dags/approval/dagRuns/sig_1/signals";
    const send = (name: string, body: Record<string, unknown>) =>
      h.app.inject({ method: "POST", url: `/api/v1/dags/approval/dagRuns/sig_1/signals/${name}`, payload: body });

    beforeAll(async () => {
      await h.trigger("approval", { runId: "sig_1" });
      await waitFor("the task to wait for its signal", async () => (await tiState("sig_1", "wait_signed")) === "deferred", 20_000);
      // Nobody waits for "note" yet: it is kept, for wait_note once "file" ends. "signed" resumes the waiting task.
      expect((await send("note", { payload: { text: "hello" } })).json()).toMatchObject({ delivered_to: null });
      expect((await send("signed", { payload: { by: "ana" }, signal_id: "sig-1" })).json()).toMatchObject({ delivered_to: "wait_signed" });
      await waitFor("the approval run to succeed", async () => (await h.runState("approval", "sig_1")) === "success", 20_000);
    });

    it("lists the signals a run received, in arrival order, with the task each was delivered to", async () => {
      const res = await get(signals);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.total_entries).toBe(2);
      const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);
      expect(body.signals).toEqual([
        { dag_id: "approval", dag_run_id: "sig_1", name: "note", signal_id: null, payload: { text: "hello" }, received_at: iso, delivered_to: "wait_note", delivered_at: iso },
        { dag_id: "approval", dag_run_id: "sig_1", name: "signed", signal_id: "sig-1", payload: { by: "ana" }, received_at: iso, delivered_to: "wait_signed", delivered_at: iso },
      ]);
    });

    it("filters by name and pages", async () => {
      expect((await get(`${signals}?name=signed`)).json()).toMatchObject({ total_entries: 1, signals: [expect.objectContaining({ signal_id: "sig-1" })] });
      expect((await get(`${signals}?name=other`)).json()).toEqual({ signals: [], total_entries: 0 });
      expect((await get(`${signals}?limit=1&offset=1`)).json()).toMatchObject({ total_entries: 2, signals: [expect.objectContaining({ name: "signed" })] });
      // A run that received none.
      expect((await get("/dags/stepper/dagRuns/steps_1/signals")).json()).toEqual({ signals: [], total_entries: 0 });
    });

    it("answers 404 for an unknown DAG or run, 400 for bad paging or a bad name", async () => {
      for (const [url, code] of [
        ["/dags/nope/dagRuns/sig_1/signals", "BATON_DAG_NOT_FOUND"],
        ["/dags/approval/dagRuns/nope/signals", "BATON_DAG_RUN_NOT_FOUND"],
      ]) {
        const res = await get(url!);
        expect([url, res.statusCode, res.json().code]).toEqual([url, 404, code]);
      }
      for (const q of ["limit=-1", "offset=-1", "name=", "name=a%20b", `name=${"x".repeat(256)}`]) {
        const res = await get(`${signals}?${q}`);
        expect([q, res.statusCode, res.json().code]).toEqual([q, 400, "BATON_VALIDATION_FAILED"]);
      }
    });

    it("refuses a signal_id ending with a space instead of taking it for the id without it", async () => {
      // MariaDB compares utf8mb4_bin with PAD SPACE: "sig-1 " would be a duplicate of "sig-1".
      for (const id of ["sig-1 ", "fresh "]) {
        const res = await send("signed", { payload: { by: "bob" }, signal_id: id });
        expect([id, res.statusCode, res.json().code]).toEqual([id, 400, "BATON_VALIDATION_FAILED"]);
        expect(res.json().detail).toMatch(/signal_id must not end with a space/);
      }
      expect((await get(signals)).json().total_entries).toBe(2);
    });

    // A signal_id is printed in log lines and CLI rows (a newline would split one), and no signal name
    // holds a control character (the SDK's rule, core/dagLimits.ts): the API's one name rule refuses both.
    it("refuses a signal_id or a signal name holding a control character or ending with a tab, and takes a plain one", async () => {
      for (const id of ["a\tb", "a\nb", "a\u0000b", "sig-1\t", "a\u007fb"]) {
        const res = await send("signed", { payload: { by: "bob" }, signal_id: id });
        expect([id, res.statusCode, res.json().code]).toEqual([id, 400, "BATON_VALIDATION_FAILED"]);
        expect(res.json().detail).toContain("body.signal_id must not end with a space or other whitespace, nor contain control characters");
      }
      for (const name of ["a%09b", "a%0Ab", "a%00b", "signed%09"]) {
        const res = await send(name, { payload: { by: "bob" } });
        expect([name, res.statusCode, res.json().code]).toEqual([name, 400, "BATON_VALIDATION_FAILED"]);
        expect(res.json().detail).toContain('params.name must be 1-255 letters, digits, "_", ".", ":" or "-"');
        const listed = await get(`${signals}?name=${name}`);
        expect([name, listed.statusCode, listed.json().code]).toEqual([name, 400, "BATON_VALIDATION_FAILED"]);
      }
      expect((await get(signals)).json().total_entries).toBe(2);
      // Plain ones still go through: a repeat of sig-1 (the run has finished: a duplicate), and a
      // new id with Airflow's run id characters on a run still waiting.
      expect((await send("signed", { payload: { by: "ana" }, signal_id: "sig-1" })).json()).toMatchObject({ duplicate: true, delivered_to: "wait_signed" });
      await h.trigger("approval", { runId: "sig_2" });
      const fresh = await h.app.inject({ method: "POST", url: "/api/v1/dags/approval/dagRuns/sig_2/signals/signed", payload: { payload: 1, signal_id: "evt:1.a+b~c-d" } });
      expect({ status: fresh.statusCode, body: fresh.json() }).toMatchObject({ status: 200, body: { signal_id: "evt:1.a+b~c-d", duplicate: false } });
      expect((await get(`/dags/approval/dagRuns/sig_2/signals?name=signed`)).json().total_entries).toBe(1);
    });
  });
});
