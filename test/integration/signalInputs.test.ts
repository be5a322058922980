// What a signal's sender writes: the payload's size as the request spells it, and the CLI's
// --signal-id. Both came from a QA sweep of the waiting features.
import { existsSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { runBaton } from "../helpers/cli.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
export const inputs = dag({ id: "signal_inputs" }, (t) => {
  t.waitForSignal("wait", { signal: "go" });
});
// A wait that times out with onTimeout "fail" and a retry left, as Airflow retries a deferral timeout.
export const retried = dag({ id: "signal_retried" }, (t) => {
  t.waitForSignal("wait", { signal: "go", timeout: "1s", onTimeout: "fail", retries: 1, retryDelay: "1s" });
});
// The same, whose callbacks write to the file its run's conf names: a timed-out try owes them as a failed one does.
import { appendFileSync } from "node:fs";
export const called = dag({ id: "signal_called" }, (t) => {
  const note = (ctx: { conf: Record<string, unknown>; tryNumber: number }, what: string) => appendFileSync(String(ctx.conf.calls), what + " " + ctx.tryNumber + "\\n");
  t.waitForSignal("wait", {
    signal: "go", timeout: "1s", onTimeout: "fail", retries: 1, retryDelay: "1s",
    onRetry: (ctx) => note(ctx, "retry"),
    onFailure: (ctx) => note(ctx, "failure"),
  });
});
`);

describe("signal inputs", () => {
  const h = new Harness({ workers: 1 });
  beforeAll(async () => {
    await h.start({ "inputs.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  let seq = 0;
  async function waitingRun(): Promise<string> {
    const runId = `r${++seq}`;
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/signal_inputs/dagRuns", payload: { dag_run_id: runId } });
    expect(res.statusCode).toBe(200);
    await waitFor("the wait to defer", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = 'wait'", [runId]);
      return rows[0]?.state === "deferred";
    });
    return runId;
  }
  const post = (runId: string, body: string) =>
    h.app.inject({ method: "POST", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/signals/go`, headers: { "content-type": "application/json" }, payload: body });
  const output = async (runId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/taskInstances/wait/xcomEntries/return_value` })).json().value;

  it("takes a payload within the cap however the body spells it: \\u escapes (Python's json.dumps) or indentation", async () => {
    // 40,002 bytes as compact JSON, 120,000 as Python writes it by default (ensure_ascii).
    const accented = { name: "é".repeat(20_000) };
    const escaped = JSON.stringify({ payload: accented, signal_id: "escaped" }).replace(/é/g, "\\u00e9");
    expect(Buffer.byteLength(JSON.stringify(accented))).toBeLessThan(64 * 1024);
    expect(Buffer.byteLength(escaped)).toBeGreaterThan(100_000);
    const first = await waitingRun();
    const sent = await post(first, escaped);
    expect({ status: sent.statusCode, body: sent.json() }).toMatchObject({ status: 200, body: { delivered_to: "wait", duplicate: false } });
    expect(await output(first)).toEqual(accented);

    // 42,400 bytes compact, about 100 KB indented by 4 (json.dumps(indent=4)).
    const rows = { rows: Array.from({ length: 1500 }, (_, id) => ({ id, v: "xxxxxxxxxx" })) };
    const indented = JSON.stringify({ payload: rows }, null, 4);
    expect(Buffer.byteLength(indented)).toBeGreaterThan(90_000);
    const second = await waitingRun();
    expect((await post(second, indented)).json()).toMatchObject({ delivered_to: "wait" });
    expect(await output(second)).toEqual(rows);
  });

  it("still refuses a payload over the cap as compact JSON, escaped or not, and stores nothing", async () => {
    const runId = await waitingRun();
    const big = "é".repeat(33_000); // 66,002 bytes compact
    for (const body of [JSON.stringify({ payload: big }), JSON.stringify({ payload: big }).replace(/é/g, "\\u00e9")]) {
      const res = await post(runId, body);
      expect({ status: res.statusCode, code: res.json().code, detail: res.json().detail }).toEqual({
        status: 413,
        code: "BATON_PAYLOAD_TOO_LARGE",
        detail: "signal payload is 66002 bytes; the cap is 65536",
      });
    }
    const listed = await h.app.inject({ method: "GET", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/signals` });
    expect(listed.json().total_entries).toBe(0);
  });

  it("refuses a payload with a __proto__ or constructor.prototype key saying so, not as JSON that is not valid", async () => {
    const runId = await waitingRun();
    for (const [body, key] of [
      ['{"payload": {"user": {"__proto__": {"admin": true}}}}', "__proto__"],
      ['{"payload": {"constructor": {"prototype": {"admin": true}}}}', "constructor.prototype"],
    ]) {
      const res = await post(runId, body);
      expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 400, code: "BATON_VALIDATION_FAILED" });
      expect(res.json().detail).toContain(key);
      expect(res.json().detail).not.toContain("not valid JSON");
    }
    // JSON that is not valid is still told so.
    expect((await post(runId, '{"payload": ')).json().detail).toContain("not valid JSON");
    const listed = await h.app.inject({ method: "GET", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/signals` });
    expect(listed.json().total_entries).toBe(0);
  });

  it("baton signal --signal-id '' is refused, not sent without an id (each retry would be a new signal)", async () => {
    const runId = `cli${++seq}`;
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/signal_inputs/dagRuns", payload: { dag_run_id: runId } })).statusCode).toBe(200);
    const env = { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder };
    const result = await runBaton(["signal", "signal_inputs", runId, "go", "--signal-id", "", "--payload", "1"], env);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: "" });
    expect(result.stderr).toContain("signal_id");
    const listed = await h.app.inject({ method: "GET", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/signals` });
    expect(listed.json().total_entries).toBe(0);
  });

  it("refuses a signal no task of the run's DAG version waits for (a typo), and stores nothing", async () => {
    const runId = await waitingRun();
    const typo = await h.app.inject({ method: "POST", url: `/api/v1/dags/signal_inputs/dagRuns/${runId}/signals/og`, payload: { payload: 1 } });
    expect({ status: typo.statusCode, code: typo.json().code }).toEqual({ status: 404, code: "BATON_SIGNAL_NOT_AWAITED" });
    expect(typo.json().detail).toContain('no task of DAG "signal_inputs" (the version run ' + `"${runId}"` + ' is pinned to) waits for signal "og"; it waits for: go');
    // The right name still goes through, and only it was stored.
    expect((await post(runId, JSON.stringify({ payload: 2 }))).json()).toMatchObject({ delivered_to: "wait" });
    const [after] = await h.db.pool.query<RowDataPacket[]>("SELECT name FROM run_signal WHERE dag_run_id = (SELECT id FROM dag_run WHERE run_id = ? AND dag_id = 'signal_inputs')", [runId]);
    expect(after.map((r) => r.name)).toEqual(["go"]);
  });

  it("retries a wait that timed out with onTimeout fail while it has retries left; the next try waits afresh", async () => {
    const runId = await h.trigger("signal_retried");
    const ti = async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE dag_id = 'signal_retried' AND run_id = ?", [runId]);
      return rows[0]!;
    };
    // Try 1 times out and is retried (as any failure with retries left), not failed for good: try 2 waits afresh.
    await waitFor("try 2 to wait", async () => {
      const now = await ti();
      return now.state === "deferred" && Number(now.try_number) === 2;
    }, 20_000);
    expect(await h.runState("signal_retried", runId)).toBe("running");
    expect(JSON.parse((await ti()).error)).toMatchObject({ code: "BATON_SIGNAL_TIMEOUT" }); // the first try's, kept while it waits again
    const sent = await h.app.inject({ method: "POST", url: `/api/v1/dags/signal_retried/dagRuns/${runId}/signals/go`, payload: { payload: "in time" } });
    expect(sent.json()).toMatchObject({ delivered_to: "wait" });
    expect(await h.runEnded("signal_retried", runId)).toBe("success");
    expect(Number((await ti()).try_number)).toBe(2);
  });

  it("runs onRetry, then onFailure, for a wait that timed out with onTimeout fail, as for any failed try", async () => {
    const calls = path.join(os.tmpdir(), `baton-signal-calls-${process.pid}-${Date.now()}`);
    try {
      const runId = await h.trigger("signal_called", { conf: { calls } });
      expect(await h.runEnded("signal_called", runId, 30_000)).toBe("failed");
      await waitFor("both callbacks", async () => existsSync(calls) && readFileSync(calls, "utf8").trim().split("\n").length >= 2, 20_000);
      expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual(["retry 1", "failure 2"]);
    } finally {
      rmSync(calls, { force: true });
    }
  });
});
