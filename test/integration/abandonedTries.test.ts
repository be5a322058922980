// A running try that stops being its worker's (its run cancelled, the task instance marked,
// cleared, or reaped): the worker aborts ctx.signal at its next heartbeat, kills the task's process
// after the kill grace, discards its late result, frees the slot, and the try's log says why.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";

export const stubborn = dag({ id: "ab_stubborn" }, (t) => {
  t.task("t", async (ctx) => {
    ctx.signal.addEventListener("abort", () => console.log("saw the abort: " + ctx.signal.reason.message));
    // Ignores the abort, and keeps writing to its log.
    for (let i = 0; ; i++) {
      console.log("still working " + i);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});

const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
export const polite = dag({ id: "ab_polite" }, (t) => {
  t.task("t", {
    retries: 1,
    onSuccess: (ctx) => mark(ctx, "onSuccess"),
    onRetry: (ctx) => mark(ctx, "onRetry"),
    onFailure: (ctx) => mark(ctx, "onFailure"),
  }, async (ctx) => {
    await new Promise((r) => ctx.signal.addEventListener("abort", r));
    if (ctx.conf.succeed) return "finished after the abort";
    throw new Error("gave up after the abort");
  });
});

// Runs until conf.gate exists, then succeeds.
export const gated = dag({ id: "ab_gated" }, (t) => {
  t.task("t", async (ctx) => {
    while (!existsSync(String(ctx.conf.gate))) await new Promise((r) => setTimeout(r, 10));
    return "finished";
  });
});

export const quick = dag({ id: "ab_quick" }, (t) => { t.task("t", async () => "ran"); });
`);

describe("a try taken away from its worker while it runs", () => {
  // One slot: the quick task runs only once the abandoned try's slot is free.
  const h = new Harness({ workers: 1, heartbeatMs: 200, killGraceMs: 300, runIds: "numbered" });

  let dir: string;

  beforeAll(async () => {
    await h.start({ "abandoned.ts": DAGS });
    await h.run();
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-abandoned-"));
  });
  afterAll(async () => {
    await h.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function taskInstance(dagId: string, runId: string) {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return rows[0]!;
  }

  async function started(dagId: string, runId: string): Promise<void> {
    await waitFor(`${dagId} to start`, async () => (await h.taskLog(dagId, runId, "t", 1))?.includes("Starting try 1"));
  }

  it("kills a try of a cancelled run that ignores the abort after the kill grace, and its log says so, not that its process died", async () => {
    const runId = await h.trigger("ab_stubborn");
    await waitFor("the task to print", async () => (await h.taskLog("ab_stubborn", runId, "t", 1))?.includes("still working 1"));
    const cancel = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ab_stubborn/dagRuns/${runId}`, payload: { state: "failed" } });
    expect(cancel.statusCode).toBe(200);
    // The slot is freed: the next task runs.
    const next = await h.trigger("ab_quick");
    expect(await h.runEnded("ab_quick", next)).toBe("success");
    expect(JSON.parse(String((await taskInstance("ab_stubborn", runId)).error)).code).toBe("BATON_DAG_RUN_CANCELLED");
    const log = await waitFor("the log to end with the reason", async () => {
      const text = (await h.taskLog("ab_stubborn", runId, "t", 1)) ?? "";
      return /killed[^\n]*\n$/.test(text) ? text : null;
    });
    expect(log).toContain("saw the abort: the task instance was cancelled, marked, cleared, timed out or reaped");
    // Was: "ERROR - the task's process died: child process exited (signal SIGKILL) (BATON_WORKER_CHILD_EXITED)".
    expect(log).not.toContain("BATON_WORKER_CHILD_EXITED");
    const last = log.trimEnd().split("\n").pop()!;
    expect(last).toMatch(/WARNING - this try is no longer the task instance's \(cancelled, marked, cleared, timed out or reaped\): its process, still running 300ms after ctx\.signal was aborted, was killed; its result is discarded$/);
    expect(log.indexOf("saw the abort")).toBeLessThan(log.indexOf(last));
  });

  it("discards the late failure of a try marked success while it runs, runs none of its callbacks, and its log says so", async () => {
    const marks = path.join(dir, "marked.txt");
    const runId = await h.trigger("ab_polite", { conf: { marks } });
    await started("ab_polite", runId);
    const mark = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ab_polite/dagRuns/${runId}/taskInstances/t`, payload: { new_state: "success" } });
    expect(mark.statusCode).toBe(200);
    const log = await waitFor("the log to end with the reason", async () => {
      const text = (await h.taskLog("ab_polite", runId, "t", 1)) ?? "";
      return /discarded\n$/.test(text) ? text : null;
    });
    expect(log).toContain("Task failed: Error: gave up after the abort");
    expect(log.trimEnd().split("\n").pop()).toMatch(/WARNING - this try is no longer the task instance's \(cancelled, marked, cleared, timed out or reaped\): its failed outcome is discarded$/);
    expect(await taskInstance("ab_polite", runId)).toMatchObject({ state: "success", error: null });
    // Was: onRetry, for a try whose failure was discarded, of a task marked success.
    expect(await readFile(marks, "utf8").catch(() => "")).toBe("");
  });

  it("runs no onSuccess for a try of a cancelled run that finished after the abort", async () => {
    const marks = path.join(dir, "cancelled.txt");
    const runId = await h.trigger("ab_polite", { conf: { marks, succeed: true } });
    await started("ab_polite", runId);
    const cancel = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ab_polite/dagRuns/${runId}`, payload: { state: "failed" } });
    expect(cancel.statusCode).toBe(200);
    await waitFor("the log to end with the reason", async () => /its success outcome is discarded\n$/.test((await h.taskLog("ab_polite", runId, "t", 1)) ?? ""));
    expect(JSON.parse(String((await taskInstance("ab_polite", runId)).error)).code).toBe("BATON_DAG_RUN_CANCELLED");
    // Was: onSuccess, for a try recorded failed (cancelled).
    expect(await readFile(marks, "utf8").catch(() => "")).toBe("");
  });
});

describe("a try taken away from its worker before a heartbeat saw it", () => {
  // Heartbeats far apart: the worker learns the try is no longer its own when it records it.
  const h = new Harness({ workers: 1, heartbeatMs: 600_000, runIds: "numbered" });
  let dir: string;

  beforeAll(async () => {
    await h.start({ "abandoned.ts": DAGS });
    await h.run();
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-fenced-"));
  });
  afterAll(async () => {
    await h.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("ends the log of a try whose result was discarded when recorded with why", async () => {
    const gate = path.join(dir, "gate");
    const runId = await h.trigger("ab_gated", { conf: { gate } });
    await waitFor("the task to start", async () => (await h.taskLog("ab_gated", runId, "t", 1))?.includes("Starting try 1"));
    const cancel = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ab_gated/dagRuns/${runId}`, payload: { state: "failed" } });
    expect(cancel.statusCode).toBe(200);
    await writeFile(gate, "");
    // Was: the log ended with "Task succeeded", for a try recorded failed (cancelled).
    const log = await waitFor("the log to end with the reason", async () => {
      const text = (await h.taskLog("ab_gated", runId, "t", 1)) ?? "";
      return /discarded\n$/.test(text) ? text : null;
    });
    expect(log).toContain("Task succeeded");
    expect(log.trimEnd().split("\n").pop()).toMatch(/WARNING - this try is no longer the task instance's \(cancelled, marked, cleared, timed out or reaped\): its success outcome is discarded$/);
  });
});
