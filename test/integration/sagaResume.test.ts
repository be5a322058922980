// Resuming a saga whose compensation failed: re-driving or clearing the failed `<task>__compensate`
// runs it again (a new try) and only it; what was already undone is never undone twice.
import { readFile, writeFile } from "node:fs/promises";
import { scratchDir } from "../helpers/scratch.ts";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
const up = (ctx, what) => existsSync(String(ctx.conf.dir) + "/" + what);

export default dag({ id: "saga_resume", defaultArgs: { retries: 0 } }, (t) => {
  const reserve = t.task("reserve", { compensate: async (ctx) => mark(ctx, "release") }, async (ctx) => { mark(ctx, "reserve"); return 1; });
  const charge = t.task("charge", {
    compensate: async (ctx) => {
      if (!up(ctx, "refunds")) throw new Error("refund service down");
      mark(ctx, "refund");
    },
  }, async (ctx) => { mark(ctx, "charge"); return 1; });
  const ship = t.task("ship", async (ctx) => {
    if (!up(ctx, "carrier")) throw new Error("carrier down");
    mark(ctx, "ship");
  });
  reserve.then(charge).then(ship);
});

// b's compensation hangs on its first try (until its run is cancelled) and succeeds on the next.
export const cut = dag({ id: "saga_cut", defaultArgs: { retries: 0 } }, (t) => {
  const a = t.task("a", { compensate: async (ctx) => mark(ctx, "undo a") }, async (ctx) => { mark(ctx, "a"); return 1; });
  const b = t.task("b", {
    compensate: async (ctx) => {
      if (ctx.tryNumber === 1) {
        while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
        throw new Error("aborted");
      }
      mark(ctx, "undo b");
    },
  }, async (ctx) => { mark(ctx, "b"); return 1; });
  a.then(b).then(t.task("c", async () => { throw new Error("c fails"); }));
});
`);

describe("resuming a failed saga compensation", () => {
  // A short heartbeat: the worker of a cancelled try learns it at once and aborts it.
  const h = new Harness({ heartbeatMs: 200 });
  beforeAll(async () => {
    await h.start({ "saga_resume.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const runUrl = (runId: string) => `/api/v1/dags/saga_resume/dagRuns/${encodeURIComponent(runId)}`;
  const getRun = async (runId: string) => (await h.app.inject({ method: "GET", url: runUrl(runId) })).json();
  const marksOf = async (file: string) => (await readFile(file, "utf8")).split("\n").filter(Boolean);
  const tasksOf = async (runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT id, task_id, state, try_number FROM task_instance WHERE dag_id = 'saga_resume' AND run_id = ? ORDER BY task_id",
      [runId],
    );
    return Object.fromEntries(rows.map((r) => [r.task_id as string, { id: Number(r.id), state: r.state as string, try: Number(r.try_number) }]));
  };
  const endsWith = (runId: string, compensation: string) =>
    waitFor(`run ${runId} to end ${compensation}`, async () => {
      const r = await getRun(runId);
      return r.state === "failed" && r.compensation === compensation ? r : null;
    }, 20_000);

  /** A run whose ship fails and whose refund fails: release ran, the run ends compensation_failed. */
  async function failedSaga() {
    const dir = await scratchDir("baton-saga-resume-");
    const marks = path.join(dir, "marks.txt");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_resume/dagRuns", payload: { conf: { marks, dir } } });
    const runId = res.json().dag_run_id as string;
    await endsWith(runId, "compensation_failed");
    expect(await marksOf(marks)).toEqual(["reserve", "charge", "release"]);
    return { runId, dir, marks };
  }

  it("re-driving the failed compensation runs it again, alone, until the run ends compensated", async () => {
    const { runId, dir, marks } = await failedSaga();
    const before = await tasksOf(runId);
    expect(before).toMatchObject({
      ship: { state: "failed" },
      charge__compensate: { state: "failed", try: 1 },
      reserve__compensate: { state: "success", try: 1 },
    });
    const ids = [before.ship!.id, before.charge__compensate!.id];
    const letters = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=saga_resume" })).json().dead_letters;
    // Only the compensation is a dead letter: ship's failure is what the saga handles.
    expect(letters.filter((l: { dag_run_id: string }) => l.dag_run_id === runId).map((l: { task_instance_id: number }) => l.task_instance_id)).toEqual([
      before.charge__compensate!.id,
    ]);

    // The refund service is still down: the compensation fails again, the run ends as it was.
    const first = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [before.charge__compensate!.id] } });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ redriven: 1, dry_run: false });
    await waitFor("the resumed compensation's second try to fail", async () => (await tasksOf(runId)).charge__compensate?.try === 2);
    await endsWith(runId, "compensation_failed");

    // Fixed: the refund goes through, the release is not repeated. Naming the failed task too is
    // refused (its saga handles it), nothing re-driven; the compensation alone resumes the saga.
    await writeFile(path.join(dir, "refunds"), "");
    const both = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: ids } });
    expect(both.statusCode).toBe(409);
    expect(both.json()).toMatchObject({ code: "BATON_DAG_RUN_COMPENSATING" });
    const dry = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [before.charge__compensate!.id], dry_run: true } });
    expect(dry.json()).toMatchObject({ redriven: 1, dry_run: true });
    expect((await tasksOf(runId)).charge__compensate).toMatchObject({ state: "failed", try: 2 });
    const second = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", payload: { task_instance_ids: [before.charge__compensate!.id] } });
    expect(second.json()).toMatchObject({ redriven: 1 });
    const done = await endsWith(runId, "compensated");
    expect(done).toMatchObject({ state: "failed", compensated: true });
    expect(await marksOf(marks)).toEqual(["reserve", "charge", "release", "refund"]);
    expect(await tasksOf(runId)).toMatchObject({
      reserve: { state: "success", try: 1 },
      charge: { state: "success", try: 1 },
      ship: { state: "failed", try: 1 },
      charge__compensate: { id: before.charge__compensate!.id, state: "success", try: 3 },
      reserve__compensate: { id: before.reserve__compensate!.id, state: "success", try: 1 },
    });

    // The history stays: every try of the compensation, and the run reopened twice.
    const [events] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT kind, task_id, try_number, to_state FROM event_log WHERE dag_id = 'saga_resume' AND run_id = ? ORDER BY id",
      [runId],
    );
    const ends = events.filter((e) => e.task_id === "charge__compensate" && ["failed", "success"].includes(e.to_state));
    expect(ends.map((e) => [Number(e.try_number), e.to_state])).toEqual([[1, "failed"], [2, "failed"], [3, "success"]]);
    const runEvents = events.filter((e) => e.kind === "run").map((e) => e.to_state);
    expect(runEvents.slice(-4)).toEqual(["running", "failed", "running", "failed"]);

    // The compensation is no dead letter any more, and the run has none.
    const after = (await h.app.inject({ method: "GET", url: "/api/v1/deadLetters?dag_id=saga_resume" })).json().dead_letters;
    expect(after.filter((l: { dag_run_id: string }) => l.dag_run_id === runId).map((l: { task_id: string }) => l.task_id)).toEqual([]);
  });

  it("clearing the failed compensation resumes the saga the same way", async () => {
    const { runId, dir, marks } = await failedSaga();
    await writeFile(path.join(dir, "refunds"), "");
    const cleared = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_resume/clearTaskInstances",
      payload: { dag_run_id: runId, dry_run: false, task_ids: ["charge__compensate"], include_downstream: true },
    });
    expect(cleared.statusCode).toBe(200);
    // reserve__compensate is downstream but succeeded: it is not cleared (never undone twice).
    expect(cleared.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["charge__compensate"]);
    const done = await endsWith(runId, "compensated");
    expect(done).toMatchObject({ state: "failed", compensated: true });
    expect(await marksOf(marks)).toEqual(["reserve", "charge", "release", "refund"]);
    expect(await tasksOf(runId)).toMatchObject({ charge__compensate: { state: "success", try: 2 }, reserve__compensate: { state: "success", try: 1 } });
  });

  it("a clear naming a compensation and another task of the run is refused", async () => {
    const { runId } = await failedSaga();
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_resume/clearTaskInstances",
      payload: { dag_run_id: runId, dry_run: false, task_ids: ["ship", "charge__compensate"] },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("BATON_CLEAR_MIXES_COMPENSATION");
    expect(await getRun(runId)).toMatchObject({ state: "failed", compensation: "compensation_failed" });
  });

  it("a clear across runs that would mix them in one run clears none of them", async () => {
    // Version 1 has no compensation; version 2 adds one. A clear of `step` and `work__compensate`
    // names only `step` in the run of version 1 and both in the run of version 2.
    const version = (compensate: boolean) =>
      dagSource(`export default dag({ id: "saga_versions", defaultArgs: { retries: 0 } }, (t) => {
  t.task("work", ${compensate ? "{ compensate: async () => undefined }, " : ""}async () => 1).then(t.task("step", async () => { throw new Error("step fails"); }));
});`);
    const runOf = async (runId: string) => {
      await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_versions/dagRuns", payload: { dag_run_id: runId } });
      return waitFor(`run ${runId} to fail`, async () => {
        const r = (await h.app.inject({ method: "GET", url: `/api/v1/dags/saga_versions/dagRuns/${runId}` })).json();
        return r.state === "failed" ? r : null;
      }, 20_000);
    };
    await h.writeDag("saga_versions.ts", version(false));
    await h.processor.scan();
    await runOf("v1");
    await h.writeDag("saga_versions.ts", version(true));
    await h.processor.scan();
    expect(await runOf("v2")).toMatchObject({ compensation: "compensated" });
    const states = async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id, task_id, state, try_number FROM task_instance WHERE dag_id = 'saga_versions' ORDER BY run_id, task_id");
      return rows.map((r) => `${r.run_id}/${r.task_id}:${r.state}#${r.try_number}`);
    };
    const before = await states();
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_versions/clearTaskInstances",
      payload: { dry_run: false, only_failed: false, task_ids: ["step", "work__compensate"], start_date: "2000-01-01T00:00:00Z" },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: "BATON_CLEAR_MIXES_COMPENSATION" });
    expect(res.json().detail).toContain('"v2"');
    expect(await states()).toEqual(before);
  });

  it("clearing the failed task of a compensation_failed run still starts a new attempt", async () => {
    const { runId, dir, marks } = await failedSaga();
    await writeFile(path.join(dir, "carrier"), "");
    const cleared = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_resume/clearTaskInstances",
      payload: { dag_run_id: runId, dry_run: false, task_ids: ["ship"] },
    });
    expect(cleared.statusCode).toBe(200);
    const done = await waitFor("the new attempt to succeed", async () => {
      const r = await getRun(runId);
      return r.state === "success" ? r : null;
    }, 20_000);
    expect(done.compensation).toBeNull();
    // The reservation was released, so it is made again; the charge was never refunded, so it stands.
    expect((await marksOf(marks)).sort()).toEqual(["charge", "release", "reserve", "reserve", "ship"]);
    const tasks = await tasksOf(runId);
    expect(Object.keys(tasks).sort()).toEqual(["charge", "reserve", "ship"]);
  });

  it("a run cancelled while compensating resumes its compensation where the cancel cut it off, in order", async () => {
    const dir = await scratchDir("baton-saga-resume-");
    const marks = path.join(dir, "marks.txt");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_cut/dagRuns", payload: { conf: { marks } } });
    const runId = res.json().dag_run_id as string;
    const url = `/api/v1/dags/saga_cut/dagRuns/${encodeURIComponent(runId)}`;
    const stateOf = async (taskId: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'saga_cut' AND run_id = ? AND task_id = ?", [runId, taskId]);
      return rows[0]?.state as string | undefined;
    };
    await waitFor("b's compensation to run", async () => (await stateOf("b__compensate")) === "running", 20_000);
    const cancel = await h.app.inject({ method: "PATCH", url, payload: { state: "failed" } });
    expect(cancel.statusCode).toBe(200);
    expect((await h.app.inject({ method: "GET", url })).json()).toMatchObject({ state: "failed", compensation: "compensation_failed" });
    expect([await stateOf("b__compensate"), await stateOf("a__compensate")]).toEqual(["failed", "skipped"]);

    const cleared = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/saga_cut/clearTaskInstances",
      payload: { dag_run_id: runId, dry_run: false, task_ids: ["b__compensate"], include_downstream: true },
    });
    expect(cleared.statusCode).toBe(200);
    // a's compensation never ran (the cancel skipped it) and a succeeded: it is owed too.
    expect(cleared.json().task_instances.map((t: { task_id: string }) => t.task_id).sort()).toEqual(["a__compensate", "b__compensate"]);
    const done = await waitFor("the resumed compensation to end", async () => {
      const r = (await h.app.inject({ method: "GET", url })).json();
      return r.state === "failed" && r.compensation !== "running" ? r : null;
    }, 20_000);
    expect(done).toMatchObject({ compensation: "compensated", compensated: true });
    expect(await marksOf(marks)).toEqual(["a", "b", "undo b", "undo a"]);
  });
});
