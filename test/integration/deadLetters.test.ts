import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { redriveDeadLetters } from "../../store/transitions/redriveDeadLetters.ts";
import { VersionCache } from "../../store/versions.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";
export default dag({ id: "dl", defaultArgs: { retries: 1, retryDelay: 20 } }, (t) => {
  const pay = t.task("pay", async (ctx) => {
    if (!existsSync(String(ctx.conf.fixed))) throw new TypeError("payment provider down");
    return "paid";
  });
  pay.then(t.task("ship", async () => "shipped"));
});
export const charged = dag({ id: "dl_steps" }, (t) => {
  t.task("charge_and_ship", async (ctx) => {
    const receipt = await ctx.step("charge", async () => { appendFileSync(String(ctx.conf.charges), "charged\\n"); return "receipt-1"; });
    if (!existsSync(String(ctx.conf.fixed))) throw new Error("shipping provider down");
    return receipt;
  });
});
export const ops = dag({ id: "dl_ops" }, (t) => {
  t.task("long", async (ctx) => { while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20)); throw new Error("aborted"); });
  t.task("quick", async () => "done");
});
`);

describe("dead letters", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "dl.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  it("lists tasks that exhausted their retries and re-drives them to success", async () => {
    const fixed = `/tmp/baton-dl-${process.pid}-${Date.now()}`;
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/dl/dagRuns", payload: { conf: { fixed } } });
    const runId = res.json().dag_run_id as string;
    await waitFor("the run to fail", async () => (await h.runState("dl", runId)) === "failed");

    const list = await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=dl" });
    expect(list.statusCode).toBe(200);
    expect(list.json().total_entries).toBe(1);
    expect(list.json().dead_letters[0]).toMatchObject({
      dag_id: "dl",
      dag_run_id: runId,
      task_id: "pay",
      try_number: 2,
      max_tries: 1,
      error_class: "TypeError",
      error_message: "payment provider down",
      run_url: `/api/v1/dags/dl/dagRuns/${encodeURIComponent(runId)}`,
    });

    const dry = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "dl", dry_run: true } });
    expect(dry.json()).toMatchObject({ redriven: 1, dry_run: true, dead_letters: [{ task_id: "pay", skipped: null }] });
    expect(await h.runState("dl", runId)).toBe("failed");

    const { writeFileSync } = await import("node:fs");
    writeFileSync(fixed, "");
    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [list.json().dead_letters[0].task_instance_id] } });
    expect(redrive.json()).toMatchObject({ redriven: 1 });
    await waitFor("the re-driven run to succeed", async () => (await h.runState("dl", runId)) === "success");
    expect((await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=dl" })).json().total_entries).toBe(0);
  });

  it("re-drives a dead letter with its recorded steps: the charge it made before failing is not made again", async () => {
    const base = `/tmp/baton-dl-steps-${process.pid}-${Date.now()}`;
    const conf = { charges: `${base}-charges`, fixed: `${base}-fixed` };
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/dl_steps/dagRuns", payload: { conf } });
    const runId = res.json().dag_run_id as string;
    const state = async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'dl_steps' AND run_id = ?", [runId]);
      return rows[0]?.state as string;
    };
    await waitFor("the run to fail", async () => (await state()) === "failed");
    const { readFileSync, writeFileSync, rmSync } = await import("node:fs");
    writeFileSync(conf.fixed, "");
    try {
      const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "dl_steps" } });
      expect(redrive.json()).toMatchObject({ redriven: 1 });
      await waitFor("the re-driven run to succeed", async () => (await state()) === "success");
      expect(readFileSync(conf.charges, "utf8")).toBe("charged\n");
      const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT try_number FROM task_instance WHERE dag_id = 'dl_steps' AND run_id = ?", [runId]);
      expect(ti!.try_number).toBe(2);
    } finally {
      rmSync(conf.charges, { force: true });
      rmSync(conf.fixed, { force: true });
    }
  });

  it("leaves out what an operator failed: a cancelled run's running task and a task marked failed", async () => {
    const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/dl_ops/dagRuns", payload: { dag_run_id: "ops" } });
    expect(trigger.statusCode).toBe(200);
    const stateOf = async (taskId: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'dl_ops' AND run_id = 'ops' AND task_id = ?", [taskId]);
      return rows[0]?.state as string | undefined;
    };
    await waitFor("long running and quick done", async () => (await stateOf("long")) === "running" && (await stateOf("quick")) === "success");
    const marked = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/dl_ops/dagRuns/ops/taskInstances/quick", payload: { new_state: "failed" } });
    expect(marked.statusCode).toBe(200);
    const cancelled = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/dl_ops/dagRuns/ops", payload: { state: "failed" } });
    expect(cancelled.statusCode).toBe(200);
    await waitFor("both tasks failed", async () => (await stateOf("long")) === "failed" && (await stateOf("quick")) === "failed");
    const list = await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=dl_ops" });
    expect(list.json()).toMatchObject({ dead_letters: [], total_entries: 0 });
    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "dl_ops", dry_run: true } });
    expect(redrive.json()).toMatchObject({ redriven: 0 });
  });

  it("answers 404 for a dag_id naming no DAG, not an empty list that hides the typo; a known DAG with none is an empty list", async () => {
    const list = await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=no_such_dag" });
    expect([list.statusCode, list.json().code]).toEqual([404, "BATON_DAG_NOT_FOUND"]);
    for (const dry_run of [true, false]) {
      const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "no_such_dag", dry_run } });
      expect([redrive.statusCode, redrive.json().code]).toEqual([404, "BATON_DAG_NOT_FOUND"]);
    }
    const known = await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=dl_ops" });
    expect(known.statusCode).toBe(200);
  });

  it("says per id why a task instance named by id is not a dead letter, beside the dead letters it re-drives", async () => {
    const fixed = `/tmp/baton-dl-not-${process.pid}-${Date.now()}`;
    const trigger = async (runId: string) => {
      const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/dl/dagRuns", payload: { dag_run_id: runId, conf: { fixed } } });
      expect(res.statusCode).toBe(200);
    };
    const idOf = async (runId: string, taskId: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'dl' AND run_id = ? AND task_id = ?", [runId, taskId]);
      return Number(rows[0]!.id);
    };
    await trigger("not_dl_failed");
    await waitFor("the run to fail", async () => (await h.runState("dl", "not_dl_failed")) === "failed");
    const { writeFileSync, rmSync } = await import("node:fs");
    writeFileSync(fixed, "");
    try {
      await trigger("not_dl_ok");
      await waitFor("the run to succeed", async () => (await h.runState("dl", "not_dl_ok")) === "success");
    } finally {
      rmSync(fixed, { force: true });
    }
    const marked = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/dl/dagRuns/not_dl_ok/taskInstances/ship", payload: { new_state: "failed" } });
    expect(marked.statusCode).toBe(200);
    const [dead, ok, markedFailed] = [await idOf("not_dl_failed", "pay"), await idOf("not_dl_ok", "pay"), await idOf("not_dl_ok", "ship")];
    const missing = 987_654_321;

    const redrive = (payload: object) => h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload });
    const mixed = await redrive({ task_instance_ids: [ok, dead, markedFailed, missing, ok], dry_run: true });
    expect(mixed.statusCode).toBe(200);
    expect(mixed.json()).toMatchObject({ redriven: 1, dry_run: true, dead_letters: [{ task_instance_id: dead, task_id: "pay", skipped: null }] });
    expect(mixed.json().not_dead_letters).toEqual([
      { task_instance_id: ok, dag_id: "dl", dag_run_id: "not_dl_ok", task_id: "pay", state: "success", reason: "not_failed" },
      { task_instance_id: markedFailed, dag_id: "dl", dag_run_id: "not_dl_ok", task_id: "ship", state: "failed", reason: "failed_by_operator" },
      { task_instance_id: missing, dag_id: null, dag_run_id: null, task_id: null, state: null, reason: "not_found" },
    ]);

    // None of them a dead letter: still answered, each with its reason, and nothing changes.
    const none = await redrive({ task_instance_ids: [ok], dag_id: "dl_ops" });
    expect(none.statusCode).toBe(200);
    expect(none.json()).toEqual({
      dead_letters: [],
      redriven: 0,
      dry_run: false,
      remaining: 0,
      not_dead_letters: [{ task_instance_id: ok, dag_id: "dl", dag_run_id: "not_dl_ok", task_id: "pay", state: "success", reason: "other_dag" }],
    });
    // A re-drive by dag_id names no ids: its list is empty.
    expect((await redrive({ dag_id: "dl_ops", dry_run: true })).json().not_dead_letters).toEqual([]);
    expect(await h.runState("dl", "not_dl_failed")).toBe("failed");
  });

  it("says how many dead letters of the filter a re-drive by dag_id left for another call", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/dl/dagRuns", payload: { conf: { fixed: "/nonexistent/baton-dl" } } });
      ids.push(res.json().dag_run_id as string);
    }
    for (const runId of ids) await waitFor(`run ${runId} to fail`, async () => (await h.runState("dl", runId)) === "failed");
    const total = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=dl" })).json().total_entries as number;
    expect(total).toBeGreaterThanOrEqual(2);
    // Everything fits in one call: none left.
    expect((await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { dag_id: "dl", dry_run: true } })).json()).toMatchObject({ redriven: total, remaining: 0 });
    // A call that takes fewer than there are says how many it left.
    const versions = new VersionCache(h.db.pool);
    const out = await redriveDeadLetters(h.db, new Date(), { dagId: "dl" }, true, (hash) => versions.shape(hash), undefined, 1);
    expect(out.letters).toHaveLength(1);
    expect(out.remaining).toBe(total - 1);
  });

  it("needs a filter", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("BATON_VALIDATION_FAILED");
  });
});
