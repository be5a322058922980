import { readFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");

export const order = dag({ id: "saga_order", defaultArgs: { retries: 0 } }, (t) => {
  const reserve = t.task("reserve", { compensate: async (ctx) => mark(ctx, "release " + ctx.get(reserve).sku) }, async (ctx) => { mark(ctx, "reserve"); return { sku: "A1" }; });
  const charge = t.task("charge", { compensate: async (ctx) => mark(ctx, "refund " + ctx.get(charge).chargeId) }, async (ctx) => { mark(ctx, "charge"); return { chargeId: "ch_1" }; });
  const label = t.task("label", { compensate: async (ctx) => mark(ctx, "void label") }, async (ctx) => {
    if (ctx.conf.failLabel) throw new Error("carrier down");
    return "lbl";
  });
  reserve.then(charge).then(label);
});

export const slow = dag({ id: "saga_cancel" }, (t) => {
  const book = t.task("book", { compensate: async (ctx) => mark(ctx, "cancel booking") }, async (ctx) => { mark(ctx, "book"); return 1; });
  const wait = t.task("wait", async (ctx) => { while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20)); throw new Error("aborted"); });
  book.then(wait);
});

export const stubborn = dag({ id: "saga_stubborn", defaultArgs: { retries: 1, retryDelay: 20 } }, (t) => {
  const a = t.task("a", { compensate: async () => { throw new Error("cannot undo"); } }, async () => 1);
  a.then(t.task("b", { retries: 0 }, async () => { throw new Error("b fails"); }));
});
`);

describe("saga compensation", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "saga.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  async function run(dagId: string, conf: Record<string, unknown>) {
    const res = await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: { conf } });
    const runId = res.json().dag_run_id as string;
    const done = await waitFor(`${dagId} to end`, async () => {
      const r = (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}` })).json();
      return ["success", "failed"].includes(r.state) ? r : null;
    }, 20_000);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return { run: done, tasks: Object.fromEntries(tis.map((r) => [r.task_id, r.state])) };
  }

  it("a failing order undoes what succeeded, in reverse order, and ends failed + compensated", async () => {
    const marks = path.join(await scratchDir("baton-saga-"), "marks.txt");
    const { run: r, tasks } = await run("saga_order", { marks, failLabel: true });
    expect(r).toMatchObject({ state: "failed", compensation: "compensated", compensated: true });
    expect(tasks).toEqual({
      reserve: "success",
      charge: "success",
      label: "failed",
      label__compensate: "skipped",
      charge__compensate: "success",
      reserve__compensate: "success",
    });
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["reserve", "charge", "refund ch_1", "release A1"]);
  });

  it("clearing a compensated run starts a new attempt: when it fails again, it is compensated again", async () => {
    const marks = path.join(await scratchDir("baton-saga-"), "marks.txt");
    const { run: first } = await run("saga_order", { marks, failLabel: true });
    expect(first).toMatchObject({ state: "failed", compensation: "compensated" });
    const runUrl = `/api/v1/dags/saga_order/dagRuns/${encodeURIComponent(first.dag_run_id)}`;
    const cleared = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_order/clearTaskInstances",
      payload: { dag_run_id: first.dag_run_id, dry_run: false, task_ids: ["reserve", "charge", "label"], only_failed: false },
    });
    expect(cleared.statusCode).toBe(200);
    expect((await h.app.inject({ method: "GET", url: runUrl })).json()).toMatchObject({ state: "running", compensation: null });
    const again = await waitFor("the second attempt to end", async () => {
      const r = (await h.app.inject({ method: "GET", url: runUrl })).json();
      return r.state === "failed" ? r : null;
    }, 20_000);
    expect(again).toMatchObject({ compensation: "compensated", compensated: true });
    const once = ["reserve", "charge", "refund ch_1", "release A1"];
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual([...once, ...once]);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, try_number FROM task_instance WHERE dag_id = 'saga_order' AND run_id = ? AND task_id LIKE '%__compensate' ORDER BY task_id", [first.dag_run_id]);
    expect(tis.map((r) => [r.task_id, r.try_number])).toEqual([["charge__compensate", 1], ["label__compensate", 0], ["reserve__compensate", 1]]);
  });

  it("the failed task of a compensated run is no dead letter, and re-driving it is refused: the order was rolled back", async () => {
    const marks = path.join(await scratchDir("baton-saga-"), "marks.txt");
    const { run: first, tasks } = await run("saga_order", { marks, failLabel: true });
    expect(first).toMatchObject({ state: "failed", compensation: "compensated" });
    const letters = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=saga_order" })).json().dead_letters;
    expect(letters.filter((l: { dag_run_id: string }) => l.dag_run_id === first.dag_run_id)).toEqual([]);
    const [[label]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'saga_order' AND run_id = ? AND task_id = 'label'", [first.dag_run_id]);
    const redrive = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [Number(label!.id)] } });
    expect(redrive.statusCode).toBe(409);
    expect(redrive.json()).toMatchObject({ code: "BATON_DAG_RUN_COMPENSATING" });
    const runUrl = `/api/v1/dags/saga_order/dagRuns/${encodeURIComponent(first.dag_run_id)}`;
    expect((await h.app.inject({ method: "GET", url: runUrl })).json()).toMatchObject({ state: "failed", compensation: "compensated" });
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'saga_order' AND run_id = ?", [first.dag_run_id]);
    expect(Object.fromEntries(tis.map((r) => [r.task_id, r.state]))).toEqual(tasks);
    // Nothing ran again: charged once, refunded once.
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["reserve", "charge", "refund ch_1", "release A1"]);
  });

  it("a successful run creates no compensation tasks", async () => {
    const marks = path.join(await scratchDir("baton-saga-"), "marks.txt");
    const { run: r, tasks } = await run("saga_order", { marks });
    expect(r).toMatchObject({ state: "success", compensation: null, compensated: false });
    expect(Object.keys(tasks).sort()).toEqual(["charge", "label", "reserve"]);
  });

  it("cancelling a run with compensate: true undoes what succeeded", async () => {
    const marks = path.join(await scratchDir("baton-saga-"), "marks.txt");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_cancel/dagRuns", payload: { conf: { marks } } });
    const runId = res.json().dag_run_id as string;
    await waitFor("wait to run", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'saga_cancel' AND run_id = ? AND task_id = 'wait'", [runId]);
      return rows[0]?.state === "running";
    });
    const cancel = await h.app.inject({
      method: "PATCH",
      url: `/api/v1/dags/saga_cancel/dagRuns/${encodeURIComponent(runId)}`,
      payload: { state: "failed", compensate: true },
    });
    expect(cancel.statusCode).toBe(200);
    const done = await waitFor("compensation to finish", async () => {
      const r = (await h.app.inject({ method: "GET", url: `/api/v1/dags/saga_cancel/dagRuns/${encodeURIComponent(runId)}` })).json();
      return r.compensation === "compensated" ? r : null;
    }, 20_000);
    expect(done.state).toBe("failed");
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["book", "cancel booking"]);
  });

  it("a compensation that keeps failing ends the run compensation_failed and lands in dead letters", async () => {
    const { run: r, tasks } = await run("saga_stubborn", {});
    expect(r).toMatchObject({ state: "failed", compensation: "compensation_failed", compensated: false });
    expect(tasks.a__compensate).toBe("failed");
    const letters = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=saga_stubborn" })).json().dead_letters;
    // b failed the run, but its saga handles that failure: only the compensation that failed needs an operator.
    expect(letters.map((l: { task_id: string }) => l.task_id).sort()).toEqual(["a__compensate"]);
  });
});
