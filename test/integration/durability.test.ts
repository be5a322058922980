import { createHash } from "node:crypto";
import { scratchDir } from "../helpers/scratch.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileSync } from "node:fs";
import { stableJson } from "../../core/json.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const versioned = (label: string, extraTask = "") =>
  dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "versioned" }, (t) => {
  const first = t.task("first", async () => "${label}");
  const gate = t.task("gate", async (ctx) => {
    while (ctx.conf.gate && !existsSync(String(ctx.conf.gate))) await new Promise((r) => setTimeout(r, 20));
    return "${label}";
  });
  first.then(gate);
  ${extraTask}
});
`);

const STUCK = dagSource(`
export default dag({ id: "stuck" }, (t) => {
  const wait = t.task("wait", async (ctx) => { while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20)); throw new Error("aborted"); });
  wait.then(t.task("after", async () => 1));
});
`);

describe("versioning, idempotency keys and cancellation", () => {
  const h = new Harness({ heartbeatMs: 200, killGraceMs: 1000 });
  beforeAll(async () => {
    await h.start({ "versioned.ts": versioned("v1"), "stuck.ts": STUCK });
    await h.run();
  });
  afterAll(() => h.stop());

  const tis = async (dagId: string, runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id, r]));
  };
  const runJson = async (dagId: string, runId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}` })).json();

  it("a run keeps its version while the DAG file is edited twice; new runs use the new one", async () => {
    const gate = path.join(await scratchDir("baton-gate-"), "open");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: { conf: { gate } } });
    const runId = res.json().dag_run_id as string;
    const pinned = res.json().dag_version as string;
    await waitFor("gate to run", async () => (await tis("versioned", runId)).gate?.state === "running");

    await h.writeDag("versioned.ts", versioned("v2"));
    await h.processor.scan();
    await h.writeDag("versioned.ts", versioned("v3", `gate.then(t.task("added", async () => "new step"));`));
    await h.processor.scan();
    const versions = (await h.app.inject({ method: "GET", url: "/api/v1/dags/versioned/versions" })).json();
    expect(versions.total_entries).toBe(3);
    expect(versions.dag_versions.filter((v: { is_latest: boolean }) => v.is_latest)).toHaveLength(1);

    writeFileSync(gate, "");
    await waitFor("the pinned run to succeed", async () => (await runJson("versioned", runId)).state === "success");
    expect((await runJson("versioned", runId)).dag_version).toBe(pinned);
    expect(Object.keys(await tis("versioned", runId)).sort()).toEqual(["first", "gate"]);
    const out = await h.app.inject({ method: "GET", url: `/api/v1/dags/versioned/dagRuns/${encodeURIComponent(runId)}/taskInstances/gate/xcomEntries/return_value` });
    expect(out.json().value).toBe("v1");

    const fresh = await h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: {} });
    await waitFor("the new run to succeed", async () => (await runJson("versioned", fresh.json().dag_run_id)).state === "success");
    expect(Object.keys(await tis("versioned", fresh.json().dag_run_id)).sort()).toEqual(["added", "first", "gate"]);
    const old = await h.app.inject({ method: "GET", url: `/api/v1/dags/versioned/versions/${pinned}` });
    expect(old.json().structure.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(["first", "gate"]);
    expect((await h.app.inject({ method: "GET", url: `/api/v1/dags/versioned/versions/${"0".repeat(64)}` })).json().code).toBe("BATON_VERSION_NOT_FOUND");
  });

  it("an Idempotency-Key returns the same run for the same body and 409 for another", async () => {
    const post = (body: Record<string, unknown>, key: string) =>
      h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: body, headers: { "idempotency-key": key } });
    const a = await post({ conf: { order: 1 } }, "order-1");
    const b = await post({ conf: { order: 1 } }, "order-1");
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(b.json().dag_run_id).toBe(a.json().dag_run_id);
    const c = await post({ conf: { order: 2 } }, "order-1");
    expect(c.statusCode).toBe(409);
    expect(c.json().code).toBe("BATON_IDEMPOTENCY_CONFLICT");
    const long = await post({}, "k".repeat(256));
    expect(long.statusCode).toBe(400);
    const [[count]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'versioned' AND idempotency_key = 'order-1'");
    expect(count!.n).toBe(1);
  });

  it("an Idempotency-Key with a dag_run_id: a retry returns the first run, another body is BATON_IDEMPOTENCY_CONFLICT", async () => {
    const post = (body: Record<string, unknown>, key: string) =>
      h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: body, headers: { "idempotency-key": key } });
    const a = await post({ dag_run_id: "keyed_run", conf: { order: 1 } }, "keyed-1");
    expect(a.statusCode).toBe(200);
    const retry = await post({ dag_run_id: "keyed_run", conf: { order: 1 } }, "keyed-1");
    expect([retry.statusCode, retry.json().dag_run_id]).toEqual([200, "keyed_run"]);
    const other = await post({ dag_run_id: "keyed_run", conf: { order: 2 } }, "keyed-1");
    expect([other.statusCode, other.json().code]).toEqual([409, "BATON_IDEMPOTENCY_CONFLICT"]);
    // The run id taken by a run the key was not used for is still a clash on the run id.
    const unkeyed = await post({ dag_run_id: "keyed_run", conf: { order: 1 } }, "keyed-2");
    expect([unkeyed.statusCode, unkeyed.json().code]).toEqual([409, "BATON_DAG_RUN_EXISTS"]);
    const [[count]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'versioned' AND run_id = 'keyed_run'");
    expect(count!.n).toBe(1);
  });

  it("an Idempotency-Key: the same logical_date written another way is the same request", async () => {
    const post = (body: Record<string, unknown>) =>
      h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: body, headers: { "idempotency-key": "dated-1" } });
    const a = await post({ logical_date: "2026-01-01T00:00:00Z" });
    expect(a.statusCode).toBe(200);
    for (const written of ["2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00+01:00"]) {
      const again = await post({ logical_date: written });
      expect([again.statusCode, again.json().dag_run_id]).toEqual([200, a.json().dag_run_id]);
    }
    const otherDate = await post({ logical_date: "2026-01-02T00:00:00Z" });
    expect([otherDate.statusCode, otherDate.json().code]).toEqual([409, "BATON_IDEMPOTENCY_CONFLICT"]);
  });

  it("an Idempotency-Key: a body without conf is the same request as one with conf {}, whichever came first", async () => {
    const post = (body: Record<string, unknown>, key: string) =>
      h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: body, headers: { "idempotency-key": key } });
    for (const [first, second] of [
      [{}, { conf: {} }],
      [{ conf: {} }, {}],
      [{ dag_run_id: "keyed_default", note: "n" }, { dag_run_id: "keyed_default", note: "n", conf: {} }],
    ]) {
      const key = `defaults-${JSON.stringify(first)}`;
      const a = await post(first!, key);
      expect(a.statusCode).toBe(200);
      const b = await post(second!, key);
      expect([b.statusCode, b.json().dag_run_id]).toEqual([200, a.json().dag_run_id]);
    }
    // Another conf is still another request.
    expect((await post({ conf: { a: 1 } }, "defaults-{}")).json().code).toBe("BATON_IDEMPOTENCY_CONFLICT");
  });

  it("an Idempotency-Key: a run keyed by an older version (the body hashed as written, without conf) still answers a retry either way", async () => {
    const post = (body: Record<string, unknown>) =>
      h.app.inject({ method: "POST", url: "/api/v1/dags/versioned/dagRuns", payload: body, headers: { "idempotency-key": "legacy-1" } });
    const a = await post({ logical_date: "2026-03-01T00:00:00Z" });
    expect(a.statusCode).toBe(200);
    // What earlier versions stored for that body: the hash of the body as sent (logical_date as an instant).
    const legacy = createHash("sha256").update(stableJson({ logical_date: "2026-03-01T00:00:00.000Z" })).digest("hex");
    await h.db.pool.query("UPDATE dag_run SET request_hash = ? WHERE dag_id = 'versioned' AND idempotency_key = 'legacy-1'", [legacy]);
    for (const body of [{ logical_date: "2026-03-01T00:00:00Z" }, { logical_date: "2026-03-01T00:00:00Z", conf: {} }]) {
      const again = await post(body);
      expect([again.statusCode, again.json().dag_run_id]).toEqual([200, a.json().dag_run_id]);
    }
    expect((await post({ logical_date: "2026-03-01T00:00:00Z", conf: { x: 1 } })).json().code).toBe("BATON_IDEMPOTENCY_CONFLICT");
  });

  it("cancelling a run fails it, aborts its running task and skips the rest", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/stuck/dagRuns", payload: {} });
    const runId = res.json().dag_run_id as string;
    await waitFor("wait to run", async () => (await tis("stuck", runId)).wait?.state === "running");
    const cancel = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/stuck/dagRuns/${encodeURIComponent(runId)}`, payload: { state: "failed" } });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json().state).toBe("failed");
    const t = await tis("stuck", runId);
    expect(t.wait.state).toBe("failed");
    expect(JSON.parse(t.wait.error).code).toBe("BATON_DAG_RUN_CANCELLED");
    expect(t.after.state).toBe("skipped");
    await waitFor("the worker to abort and drop the try", async () => h.worker!.runningCount === 0, 10_000);
    const again = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/stuck/dagRuns/${encodeURIComponent(runId)}`, payload: { state: "failed" } });
    expect(again.json()).toMatchObject({ code: "BATON_DAG_RUN_FINISHED", details: { state: "failed" } });
  });
});

describe("clearing with the latest version", () => {
  const h = new Harness();
  const fixable = (fixed: boolean, extra = "") =>
    dagSource(`
export default dag({ id: "fixable" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", async () => { if (!${fixed}) throw new Error("bug"); return "fixed"; });
  a.then(b);
  ${extra}
});
`);
  beforeAll(async () => {
    await h.start({ "fixable.ts": fixable(false) });
    await h.run();
  });
  afterAll(() => h.stop());

  const state = async (runId: string) => (await h.app.inject({ method: "GET", url: `/api/v1/dags/fixable/dagRuns/${encodeURIComponent(runId)}` })).json();

  it("re-runs a failed task with the fixed code when asked, and refuses a version with other tasks", async () => {
    const runId = (await h.app.inject({ method: "POST", url: "/api/v1/dags/fixable/dagRuns", payload: {} })).json().dag_run_id as string;
    await waitFor("the run to fail", async () => (await state(runId)).state === "failed");
    const pinned = (await state(runId)).dag_version;

    await h.writeDag("fixable.ts", fixable(true));
    await h.processor.scan();
    const clear = (latest: boolean) =>
      h.app.inject({
        method: "POST",
        url: "/api/v1/dags/fixable/clearTaskInstances",
        payload: { dag_run_id: runId, dry_run: false, only_failed: true, use_latest_version: latest },
      });
    const res = await clear(true);
    expect(res.statusCode).toBe(200);
    await waitFor("the run to succeed with the fix", async () => (await state(runId)).state === "success");
    expect((await state(runId)).dag_version).not.toBe(pinned);

    await h.writeDag("fixable.ts", fixable(true, `b.then(t.task("c", async () => 3));`));
    await h.processor.scan();
    await h.db.pool.query("UPDATE task_instance SET state = 'failed' WHERE dag_id = 'fixable' AND run_id = ? AND task_id = 'b'", [runId]);
    const refused = await clear(true);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe("BATON_VERSION_INCOMPATIBLE");
  });

  it("runs a task cleared onto the latest version with that version's priority, pool slots and maxActiveTisPerDag", async () => {
    const tuned = (fixed: boolean) =>
      dagSource(`
export default dag({ id: "retuned" }, (t) => {
  t.task("a", async () => 1).then(
    t.task("b", ${fixed ? `{ priorityWeight: 7, poolSlots: 2, maxActiveTisPerDag: 3 }` : "{}"}, async () => { if (!${fixed}) throw new Error("bug"); return 2; }),
  );
});
`);
    await h.writeDag("retuned.ts", tuned(false));
    await h.processor.scan();
    const runId = (await h.app.inject({ method: "POST", url: "/api/v1/dags/retuned/dagRuns", payload: {} })).json().dag_run_id as string;
    const run = async () => (await h.app.inject({ method: "GET", url: `/api/v1/dags/retuned/dagRuns/${encodeURIComponent(runId)}` })).json();
    await waitFor("the run to fail", async () => (await run()).state === "failed");
    const b = async () =>
      (await h.db.pool.query<RowDataPacket[]>("SELECT state, priority_weight, pool_slots, max_active_tis_per_dag FROM task_instance WHERE dag_id = 'retuned' AND run_id = ? AND task_id = 'b'", [runId]))[0][0];
    expect(await b()).toMatchObject({ state: "failed", priority_weight: 1, pool_slots: 1, max_active_tis_per_dag: null });

    await h.writeDag("retuned.ts", tuned(true));
    await h.processor.scan();
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/retuned/clearTaskInstances",
      payload: { dag_run_id: runId, dry_run: false, only_failed: true, use_latest_version: true },
    });
    expect(res.statusCode).toBe(200);
    await waitFor("the run to succeed", async () => (await run()).state === "success");
    expect(await b()).toMatchObject({ state: "success", priority_weight: 7, pool_slots: 2, max_active_tis_per_dag: 3 });
  });

  // v1: both compensations fail. v2 fixes the refund but drops reserve's compensation, which the
  // run still owes (reserve__compensate failed: the stock is still held). v3 fixes both.
  const sagaFix = (version: 1 | 2 | 3) =>
    dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
export default dag({ id: "saga_fix" }, (t) => {
  const release = async (ctx) => { if (${version} < 3) throw new Error("release bug"); mark(ctx, "release"); };
  const reserve = t.task("reserve", ${version} === 2 ? {} : { compensate: release }, async (ctx) => { mark(ctx, "reserve"); return 1; });
  const charge = t.task("charge", { compensate: async (ctx) => { if (${version} < 2) throw new Error("refund bug"); mark(ctx, "refund"); } }, async (ctx) => { mark(ctx, "charge"); return 1; });
  reserve.then(charge).then(t.task("ship", async () => { throw new Error("no truck"); }));
});
`);

  it("refuses to resume a saga with a latest version whose compensations differ: the run would end compensated with one still failed", async () => {
    await h.writeDag("saga_fix.ts", sagaFix(1));
    await h.processor.scan();
    const marks = path.join(await scratchDir("baton-saga-fix-"), "marks.txt");
    const runId = (await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_fix/dagRuns", payload: { conf: { marks } } })).json().dag_run_id as string;
    const run = async () => (await h.app.inject({ method: "GET", url: `/api/v1/dags/saga_fix/dagRuns/${encodeURIComponent(runId)}` })).json();
    await waitFor("the saga to fail", async () => (await run()).compensation === "compensation_failed" && (await run()).state === "failed");
    const pinned = (await run()).dag_version;
    const resume = () =>
      h.app.inject({
        method: "POST",
        url: "/api/v1/dags/saga_fix/clearTaskInstances",
        payload: { dag_run_id: runId, dry_run: false, only_failed: false, task_ids: ["charge__compensate"], include_downstream: true, use_latest_version: true },
      });

    await h.writeDag("saga_fix.ts", sagaFix(2));
    await h.processor.scan();
    const refused = await resume();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe("BATON_VERSION_INCOMPATIBLE");
    expect(await run()).toMatchObject({ state: "failed", compensation: "compensation_failed", dag_version: pinned });

    await h.writeDag("saga_fix.ts", sagaFix(3));
    await h.processor.scan();
    expect((await resume()).statusCode).toBe(200);
    await waitFor("the saga to be compensated", async () => (await run()).compensation === "compensated" && (await run()).state === "failed");
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["reserve", "charge", "refund", "release"]);
  });
});
