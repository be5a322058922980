// Task-instance endpoints end to end: list filters and `~` across runs and DAGs, the batch list,
// marking states (PATCH …/taskInstances/{task_id}, POST …/updateTaskInstancesState), clearing
// across runs, log chunks with continuation tokens, and XCom listing. Real MariaDB and workers;
// tasks on the `tiq` queue are run by the test itself (claimTasks/finishTries) so every
// intermediate state is exact.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem, NAME_RULE_DETAIL, withControlCharacters } from "../helpers/expect.ts";
import { waitFor } from "../helpers/db.ts";
import { isTerminalTaskState } from "../../core/states.ts";
import { upstreamCountsOf } from "../../scheduler/clearSelection.ts";
import { evaluateTriggerRule } from "../../scheduler/triggerRules.ts";
import type { TriggerRule } from "../../sdk/types.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { beatTries } from "../../store/transitions/heartbeat.ts";
import { VersionCache } from "../../store/versions.ts";
import { LOG_CHUNK_BYTES, encodeLogToken } from "../../api/routes/taskInstances.ts";

// p → (q, r) → s (all_success); q → u (all_done). No worker serves tiq: the test runs the tasks.
const MANUAL = dagSource(`
export default dag({ id: "ti_manual" }, (t) => {
  const p = t.task("p", { queue: "tiq" }, async () => 0);
  const q = t.task("q", { queue: "tiq", upstream: [p], retries: 1 }, async () => 0);
  const r = t.task("r", { queue: "tiq", upstream: [p], pool: "ti_pool" }, async () => 0);
  t.task("s", { queue: "tiq", upstream: [q, r] }, async () => 0);
  t.task("u", { queue: "tiq", upstream: [q], triggerRule: "all_done" }, async () => 0);
});
`);

// Run by the harness's worker: a log of ~200 KB with multi-byte characters, and XComs.
const LOGGY = dagSource(`
export default dag({ id: "ti_loggy" }, (t) => {
  const big = t.task("big", async () => {
    for (let i = 0; i < 2000; i++) console.log("line " + i + " héllo wörld ✓ 𝄞 " + "x".repeat(60));
    return { lines: 2000 };
  });
  t.task("small", { upstream: [big] }, async (ctx) => "small after " + ctx.get(big).lines);
});
`);

// Run by the harness's worker: try 1 fails, try 2 runs until its run is cancelled.
const RETRYING = dagSource(`
export default dag({ id: "ti_retrying" }, (t) => {
  t.task("flaky", { retries: 1, retryDelay: 0 }, async (ctx) => {
    if (ctx.tryNumber === 1) throw new Error("first try broke");
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
  });
});
`);

interface Ti {
  id: number;
  task_id: string;
  state: string;
  try_number: number;
  trigger_rule: string;
  up_success: number;
  up_skipped: number;
  up_failed: number;
  up_upstream_failed: number;
  up_removed: number;
  claim_token: string | null;
  [key: string]: unknown;
}

describe("task instance endpoints", () => {
  const h = new Harness({ workers: 2, runIds: "numbered" });
  const enc = encodeURIComponent;
  let versions: VersionCache;
  const shapeOf = (hash: string) => versions.shape(hash);

  const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: "GET", url: `/api/v1${url}`, headers });
  const send = (method: "POST" | "PATCH", url: string, payload: object) => h.app.inject({ method, url: `/api/v1${url}`, payload });
  const tiUrl = (dagId: string, runId: string, taskId?: string) => `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances${taskId ? `/${enc(taskId)}` : ""}`;

  async function runRow(runId: string) {
    const [[r]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE run_id = ?", [runId]);
    return r!;
  }
  async function finished(runId: string) {
    return waitFor(`run ${runId} to finish`, async () => {
      const r = await runRow(runId);
      return ["success", "failed"].includes(r.state) ? r : null;
    }, 20_000);
  }
  async function tis(runId: string): Promise<Map<string, Ti>> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    return new Map(rows.map((r) => [r.task_id as string, r as unknown as Ti]));
  }
  async function states(runId: string) {
    return Object.fromEntries([...(await tis(runId))].map(([id, t]) => [id, t.state]));
  }
  async function occupied(pool: string) {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = ?", [pool]);
    return Number(row?.occupied_slots ?? 0);
  }
  /** Counters match upstream states, no waiting task is decidable (stuck), unfinished_tasks is right. */
  async function expectConsistent(runId: string) {
    const run = await runRow(runId);
    const shape = await versions.shape(run.version_hash);
    const rows = await tis(runId);
    const stateOf = (id: string) => rows.get(id)?.state;
    for (const t of rows.values()) {
      if (t.state !== "none" && t.state !== "scheduled") continue;
      const c = upstreamCountsOf(shape, t.task_id, stateOf);
      expect({ task: t.task_id, s: t.up_success, k: t.up_skipped, f: t.up_failed, uf: t.up_upstream_failed }).toEqual({
        task: t.task_id,
        s: c.success,
        k: c.skipped,
        f: c.failed,
        uf: c.upstreamFailed,
      });
      expect({ task: t.task_id, decision: evaluateTriggerRule(t.trigger_rule as TriggerRule, c) }).toEqual({ task: t.task_id, decision: "wait" });
    }
    if (run.state === "running") expect(run.unfinished_tasks).toBe([...rows.values()].filter((t) => !isTerminalTaskState(t.state)).length);
  }

  // Playing the worker for tiq.
  const token = (n: number) => String(n).padStart(32, "0");
  let tokens = 0;
  async function claim(taskIds: string[]): Promise<Map<string, ClaimedTask>> {
    const got = new Map<string, ClaimedTask>();
    await waitFor(`${taskIds.join(", ")} to be claimed`, async () => {
      for (const t of await claimTasks(h.db, { now: new Date(), limit: 10, queues: ["tiq"], hostname: "test", pid: 1, token: token(++tokens) })) got.set(t.taskId, t);
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
  async function finish(tasks: ClaimedTask[], outcome: FinishedTry["outcome"] = "success") {
    return finishTries(h.db, new Date(), tasks.map((t) => done(t, outcome, `${t.taskId} out`)), shapeOf);
  }
  /** A ti_manual run taken to: p success, q failed, r success, s upstream_failed, u success; the run failed. */
  async function failedManualRun(logicalDate?: string): Promise<string> {
    const runId = await h.trigger("ti_manual", { logicalDate });
    await finish([(await claim(["p"])).get("p")!]);
    const qr = await claim(["q", "r"]);
    await finish([qr.get("q")!], "failed");
    await finish([qr.get("r")!]);
    await finish([(await claim(["u"])).get("u")!]);
    expect((await runRow(runId)).state).toBe("failed");
    expect(await states(runId)).toEqual({ p: "success", q: "failed", r: "success", s: "upstream_failed", u: "success" });
    return runId;
  }

  let loggyRun = "";
  beforeAll(async () => {
    await h.start({ "manual.ts": MANUAL, "loggy.ts": LOGGY, "retrying.ts": RETRYING });
    await h.db.pool.query("INSERT INTO pool (name, slots, description) VALUES ('ti_pool', 10, 'for the test')");
    await h.run();
    versions = new VersionCache(h.db.pool);
    expect((await get("/importErrors")).json().import_errors).toEqual([]);
    loggyRun = await h.trigger("ti_loggy");
    expect((await finished(loggyRun)).state).toBe("success");
  });
  afterAll(() => h.stop());

  describe("GET …/taskInstances", () => {
    it("filters by state (repeatable), pool, queue, dates and duration, and pages by id", async () => {
      const runId = await failedManualRun("2030-01-01T00:00:00Z");
      const ids = async (query: string) => {
        const res = await get(`${tiUrl("ti_manual", runId)}?${query}`);
        expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
        return (res.json().task_instances as { task_id: string }[]).map((t) => t.task_id);
      };
      expect(await ids("")).toEqual(["p", "q", "r", "s", "u"]);
      expect(await ids("state=failed")).toEqual(["q"]);
      expect(await ids("state=failed&state=upstream_failed")).toEqual(["q", "s"]);
      expect(await ids("pool=ti_pool")).toEqual(["r"]);
      expect(await ids("pool=ti_pool&pool=default_pool")).toEqual(["p", "q", "r", "s", "u"]);
      expect(await ids("queue=tiq&state=success")).toEqual(["p", "r", "u"]);
      expect(await ids("queue=nope")).toEqual([]);
      expect(await ids("execution_date_gte=2030-01-01T00:00:00Z&execution_date_lte=2030-01-01T00:00:00Z")).toEqual(["p", "q", "r", "s", "u"]);
      expect(await ids("execution_date_gte=2030-01-01T00:00:00.001Z")).toEqual([]);
      expect(await ids("start_date_gte=2999-01-01T00:00:00Z")).toEqual([]);
      expect(await ids("start_date_lte=2000-01-01T00:00:00Z")).toEqual([]);
      expect(await ids("start_date_gte=2000-01-01T00:00:00Z&start_date_lte=2999-01-01T00:00:00Z&state=success&state=failed")).toEqual(["p", "q", "r", "u"]);
      expect(await ids("end_date_gte=2000-01-01T00:00:00Z&end_date_lte=2999-01-01T00:00:00Z")).toEqual(["p", "q", "r", "s", "u"]);
      expect(await ids("duration_gte=0&duration_lte=3600")).toEqual(["p", "q", "r", "u"]);
      expect(await ids("duration_gte=3600")).toEqual([]);

      const page1 = (await get(`${tiUrl("ti_manual", runId)}?limit=2`)).json();
      const page2 = (await get(`${tiUrl("ti_manual", runId)}?limit=2&offset=2`)).json();
      expect(page1.total_entries).toBe(5);
      expect([...page1.task_instances, ...page2.task_instances].map((t: { task_id: string }) => t.task_id)).toEqual(["p", "q", "r", "s"]);
      const q = page1.task_instances[1];
      expect(q).toMatchObject({ task_id: "q", dag_id: "ti_manual", dag_run_id: runId, state: "failed", execution_date: "2030-01-01T00:00:00.000Z", pool: "default_pool", queue: "tiq" });
      expect(q.error).toMatchObject({ message: "q failed for the test" });
    });

    it("lists across runs and DAGs with ~ (ordered by id), and answers 404 / 400 for bad input", async () => {
      const a = await failedManualRun();
      const b = await failedManualRun();
      const across = (await get(`${tiUrl("ti_manual", "~")}?state=failed&limit=1000`)).json();
      const runs = across.task_instances.map((t: { dag_run_id: string }) => t.dag_run_id);
      expect(runs).toEqual(expect.arrayContaining([a, b]));
      expect(across.task_instances.every((t: { task_id: string; dag_id: string }) => t.task_id === "q" && t.dag_id === "ti_manual")).toBe(true);
      expect(across.total_entries).toBe(across.task_instances.length);
      const everything = (await get("/dags/~/dagRuns/~/taskInstances?limit=1000")).json();
      const ids = everything.task_instances.map((t: { dag_id: string }) => t.dag_id);
      expect(new Set(ids)).toEqual(new Set(["ti_manual", "ti_loggy"]));
      // Stable order: the same page twice, and pages that tile the whole list.
      const p1 = (await get("/dags/~/dagRuns/~/taskInstances?limit=3")).json();
      const p2 = (await get("/dags/~/dagRuns/~/taskInstances?limit=3&offset=3")).json();
      expect([...p1.task_instances, ...p2.task_instances]).toEqual(everything.task_instances.slice(0, 6));
      const byRun = (await get(`/dags/~/dagRuns/${enc(loggyRun)}/taskInstances`)).json();
      expect(byRun.task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["big", "small"]);

      expectProblem(await get(tiUrl("ti_nope", "~")), 404, "BATON_DAG_NOT_FOUND", "ti_nope");
      expectProblem(await get(tiUrl("ti_manual", "no_such_run")), 404, "BATON_DAG_RUN_NOT_FOUND", "no_such_run");
      expectProblem(await get(`${tiUrl("ti_manual", a)}?state=bogus`), 400, "BATON_VALIDATION_FAILED", "state");
      expectProblem(await get(`${tiUrl("ti_manual", a)}?start_date_gte=yesterday`), 400, "BATON_VALIDATION_FAILED", "start_date_gte");
      expectProblem(await get(`${tiUrl("ti_manual", a)}?duration_gte=-1`), 400, "BATON_VALIDATION_FAILED", "duration_gte");
      expectProblem(await get(`${tiUrl("ti_manual", a)}?limit=-1`), 400, "BATON_VALIDATION_FAILED", "limit");
    });

    it("POST /dags/~/dagRuns/~/taskInstances/list filters by DAG, run, task and state, with page_offset / page_limit", async () => {
      const a = await failedManualRun();
      const list = (payload: object) => send("POST", "/dags/~/dagRuns/~/taskInstances/list", payload);
      const res = await list({ dag_ids: ["ti_manual", "ti_loggy"], dag_run_ids: [a, loggyRun], task_ids: ["q", "s", "small"], state: ["failed", "upstream_failed", "success"] });
      expect(res.statusCode).toBe(200);
      expect(res.json().task_instances.map((t: { dag_run_id: string; task_id: string }) => `${t.dag_run_id}/${t.task_id}`).sort()).toEqual(
        [`${a}/q`, `${a}/s`, `${loggyRun}/small`].sort(),
      );
      expect(res.json().total_entries).toBe(3);
      const paged = (await list({ dag_run_ids: [a], page_offset: 1, page_limit: 2 })).json();
      expect(paged).toMatchObject({ total_entries: 5 });
      expect(paged.task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["q", "r"]);
      expect((await list({ pool: ["ti_pool"], dag_run_ids: [a] })).json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["r"]);
      expectProblem(await list({ dag_idz: ["x"] }), 400, "BATON_VALIDATION_FAILED", "dag_idz");
      expectProblem(await list({ page_limit: -1 }), 400, "BATON_VALIDATION_FAILED", "page_limit");
      expectProblem(await list({ state: ["nope"] }), 400, "BATON_VALIDATION_FAILED", "state");
    });

    it("POST …/taskInstances/list takes an empty list as no filter, as Airflow does: every DAG's task instances", async () => {
      const list = (payload: object) => send("POST", "/dags/~/dagRuns/~/taskInstances/list", payload);
      // Task instances compared by id: tasks of other tests may change state meanwhile.
      const tis = async (payload: object) => {
        const body = (await list({ page_limit: 1000, ...payload })).json();
        return { total: body.total_entries, ids: body.task_instances.map((t: { dag_id: string; dag_run_id: string; task_id: string }) => `${t.dag_id}/${t.dag_run_id}/${t.task_id}`) };
      };
      const everything = await tis({});
      expect(new Set(everything.ids.map((id: string) => id.split("/")[0]))).toEqual(new Set(["ti_manual", "ti_loggy"]));
      // Airflow's get_task_instances_batch: no dag_ids (`if dag_ids:`) is every readable DAG; the
      // other lists go through _apply_array_filter, whose or_() of no condition filters nothing.
      expect(await tis({ dag_ids: [] })).toEqual(everything);
      expect(await tis({ dag_ids: [], dag_run_ids: [], task_ids: [], state: [], pool: [], queue: [] })).toEqual(everything);
      // A non-empty list still filters.
      const loggy = await tis({ dag_ids: ["ti_loggy"], dag_run_ids: [] });
      expect(loggy.ids.length).toBeGreaterThan(0);
      expect(loggy.ids.every((id: string) => id.startsWith("ti_loggy/"))).toBe(true);
      expect(loggy.total).toBe(everything.ids.filter((id: string) => id.startsWith("ti_loggy/")).length);
    });

    // No DAG, run or task id holds a control character (the SDK's id pattern, the trigger's run id
    // pattern): one that does is refused by the API's one name rule, in a path and in a batch body.
    it("refuses dag, run and task ids holding a control character or ending with a tab, in paths and batch bodies", async () => {
      const list = (payload: object) => send("POST", "/dags/~/dagRuns/~/taskInstances/list", payload);
      for (const [field, good] of [["dag_id", "ti_loggy"], ["dag_run_id", loggyRun], ["task_id", "small"]] as const) {
        for (const bad of withControlCharacters(good)) {
          const ids = { dag_id: "ti_loggy", dag_run_id: loggyRun, task_id: "small", [field]: bad };
          expectProblem(await get(tiUrl(ids.dag_id, ids.dag_run_id, ids.task_id)), 400, "BATON_VALIDATION_FAILED", `params.${field} ${NAME_RULE_DETAIL}`);
          const listField = `${field}s` as const;
          expectProblem(await list({ [listField]: [good, bad] }), 400, "BATON_VALIDATION_FAILED", `body.${listField}.1 ${NAME_RULE_DETAIL}`);
        }
      }
      expect((await get(tiUrl("ti_loggy", loggyRun, "small"))).statusCode).toBe(200);
      const res = await list({ dag_ids: ["ti_loggy"], dag_run_ids: [loggyRun], task_ids: ["small"] });
      expect(res.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["small"]);
    });
  });

  describe("a retried task instance", () => {
    it("shows no error while its next try runs; the failed try's error stays in that try's log; the cancel's is the new try's", async () => {
      const runId = await h.trigger("ti_retrying");
      const url = tiUrl("ti_retrying", runId, "flaky");
      await waitFor("try 2 of flaky to run", async () => {
        const ti = (await get(url)).json();
        return ti.state === "running" && ti.try_number === 2;
      }, 20_000);
      const running = (await get(url)).json();
      expect({ state: running.state, try_number: running.try_number, error: running.error }).toEqual({ state: "running", try_number: 2, error: null });
      const listed = (await get(tiUrl("ti_retrying", runId))).json().task_instances[0];
      expect({ task_id: listed.task_id, error: listed.error }).toEqual({ task_id: "flaky", error: null });
      expect((await get(`${url}/logs/1`)).body).toContain("first try broke");

      await send("PATCH", `/dags/ti_retrying/dagRuns/${enc(runId)}`, { state: "failed" });
      const cancelled = (await get(url)).json();
      expect({ state: cancelled.state, try_number: cancelled.try_number, code: cancelled.error?.code }).toEqual({
        state: "failed",
        try_number: 2,
        code: "BATON_DAG_RUN_CANCELLED",
      });
      await waitFor("the worker to drop the cancelled try", async () => h.worker!.runningCount === 0, 10_000);
    });
  });

  describe("marking states", () => {
    it("PATCH success on a failed task: its failed downstream is cleared, runs, and the run succeeds", async () => {
      const runId = await failedManualRun();
      const before = await tis(runId);
      const beforeRun = await runRow(runId);
      const url = tiUrl("ti_manual", runId, "q");

      const dry = await send("PATCH", url, { new_state: "success", dry_run: true });
      expect(dry.statusCode).toBe(200);
      const reference = { task_id: "q", dag_id: "ti_manual", dag_run_id: runId, execution_date: beforeRun.logical_date.toISOString() };
      // A dry run changes nothing: new_state is the state it has, the run's state the one it has.
      expect(dry.json()).toEqual({ ...reference, state: "failed", new_state: "failed", dag_run_state: "failed" });
      expect(await tis(runId)).toEqual(before);
      expect(await runRow(runId)).toEqual(beforeRun);

      const res = await send("PATCH", url, { new_state: "success" });
      expect(res.statusCode).toBe(200);
      // What the mark's transaction found and left: the run back to running, s queued.
      expect(res.json()).toEqual({ ...reference, state: "failed", new_state: "success", dag_run_state: "running" });
      const after = await tis(runId);
      expect(after.get("q")).toMatchObject({ state: "success", try_number: 1, error: null });
      // s was upstream_failed because of q: cleared and, with p, q and r succeeded, queued at once.
      expect(after.get("s")).toMatchObject({ state: "queued", up_success: 2, up_failed: 0 });
      expect(after.get("u")!.state).toBe("success");
      expect(await runRow(runId)).toMatchObject({ state: "running", end_date: null, unfinished_tasks: 1 });
      await expectConsistent(runId);

      await finish([(await claim(["s"])).get("s")!]);
      expect((await runRow(runId)).state).toBe("success");
      const events = (await h.db.pool.query<RowDataPacket[]>("SELECT from_state, to_state FROM event_log WHERE run_id = ? AND task_id = 'q' ORDER BY id", [runId]))[0];
      expect(events.at(-1)).toMatchObject({ from_state: "failed", to_state: "success" });
    });

    it("marking a running task fences its try: pool slot freed, heartbeat refused, late result discarded; downstream decided", async () => {
      const runId = await h.trigger("ti_manual");
      await finish([(await claim(["p"])).get("p")!]);
      const qr = await claim(["q", "r"]);
      const r = qr.get("r")!;
      expect(await occupied("ti_pool")).toBe(1);
      expect(await beatTries(h.db, new Date(), [{ id: r.id, tryNumber: r.tryNumber }], r.token)).toEqual(new Map([[r.id, r.tryNumber]]));

      const res = await send("PATCH", tiUrl("ti_manual", runId, "r"), { new_state: "failed" });
      expect(res.statusCode).toBe(200);
      expect(await occupied("ti_pool")).toBe(0);
      expect((await tis(runId)).get("r")).toMatchObject({ state: "failed", claim_token: null });
      expect(((await tis(runId)).get("r")!.error as string) ?? "").toContain("marked failed");
      // The worker's next heartbeat learns the try is no longer its own (it aborts it)...
      expect(await beatTries(h.db, new Date(), [{ id: r.id, tryNumber: r.tryNumber }], r.token)).toEqual(new Map());
      // ...and its late result is fenced.
      const late = await finish([r]);
      expect(late).toMatchObject({ fenced: [r.id], finished: [] });
      expect((await tis(runId)).get("r")!.state).toBe("failed");
      // s (all_success over q, r) is upstream_failed at once; q still runs; u waits for q.
      expect(await states(runId)).toEqual({ p: "success", q: "running", r: "failed", s: "upstream_failed", u: "none" });
      await expectConsistent(runId);

      // Marking the last running task ends the run: q skipped → u (all_done) queued → u runs → run decided.
      await send("PATCH", tiUrl("ti_manual", runId, "q"), { new_state: "skipped" });
      expect(await states(runId)).toEqual({ p: "success", q: "skipped", r: "failed", s: "upstream_failed", u: "queued" });
      await finish([(await claim(["u"])).get("u")!]);
      expect((await runRow(runId)).state).toBe("failed");
    });

    it("marking the last unfinished task finishes the run in the same request", async () => {
      const runId = await h.trigger("ti_manual");
      await finish([(await claim(["p"])).get("p")!]);
      const qr = await claim(["q", "r"]);
      await finish([qr.get("q")!, qr.get("r")!]);
      const su = await claim(["s", "u"]);
      await finish([su.get("s")!]);
      expect((await runRow(runId)).state).toBe("running");
      const res = await send("PATCH", tiUrl("ti_manual", runId, "u"), { new_state: "skipped" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ task_id: "u", state: "running", new_state: "skipped", dag_run_state: "success" });
      const run = await runRow(runId);
      expect(run).toMatchObject({ state: "success", unfinished_tasks: 0 });
      expect(run.end_date).not.toBeNull();
      expect(await finish([su.get("u")!])).toMatchObject({ fenced: [su.get("u")!.id] });
      // Marking a task of the finished run re-decides it.
      await send("PATCH", tiUrl("ti_manual", runId, "s"), { new_state: "failed" });
      expect((await runRow(runId)).state).toBe("failed");
      // Same state again: nothing changes.
      const again = await send("PATCH", tiUrl("ti_manual", runId, "s"), { new_state: "failed" });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ task_id: "s", state: "failed", new_state: "failed", dag_run_state: "failed" });
      expect((await runRow(runId)).state).toBe("failed");
    });

    it("POST updateTaskInstancesState: dry_run by default, include_downstream, then the run finishes", async () => {
      const runId = await h.trigger("ti_manual");
      await finish([(await claim(["p"])).get("p")!]);
      const before = await tis(runId);
      const url = "/dags/ti_manual/updateTaskInstancesState";
      const body = { task_id: "q", dag_run_id: runId, include_downstream: true, new_state: "skipped" };
      const dry = await send("POST", url, body);
      expect(dry.statusCode).toBe(200);
      const exec = (await runRow(runId)).logical_date.toISOString();
      expect(dry.json()).toEqual({
        task_instances: ["q", "s", "u"].map((task_id) => ({ task_id, dag_id: "ti_manual", dag_run_id: runId, execution_date: exec })),
      });
      expect(await tis(runId)).toEqual(before);

      const real = await send("POST", url, { ...body, dry_run: false });
      expect(real.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["q", "s", "u"]);
      // q was queued: never claimed now; r goes on.
      expect(await states(runId)).toEqual({ p: "success", q: "skipped", r: "queued", s: "skipped", u: "skipped" });
      const qr = await claim(["r"]);
      await finish([qr.get("r")!]);
      expect((await runRow(runId)).state).toBe("success");
      await expectConsistent(runId);
    });

    it("updateTaskInstancesState by execution_date with include_future marks the same task in later runs only", async () => {
      const early = await failedManualRun("2031-01-01T00:00:00Z");
      const middle = await failedManualRun("2031-02-01T00:00:00Z");
      const late = await failedManualRun("2031-03-01T00:00:00Z");
      const res = await send("POST", "/dags/ti_manual/updateTaskInstancesState", {
        execution_date: "2031-02-01T00:00:00Z",
        task_id: "q",
        include_future: true,
        new_state: "success",
        dry_run: false,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().task_instances.map((t: { dag_run_id: string }) => t.dag_run_id).sort()).toEqual([middle, late].sort());
      expect((await tis(early)).get("q")!.state).toBe("failed");
      for (const runId of [middle, late]) {
        expect(await states(runId)).toMatchObject({ q: "success", s: "queued" });
        await expectConsistent(runId);
      }
      // Both runs' s are queued: claim one at a time (claim() keys by task id).
      for (let i = 0; i < 2; i++) {
        const one = await claimTasks(h.db, { now: new Date(), limit: 1, queues: ["tiq"], hostname: "test", pid: 1, token: token(++tokens) });
        expect(one.map((t) => t.taskId)).toEqual(["s"]);
        await finish(one);
      }
      expect((await runRow(middle)).state).toBe("success");
      expect((await runRow(late)).state).toBe("success");
    });

    it("answers 400 / 404 for bad requests and writes nothing", async () => {
      const runId = await failedManualRun();
      const before = await tis(runId);
      expectProblem(await send("PATCH", tiUrl("ti_manual", runId, "q"), { new_state: "running" }), 400, "BATON_VALIDATION_FAILED", "new_state");
      expectProblem(await send("PATCH", tiUrl("ti_manual", runId, "q"), {}), 400, "BATON_VALIDATION_FAILED", "new_state");
      expectProblem(await send("PATCH", tiUrl("ti_manual", runId, "q"), { new_state: "success", note: "x" }), 400, "BATON_VALIDATION_FAILED", "note");
      expectProblem(await send("PATCH", tiUrl("ti_manual", runId, "ghost"), { new_state: "success" }), 404, "BATON_TASK_NOT_FOUND", "ghost");
      expectProblem(await send("PATCH", tiUrl("ti_manual", "no_run", "q"), { new_state: "success" }), 404, "BATON_DAG_RUN_NOT_FOUND");
      const url = "/dags/ti_manual/updateTaskInstancesState";
      expectProblem(await send("POST", url, { task_id: "q", new_state: "success" }), 400, "BATON_VALIDATION_FAILED", "dag_run_id");
      expectProblem(
        await send("POST", url, { task_id: "q", dag_run_id: runId, execution_date: "2031-01-01T00:00:00Z", new_state: "success" }),
        400,
        "BATON_VALIDATION_FAILED",
        "exactly one",
      );
      expectProblem(await send("POST", url, { task_id: "q", execution_date: "1999-01-01T00:00:00Z", new_state: "success" }), 404, "BATON_DAG_RUN_NOT_FOUND");
      expectProblem(await send("POST", url, { task_id: "ghost", dag_run_id: runId, new_state: "success" }), 404, "BATON_TASK_NOT_FOUND", "ghost");
      expectProblem(await send("POST", "/dags/ti_nope/updateTaskInstancesState", { task_id: "q", dag_run_id: runId, new_state: "success" }), 404, "BATON_DAG_NOT_FOUND");
      expect(await tis(runId)).toEqual(before);
    });
  });

  describe("clearTaskInstances across runs", () => {
    it("clears by a logical-date range, and with dag_run_id + include_past; start_date with dag_run_id is a 400", async () => {
      const a = await failedManualRun("2032-01-01T00:00:00Z");
      const b = await failedManualRun("2032-02-01T00:00:00Z");
      const c = await failedManualRun("2032-03-01T00:00:00Z");
      const clear = (payload: object) => send("POST", "/dags/ti_manual/clearTaskInstances", payload);
      const ranged = await clear({ start_date: "2032-01-15T00:00:00Z", end_date: "2032-03-01T00:00:00Z", task_ids: ["q"] });
      expect(ranged.statusCode).toBe(200);
      expect(ranged.json().task_instances.map((t: { dag_run_id: string; task_id: string; state: string }) => [t.dag_run_id, t.task_id, t.state])).toEqual([
        [b, "q", "failed"],
        [c, "q", "failed"],
      ]);
      const past = await clear({ dag_run_id: b, include_past: true, include_subdags: true, include_parentdag: false });
      // The named run first, then earlier runs (other tests' failed runs too), never later ones.
      const pastRefs = past.json().task_instances.map((t: { dag_run_id: string; task_id: string }) => `${t.dag_run_id}/${t.task_id}`);
      expect(pastRefs.slice(0, 2)).toEqual([`${b}/q`, `${b}/s`]);
      expect(pastRefs).toEqual(expect.arrayContaining([`${a}/q`, `${a}/s`]));
      expect(pastRefs.filter((r: string) => r.startsWith(`${c}/`))).toEqual([]);
      // Dry runs so far: nothing changed.
      expect((await runRow(a)).state).toBe("failed");
      const real = await clear({ start_date: "2032-01-01T00:00:00Z", end_date: "2032-01-01T00:00:00Z", dry_run: false });
      expect(real.json().total_entries).toBe(2);
      expect(await states(a)).toMatchObject({ q: "queued", s: "none" });
      expect((await runRow(a)).state).toBe("running");
      expect((await runRow(b)).state).toBe("failed");
      expectProblem(await clear({ dag_run_id: b, start_date: "2032-01-01T00:00:00Z" }), 400, "BATON_VALIDATION_FAILED", "start_date");
      expectProblem(await clear({ start_date: "2032-03-01T00:00:00Z", end_date: "2032-01-01T00:00:00Z" }), 400, "BATON_VALIDATION_FAILED", "after");
      expectProblem(await send("POST", "/dags/ti_nope/clearTaskInstances", {}), 404, "BATON_DAG_NOT_FOUND");
      // Leave nothing queued on tiq for later tests.
      await finish([(await claim(["q"])).get("q")!]);
      await finish([(await claim(["s"])).get("s")!]);
      expect((await runRow(a)).state).toBe("success");
    });
  });

  describe("logs", () => {
    const logUrl = (taskId: string, tryNumber = 1, query = "") => `${tiUrl("ti_loggy", loggyRun, taskId)}/logs/${tryNumber}${query}`;
    const json = { accept: "application/json" };

    it("returns 64 KiB chunks with a continuation token until the end; full_content returns it all", async () => {
      const full = await get(logUrl("big", 1, "?full_content=true"), json);
      expect(full.statusCode).toBe(200);
      expect(full.json().continuation_token).toBeNull();
      const whole = full.json().content as string;
      expect(Buffer.byteLength(whole)).toBeGreaterThan(2 * LOG_CHUNK_BYTES);
      expect(whole).toContain("line 1999 héllo wörld ✓ 𝄞");

      let joined = "";
      let chunks = 0;
      let tokenValue: string | null = null;
      do {
        const res = await get(logUrl("big", 1, tokenValue ? `?token=${tokenValue}` : ""), json);
        expect(res.statusCode).toBe(200);
        const body = res.json() as { content: string; continuation_token: string | null };
        expect(Buffer.byteLength(body.content)).toBeLessThanOrEqual(LOG_CHUNK_BYTES);
        expect(body.content).not.toContain("\uFFFD");
        joined += body.content;
        tokenValue = body.continuation_token;
        chunks++;
      } while (tokenValue && chunks < 20);
      expect(chunks).toBeGreaterThanOrEqual(3);
      expect(joined).toBe(whole);

      // text/plain: the first chunk, with the token in a header.
      const text = await get(logUrl("big"));
      expect(text.headers["content-type"]).toMatch(/^text\/plain/);
      expect(Buffer.byteLength(text.body)).toBeLessThanOrEqual(LOG_CHUNK_BYTES);
      expect(whole.startsWith(text.body)).toBe(true);
      expect(typeof text.headers["x-continuation-token"]).toBe("string");
      // A finished task's whole small log: one answer, no token.
      expect((await get(logUrl("small"), json)).json().continuation_token).toBeNull();
    });

    it("rejects a token it did not issue with 400 BATON_INVALID_CONTINUATION_TOKEN", async () => {
      const bad = (token: string) => get(logUrl("big", 1, `?token=${enc(token)}`), json);
      expectProblem(await bad("garbage!"), 400, "BATON_INVALID_CONTINUATION_TOKEN");
      expectProblem(await bad(Buffer.from("not json").toString("base64url")), 400, "BATON_INVALID_CONTINUATION_TOKEN");
      expectProblem(await bad(Buffer.from('{"o":-5}').toString("base64url")), 400, "BATON_INVALID_CONTINUATION_TOKEN");
      expectProblem(await bad(Buffer.from('{"o":"12"}').toString("base64url")), 400, "BATON_INVALID_CONTINUATION_TOKEN");
      expectProblem(await bad(encodeLogToken(10 ** 12)), 400, "BATON_INVALID_CONTINUATION_TOKEN", "past the end");
      expectProblem(await get(logUrl("big", 1, "?full_content=maybe"), json), 400, "BATON_VALIDATION_FAILED", "full_content");
    });

    it("a running try without a log yet answers empty content and a token (so a follower can wait)", async () => {
      const runId = await h.trigger("ti_manual");
      const p = (await claim(["p"])).get("p")!;
      const res = await get(`${tiUrl("ti_manual", runId, "p")}/logs/1`, json);
      expect(res.statusCode).toBe(200);
      expect(res.json().content).toBe("");
      expect(typeof res.json().continuation_token).toBe("string");
      await send("PATCH", tiUrl("ti_manual", runId, "p"), { new_state: "failed" });
      expect(await finish([p])).toMatchObject({ fenced: [p.id] });
      // Ended and never wrote a log: 404.
      expectProblem(await get(`${tiUrl("ti_manual", runId, "p")}/logs/1`, json), 404, "BATON_LOG_NOT_FOUND");
      await finish([(await claim(["u"])).get("u")!]);
    });

    it("ids with ../ cannot reach files outside the logs folder", async () => {
      // Through the URL: encoded slashes and dots only ever name rows, which do not exist.
      for (const url of [
        "/dags/..%2F..%2F..%2Fetc/dagRuns/..%2F../taskInstances/..%2Fpasswd/logs/1",
        `/dags/ti_loggy/dagRuns/${enc(loggyRun)}/taskInstances/..%2F..%2F..%2F..%2Fbig/logs/1`,
        "/dags/ti_loggy/dagRuns/..%2F..%2F..%2F..%2F..%2F..%2Fetc/taskInstances/big/logs/1",
      ]) {
        const res = await h.app.inject({ method: "GET", url: `/api/v1${url}` });
        expect({ url, status: res.statusCode }).toEqual({ url, status: 404 });
        expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      }
      // Even a stored row with such an id (written around the SDK's checks) stays inside: the
      // file an unsanitized path would name exists and holds a secret; the API never serves it.
      const evil = "x/../../../../outside";
      const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE run_id = ?", [loggyRun]);
      await h.db.pool.query(
        "INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, state, try_number) VALUES (?, 'ti_loggy', ?, ?, 'success', 1)",
        [run!.id, loggyRun, evil],
      );
      const naive = path.join(h.logsFolder, "dag_id=ti_loggy", `run_id=${loggyRun}`, `task_id=${evil}`, "attempt=1.log");
      expect(naive.startsWith(h.logsFolder + path.sep)).toBe(false);
      await mkdir(path.dirname(naive), { recursive: true });
      await writeFile(naive, "SECRET-OUTSIDE-LOGS\n");
      const res = await get(`${tiUrl("ti_loggy", loggyRun, evil)}/logs/1?full_content=true`, json);
      expect(res.body).not.toContain("SECRET-OUTSIDE-LOGS");
      expectProblem(res, 404, "BATON_LOG_NOT_FOUND");
      await h.db.pool.query("DELETE FROM task_instance WHERE task_id = ?", [evil]);
    });
  });

  describe("XCom", () => {
    it("lists a task instance's entries, a run's with ~, and gets one as value or JSON text", async () => {
      const url = `${tiUrl("ti_loggy", loggyRun, "small")}/xcomEntries`;
      const res = await get(url);
      expect(res.statusCode).toBe(200);
      const execution = (await runRow(loggyRun)).logical_date.toISOString();
      expect(res.json()).toEqual({
        xcom_entries: [
          { key: "return_value", timestamp: expect.any(String), execution_date: execution, task_id: "small", dag_id: "ti_loggy", dag_run_id: loggyRun, map_index: -1 },
        ],
        total_entries: 1,
      });
      const run = (await get(`${tiUrl("ti_loggy", loggyRun, "~")}/xcomEntries`)).json();
      expect(run.xcom_entries.map((x: { task_id: string }) => x.task_id)).toEqual(["big", "small"]);
      const all = (await get("/dags/~/dagRuns/~/taskInstances/~/xcomEntries?xcom_key=return_value&limit=1000")).json();
      expect(all.total_entries).toBeGreaterThanOrEqual(2);
      expect((await get(`${url}?xcom_key=nope`)).json()).toEqual({ xcom_entries: [], total_entries: 0 });

      const entry = await get(`${url}/return_value`);
      expect(entry.json()).toMatchObject({ key: "return_value", value: "small after 2000" });
      expect((await get(`${tiUrl("ti_loggy", loggyRun, "big")}/xcomEntries/return_value?stringify=true`)).json().value).toBe('{"lines":2000}');
      expect((await get(`${tiUrl("ti_loggy", loggyRun, "big")}/xcomEntries/return_value?deserialize=false`)).json().value).toBe('{"lines":2000}');
      expect((await get(`${tiUrl("ti_loggy", loggyRun, "big")}/xcomEntries/return_value`)).json().value).toEqual({ lines: 2000 });

      expectProblem(await get(`${tiUrl("ti_loggy", loggyRun, "ghost")}/xcomEntries`), 404, "BATON_TASK_NOT_FOUND");
      expectProblem(await get(`${tiUrl("ti_loggy", "no_run", "small")}/xcomEntries`), 404, "BATON_DAG_RUN_NOT_FOUND");
      expectProblem(await get(`${url}?limit=-5000`), 400, "BATON_VALIDATION_FAILED", "limit");
    });

    // No XCom key holds a control character or ends with whitespace (a DAG writes return_value
    // only): such a key is refused by the API's one name rule rather than looked up.
    it("refuses an xcom_key holding a control character or ending with a tab, in the path and as a filter", async () => {
      const url = `${tiUrl("ti_loggy", loggyRun, "small")}/xcomEntries`;
      for (const key of withControlCharacters("return_value")) {
        expectProblem(await get(`${url}/${enc(key)}`), 400, "BATON_VALIDATION_FAILED", `params.xcom_key ${NAME_RULE_DETAIL}`);
        expectProblem(await get(`${url}?xcom_key=${enc(key)}`), 400, "BATON_VALIDATION_FAILED", `querystring.xcom_key ${NAME_RULE_DETAIL}`);
      }
      expect((await get(`${url}/return_value`)).statusCode).toBe(200);
      expect((await get(`${url}?xcom_key=return_value`)).json().total_entries).toBe(1);
    });
  });

  it("documents every route with Airflow's operationId, tags and a 200 response schema", async () => {
    const doc = (await h.app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json() as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; responses?: Record<string, unknown> }>>;
    };
    const ti = "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances";
    const expected: [string, string, string][] = [
      [ti, "get", "get_task_instances"],
      ["/api/v1/dags/~/dagRuns/~/taskInstances/list", "post", "get_task_instances_batch"],
      [`${ti}/{task_id}`, "get", "get_task_instance"],
      [`${ti}/{task_id}`, "patch", "patch_task_instance"],
      ["/api/v1/dags/{dag_id}/updateTaskInstancesState", "post", "post_set_task_instances_state"],
      ["/api/v1/dags/{dag_id}/clearTaskInstances", "post", "post_clear_task_instances"],
      [`${ti}/{task_id}/logs/{try_number}`, "get", "get_log"],
      [`${ti}/{task_id}/xcomEntries`, "get", "get_xcom_entries"],
      [`${ti}/{task_id}/xcomEntries/{xcom_key}`, "get", "get_xcom_entry"],
      [`${ti}/{task_id}/reschedules`, "get", "get_task_instance_reschedules"],
    ];
    for (const [p, method, operationId] of expected) {
      const op = doc.paths[p]?.[method];
      expect({ p, method, operationId: op?.operationId }).toEqual({ p, method, operationId });
      expect(op!.tags?.length).toBeGreaterThan(0);
      expect(op!.responses?.["200"]).toBeDefined();
    }
  });
});
