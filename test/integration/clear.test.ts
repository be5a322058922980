// Clear (Airflow's "clear task instances") end to end: POST …/clearTaskInstances and
// `baton tasks clear` against real MariaDB and real workers. A queue no worker serves lets
// the test play the worker (claimTasks/finishTries) where exact intermediate states matter.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { heldApi } from "../helpers/cli.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem } from "../helpers/expect.ts";
import { waitFor } from "../helpers/db.ts";
import { isTerminalTaskState } from "../../core/states.ts";
import { upstreamCountsOf } from "../../scheduler/clearSelection.ts";
import { evaluateTriggerRule } from "../../scheduler/triggerRules.ts";
import type { TriggerRule } from "../../sdk/types.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { clearTasks } from "../../store/transitions/clearTasks.ts";
import { finishTries, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";

const FLAKY = dagSource(`
export default dag({ id: "clr_flaky" }, (t) => {
  const a = t.task("a", async () => "a");
  const b = t.task("b", { upstream: [a] }, async (ctx) => {
    if (ctx.tryNumber === 1) throw new Error("first try of b fails");
    return "b on try " + ctx.tryNumber;
  });
  t.task("c", { upstream: [b] }, async (ctx) => ctx.get(b) + ", then c");
});
`);

const CHAIN = dagSource(`
export default dag({ id: "clr_chain", dagrunTimeout: "1h" }, (t) => {
  const x = t.task("x", async (ctx) => "x" + ctx.tryNumber);
  const y = t.task("y", { upstream: [x] }, async (ctx) => "y" + ctx.tryNumber + "<" + ctx.get(x));
  t.task("z", { upstream: [y] }, async (ctx) => "z" + ctx.tryNumber + "<" + ctx.get(y));
});
`);

// p → (q, r) → s (all_success); q → u (all_done). No worker serves clr_q: the test runs the tasks.
const MANUAL = dagSource(`
export default dag({ id: "clr_manual" }, (t) => {
  const p = t.task("p", { queue: "clr_q" }, async () => 0);
  const q = t.task("q", { queue: "clr_q", upstream: [p], retries: 1 }, async () => 0);
  const r = t.task("r", { queue: "clr_q", upstream: [p] }, async () => 0);
  t.task("s", { queue: "clr_q", upstream: [q, r] }, async () => 0);
  t.task("u", { queue: "clr_q", upstream: [q], triggerRule: "all_done" }, async () => 0);
});
`);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Ti {
  id: number;
  task_id: string;
  state: string;
  try_number: number;
  max_tries: number;
  trigger_rule: string;
  up_success: number;
  up_skipped: number;
  up_failed: number;
  up_upstream_failed: number;
  up_removed: number;
  error: string | null;
  claim_token: string | null;
}

describe("clearing task instances", () => {
  const h = new Harness({ workers: 2, runIds: "numbered" });
  const enc = encodeURIComponent;
  let versions: VersionCache;
  const shapeOf = (hash: string) => versions.shape(hash);

  const clear = (dagId: string, payload: object) => h.app.inject({ method: "POST", url: `/api/v1/dags/${enc(dagId)}/clearTaskInstances`, payload });

  async function runRow(runId: string) {
    const [[r]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE run_id = ?", [runId]);
    return r!;
  }

  async function finished(runId: string, timeoutMs = 15_000) {
    return waitFor(`run ${runId} to finish`, async () => {
      const r = await runRow(runId);
      return ["success", "failed"].includes(r.state) ? r : null;
    }, timeoutMs);
  }

  async function tis(runId: string): Promise<Map<string, Ti>> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    return new Map(rows.map((r) => [r.task_id as string, r as unknown as Ti]));
  }

  async function states(runId: string) {
    return Object.fromEntries([...(await tis(runId))].map(([id, t]) => [id, `${t.state}#${t.try_number}`]));
  }

  async function xcom(runId: string, taskId: string) {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.run_id = ? AND x.task_id = ?",
      [runId, taskId],
    );
    return rows[0] ? JSON.parse(rows[0].value) : undefined;
  }

  /**
   * The invariants a clear must keep: every task waiting in none/scheduled has counters equal
   * to its upstream tasks' terminal states and a trigger rule that is still undecided (else it
   * would be stuck), and unfinished_tasks counts the non-terminal tasks.
   */
  async function expectConsistent(runId: string) {
    const run = await runRow(runId);
    const shape = await versions.shape(run.version_hash);
    const rows = await tis(runId);
    const stateOf = (id: string) => rows.get(id)?.state;
    for (const t of rows.values()) {
      if (t.state !== "none" && t.state !== "scheduled") continue;
      const c = upstreamCountsOf(shape, t.task_id, stateOf);
      const have = { success: t.up_success, skipped: t.up_skipped, failed: t.up_failed, upstreamFailed: t.up_upstream_failed, removed: t.up_removed };
      expect({ task: t.task_id, ...have }).toEqual({ task: t.task_id, success: c.success, skipped: c.skipped, failed: c.failed, upstreamFailed: c.upstreamFailed, removed: c.removed });
      expect({ task: t.task_id, decision: evaluateTriggerRule(t.trigger_rule as TriggerRule, c) }).toEqual({ task: t.task_id, decision: "wait" });
    }
    expect(run.unfinished_tasks).toBe([...rows.values()].filter((t) => !isTerminalTaskState(t.state)).length);
  }

  // Playing the worker for clr_q.
  const token = (n: number) => String(n).padStart(32, "0");
  let tokens = 0;
  async function claimManual(taskIds: string[]): Promise<Map<string, ClaimedTask>> {
    const got = new Map<string, ClaimedTask>();
    await waitFor(`${taskIds.join(", ")} to be claimed`, async () => {
      for (const t of await claimTasks(h.db, { now: new Date(), limit: 10, queues: ["clr_q"], hostname: "test", pid: 1, token: token(++tokens) })) {
        got.set(t.taskId, t);
      }
      return taskIds.every((id) => got.has(id));
    });
    expect([...got.keys()].sort()).toEqual([...taskIds].sort());
    return got;
  }
  const done = (task: ClaimedTask, outcome: FinishedTry["outcome"] = "success", output?: unknown): FinishedTry => ({
    task,
    outcome,
    output,
    endedAt: new Date(),
    ...(outcome === "failed" ? { error: { name: "FailError", message: `${task.taskId} failed for the test`, nonRetryable: true } } : {}),
  });

  beforeAll(async () => {
    await h.start({ "flaky.ts": FLAKY, "chain.ts": CHAIN, "manual.ts": MANUAL });
    await h.run();
    versions = new VersionCache(h.db.pool);
    const errors = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
    expect(errors.json().import_errors).toEqual([]);
  });
  afterAll(() => h.stop());

  it("clears the failed tasks of a failed run (Airflow's defaults: only_failed): they re-run and the run succeeds", async () => {
    const runId = await h.trigger("clr_flaky");
    const first = await finished(runId);
    expect(first.state).toBe("failed");
    expect(await states(runId)).toEqual({ a: "success#1", b: "failed#1", c: "upstream_failed#0" });

    const res = await clear("clr_flaky", { dag_run_id: runId, dry_run: false });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      task_instances: [
        { task_id: "b", dag_id: "clr_flaky", dag_run_id: runId, map_index: -1, execution_date: first.logical_date.toISOString(), state: "failed", new_state: "queued" },
        { task_id: "c", dag_id: "clr_flaky", dag_run_id: runId, map_index: -1, execution_date: first.logical_date.toISOString(), state: "upstream_failed", new_state: null },
      ],
      total_entries: 2,
    });

    const second = await finished(runId);
    expect(second.state).toBe("success");
    const ts = await tis(runId);
    expect(await states(runId)).toEqual({ a: "success#1", b: "success#2", c: "success#1" });
    expect(ts.get("b")).toMatchObject({ max_tries: 1, error: null });
    expect(await xcom(runId, "c")).toBe("b on try 2, then c");
    expect(second.end_date.getTime()).toBeGreaterThanOrEqual(first.end_date.getTime());
    await expectConsistent(runId);
  });

  it("a dry run (the default) lists what would be cleared and changes nothing", async () => {
    const runId = await h.trigger("clr_flaky");
    expect((await finished(runId)).state).toBe("failed");
    const beforeRun = await runRow(runId);
    const before = await tis(runId);

    const res = await clear("clr_flaky", { dag_run_id: runId, task_ids: ["a"], include_downstream: true, only_failed: false });
    expect(res.statusCode).toBe(200);
    expect(res.json().task_instances.map((t: { task_id: string; state: string }) => [t.task_id, t.state])).toEqual([
      ["a", "success"],
      ["b", "failed"],
      ["c", "upstream_failed"],
    ]);
    const onlyFailed = await clear("clr_flaky", { dag_run_id: runId });
    expect(onlyFailed.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["b", "c"]);

    expect(await runRow(runId)).toEqual(beforeRun);
    expect(await tis(runId)).toEqual(before);
    expect(await xcom(runId, "a")).toBe("a");
  });

  it("clears a success task of a finished chain with include_downstream: it and its downstream re-run, the run finishes again", async () => {
    const runId = await h.trigger("clr_chain");
    const first = await finished(runId);
    expect(first.state).toBe("success");
    expect(await xcom(runId, "z")).toBe("z1<y1<x1");

    const clearedAt = Date.now();
    const res = await clear("clr_chain", { dag_run_id: runId, task_ids: ["y"], include_downstream: true, only_failed: false, dry_run: false });
    expect(res.json().task_instances.map((t: { task_id: string; state: string }) => [t.task_id, t.state])).toEqual([
      ["y", "success"],
      ["z", "success"],
    ]);
    const second = await finished(runId);
    expect(second.state).toBe("success");
    // The run's clock restarted with the clear: start_date and its dagrunTimeout deadline.
    expect(second.start_date.getTime()).toBeGreaterThanOrEqual(clearedAt - 1000);
    expect(second.timeout_at.getTime() - second.start_date.getTime()).toBe(3_600_000);
    expect(await states(runId)).toEqual({ x: "success#1", y: "success#2", z: "success#2" });
    expect(await xcom(runId, "z")).toBe("z2<y2<x1");
    await expectConsistent(runId);

    // include_upstream from the leaf clears the whole chain.
    const all = await clear("clr_chain", { dag_run_id: runId, task_ids: ["z"], include_upstream: true, only_failed: false, dry_run: false });
    expect(all.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["x", "y", "z"]);
    expect((await finished(runId)).state).toBe("success");
    expect(await states(runId)).toEqual({ x: "success#2", y: "success#3", z: "success#3" });
    expect(await xcom(runId, "z")).toBe("z3<y3<x2");
  });

  it("with dag_run_id, no task_ids and only_failed false clears every task instance of the run (as Airflow); across runs that is refused", async () => {
    const runId = await h.trigger("clr_chain");
    const first = await finished(runId);
    expect(first.state).toBe("success");

    const dry = await clear("clr_chain", { dag_run_id: runId, only_failed: false });
    expect(dry.statusCode).toBe(200);
    expect(dry.json().task_instances.map((t: { task_id: string; state: string }) => [t.task_id, t.state])).toEqual([
      ["x", "success"],
      ["y", "success"],
      ["z", "success"],
    ]);
    expect((await runRow(runId)).state).toBe("success");

    // Every task instance of many runs at once stays refused, naming what to give instead.
    const dates = { start_date: "2000-01-01T00:00:00Z", end_date: "2100-01-01T00:00:00Z", only_failed: false };
    expectProblem(await clear("clr_chain", dates), 400, "BATON_VALIDATION_FAILED", "task_ids");
    expectProblem(await clear("clr_chain", { dag_run_id: runId, include_past: true, only_failed: false }), 400, "BATON_VALIDATION_FAILED", "not across runs");
    // Narrowed, across runs is fine.
    expect((await clear("clr_chain", { ...dates, task_ids: ["z"] })).statusCode).toBe(200);

    const res = await clear("clr_chain", { dag_run_id: runId, only_failed: false, only_running: false, dry_run: false });
    expect(res.json().total_entries).toBe(3);
    expect((await finished(runId)).state).toBe("success");
    expect(await states(runId)).toEqual({ x: "success#2", y: "success#2", z: "success#2" });
    expect(await xcom(runId, "z")).toBe("z2<y2<x2");
    await expectConsistent(runId);
  });

  // x's single-upstream downstream y is already terminal (not cleared): finishTries' claim of y
  // matches no row, so the run must end from its counter (not commit x's try early, as a hop would).
  it("clears one task of a finished chain without its downstream: only it re-runs and the run finishes", async () => {
    const runId = await h.trigger("clr_chain");
    expect((await finished(runId)).state).toBe("success");
    const res = await clear("clr_chain", { dag_run_id: runId, task_ids: ["x"], only_failed: false, dry_run: false });
    expect(res.json().total_entries).toBe(1);
    await waitFor("x to succeed again", async () => (await tis(runId)).get("x")?.try_number === 2 && (await tis(runId)).get("x")?.state === "success");
    expect((await finished(runId, 3000)).state).toBe("success");
    expect(await states(runId)).toEqual({ x: "success#2", y: "success#1", z: "success#1" });
  });

  it("recomputes counters: cleared tasks wait for or take their upstreams' current states, and no task is left stuck", async () => {
    const runId = await h.trigger("clr_manual");
    const p = (await claimManual(["p"])).get("p")!;
    await finishTries(h.db, new Date(), [done(p)], shapeOf);
    const qr = await claimManual(["q", "r"]);
    await finishTries(h.db, new Date(), [done(qr.get("q")!, "failed"), done(qr.get("r")!)], shapeOf);
    const u1 = (await claimManual(["u"])).get("u")!;
    await finishTries(h.db, new Date(), [done(u1, "success", "u out")], shapeOf);
    expect((await runRow(runId)).state).toBe("failed");
    expect(await states(runId)).toEqual({ p: "success#1", q: "failed#1", r: "success#1", s: "upstream_failed#0", u: "success#1" });
    expect(await xcom(runId, "u")).toBe("u out");

    // s alone, behind a failed q that is not cleared: upstream_failed again at once, and the
    // run finishes again in the same transaction.
    const lone = await clearTasks(h.db, new Date(), { dagId: "clr_manual", runId, taskIds: ["s"] }, shapeOf);
    expect(lone.cleared.map((c) => [c.taskId, c.previousState, c.state])).toEqual([["s", "upstream_failed", "upstream_failed"]]);
    expect(lone.runState).toBe("failed");
    expect((await runRow(runId)).end_date).not.toBeNull();
    await expectConsistent(runId);

    // q and its downstream: q is queued at once (p succeeded), s waits for q with r counted,
    // u waits for q; the run is running again; XCom of cleared tasks is gone.
    const res = await clear("clr_manual", { dag_run_id: runId, task_ids: ["q"], include_downstream: true, only_failed: false, dry_run: false });
    expect(res.json().task_instances.map((t: { task_id: string; state: string }) => [t.task_id, t.state])).toEqual([
      ["q", "failed"],
      ["s", "upstream_failed"],
      ["u", "success"],
    ]);
    const run = await runRow(runId);
    expect(run).toMatchObject({ state: "running", end_date: null, unfinished_tasks: 3 });
    const ts = await tis(runId);
    expect(ts.get("q")).toMatchObject({ state: "queued", try_number: 1, max_tries: 2, error: null, claim_token: null });
    expect(ts.get("s")).toMatchObject({ state: "none", up_success: 1, up_failed: 0, up_upstream_failed: 0 });
    expect(ts.get("u")).toMatchObject({ state: "none", up_success: 0, up_failed: 0 });
    expect(await xcom(runId, "u")).toBeUndefined();
    await expectConsistent(runId);

    const q2 = (await claimManual(["q"])).get("q")!;
    expect(q2.tryNumber).toBe(2);
    await finishTries(h.db, new Date(), [done(q2)], shapeOf);
    expect(await states(runId)).toMatchObject({ q: "success#2", s: "queued#0", u: "queued#1" });
    await expectConsistent(runId);
    const su = await claimManual(["s", "u"]);
    const last = await finishTries(h.db, new Date(), [done(su.get("s")!), done(su.get("u")!)], shapeOf);
    expect(last.runsFinished).toEqual([{ dagRunId: Number(run.id), state: "success" }]);
    expect(await states(runId)).toEqual({ p: "success#1", q: "success#2", r: "success#1", s: "success#1", u: "success#2" });
    await expectConsistent(runId);
  });

  it("clearing a running task fences the running try: its late result is discarded and the task runs again", async () => {
    const occupied = async () => {
      const [[pool]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'default_pool'");
      return Number(pool!.occupied_slots);
    };
    const runId = await h.trigger("clr_manual");
    const idle = await occupied();
    const p1 = (await claimManual(["p"])).get("p")!;
    expect(await occupied()).toBe(idle + 1);
    const res = await clear("clr_manual", { dag_run_id: runId, only_running: true, dry_run: false });
    expect(await occupied()).toBe(idle);
    expect(res.json().task_instances.map((t: { task_id: string; state: string }) => [t.task_id, t.state])).toEqual([["p", "running"]]);
    expect((await tis(runId)).get("p")).toMatchObject({ state: "queued", try_number: 1, max_tries: 1, claim_token: null });

    const late = await finishTries(h.db, new Date(), [done(p1, "success", "late")], shapeOf);
    expect(late).toMatchObject({ fenced: [p1.id], finished: [] });
    expect(await xcom(runId, "p")).toBeUndefined();

    const p2 = (await claimManual(["p"])).get("p")!;
    expect(p2.tryNumber).toBe(2);
    await finishTries(h.db, new Date(), [done(p2, "success", "rightful")], shapeOf);
    expect(await xcom(runId, "p")).toBe("rightful");
    await expectConsistent(runId);
    // Finish the run so later tests claim from clr_q cleanly.
    const qr = await claimManual(["q", "r"]);
    await finishTries(h.db, new Date(), [done(qr.get("q")!), done(qr.get("r")!)], shapeOf);
    const su = await claimManual(["s", "u"]);
    await finishTries(h.db, new Date(), [done(su.get("s")!), done(su.get("u")!)], shapeOf);
    expect((await runRow(runId)).state).toBe("success");
  });

  it("answers problem JSON: 404 for an unknown DAG, run or task (naming it), 400 for a bad body", async () => {
    const runId = await h.trigger("clr_chain");
    expect((await finished(runId)).state).toBe("success");

    expectProblem(await clear("clr_chain", { dag_run_id: runId, task_ids: ["y", "nope", "nada"] }), 404, "BATON_TASK_NOT_FOUND", '"nope", "nada"');
    expectProblem(await clear("clr_chain", { dag_run_id: "no_such_run", task_ids: ["y"] }), 404, "BATON_DAG_RUN_NOT_FOUND", "no_such_run");
    expectProblem(await clear("clr_no_such_dag", { dag_run_id: runId, task_ids: ["y"] }), 404, "BATON_DAG_NOT_FOUND", "clr_no_such_dag");

    expectProblem(await clear("clr_chain", { dag_run_id: runId, dry_run: "maybe" }), 400, "BATON_VALIDATION_FAILED", "dry_run");
    expectProblem(await clear("clr_chain", { dag_run_id: runId, start_date: "2026-01-01T00:00:00Z" }), 400, "BATON_VALIDATION_FAILED", "start_date");
    expectProblem(await clear("clr_chain", { dag_run_id: runId, reset_dag_runs: false }), 400, "BATON_VALIDATION_FAILED", "reset_dag_runs");
    const bad = await h.app.inject({ method: "POST", url: "/api/v1/dags/clr_chain/clearTaskInstances", payload: "[", headers: { "content-type": "application/json" } });
    expectProblem(bad, 400, "BATON_VALIDATION_FAILED");

    // Airflow clients send the unsupported flags as false: accepted.
    const ok = await clear("clr_chain", { dag_run_id: runId, task_ids: ["y"], only_failed: false, include_past: false, include_future: false, include_subdags: false, reset_dag_runs: true });
    expect(ok.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["y"]);
    // A dry run (the default) changed nothing: new_state is the state it has.
    expect(ok.json().task_instances[0]).toMatchObject({ state: "success", new_state: "success" });
    expect((await runRow(runId)).state).toBe("success");
  });

  describe("baton tasks clear", () => {
    function baton(args: string[], apiUrl?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
      if (apiUrl) env.BATON_API_URL = apiUrl;
      else env.BATON_DATABASE_URL = h.db.url;
      const child = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      return new Promise((resolve) =>
        child.once("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        }),
      );
    }

    it("shows (--dry-run), refuses without --yes off a terminal, then clears with --yes; the run succeeds", async () => {
      const runId = await h.trigger("clr_flaky");
      expect((await finished(runId)).state).toBe("failed");
      const before = await tis(runId);

      const dry = await baton(["tasks", "clear", "clr_flaky", "--run-id", runId, "--only-failed", "--dry-run"]);
      expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: "" });
      expect(dry.stdout).toContain("would clear 2 task instance(s)");
      expect(dry.stdout).toMatch(/^\s+b\s+failed$/m);
      expect(dry.stdout).toMatch(/^\s+c\s+upstream_failed$/m);

      const unasked = await baton(["tasks", "clear", "clr_flaky", "-r", runId, "-t", "b", "--downstream"]);
      expect(unasked.code).toBe(1);
      expect(unasked.stderr).toContain("--yes");
      expect(await tis(runId)).toEqual(before);

      const unknown = await baton(["tasks", "clear", "clr_flaky", "-r", runId, "-t", "b,ghost", "--yes"]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("BATON_TASK_NOT_FOUND");
      expect(unknown.stderr).toContain('"ghost"');
      expect(unknown.stderr).not.toContain("    at ");

      // The states printed are the ones the clear left (b queued at once, c waiting for it), even
      // when the run has already finished again by the time the CLI gets the answer.
      const api = await heldApi(h.app, {
        hold: (req) => (req.url.endsWith("/clearTaskInstances") && (req.body as { dry_run?: boolean }).dry_run === false ? finished(runId) : undefined),
      });
      const real = await baton(["tasks", "clear", "clr_flaky", "-r", runId, "-t", "b", "--downstream", "--yes"], api.url).finally(api.close);
      // The run had finished again before the CLI got its answer (close() rejected if the wait did not end so).
      expect(api.outcomes.map((o) => [o.method, (o.value as { state?: string } | undefined)?.state])).toEqual([["POST", "success"]]);
      expect({ code: real.code, stderr: real.stderr }).toEqual({ code: 0, stderr: "" });
      expect(real.stdout).toContain("cleared 2 task instance(s)");
      expect(real.stdout).toMatch(/^\s+b\s+failed → queued$/m);
      expect(real.stdout).toMatch(/^\s+c\s+upstream_failed → none$/m);
      expect((await finished(runId)).state).toBe("success");
      expect(await states(runId)).toEqual({ a: "success#1", b: "success#2", c: "success#1" });
    });

    it("without --task-ids or an --only flag clears every task instance of the run (it was refused)", async () => {
      const runId = await h.trigger("clr_chain");
      expect((await finished(runId)).state).toBe("success");

      const dry = await baton(["tasks", "clear", "clr_chain", "--run-id", runId, "--dry-run"]);
      expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: "" });
      expect(dry.stdout).toContain("would clear 3 task instance(s)");
      for (const id of ["x", "y", "z"]) expect(dry.stdout).toMatch(new RegExp(`^\\s+${id}\\s+success$`, "m"));

      const real = await baton(["tasks", "clear", "clr_chain", "-r", runId, "--yes"]);
      expect({ code: real.code, stderr: real.stderr }).toEqual({ code: 0, stderr: "" });
      expect(real.stdout).toContain("cleared 3 task instance(s)");
      expect((await finished(runId)).state).toBe("success");
      expect(await states(runId)).toEqual({ x: "success#2", y: "success#2", z: "success#2" });
    });
  });
});
