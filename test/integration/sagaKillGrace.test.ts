// A saga's compensations must not overlap the run's own task code: a try told to stop (its run
// cancelled with compensate) still runs during its kill grace, and undoing the work it may still
// be doing would let, say, a shipment go out after its booking was cancelled (Temporal waits for
// a cancelled activity to end before the workflow's compensation runs).
import { readFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");

export const grace = dag({ id: "saga_grace" }, (t) => {
  const book = t.task("book", { compensate: async (ctx) => mark(ctx, "cancel booking") }, async (ctx) => { mark(ctx, "book"); return 1; });
  // Told to stop, it takes a while to wind down (well inside its kill grace) and says when it is done.
  const ship = t.task("ship", async (ctx) => {
    while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1500));
    mark(ctx, "ship wound down");
  });
  book.then(ship);
});

export const stuck = dag({ id: "saga_grace_dead_worker" }, (t) => {
  const book = t.task("book", { compensate: async (ctx) => mark(ctx, "cancel booking") }, async (ctx) => { mark(ctx, "book"); return 1; });
  // Ignores ctx.signal: it runs until its process is killed, at the end of the (long) kill grace.
  const ship = t.task("ship", async (ctx) => {
    mark(ctx, "ship started");
    await new Promise(() => setInterval(() => undefined, 1000));
  });
  book.then(ship);
});
`);

describe("saga compensation after a cancel", () => {
  const h = new Harness({ workers: 2, heartbeatMs: 100, killGraceMs: 20_000 });
  beforeAll(async () => {
    await h.start({ "grace.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  // cancelRun (endRuns) fails the running try and starts the saga in the same transaction: the
  // compensation waits in `scheduled` until the worker says the try's process ended (abandoned_try).
  it("starts the compensations only once the cancelled try's process has ended", async () => {
    const marks = path.join(await scratchDir("baton-grace-"), "marks.txt");
    const runId = await h.trigger("saga_grace", { conf: { marks } });
    const runUrl = `/api/v1/dags/saga_grace/dagRuns/${encodeURIComponent(runId)}`;
    await waitFor("ship to run", async () => (await h.app.inject({ method: "GET", url: `${runUrl}/taskInstances/ship` })).json().state === "running");
    const cancel = await h.app.inject({ method: "PATCH", url: runUrl, payload: { state: "failed", compensate: true } });
    expect(cancel.statusCode).toBe(200);
    await waitFor("the saga to end", async () => (await h.app.inject({ method: "GET", url: runUrl })).json().compensation === "compensated", 30_000);
    const lines = await waitFor("ship to wind down", async () => {
      const text = await readFile(marks, "utf8");
      return text.includes("ship wound down") ? text.split("\n").filter(Boolean) : null;
    }, 30_000);
    expect(lines).toEqual(["book", "ship wound down", "cancel booking"]);
  });

  // A running task marked failed by hand fails the run, whose saga starts: its code, told to stop, winds down first.
  it("starts the compensations only once a try marked failed while running has ended", async () => {
    const marks = path.join(await scratchDir("baton-grace-"), "marks.txt");
    const runId = await h.trigger("saga_grace", { conf: { marks } });
    const runUrl = `/api/v1/dags/saga_grace/dagRuns/${encodeURIComponent(runId)}`;
    await waitFor("ship to run", async () => (await h.app.inject({ method: "GET", url: `${runUrl}/taskInstances/ship` })).json().state === "running");
    const mark = await h.app.inject({ method: "PATCH", url: `${runUrl}/taskInstances/ship`, payload: { new_state: "failed" } });
    expect(mark.json()).toMatchObject({ new_state: "failed", dag_run_state: "running" });
    await waitFor("the saga to end", async () => (await h.app.inject({ method: "GET", url: runUrl })).json().compensation === "compensated", 30_000);
    const lines = await waitFor("ship to wind down", async () => {
      const text = await readFile(marks, "utf8");
      return text.includes("ship wound down") ? text.split("\n").filter(Boolean) : null;
    }, 30_000);
    expect(lines).toEqual(["book", "ship wound down", "cancel booking"]);
  });

  // The worker of the cancelled try is declared dead (no process heartbeat within the task heartbeat
  // timeout, as for a zombie): its try no longer holds the compensation back, which would wait forever.
  it("starts the compensations once the cancelled try's worker is declared dead", async () => {
    const marks = path.join(await scratchDir("baton-grace-"), "marks.txt");
    const runId = await h.trigger("saga_grace_dead_worker", { conf: { marks } });
    const runUrl = `/api/v1/dags/saga_grace_dead_worker/dagRuns/${encodeURIComponent(runId)}`;
    await waitFor("ship to run", async () => (await readFile(marks, "utf8").catch(() => "")).includes("ship started"));
    const cancel = await h.app.inject({ method: "PATCH", url: runUrl, payload: { state: "failed", compensate: true } });
    expect(cancel.statusCode).toBe(200);
    // Its process runs on (it ignores the abort, the kill grace is 20 s): the compensation waits.
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE dag_id = 'saga_grace_dead_worker' AND run_id = ?", [runId]);
    const [held] = await h.db.pool.query<RowDataPacket[]>("SELECT worker_id FROM abandoned_try WHERE dag_run_id = ?", [run!.id]);
    expect(held).toHaveLength(1);
    const compensation = async () => (await h.app.inject({ method: "GET", url: `${runUrl}/taskInstances/book__compensate` })).json().state;
    expect(await compensation()).toBe("scheduled");
    const deps = (await h.app.inject({ method: "GET", url: `${runUrl}/taskInstances/book__compensate/dependencies` })).json().dependencies;
    expect(deps).toEqual([{ name: "winding_down", reason: expect.stringContaining(`"ship" try 1 on worker `) }]);
    // Its worker is now one that never heartbeated (as one killed with -9 long ago).
    await h.db.pool.query("UPDATE abandoned_try SET worker_id = REPEAT('d', 32) WHERE dag_run_id = ?", [run!.id]);
    await waitFor("the saga to end", async () => (await h.app.inject({ method: "GET", url: runUrl })).json().compensation === "compensated", 15_000);
    expect(await compensation()).toBe("success");
    expect((await readFile(marks, "utf8")).split("\n").filter(Boolean)).toEqual(["book", "ship started", "cancel booking"]);
    const [left] = await h.db.pool.query<RowDataPacket[]>("SELECT 1 FROM abandoned_try WHERE dag_run_id = ?", [run!.id]);
    expect(left).toHaveLength(0);
  });
});
