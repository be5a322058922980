// DAG and DAG-run endpoints shaped like Airflow's: list filters and order_by, details and tasks,
// bulk pause, run filters and the batch list, marking runs success/failed/queued, deleting runs
// and DAGs (cascades, 409 while tasks run), /version and /config. Real MariaDB and workers.
import { rm } from "node:fs/promises";
import type { LightMyRequestResponse } from "fastify";
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem } from "../helpers/expect.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { configSections } from "../../api/routes/system.ts";
import { ContractValidator, operationsOf, specOf } from "../helpers/openapi.ts";

const DAGS = dagSource(`
export const alpha = dag({
  id: "apid_alpha", description: "Alpha pipeline", tags: ["finance", "daily"], owner: "ana", params: { rows: 10 },
  dagrunTimeout: "1h", startDate: "2026-01-01", catchup: false,
  defaultArgs: { retries: 2, retryDelay: "30s", executionTimeout: "10m" },
}, (t) => {
  const extract = t.task("extract", async () => 1);
  const transform = t.task("transform", { upstream: [extract], retries: 5, triggerRule: "all_done" }, async () => 2);
  t.task("load", { upstream: [transform], description: "writes rows" }, async () => 3);
});
export const beta = dag({ id: "apid_beta", tags: ["ops"] }, (t) => { t.task("x", async () => 1); });
export const xalpha = dag({ id: "apidxalpha", tags: ["finance"] }, (t) => { t.task("x", async () => 1); });
export const gamma = dag({ id: "apid_gamma" }, (t) => { t.task("x", async () => 1); });
export const hist = dag({ id: "apid_hist", isPausedUponCreation: true }, (t) => { t.task("x", async () => 1); });
export const pages = dag({ id: "apid_pages", isPausedUponCreation: true }, (t) => { t.task("x", async () => 1); });
export const quick = dag({ id: "apid_quick" }, (t) => {
  const a = t.task("a", async (ctx) => ctx.step("one", async () => 1));
  t.task("b", { upstream: [a] }, async (ctx) => ctx.get(a) + 1);
});
export const waiter = dag({ id: "apid_waiter" }, (t) => {
  const a = t.task("a", async (ctx) => ctx.step("one", async () => 1));
  const go = t.waitForSignal("go", { signal: "go", upstream: [a] });
  t.task("b", { upstream: [go] }, async (ctx) => ctx.get(go));
});
export const sleeper = dag({ id: "apid_sleeper" }, (t) => {
  t.task("hold", async (ctx) => { await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve)); });
});
export const doomed = dag({ id: "apid_doomed", schedule: "@daily", startDate: "2026-01-01", catchup: false, isPausedUponCreation: true }, (t) => {
  const s = t.task("s", async (ctx) => ctx.step("one", async () => "stepped"));
  t.task("after", { upstream: [s] }, async () => "done");
});
`);
const GONE = dagSource(`export default dag({ id: "apid_gone" }, (t) => { t.task("x", async () => 1); });`);

const enc = encodeURIComponent;
type Json = Record<string, any>;

describe("DAG and DAG run API", () => {
  const h = new Harness({ workers: 2, heartbeatMs: 200, killGraceMs: 500 });
  /** Every answer, checked against the OpenAPI document by the last test. */
  const answers: { method: string; url: string; res: LightMyRequestResponse }[] = [];
  const call = async (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: object) => {
    const res = await h.app.inject({ method, url: `/api/v1${url}`, ...(payload === undefined ? {} : { payload }) });
    answers.push({ method, url: `/api/v1${url}`.split("?")[0]!, res });
    return res;
  };
  const get = (url: string) => call("GET", url);
  const send = (method: "POST" | "PATCH" | "DELETE", url: string, payload?: object) => call(method, url, payload);
  const ids = (res: LightMyRequestResponse, key: string, field: string) => (res.json()[key] as Json[]).map((x) => x[field] as string);
  const trigger = async (dagId: string, body: object = {}) => {
    const res = await send("POST", `/dags/${dagId}/dagRuns`, body);
    expect(res.statusCode).toBe(200);
    return res.json().dag_run_id as string;
  };
  const runState = async (dagId: string, runId: string) => (await get(`/dags/${dagId}/dagRuns/${enc(runId)}`)).json().state as string;
  const waitRun = (dagId: string, runId: string, states: string[]) =>
    waitFor(`run ${dagId}/${runId} in ${states}`, async () => states.includes(await runState(dagId, runId)), 20_000);
  const count = async (sql: string, params: unknown[]) => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>(sql, params);
    return Number(row!.n);
  };
  /** Rows of every table that hangs off a run. */
  const runRows = async (dagRunId: number) => ({
    task_instance: await count("SELECT COUNT(*) AS n FROM task_instance WHERE dag_run_id = ?", [dagRunId]),
    xcom: await count("SELECT COUNT(*) AS n FROM xcom WHERE dag_run_id = ?", [dagRunId]),
    run_signal: await count("SELECT COUNT(*) AS n FROM run_signal WHERE dag_run_id = ?", [dagRunId]),
    event_log: await count("SELECT COUNT(*) AS n FROM event_log WHERE dag_run_id = ?", [dagRunId]),
    task_step: await count("SELECT COUNT(*) AS n FROM task_step s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_run_id = ?", [dagRunId]),
    dag_run: await count("SELECT COUNT(*) AS n FROM dag_run WHERE id = ?", [dagRunId]),
  });
  const dagRunIdOf = async (runId: string) => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE run_id = ?", [runId]);
    return Number(row!.id);
  };

  beforeAll(async () => {
    await h.start({ "dags.ts": DAGS, "gone.ts": GONE });
    await h.run();
    await rm(await h.writeDag("gone.ts", GONE));
    await h.processor.scan();
  }, 60_000);
  afterAll(() => h.stop());

  describe("GET /dags", () => {
    it("filters by tags (any), dag_id_pattern (case-insensitive, LIKE-escaped), only_active and paused", async () => {
      expect(ids(await get("/dags?tags=ops&tags=daily"), "dags", "dag_id")).toEqual(["apid_alpha", "apid_beta"]);
      expect(ids(await get("/dags?tags=finance"), "dags", "dag_id")).toEqual(["apid_alpha", "apidxalpha"]);
      const pattern = await get("/dags?dag_id_pattern=D_A");
      expect(pattern.json()).toMatchObject({ total_entries: 1, dags: [{ dag_id: "apid_alpha" }] });
      expect((await get(`/dags?dag_id_pattern=${enc("%")}`)).json()).toEqual({ dags: [], total_entries: 0 });
      expect(ids(await get("/dags"), "dags", "dag_id")).not.toContain("apid_gone");
      expect((await get("/dags?only_active=false&dag_id_pattern=gone")).json().dags).toEqual([expect.objectContaining({ dag_id: "apid_gone", is_active: false })]);
      expect(ids(await get("/dags?paused=true&dag_id_pattern=apid_"), "dags", "dag_id")).toEqual(["apid_doomed", "apid_hist", "apid_pages"]);
    });

    it("orders by dag_id, last_parsed_time and next_dagrun, either way, breaking ties by dag_id", async () => {
      const all = ids(await get("/dags?limit=1000"), "dags", "dag_id");
      expect(all).toEqual([...all].sort());
      expect(ids(await get("/dags?order_by=-dag_id&limit=1000"), "dags", "dag_id")).toEqual([...all].reverse());
      const parsed = (await get("/dags?order_by=last_parsed_time&limit=1000")).json().dags as Json[];
      for (let i = 1; i < parsed.length; i++) {
        const [a, b] = [parsed[i - 1]!, parsed[i]!];
        expect(a.last_parsed_time < b.last_parsed_time || (a.last_parsed_time === b.last_parsed_time && a.dag_id < b.dag_id)).toBe(true);
      }
      // Unscheduled DAGs all have next_dagrun null: one page at a time gives the same order, no repeats.
      const full = ids(await get("/dags?order_by=-next_dagrun&limit=1000"), "dags", "dag_id");
      const paged: string[] = [];
      for (let offset = 0; offset < full.length; offset++) paged.push(...ids(await get(`/dags?order_by=-next_dagrun&limit=1&offset=${offset}`), "dags", "dag_id"));
      expect(paged).toEqual(full);
      const nulls = (await get("/dags?order_by=-next_dagrun&limit=1000")).json().dags.filter((d: Json) => d.next_dagrun === null).map((d: Json) => d.dag_id);
      expect(nulls).toEqual([...nulls].sort().reverse());
    });

    it("answers 400 naming the field for a bad order_by, paging value or boolean", async () => {
      expectProblem(await get("/dags?order_by=fileloc"), 400, "BATON_VALIDATION_FAILED", "order_by");
      expectProblem(await get("/dags?order_by=--dag_id"), 400, "BATON_VALIDATION_FAILED", "order_by");
      expectProblem(await get("/dags?limit=-1"), 400, "BATON_VALIDATION_FAILED", "limit");
      expectProblem(await get("/dags?only_active=maybe"), 400, "BATON_VALIDATION_FAILED", "only_active");
    });
  });

  describe("details and tasks", () => {
    it("GET /dags/{id}/details adds what the latest version declares", async () => {
      const res = await get("/dags/apid_alpha/details");
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        dag_id: "apid_alpha",
        description: "Alpha pipeline",
        tags: [{ name: "finance" }, { name: "daily" }],
        is_paused: false,
        catchup: false,
        start_date: "2026-01-01T00:00:00.000Z",
        end_date: null,
        dag_run_timeout: { __type: "TimeDelta", days: 0, seconds: 3600, microseconds: 0 },
        params: { rows: 10 },
        default_view: "grid",
        timezone: "UTC",
        concurrency: 16,
      });
      expect(Object.keys(res.json())).toEqual(expect.arrayContaining(Object.keys((await get("/dags/apid_alpha")).json())));
    });

    it("GET /dags/{id}/tasks lists the latest version's tasks by task_id, GET …/tasks/{task_id} one", async () => {
      const res = await get("/dags/apid_alpha/tasks");
      expect(res.statusCode).toBe(200);
      expect(res.json().total_entries).toBe(3);
      expect(ids(res, "tasks", "task_id")).toEqual(["extract", "load", "transform"]);
      expect(ids(await get("/dags/apid_alpha/tasks?order_by=-task_id"), "tasks", "task_id")).toEqual(["transform", "load", "extract"]);
      const transform = await get("/dags/apid_alpha/tasks/transform");
      expect(transform.json()).toMatchObject({
        task_id: "transform",
        operator_name: "task",
        class_ref: { module_path: "baton", class_name: "task" },
        owner: "ana",
        trigger_rule: "all_done",
        retries: 5,
        retry_delay: { __type: "TimeDelta", days: 0, seconds: 30, microseconds: 0 },
        execution_timeout: { __type: "TimeDelta", days: 0, seconds: 600, microseconds: 0 },
        pool: "default_pool",
        pool_slots: 1,
        queue: "default",
        depends_on_past: false,
        downstream_task_ids: ["load"],
        upstream_task_ids: ["extract"],
      });
      expect((await get("/dags/apid_alpha/tasks/load")).json()).toMatchObject({ doc_md: "writes rows", downstream_task_ids: [] });
    });

    it("answers 404 for an unknown DAG or task", async () => {
      for (const url of ["/dags/apid_nope/details", "/dags/apid_nope/tasks", "/dags/apid_nope/tasks/x"]) expectProblem(await get(url), 404, "BATON_DAG_NOT_FOUND", "apid_nope");
      expectProblem(await get("/dags/apid_alpha/tasks/nope"), 404, "BATON_TASK_NOT_FOUND", "nope");
    });
  });

  describe("PATCH /dags", () => {
    it("PATCH /dags/{id} takes update_mask=is_paused and refuses other fields", async () => {
      const res = await send("PATCH", "/dags/apid_gamma?update_mask=is_paused", { is_paused: true });
      expect(res.json()).toMatchObject({ dag_id: "apid_gamma", is_paused: true });
      expectProblem(await send("PATCH", "/dags/apid_gamma?update_mask=description", { is_paused: true }), 400, "BATON_VALIDATION_FAILED", "update_mask");
      expect((await send("PATCH", "/dags/apid_gamma", { is_paused: false })).json().is_paused).toBe(false);
    });

    it("PATCH /dags pauses and unpauses the DAGs matching dag_id_pattern, and only those", async () => {
      const res = await send("PATCH", "/dags?dag_id_pattern=alpha", { is_paused: true });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ total_entries: 2, dags: [{ dag_id: "apid_alpha", is_paused: true }, { dag_id: "apidxalpha", is_paused: true }] });
      expect(ids(await get("/dags?paused=true&dag_id_pattern=apid"), "dags", "dag_id")).toEqual(["apid_alpha", "apid_doomed", "apid_hist", "apid_pages", "apidxalpha"]);
      expect((await send("PATCH", "/dags?dag_id_pattern=alpha", { is_paused: false })).json().dags.map((d: Json) => d.is_paused)).toEqual([false, false]);
      expectProblem(await send("PATCH", "/dags", { is_paused: true }), 400, "BATON_VALIDATION_FAILED", "dag_id_pattern");
      expect((await get("/dags?paused=true&dag_id_pattern=apid_beta")).json().total_entries).toBe(0);
    });
  });

  describe("run lists", () => {
    const HIST = ["h1", "h2", "h3", "h4"];
    beforeAll(async () => {
      for (const [i, runId] of HIST.entries()) await trigger("apid_hist", { dag_run_id: runId, logical_date: `2026-01-0${i + 1}T00:00:00Z` });
      for (const [runId, state, day] of [["h1", "success", 1], ["h2", "failed", 2], ["h3", "success", 3]] as const) {
        await h.db.pool.query("UPDATE dag_run SET state = ?, start_date = ?, end_date = ? WHERE dag_id = 'apid_hist' AND run_id = ?", [
          state,
          new Date(`2026-01-0${day}T01:00:00Z`),
          new Date(`2026-01-0${day}T02:00:00Z`),
          runId,
        ]);
      }
    });
    const list = async (query: string) => ids(await get(`/dags/apid_hist/dagRuns?${query}`), "dag_runs", "dag_run_id");

    it("filters by state (repeatable) and by execution, start and end date ranges", async () => {
      expect(await list("")).toEqual(HIST);
      expect(await list("state=success&state=failed")).toEqual(["h1", "h2", "h3"]);
      expect(await list("execution_date_gte=2026-01-02T00:00:00Z&execution_date_lte=2026-01-03T00:00:00Z")).toEqual(["h2", "h3"]);
      expect(await list("start_date_gte=2026-01-02T00:00:00Z")).toEqual(["h2", "h3"]);
      expect(await list("end_date_lte=2026-01-02T02:00:00Z")).toEqual(["h1", "h2"]);
      expect((await get("/dags/apid_hist/dagRuns?state=success&limit=1")).json()).toMatchObject({ total_entries: 2, dag_runs: [{ dag_run_id: "h1" }] });
    });

    it("orders by any allowed field, either way, breaking ties by id in the same direction", async () => {
      expect(await list("order_by=-execution_date")).toEqual(["h4", "h3", "h2", "h1"]);
      expect(await list("order_by=state")).toEqual(["h2", "h4", "h1", "h3"]);
      expect(await list("order_by=-state")).toEqual(["h3", "h1", "h4", "h2"]);
      expect(await list("order_by=-id")).toEqual(["h4", "h3", "h2", "h1"]);
      expect(await list("order_by=dag_run_id")).toEqual(HIST);
    });

    it("lists every DAG's runs under ~", async () => {
      const quickRun = await trigger("apid_quick", { dag_run_id: "tilde_probe" });
      const all = (await get("/dags/~/dagRuns?limit=1000")).json().dag_runs as Json[];
      expect(all.map((r) => `${r.dag_id}/${r.dag_run_id}`)).toEqual(expect.arrayContaining(["apid_hist/h1", `apid_quick/${quickRun}`]));
      await waitRun("apid_quick", quickRun, ["success"]);
    });

    it("answers 400 naming the field for a bad date, state or order_by, and 404 for an unknown DAG", async () => {
      expectProblem(await get("/dags/apid_hist/dagRuns?execution_date_gte=yesterday"), 400, "BATON_VALIDATION_FAILED", "execution_date_gte");
      expectProblem(await get("/dags/apid_hist/dagRuns?end_date_lte=2026-13-01T00:00:00Z"), 400, "BATON_VALIDATION_FAILED", "end_date_lte");
      expectProblem(await get("/dags/apid_hist/dagRuns?state=done"), 400, "BATON_VALIDATION_FAILED", "state");
      expectProblem(await get("/dags/apid_hist/dagRuns?order_by=conf"), 400, "BATON_VALIDATION_FAILED", "order_by");
      expectProblem(await get("/dags/apid_nope/dagRuns"), 404, "BATON_DAG_NOT_FOUND", "apid_nope");
    });

    it("POST /dags/~/dagRuns/list filters by dag_ids, states and dates, with page_offset/page_limit and order_by", async () => {
      const batch = (body: object) => send("POST", "/dags/~/dagRuns/list", body);
      const res = await batch({ dag_ids: ["apid_hist"], states: ["success", "failed"], order_by: "-execution_date", page_offset: 1, page_limit: 2 });
      expect(res.statusCode).toBe(200);
      expect(res.json().total_entries).toBe(3);
      expect(ids(res, "dag_runs", "dag_run_id")).toEqual(["h2", "h1"]);
      const ranged = await batch({ dag_ids: ["apid_hist", "apid_nope"], execution_date_gte: "2026-01-03T00:00:00Z", start_date_lte: "2026-01-03T01:00:00Z" });
      expect(ids(ranged, "dag_runs", "dag_run_id")).toEqual(["h3"]);
      const everything = await h.app.inject({ method: "POST", url: "/api/v1/dags/~/dagRuns/list", payload: { page_limit: 1000 } });
      expect(everything.json().total_entries).toBe(await count("SELECT COUNT(*) AS n FROM dag_run", []));
      expect(new Set(ids(everything, "dag_runs", "dag_id")).size).toBeGreaterThan(1);
      // An empty list filters nothing, as in Airflow's get_dag_runs_batch (`if data.get("dag_ids")`,
      // `if states`): every DAG's runs, in every state.
      // (Runs compared by id: a run of another test may change state meanwhile.)
      const runs = (res: LightMyRequestResponse) => ({ total: res.json().total_entries, runs: (res.json().dag_runs as Json[]).map((r) => `${r.dag_id}/${r.dag_run_id}`) });
      expect(runs(await batch({ dag_ids: [], page_limit: 1000 }))).toEqual(runs(everything));
      expect(runs(await batch({ dag_ids: [], states: [], page_limit: 1000 }))).toEqual(runs(everything));
      expect((await batch({ dag_ids: ["apid_hist"], states: [] })).json().total_entries).toBe(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = ?", ["apid_hist"]));
      expectProblem(await batch({ dag_ids: ["apid_hist"], bogus: 1 }), 400, "BATON_VALIDATION_FAILED", "bogus");
      expectProblem(await batch({ start_date_gte: "soon" }), 400, "BATON_VALIDATION_FAILED", "start_date_gte");
      expectProblem(await batch({ page_limit: -1 }), 400, "BATON_VALIDATION_FAILED", "page_limit");
      expectProblem(await batch({ order_by: "-conf" }), 400, "BATON_VALIDATION_FAILED", "order_by");
    });

    it("a deep page (offset 1,000+, its ids read from the index first) lists what the plain order lists", async () => {
      await h.db.pool.query(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, queued_at)
         SELECT 'apid_deep', CONCAT('deep_', LPAD(seq, 5, '0')), REPEAT('0', 64), 'manual', 'success', UTC_TIMESTAMP(6) FROM seq_1_to_1010`,
      );
      const [expected] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 5 OFFSET 1002");
      const res = await get(`/dags/~/dagRuns?limit=5&offset=1002&order_by=-id`);
      expect(ids(res, "dag_runs", "dag_run_id")).toEqual(expected.map((r) => r.run_id));
      expect(res.json().total_entries).toBeGreaterThanOrEqual(1010);
    });

    it("pages stay stable while runs are created between pages", async () => {
      for (const runId of ["p1", "p2", "p3", "p4", "p5"]) await trigger("apid_pages", { dag_run_id: runId });
      const seen: string[] = [];
      for (let offset = 0, n = 0; offset < 7; offset += 2, n++) {
        seen.push(...ids(await get(`/dags/apid_pages/dagRuns?limit=2&offset=${offset}`), "dag_runs", "dag_run_id"));
        await trigger("apid_pages", { dag_run_id: `late${n}` });
      }
      expect(seen.slice(0, 5)).toEqual(["p1", "p2", "p3", "p4", "p5"]);
      expect(new Set(seen).size).toBe(seen.length);
    });
  });

  describe("PATCH …/dagRuns/{id} state", () => {
    it("success marks every task that did not succeed success, frees pool slots and ends the run", async () => {
      const runId = await trigger("apid_sleeper", { dag_run_id: "mark_success" });
      await waitFor("hold to run", async () => (await get(`/dags/apid_sleeper/dagRuns/mark_success/taskInstances/hold`)).json().state === "running", 20_000);
      const res = await send("PATCH", `/dags/apid_sleeper/dagRuns/${runId}`, { state: "success" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ dag_run_id: "mark_success", state: "success" });
      expect(res.json().end_date).not.toBeNull();
      expect((await get(`/dags/apid_sleeper/dagRuns/mark_success/taskInstances/hold`)).json()).toMatchObject({ state: "success" });
      expect(await count("SELECT occupied_slots AS n FROM pool WHERE name = 'default_pool'", [])).toBe(0);
      // The worker notices its claim is gone and aborts the task; its result is discarded (fenced).
      await waitFor("the worker to let go of the aborted try", async () => h.worker!.runningCount === 0, 10_000);
      expect((await get(`/dags/apid_sleeper/dagRuns/mark_success/taskInstances/hold`)).json().state).toBe("success");
      expect((await send("PATCH", `/dags/apid_sleeper/dagRuns/${runId}`, { state: "success" })).json().state).toBe("success");
    });

    it("queued clears every task so a finished run runs again; failed cancels; compensate only goes with failed", async () => {
      const runId = await trigger("apid_quick", { dag_run_id: "again" });
      await waitRun("apid_quick", runId, ["success"]);
      const res = await send("PATCH", `/dags/apid_quick/dagRuns/${runId}`, { state: "queued" });
      expect(res.statusCode).toBe(200);
      expect(["queued", "running", "success"]).toContain(res.json().state);
      await waitRun("apid_quick", runId, ["success"]);
      const tis = (await get(`/dags/apid_quick/dagRuns/${runId}/taskInstances`)).json().task_instances as Json[];
      expect(tis.map((t) => [t.task_id, t.state, t.try_number])).toEqual([["a", "success", 2], ["b", "success", 2]]);

      const held = await trigger("apid_sleeper", { dag_run_id: "to_fail" });
      await waitFor("to_fail to run", async () => (await runState("apid_sleeper", held)) === "running", 20_000);
      expectProblem(await send("PATCH", `/dags/apid_sleeper/dagRuns/${held}`, { state: "success", compensate: true }), 400, "BATON_VALIDATION_FAILED", "compensate");
      expect((await send("PATCH", `/dags/apid_sleeper/dagRuns/${held}`, { state: "failed" })).json().state).toBe("failed");
      expectProblem(await send("PATCH", `/dags/apid_sleeper/dagRuns/${held}`, { state: "running" }), 400, "BATON_VALIDATION_FAILED", "state");
      expectProblem(await send("PATCH", "/dags/apid_sleeper/dagRuns/nope", { state: "success" }), 404, "BATON_DAG_RUN_NOT_FOUND", "nope");
      expectProblem(await send("PATCH", "/dags/apid_sleeper/dagRuns/nope", { state: "queued" }), 404, "BATON_DAG_RUN_NOT_FOUND", "nope");
    });

    it("setNote sets and clears a run's note", async () => {
      expect((await send("PATCH", "/dags/apid_hist/dagRuns/h1/setNote", { note: "checked by ana" })).json()).toMatchObject({ dag_run_id: "h1", note: "checked by ana" });
      expect((await send("PATCH", "/dags/apid_hist/dagRuns/h1/setNote", { note: null })).json().note).toBeNull();
      expectProblem(await send("PATCH", "/dags/apid_hist/dagRuns/nope/setNote", { note: "x" }), 404, "BATON_DAG_RUN_NOT_FOUND");
    });
  });

  describe("DELETE", () => {
    it("DELETE a run removes it with its task instances, outputs, steps, signals and events; other runs stay", async () => {
      const keep = await trigger("apid_waiter", { dag_run_id: "keep_me" });
      const doomed = await trigger("apid_waiter", { dag_run_id: "delete_me" });
      for (const runId of [keep, doomed]) {
        await waitFor(`${runId} to wait for its signal`, async () => (await get(`/dags/apid_waiter/dagRuns/${runId}/taskInstances/go`)).json().state === "deferred", 20_000);
        expect((await send("POST", `/dags/apid_waiter/dagRuns/${runId}/signals/go`, { payload: { ok: true } })).statusCode).toBeLessThan(300);
        await waitRun("apid_waiter", runId, ["success"]);
      }
      const [doomedId, keepId] = [await dagRunIdOf(doomed), await dagRunIdOf(keep)];
      const before = await runRows(doomedId);
      expect(before).toMatchObject({ task_instance: 3, run_signal: 1, task_step: 1, dag_run: 1 });
      expect(before.xcom).toBeGreaterThan(0);
      expect(before.event_log).toBeGreaterThan(0);
      const kept = await runRows(keepId);

      const res = await send("DELETE", `/dags/apid_waiter/dagRuns/${doomed}`);
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe("");
      expect(await runRows(doomedId)).toEqual({ task_instance: 0, xcom: 0, run_signal: 0, event_log: 0, task_step: 0, dag_run: 0 });
      expect(await runRows(keepId)).toEqual(kept);
      expectProblem(await get(`/dags/apid_waiter/dagRuns/${doomed}`), 404, "BATON_DAG_RUN_NOT_FOUND");
      expectProblem(await send("DELETE", `/dags/apid_waiter/dagRuns/${doomed}`), 404, "BATON_DAG_RUN_NOT_FOUND", doomed);
    });

    it("refuses with 409 BATON_TASKS_RUNNING to delete a run or a DAG while a task runs", async () => {
      const runId = await trigger("apid_sleeper", { dag_run_id: "busy" });
      await waitFor("busy to run", async () => (await get("/dags/apid_sleeper/dagRuns/busy/taskInstances/hold")).json().state === "running", 20_000);
      expectProblem(await send("DELETE", `/dags/apid_sleeper/dagRuns/${runId}`), 409, "BATON_TASKS_RUNNING", "hold");
      expectProblem(await send("DELETE", "/dags/apid_sleeper"), 409, "BATON_TASKS_RUNNING", "busy/hold");
      expect(await runState("apid_sleeper", runId)).toBe("running");
      expect((await get("/dags/apid_sleeper")).statusCode).toBe(200);
      expect((await send("PATCH", `/dags/apid_sleeper/dagRuns/${runId}`, { state: "failed" })).statusCode).toBe(200);
      expect((await send("DELETE", `/dags/apid_sleeper/dagRuns/${runId}`)).statusCode).toBe(204);
    });

    it("a trigger does not wait for a transaction holding the dag row (startRuns and claims lock it)", async () => {
      const conn = await h.db.pool.getConnection();
      try {
        await conn.query("START TRANSACTION");
        await conn.query("SELECT dag_id FROM dag WHERE dag_id = 'apid_gamma' FOR UPDATE");
        const res = await send("POST", "/dags/apid_gamma/dagRuns", { dag_run_id: "past_the_lock" });
        expect(res.statusCode).toBe(200);
        await conn.query("COMMIT");
        expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'apid_gamma' AND run_id = 'past_the_lock'", [])).toBe(1);
      } finally {
        await conn.query("ROLLBACK").catch(() => undefined);
        conn.release();
      }
    });

    it("a trigger racing a DAG delete waits for it and creates nothing: no run outlives its DAG", async () => {
      // What deleteDag does, held open: the dag row and its versions locked and deleted, not yet committed.
      const conn = await h.db.pool.getConnection();
      try {
        await conn.query("START TRANSACTION");
        await conn.query("SELECT dag_id FROM dag WHERE dag_id = 'apid_gamma' FOR UPDATE");
        await conn.query("SELECT id FROM dag_version WHERE dag_id = 'apid_gamma' ORDER BY id FOR UPDATE");
        await conn.query("DELETE FROM dag_version WHERE dag_id = 'apid_gamma'");
        await conn.query("DELETE FROM dag WHERE dag_id = 'apid_gamma'");
        const racing = send("POST", "/dags/apid_gamma/dagRuns", { dag_run_id: "racer" });
        await waitFor("the trigger to wait for the version row", async () => {
          const [rows] = await h.db.pool.query<RowDataPacket[]>(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO dag_run%'",
          );
          return Number(rows[0]!.n) > 0;
        });
        await conn.query("COMMIT");
        const res = await racing;
        expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 404, code: "BATON_DAG_NOT_FOUND" });
        expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'apid_gamma' AND run_id = 'racer'", [])).toBe(0);
      } finally {
        conn.release();
      }
      // The file still defines it: parsed again, it comes back.
      await h.db.pool.query("UPDATE dag_file SET content_hash = REPEAT('0', 64) WHERE fileloc LIKE '%dags.ts'");
      await h.processor.scan();
      expect((await get("/dags/apid_gamma")).statusCode).toBe(200);
    });

    it("a DAG delete waits for a trigger that holds the DAG's version, and deletes the run it made", async () => {
      // The runs the tests above made must be done: a DAG with a running task is not deleted (409).
      // Runs first: a queued run has no task instances until the scheduler starts it, and its task
      // could be running when the delete looks.
      await waitFor("apid_gamma's runs and tasks to finish", async () =>
        (await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'apid_gamma' AND state IN ('queued', 'running')", [])) === 0 &&
        (await count("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'apid_gamma' AND state IN ('queued', 'running')", [])) === 0,
      );
      // What a trigger's INSERT does, held open: the pinned version share-locked, the run inserted later.
      const conn = await h.db.pool.getConnection();
      try {
        await conn.query("START TRANSACTION");
        const [[dag]] = await conn.query<RowDataPacket[]>("SELECT latest_version_hash AS v FROM dag WHERE dag_id = 'apid_gamma'");
        await conn.query("SELECT id FROM dag_version WHERE dag_id = 'apid_gamma' AND version_hash = ? LOCK IN SHARE MODE", [dag!.v]);
        const deleting = send("DELETE", "/dags/apid_gamma");
        await waitFor("the delete to wait for the version row", async () => {
          const [rows] = await h.db.pool.query<RowDataPacket[]>(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'SELECT id FROM dag_version WHERE dag_id = % ORDER BY id FOR UPDATE'",
          );
          return Number(rows[0]!.n) > 0;
        });
        await conn.query(
          `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end, conf, external_trigger, queued_at)
           VALUES ('apid_gamma', 'late_trigger', ?, 'manual', 'queued', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), '{}', 1, UTC_TIMESTAMP(6))`,
          [dag!.v],
        );
        await conn.query("COMMIT");
        expect((await deleting).statusCode).toBe(204);
        expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'apid_gamma'", [])).toBe(0);
      } finally {
        await conn.query("ROLLBACK").catch(() => undefined);
        conn.release();
      }
      await h.db.pool.query("UPDATE dag_file SET content_hash = REPEAT('0', 64) WHERE fileloc LIKE '%dags.ts'");
      await h.processor.scan();
      expect((await get("/dags/apid_gamma")).statusCode).toBe(200);
    });

    it("DELETE a DAG removes its runs, task data, backfills and versions, leaves other DAGs alone; its file brings it back", async () => {
      const backfill = await send("POST", "/backfills", { dag_id: "apid_doomed", from_date: "2026-01-01T00:00:00Z", to_date: "2026-01-02T00:00:00Z" });
      expect(backfill.statusCode).toBe(200);
      await waitFor("the backfill to complete", async () => (await get(`/backfills/${backfill.json().id}`)).json().state === "completed", 30_000);
      const runs = (await get("/dags/apid_doomed/dagRuns")).json().dag_runs as Json[];
      expect(runs.map((r) => r.state)).toEqual(["success", "success"]);
      // A signal that arrived for a finished run (only possible while it ran): a row to cascade.
      await h.db.pool.query("INSERT INTO run_signal (dag_run_id, name, payload, created_at) VALUES (?, 'late', 'null', ?)", [await dagRunIdOf(runs[0]!.dag_run_id), new Date()]);
      const TABLES: [string, string][] = [
        ["dag", "SELECT COUNT(*) AS n FROM dag WHERE dag_id = ?"],
        ["dag_version", "SELECT COUNT(*) AS n FROM dag_version WHERE dag_id = ?"],
        ["dag_run", "SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = ?"],
        ["task_instance", "SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ?"],
        ["xcom", "SELECT COUNT(*) AS n FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.dag_id = ?"],
        ["task_step", "SELECT COUNT(*) AS n FROM task_step s JOIN task_instance ti ON ti.id = s.task_instance_id WHERE ti.dag_id = ?"],
        ["run_signal", "SELECT COUNT(*) AS n FROM run_signal s JOIN dag_run r ON r.id = s.dag_run_id WHERE r.dag_id = ?"],
        ["event_log", "SELECT COUNT(*) AS n FROM event_log WHERE dag_id = ?"],
        ["backfill", "SELECT COUNT(*) AS n FROM backfill WHERE dag_id = ?"],
        ["backfill_date", "SELECT COUNT(*) AS n FROM backfill_date d JOIN backfill b ON b.id = d.backfill_id WHERE b.dag_id = ?"],
      ];
      const counts = async (dagId: string) => Object.fromEntries(await Promise.all(TABLES.map(async ([t, sql]) => [t, await count(sql, [dagId])])));
      const before = await counts("apid_doomed");
      for (const t of ["dag", "dag_version", "dag_run", "task_instance", "xcom", "task_step", "run_signal", "event_log", "backfill", "backfill_date"]) {
        expect({ t, n: before[t] > 0 }).toEqual({ t, n: true });
      }
      const backfillDates = await count("SELECT COUNT(*) AS n FROM backfill_date", []);
      const others = await counts("apid_quick");

      const res = await send("DELETE", "/dags/apid_doomed");
      expect(res.statusCode).toBe(204);
      expect(Object.values(await counts("apid_doomed")).every((n) => n === 0)).toBe(true);
      expect(await count("SELECT COUNT(*) AS n FROM backfill_date", [])).toBe(backfillDates - before.backfill_date);
      expect(await counts("apid_quick")).toEqual(others);
      expectProblem(await get("/dags/apid_doomed"), 404, "BATON_DAG_NOT_FOUND");
      expectProblem(await send("DELETE", "/dags/apid_doomed"), 404, "BATON_DAG_NOT_FOUND", "apid_doomed");

      // Its file still defines it: the next parse brings it back, without history.
      await h.processor.scan();
      expect((await get("/dags/apid_doomed")).json()).toMatchObject({ dag_id: "apid_doomed", is_active: true });
      expect((await get("/dags/apid_doomed/dagRuns")).json().total_entries).toBe(0);
    }, 60_000);
  });

  describe("version and config", () => {
    it("GET /version answers the package version", async () => {
      const res = await get("/version");
      expect(res.statusCode).toBe(200);
      expect(Object.keys(res.json()).sort()).toEqual(["git_version", "version"]);
      expect(res.json().version).toMatch(/^\d+\.\d+\.\d+/);
      if (res.json().git_version !== null) expect(res.json().git_version).toMatch(/^[0-9a-f]{40}$/);
    });

    it("GET /config answers sections of options, filtered by section", async () => {
      const res = await get("/config");
      expect(res.statusCode).toBe(200);
      const sections = res.json().sections as { name: string; options: { key: string; value: string }[] }[];
      expect(sections.map((s) => s.name)).toEqual(["core", "database", "api", "scheduler", "worker", "logging"]);
      expect(sections.find((s) => s.name === "database")!.options).toEqual([{ key: "database_url", value: expect.stringContaining(h.db.database) }]);
      expect(sections.find((s) => s.name === "logging")!.options).toEqual([{ key: "logs_folder", value: h.logsFolder }]);
      expect((await get("/config?section=database")).json().sections.map((s: Json) => s.name)).toEqual(["database"]);
      expectProblem(await get("/config?section=secrets"), 400, "BATON_VALIDATION_FAILED", "section");
    });

    it("never shows a password or token: the database URL is redacted and secrets are not listed", () => {
      const text = JSON.stringify(
        configSections({ adminToken: "tok-very-secret-123456", adminTokenFile: "/x/admin-token", dagsFolder: "/dags", auth: "on", apiRateLimit: { max: 0, windowMs: 60_000 } }, "mysql://baton:hunter2@db:3306/baton"),
      );
      expect(text).not.toContain("hunter2");
      expect(text).not.toContain("tok-very-secret");
      expect(text).not.toMatch(/token/i);
      expect(text).toContain("mysql://baton:***@db:3306/baton");
      expect(text).toContain('"api_rate_limit","value":"off"');
    });

    it("shows the try log limit, off when 0", () => {
      const logging = (bytes: number) => configSections({ taskLogMaxBytes: bytes }, "mysql://db/baton").find((s) => s.name === "logging")!.options;
      expect(logging(4096)).toEqual([{ key: "task_log_max_bytes", value: "4096" }]);
      expect(logging(0)).toEqual([{ key: "task_log_max_bytes", value: "off" }]);
    });
  });

  it("documents every route here with an operationId, a tag and a 2xx response schema", async () => {
    const doc = (await h.app.inject({ method: "GET", url: "/api/v1/openapi.json" })).json() as { paths: Record<string, Record<string, Json>> };
    const expected: [string, string, string][] = [
      ["/api/v1/dags", "get", "get_dags"],
      ["/api/v1/dags", "patch", "patch_dags"],
      ["/api/v1/dags/{dag_id}", "get", "get_dag"],
      ["/api/v1/dags/{dag_id}", "patch", "patch_dag"],
      ["/api/v1/dags/{dag_id}", "delete", "delete_dag"],
      ["/api/v1/dags/{dag_id}/details", "get", "get_dag_details"],
      ["/api/v1/dags/{dag_id}/tasks", "get", "get_tasks"],
      ["/api/v1/dags/{dag_id}/tasks/{task_id}", "get", "get_task"],
      ["/api/v1/dags/{dag_id}/dagRuns", "get", "get_dag_runs"],
      ["/api/v1/dags/{dag_id}/dagRuns", "post", "post_dag_run"],
      ["/api/v1/dags/~/dagRuns/list", "post", "get_dag_runs_batch"],
      ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}", "get", "get_dag_run"],
      ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}", "patch", "update_dag_run_state"],
      ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}", "delete", "delete_dag_run"],
      ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/setNote", "patch", "set_dag_run_note"],
      ["/api/v1/version", "get", "get_version"],
      ["/api/v1/config", "get", "get_config"],
      ["/api/v1/health", "get", "get_health"],
      ["/api/v1/importErrors", "get", "get_import_errors"],
    ];
    for (const [route, method, operationId] of expected) {
      const op = doc.paths[route]?.[method];
      const twoXx = Object.keys(op?.responses ?? {}).filter((s) => s.startsWith("2"));
      expect({ route, method, operationId: op?.operationId, tagged: (op?.tags?.length ?? 0) > 0, twoXx: twoXx.length > 0 }).toEqual({ route, method, operationId, tagged: true, twoXx: true });
    }
  });

  it("every answer above, success or problem, conforms to the OpenAPI document", () => {
    const spec = specOf(h.app);
    const validator = new ContractValidator(spec);
    // Static segments ("~", "list") before parameters, so /dags/~/dagRuns/list is not /dags/{dag_id}/….
    const routes = operationsOf(spec)
      .map((operation) => {
        const segments = operation.path.split("/");
        const pattern = segments.map((seg) => (/^\{.+\}$/.test(seg) ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\~]/g, "\\$&"))).join("/");
        return { operation, re: new RegExp(`^${pattern}$`), params: segments.filter((seg) => seg.startsWith("{")).length };
      })
      .sort((a, b) => a.params - b.params);
    const problems: string[] = [];
    const checked = new Set<string>();
    for (const { method, url, res } of answers) {
      const route = routes.find((r) => r.operation.method === method && r.re.test(url));
      if (!route) {
        problems.push(`${method} ${url}: no operation in the document`);
        continue;
      }
      checked.add(route.operation.key);
      for (const p of validator.check(route.operation, res)) problems.push(`${method} ${url} → ${res.statusCode}: ${p}`);
    }
    expect(problems).toEqual([]);
    expect(checked.size).toBeGreaterThanOrEqual(19);
  });

  it("GET /health and /importErrors keep working", async () => {
    const health = await get("/health");
    expect([200, 503]).toContain(health.statusCode);
    expect(health.json()).toMatchObject({ metadatabase: { status: "healthy" }, scheduler: { status: expect.any(String) }, workers: { alive: expect.any(Number) } });
    expect((await get("/importErrors")).json()).toEqual({ import_errors: [], total_entries: 0 });
  });
});
