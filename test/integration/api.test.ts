// The REST API end to end: problem JSON for every failure, list envelopes and paging,
// pausing, health, logs and the OpenAPI document. Real MariaDB, real worker processes.
import type { LightMyRequestResponse } from "fastify";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const HELLO = dagSource(`
export default dag({ id: "api_hello" }, (t) => {
  const say = t.task("say", async (ctx) => {
    console.log("printed-by-console-log run=%s", ctx.runId);
    ctx.log.info("printed-by-ctx-log", { n: 42 });
    return { ok: true };
  });
  const after = t.task("after", { upstream: [say] }, async () => "done");
});
`);

const PAUSABLE = dagSource(`
export default dag({ id: "api_pausable" }, (t) => {
  const one = t.task("one", async () => 1);
  const two = t.task("two", { upstream: [one] }, async (ctx) => ctx.get(one) + 1);
});
`);

const BORN_PAUSED = dagSource(`
export default dag({ id: "api_born_paused", isPausedUponCreation: true }, (t) => {
  t.task("only", async () => "ran");
});
`);

// Three DAGs in one file, for paging /dags.
const PAGES = dagSource(`
export const p1 = dag({ id: "api_page_1" }, (t) => { t.task("x", async () => 1); });
export const p2 = dag({ id: "api_page_2" }, (t) => { t.task("x", async () => 2); });
export const p3 = dag({ id: "api_page_3" }, (t) => { t.task("x", async () => 3); });
`);

const BROKEN_SYNTAX = `import { dag } from "baton";\nexport default dag({ id: "api_broken_syntax" }, (t) => { t.task("x", async () => { ) });\n`;
const BROKEN_THROWS = `import { dag } from "baton";\nthrow new Error("api_broken_throws exploded at import");\n`;

const ALL_DAG_IDS = ["api_born_paused", "api_hello", "api_page_1", "api_page_2", "api_page_3", "api_pausable"];

const PROBLEM_KEYS = ["code", "detail", "status", "title", "type"];

/** Asserts a problem JSON answer and returns it. */
function expectProblem(res: LightMyRequestResponse, status: number, code: string, detailContains?: string | RegExp) {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const problem = res.json() as Record<string, unknown>;
  expect(Object.keys(problem).sort()).toEqual(PROBLEM_KEYS);
  expect(problem.status).toBe(status);
  expect(problem.code).toBe(code);
  expect(typeof problem.title).toBe("string");
  expect((problem.title as string).length).toBeGreaterThan(0);
  expect(problem.type).toEqual(expect.stringContaining(code));
  expect(typeof problem.detail).toBe("string");
  if (typeof detailContains === "string") expect(problem.detail).toContain(detailContains);
  else if (detailContains) expect(problem.detail).toMatch(detailContains);
  return problem;
}

describe("REST API", () => {
  const h = new Harness({ workers: 2 });
  const enc = encodeURIComponent;

  const trigger = (dagId: string, payload?: unknown) =>
    h.app.inject({ method: "POST", url: `/api/v1/dags/${enc(dagId)}/dagRuns`, ...(payload === undefined ? {} : { payload: payload as object }) });
  const getRun = (dagId: string, runId: string) => h.app.inject({ method: "GET", url: `/api/v1/dags/${enc(dagId)}/dagRuns/${enc(runId)}` });
  const waitForRun = (dagId: string, runId: string, states = ["success", "failed"], timeoutMs = 15_000) =>
    waitFor(
      `run ${dagId}/${runId} to reach ${states.join("|")}`,
      async () => {
        const r = await getRun(dagId, runId);
        return r.statusCode === 200 && states.includes(r.json().state) ? r.json() : null;
      },
      timeoutMs,
    );
  const dagRunRows = async (runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE run_id = ?", [runId]);
    return rows.length;
  };

  beforeAll(async () => {
    await h.start({
      "hello.ts": HELLO,
      "pausable.ts": PAUSABLE,
      "born_paused.ts": BORN_PAUSED,
      "pages.ts": PAGES,
      "broken_syntax.ts": BROKEN_SYNTAX,
      "broken_throws.ts": BROKEN_THROWS,
    });
    await h.run();
  });
  afterAll(() => h.stop());

  describe("problem JSON for unknown resources", () => {
    it("answers 404 BATON_DAG_NOT_FOUND for an unknown DAG on GET, PATCH, POST dagRuns and GET dagRuns", async () => {
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/dags/api_nope" }), 404, "BATON_DAG_NOT_FOUND", "api_nope");
      expectProblem(
        await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_nope", payload: { is_paused: true } }),
        404,
        "BATON_DAG_NOT_FOUND",
        "api_nope",
      );
      expectProblem(await trigger("api_nope", { dag_run_id: "ghost_unknown_dag" }), 404, "BATON_DAG_NOT_FOUND", "api_nope");
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/dags/api_nope/dagRuns" }), 404, "BATON_DAG_NOT_FOUND", "api_nope");
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/dags/api_nope/dagRuns?state=failed&limit=1" }), 404, "BATON_DAG_NOT_FOUND", "api_nope");
      // A known DAG whose filter matches no run: an empty page, not a 404 (the DAG is looked up only then).
      const none = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_page_3/dagRuns?start_date_lte=1999-01-01T00:00:00Z" });
      expect({ status: none.statusCode, body: none.json() }).toEqual({ status: 200, body: { dag_runs: [], total_entries: 0, next_cursor: null } });
      expect(await dagRunRows("ghost_unknown_dag")).toBe(0);
    });

    it("answers 404 BATON_DAG_RUN_NOT_FOUND for an unknown run, its task list and its tasks", async () => {
      const base = "/api/v1/dags/api_hello/dagRuns/no_such_run";
      expectProblem(await h.app.inject({ method: "GET", url: base }), 404, "BATON_DAG_RUN_NOT_FOUND", "no_such_run");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/taskInstances` }), 404, "BATON_DAG_RUN_NOT_FOUND", "no_such_run");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/taskInstances/say` }), 404, "BATON_DAG_RUN_NOT_FOUND");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/taskInstances/say/logs/1` }), 404, "BATON_DAG_RUN_NOT_FOUND");
    });

    it("answers 404 BATON_DAG_NOT_FOUND, not BATON_DAG_RUN_NOT_FOUND, on every route under a run of an unknown DAG", async () => {
      // A run id that exists, under a DAG id that does not: still the DAG that is missing.
      expect((await trigger("api_page_2", { dag_run_id: "real_run" })).statusCode).toBe(200);
      for (const runId of ["real_run", "no_such_run"]) {
        const base = `/api/v1/dags/api_nope/dagRuns/${runId}`;
        const requests: { method: "GET" | "POST" | "PATCH" | "DELETE"; url: string; payload?: object }[] = [
          { method: "GET", url: base },
          { method: "GET", url: `${base}/taskInstances` },
          { method: "GET", url: `${base}/taskInstances/say` },
          { method: "GET", url: `${base}/taskInstances/say/logs/1` },
          { method: "GET", url: `${base}/taskInstances/say/xcomEntries` },
          { method: "GET", url: `${base}/taskInstances/say/xcomEntries/return_value` },
          { method: "PATCH", url: `${base}/taskInstances/say`, payload: { new_state: "success" } },
          { method: "GET", url: `${base}/signals` },
          { method: "POST", url: `${base}/signals/go`, payload: { signal_id: "s1" } },
          { method: "PATCH", url: `${base}/setNote`, payload: { note: "x" } },
          { method: "PATCH", url: base, payload: { state: "failed" } },
          { method: "PATCH", url: base, payload: { state: "success" } },
          { method: "PATCH", url: base, payload: { state: "queued" } },
          { method: "DELETE", url: base },
          { method: "POST", url: "/api/v1/dags/api_nope/clearTaskInstances", payload: { dag_run_id: runId, task_ids: ["say"], dry_run: false } },
        ];
        for (const r of requests) {
          const res = await h.app.inject(r);
          expect([r.method, r.url, res.statusCode, res.json().code]).toEqual([r.method, r.url, 404, "BATON_DAG_NOT_FOUND"]);
          expect(res.json().detail).toContain("api_nope");
        }
      }
      expect((await getRun("api_page_2", "real_run")).statusCode).toBe(200);
    });

    it("answers 404 BATON_TASK_NOT_FOUND for an unknown task of an existing run", async () => {
      const res = await trigger("api_hello", { dag_run_id: "unknown_task_probe" });
      expect(res.statusCode).toBe(200);
      await waitForRun("api_hello", "unknown_task_probe");
      const base = "/api/v1/dags/api_hello/dagRuns/unknown_task_probe/taskInstances";
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/no_such_task` }), 404, "BATON_TASK_NOT_FOUND", "no_such_task");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/no_such_task/logs/1` }), 404, "BATON_TASK_NOT_FOUND");
      expectProblem(
        await h.app.inject({ method: "GET", url: `${base}/no_such_task/xcomEntries/return_value` }),
        404,
        "BATON_TASK_NOT_FOUND",
      );
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/after/xcomEntries/no_such_key` }), 404, "BATON_XCOM_NOT_FOUND");
    });

    it("answers 404 BATON_ROUTE_NOT_FOUND for an unknown route, naming the path", async () => {
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/no_such_thing?x=1" }), 404, "BATON_ROUTE_NOT_FOUND", "/api/v1/no_such_thing");
      expectProblem(await h.app.inject({ method: "DELETE", url: "/api/v1/no_such_thing" }), 404, "BATON_ROUTE_NOT_FOUND", "DELETE");
      // A known path with a method it does not support is a 405 (apiMethodNotAllowed.test.ts).
      expectProblem(await h.app.inject({ method: "DELETE", url: "/api/v1/dags" }), 405, "BATON_METHOD_NOT_ALLOWED", "DELETE");
      expectProblem(await h.app.inject({ method: "GET", url: "/nowhere" }), 404, "BATON_ROUTE_NOT_FOUND");
    });
  });

  describe("request validation", () => {
    const ghost = (suffix: string) => `ghost_${suffix}`;

    it.each([
      ["conf is a string", { dag_run_id: ghost("conf_string"), conf: "not-an-object" }, "conf"],
      ["conf is an array", { dag_run_id: ghost("conf_array"), conf: [1, 2] }, "conf"],
      ["conf is null", { dag_run_id: ghost("conf_null"), conf: null }, "conf"],
      ["an unknown property", { dag_run_id: ghost("unknown_prop"), bogus_field: 1 }, "bogus_field"],
      ["logical_date is not a date", { dag_run_id: ghost("bad_date"), logical_date: "yesterday" }, "logical_date"],
      ["logical_date has an impossible month", { dag_run_id: ghost("bad_month"), logical_date: "2026-13-40T00:00:00Z" }, "logical_date"],
      ["logical_date is a number", { dag_run_id: ghost("num_date"), logical_date: 12345 }, "logical_date"],
      ["logical_date is a boolean", { dag_run_id: ghost("bool_date"), logical_date: true }, "logical_date"],
      ["execution_date is an object", { dag_run_id: ghost("object_date"), execution_date: {} }, "execution_date"],
      ["logical_date is before the year 1000", { dag_run_id: ghost("year_1"), logical_date: "0001-01-01T00:00:00Z" }, "logical_date"],
      ["logical_date is after the year 9999", { dag_run_id: ghost("year_10000"), logical_date: "9999-12-31T23:00:00-05:00" }, "logical_date"],
      ["note is too long", { dag_run_id: ghost("long_note"), note: "x".repeat(10_001) }, "note"],
    ])("rejects a trigger body where %s with 400 naming the field, and writes nothing", async (_what, payload, field) => {
      const res = await trigger("api_hello", payload);
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", field);
      expect(await dagRunRows(payload.dag_run_id)).toBe(0);
    });

    it.each([
      ["a slash and a space", "bad id/with slash"],
      ["a quote", 'quote"d'],
      ["a non-ASCII letter", "café"],
      ["nothing", ""],
      ["too many characters", "r".repeat(251)],
    ])("rejects a dag_run_id with %s", async (_what, runId) => {
      const res = await trigger("api_hello", { dag_run_id: runId });
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", "dag_run_id");
      expect(await dagRunRows(runId)).toBe(0);
    });

    it("refuses ids in the path that end with a space instead of answering for the id without it", async () => {
      // MySQL compares utf8mb4_bin with PAD SPACE: "api_hello " would find "api_hello".
      const runId = (await trigger("api_hello", { dag_run_id: ghost("padded") })).json().dag_run_id as string;
      for (const url of [
        "/api/v1/dags/api_hello%20",
        `/api/v1/dags/api_hello/dagRuns/${runId}%20`,
        `/api/v1/dags/api_hello/dagRuns/${runId}/taskInstances/hello%20`,
        `/api/v1/dags/api_hello/dagRuns/${runId}/taskInstances/hello/xcomEntries/return_value%20`,
        `/api/v1/dags/api_hello/dagRuns/${runId}/taskInstances/hello/xcomEntries?xcom_key=return_value%20`,
      ]) {
        expectProblem(await h.app.inject({ method: "GET", url }), 400, "BATON_VALIDATION_FAILED", "must not end with a space");
      }
      expectProblem(await h.app.inject({ method: "DELETE", url: `/api/v1/dags/api_hello/dagRuns/${runId}%20` }), 400, "BATON_VALIDATION_FAILED", "dag_run_id");
      expect(await dagRunRows(runId)).toBe(1);
    });

    it("accepts every dag_run_id character the pattern allows", async () => {
      const runId = "Ok_run-1.2:3+4";
      const res = await trigger("api_page_1", { dag_run_id: runId, logical_date: "2026-01-02T03:04:05Z", conf: { a: 1 }, note: "hi" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        dag_run_id: runId,
        dag_id: "api_page_1",
        logical_date: "2026-01-02T03:04:05.000Z",
        conf: { a: 1 },
        note: "hi",
        run_type: "manual",
        external_trigger: true,
      });
      expect((await getRun("api_page_1", runId)).statusCode).toBe(200);
    });

    it("accepts Airflow 2's execution_date as an alias of logical_date, and refuses both when they differ", async () => {
      const aliased = await trigger("api_page_1", { dag_run_id: "aliased_execution_date", execution_date: "2026-02-03T04:05:06Z" });
      expect(aliased.statusCode).toBe(200);
      expect(aliased.json()).toMatchObject({ logical_date: "2026-02-03T04:05:06.000Z", execution_date: "2026-02-03T04:05:06.000Z" });
      // The same instant written two ways is one date.
      const both = await trigger("api_page_1", { dag_run_id: "aliased_both", logical_date: "2026-02-03T05:05:06+01:00", execution_date: "2026-02-03T04:05:06Z" });
      expect(both.statusCode).toBe(200);
      expect(both.json().logical_date).toBe("2026-02-03T04:05:06.000Z");
      const differ = await trigger("api_page_1", { dag_run_id: ghost("aliased_differ"), logical_date: "2026-02-03T04:05:06Z", execution_date: "2026-02-04T04:05:06Z" });
      const problem = expectProblem(differ, 400, "BATON_VALIDATION_FAILED", "body.logical_date");
      expect(problem.detail).toContain("body.execution_date");
      expect(await dagRunRows(ghost("aliased_differ"))).toBe(0);
      expectProblem(await trigger("api_page_1", { dag_run_id: ghost("bad_execution_date"), execution_date: "yesterday" }), 400, "BATON_VALIDATION_FAILED", "execution_date");
      expect(await dagRunRows(ghost("bad_execution_date"))).toBe(0);
    });

    it("takes note: null as no note (Airflow's DAGRun.note is nullable), the same request as no note for an Idempotency-Key", async () => {
      const res = await trigger("api_page_1", { dag_run_id: "null_note", note: null });
      expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status: 200, body: { dag_run_id: "null_note", note: null } });
      const post = (payload: object) =>
        h.app.inject({ method: "POST", url: "/api/v1/dags/api_page_1/dagRuns", headers: { "idempotency-key": "null-note-1" }, payload });
      const first = await post({ dag_run_id: "null_note_keyed", note: null });
      expect(first.statusCode).toBe(200);
      const again = await post({ dag_run_id: "null_note_keyed" });
      expect({ status: again.statusCode, run: again.json().dag_run_id }).toEqual({ status: 200, run: "null_note_keyed" });
      expect(await dagRunRows("null_note_keyed")).toBe(1);
    });

    it("takes dag_run_id: null and logical_date: null as Airflow does (generate an id; now), the same request as leaving them out", async () => {
      const before = Date.now();
      const res = await trigger("api_page_2", { dag_run_id: null, logical_date: null, conf: { n: 1 } });
      expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status: 200, body: { dag_run_id: expect.stringMatching(/^manual__/), conf: { n: 1 } } });
      expect(Date.parse(res.json().logical_date)).toBeGreaterThanOrEqual(before - 1000);
      const aliased = await trigger("api_page_2", { dag_run_id: "null_execution_date", execution_date: null });
      expect({ status: aliased.statusCode, run: aliased.json().dag_run_id }).toEqual({ status: 200, run: "null_execution_date" });
      // One Idempotency-Key request, nulls or no fields: the retry finds the run the first made.
      const post = (payload: object) =>
        h.app.inject({ method: "POST", url: "/api/v1/dags/api_page_2/dagRuns", headers: { "idempotency-key": "null-id-and-date-1" }, payload });
      const first = await post({ dag_run_id: null, logical_date: null, execution_date: null, note: null });
      const again = await post({});
      expect({ first: first.statusCode, again: again.statusCode, same: again.json().dag_run_id === first.json().dag_run_id }).toEqual({ first: 200, again: 200, same: true });
    });

    it("accepts a trigger without any body", async () => {
      const res = await trigger("api_page_2");
      expect(res.statusCode).toBe(200);
      expect(res.json().dag_run_id).toMatch(/^manual__/);
      expect(res.json().conf).toEqual({});
    });

    it("rejects a body that is not JSON or not an object with 400, and an unsupported content type with 415", async () => {
      const post = (contentType: string, payload: string) =>
        h.app.inject({ method: "POST", url: "/api/v1/dags/api_hello/dagRuns", headers: { "content-type": contentType }, payload });
      expectProblem(await post("application/json", '{"dag_run_id": "ghost_bad_json", '), 400, "BATON_VALIDATION_FAILED");
      expectProblem(await post("application/json", "[1, 2]"), 400, "BATON_VALIDATION_FAILED", "body");
      expectProblem(await post("text/plain", "dag_run_id=ghost_text"), 400, "BATON_VALIDATION_FAILED", "body");
      expectProblem(await post("application/xml", "<dag_run_id>ghost_xml</dag_run_id>"), 415, "BATON_UNSUPPORTED_MEDIA_TYPE");
      expect(await dagRunRows("ghost_bad_json")).toBe(0);
    });

    it("does not type-coerce JSON bodies: a string or number where a boolean or string belongs is a 400", async () => {
      // Fastify's ajv runs with coerceTypes for every part of the request, body included, so
      // {"is_paused": "true"} pauses and {"dag_run_id": 5} creates run "5" (see report).
      const patched = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_3", payload: { is_paused: "true" } });
      const pausedAfter = (await h.app.inject({ method: "GET", url: "/api/v1/dags/api_page_3" })).json().is_paused;
      if (pausedAfter) await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_3", payload: { is_paused: false } });
      const numericId = await trigger("api_page_3", { dag_run_id: 5 });
      expect({ patch: patched.statusCode, pausedAfter, trigger: numericId.statusCode }).toEqual({ patch: 400, pausedAfter: false, trigger: 400 });
      expectProblem(patched, 400, "BATON_VALIDATION_FAILED", "is_paused");
      expectProblem(numericId, 400, "BATON_VALIDATION_FAILED", "dag_run_id");
    });

    it("answers problem JSON for long ids and malformed URLs", async () => {
      // The SDK allows ids of up to 250 characters; they must be addressable.
      const longId = `api_${"l".repeat(246)}`;
      expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/dags/${longId}` }), 404, "BATON_DAG_NOT_FOUND", longId);
      expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/dags/api_hello/dagRuns/${longId}` }), 404, "BATON_DAG_RUN_NOT_FOUND");
      expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/dags/${longId}x` }), 400, "BATON_VALIDATION_FAILED", "dag_id");
      expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/dags/${"z".repeat(5000)}` }), 400, "BATON_VALIDATION_FAILED");
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/dags/%zz" }), 400, "BATON_VALIDATION_FAILED");
    });

    it("rejects a 2 MiB body with 413 and writes nothing", async () => {
      const res = await trigger("api_hello", { dag_run_id: "ghost_huge", conf: { blob: "x".repeat(2 * 1024 * 1024) } });
      expectProblem(res, 413, "BATON_PAYLOAD_TOO_LARGE");
      expect(await dagRunRows("ghost_huge")).toBe(0);
    });

    it("refuses a JSON body nested more than 100 levels deep with 400 (it was a stack overflow, 500), and takes one at the limit", async () => {
      const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
      const post = (body: string, headers: Record<string, string> = {}) =>
        h.app.inject({ method: "POST", url: "/api/v1/dags/api_page_1/dagRuns", headers: { "content-type": "application/json", ...headers }, payload: body });
      // 5,000 levels in a 30 KB body, with and without an Idempotency-Key (hashed before the run is written).
      const deep = `{"dag_run_id": "ghost_deep", "conf": {"a": ${nested(5000)}}}`;
      expectProblem(await post(deep), 400, "BATON_VALIDATION_FAILED", "100 levels");
      expectProblem(await post(deep, { "idempotency-key": "deep-1" }), 400, "BATON_VALIDATION_FAILED", "100 levels");
      // The body is level 1, conf 2, and the arrays in "a" start at 3: 99 of them reach 101.
      expectProblem(await post(`{"dag_run_id": "ghost_deep", "conf": {"a": ${nested(99)}}}`), 400, "BATON_VALIDATION_FAILED");
      expect(await dagRunRows("ghost_deep")).toBe(0);
      // Exactly 100 levels is stored and read back, Idempotency-Key included.
      const atLimit = await post(`{"dag_run_id": "deep_at_limit", "conf": {"a": ${nested(98)}}}`, { "idempotency-key": "deep-2" });
      expect(atLimit.statusCode).toBe(200);
      expect(JSON.stringify((await getRun("api_page_1", "deep_at_limit")).json().conf)).toBe(`{"a":${nested(98)}}`);
    });

    it.each([
      ["is_paused is a word", { is_paused: "yes" }, "is_paused"],
      ["is_paused is an object", { is_paused: { value: true } }, "is_paused"],
      ["is_paused is missing", {}, "is_paused"],
      ["an unknown property is present", { is_paused: true, colour: "red" }, "colour"],
    ])("rejects a PATCH body where %s with 400 naming the field, and changes nothing", async (_what, payload, field) => {
      const res = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_3", payload });
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", field);
      expect((await h.app.inject({ method: "GET", url: "/api/v1/dags/api_page_3" })).json().is_paused).toBe(false);
    });

    const listUrls = [
      "/api/v1/dags",
      "/api/v1/dags/api_hello/dagRuns",
      "/api/v1/dags/api_hello/dagRuns/unknown_task_probe/taskInstances",
      "/api/v1/importErrors",
    ];
    it.each(listUrls.flatMap((url) => [
      [url, "limit=-1", "limit"],
      [url, "limit=abc", "limit"],
      [url, "limit=1.5", "limit"],
      [url, "offset=-1", "offset"],
      [url, "offset=x", "offset"],
    ]))("rejects %s?%s with 400 naming %s", async (url, query, field) => {
      if (url.includes("unknown_task_probe") && (await dagRunRows("unknown_task_probe")) === 0) {
        await trigger("api_hello", { dag_run_id: "unknown_task_probe" });
      }
      const res = await h.app.inject({ method: "GET", url: `${url}?${query}` });
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", field);
    });

    it("answers 409 BATON_DAG_RUN_EXISTS for a duplicate dag_run_id and keeps the first run", async () => {
      const first = await trigger("api_page_3", { dag_run_id: "dup_run", conf: { which: "first" } });
      expect(first.statusCode).toBe(200);
      const second = await trigger("api_page_3", { dag_run_id: "dup_run", conf: { which: "second" } });
      expectProblem(second, 409, "BATON_DAG_RUN_EXISTS", "dup_run");
      expect(await dagRunRows("dup_run")).toBe(1);
      expect((await getRun("api_page_3", "dup_run")).json().conf).toEqual({ which: "first" });
      // The same run id is fine for another DAG.
      expect((await trigger("api_page_2", { dag_run_id: "dup_run" })).statusCode).toBe(200);
    });

    it("refuses a manual run id that names scheduled or backfill runs: the scheduler would take it for its own and skip that interval", async () => {
      for (const runId of ["scheduled__2026-01-05T00:00:00.000Z", "backfill__2026-01-05T00:00:00.000Z__1"]) {
        expectProblem(await trigger("api_page_3", { dag_run_id: runId }), 400, "BATON_VALIDATION_FAILED", runId.split("__")[0] + "__");
        expect(await dagRunRows(runId)).toBe(0);
      }
      // Only the prefix is reserved, not the words.
      expect((await trigger("api_page_3", { dag_run_id: "scheduled_by_hand" })).statusCode).toBe(200);
      expect((await trigger("api_page_3", { dag_run_id: "manual__2026-01-05T00:00:00.000Z" })).statusCode).toBe(200);
    });
  });

  describe("list envelopes and paging", () => {
    it("lists DAGs as {dags, total_entries} ordered by dag_id, with limit and offset", async () => {
      const all = await h.app.inject({ method: "GET", url: "/api/v1/dags" });
      expect(all.statusCode).toBe(200);
      expect(Object.keys(all.json()).sort()).toEqual(["dags", "total_entries"]);
      expect(all.json().total_entries).toBe(ALL_DAG_IDS.length);
      expect(all.json().dags.map((d: { dag_id: string }) => d.dag_id)).toEqual(ALL_DAG_IDS);
      expect(all.json().dags[1]).toMatchObject({ dag_id: "api_hello", is_paused: false, is_active: true, timezone: "UTC" });

      const page = await h.app.inject({ method: "GET", url: "/api/v1/dags?limit=2&offset=1" });
      expect(page.json()).toEqual({ dags: all.json().dags.slice(1, 3), total_entries: ALL_DAG_IDS.length });
      const past = await h.app.inject({ method: "GET", url: "/api/v1/dags?limit=5&offset=100" });
      expect(past.json()).toEqual({ dags: [], total_entries: ALL_DAG_IDS.length });
    });

    it("lists DAG runs as {dag_runs, total_entries, next_cursor} with limit and offset", async () => {
      for (const id of ["page_r1", "page_r2", "page_r3"]) expect((await trigger("api_page_1", { dag_run_id: id })).statusCode).toBe(200);
      const all = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_page_1/dagRuns" });
      expect(Object.keys(all.json()).sort()).toEqual(["dag_runs", "next_cursor", "total_entries"]);
      const ids = all.json().dag_runs.map((r: { dag_run_id: string }) => r.dag_run_id) as string[];
      expect(ids.filter((id) => id.startsWith("page_r"))).toEqual(["page_r1", "page_r2", "page_r3"]);
      const total = all.json().total_entries as number;
      expect(total).toBe(ids.length);

      const page = await h.app.inject({ method: "GET", url: `/api/v1/dags/api_page_1/dagRuns?limit=2&offset=${total - 3}` });
      expect(page.json().total_entries).toBe(total);
      expect(page.json().dag_runs.map((r: { dag_run_id: string }) => r.dag_run_id)).toEqual(["page_r1", "page_r2"]);
      const last = await h.app.inject({ method: "GET", url: `/api/v1/dags/api_page_1/dagRuns?limit=2&offset=${total - 1}` });
      expect(last.json().dag_runs.map((r: { dag_run_id: string }) => r.dag_run_id)).toEqual(["page_r3"]);
    });

    it("writes a run's dates the same in lists (read as text) as in the single run (read as Dates), microseconds truncated", async () => {
      // A paused DAG: its runs stay queued, so no worker rewrites the dates set here.
      expect((await trigger("api_born_paused", { dag_run_id: "dates_r1" })).statusCode).toBe(200);
      await h.db.pool.query(
        "UPDATE dag_run SET start_date = '2026-01-02 03:04:05.678901', end_date = '2026-01-02 03:04:06', data_interval_end = NULL WHERE dag_id = 'api_born_paused' AND run_id = 'dates_r1'",
      );
      const one = (await h.app.inject({ method: "GET", url: "/api/v1/dags/api_born_paused/dagRuns/dates_r1" })).json();
      const listed = (await h.app.inject({ method: "GET", url: "/api/v1/dags/api_born_paused/dagRuns" })).json().dag_runs.find((r: { dag_run_id: string }) => r.dag_run_id === "dates_r1");
      expect(one).toMatchObject({ start_date: "2026-01-02T03:04:05.678Z", end_date: "2026-01-02T03:04:06.000Z", data_interval_end: null });
      expect(listed).toEqual(one);
      // Ordered by a date, the cursor carries the last run's date (text turned back into a Date). Cursors
      // hold milliseconds, as every date Baton writes (store/queries/conditions.ts, KeysetPosition).
      await h.db.pool.query("UPDATE dag_run SET start_date = '2026-01-02 03:04:05.678' WHERE dag_id = 'api_born_paused' AND run_id = 'dates_r1'");
      expect((await trigger("api_born_paused", { dag_run_id: "dates_r2" })).statusCode).toBe(200);
      await h.db.pool.query("UPDATE dag_run SET start_date = '2026-01-02 03:04:05.900000' WHERE dag_id = 'api_born_paused' AND run_id = 'dates_r2'");
      const window = "order_by=start_date&start_date_gte=2026-01-01T00:00:00Z&start_date_lte=2026-01-03T00:00:00Z&limit=1";
      const first = (await h.app.inject({ method: "GET", url: `/api/v1/dags/api_born_paused/dagRuns?${window}` })).json();
      expect(first.dag_runs[0]).toEqual(one);
      expect(first.next_cursor).toEqual(expect.any(String));
      const next = await h.app.inject({ method: "GET", url: `/api/v1/dags/api_born_paused/dagRuns?${window}&cursor=${first.next_cursor}` });
      expect({ status: next.statusCode, body: next.body }).toMatchObject({ status: 200 });
      expect(next.json().dag_runs.map((r: { dag_run_id: string; start_date: string }) => [r.dag_run_id, r.start_date])).toEqual([["dates_r2", "2026-01-02T03:04:05.900Z"]]);
      expect(next.json().next_cursor).toBeNull();
    });

    it("lists task instances as {task_instances, total_entries, next_cursor} with limit and offset", async () => {
      expect((await trigger("api_hello", { dag_run_id: "ti_paging" })).statusCode).toBe(200);
      await waitForRun("api_hello", "ti_paging");
      const base = "/api/v1/dags/api_hello/dagRuns/ti_paging/taskInstances";
      const all = await h.app.inject({ method: "GET", url: base });
      expect(Object.keys(all.json()).sort()).toEqual(["next_cursor", "task_instances", "total_entries"]);
      expect(all.json().total_entries).toBe(2);
      const tasks = all.json().task_instances as { task_id: string; state: string; try_number: number }[];
      expect(tasks.map((t) => [t.task_id, t.state, t.try_number]).sort()).toEqual([
        ["after", "success", 1],
        ["say", "success", 1],
      ]);
      const first = await h.app.inject({ method: "GET", url: `${base}?limit=1` });
      const second = await h.app.inject({ method: "GET", url: `${base}?limit=1&offset=1` });
      expect(first.json().total_entries).toBe(2);
      expect(second.json().total_entries).toBe(2);
      expect([...first.json().task_instances, ...second.json().task_instances]).toEqual(tasks);
    });

    it("lists import errors as {import_errors, total_entries} with limit and offset", async () => {
      const all = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
      expect(Object.keys(all.json()).sort()).toEqual(["import_errors", "total_entries"]);
      expect(all.json().total_entries).toBe(2);
      const errors = all.json().import_errors as { filename: string; message: string; stack_trace: string }[];
      expect(errors.map((e) => e.filename.split("/").pop()).sort()).toEqual(["broken_syntax.ts", "broken_throws.ts"]);
      expect(errors.find((e) => e.filename.endsWith("broken_throws.ts"))!.stack_trace).toContain("api_broken_throws exploded at import");
      const page = await h.app.inject({ method: "GET", url: "/api/v1/importErrors?limit=1&offset=1" });
      expect(page.json()).toEqual({ import_errors: [errors[1]], total_entries: 2 });
      // Airflow's order_by: filename descending puts broken_throws first.
      const byName = await h.app.inject({ method: "GET", url: "/api/v1/importErrors?order_by=-filename" });
      expect(byName.json().import_errors.map((e: { filename: string }) => e.filename.split("/").pop())).toEqual(["broken_throws.ts", "broken_syntax.ts"]);
      expectProblem(await h.app.inject({ method: "GET", url: "/api/v1/importErrors?order_by=message" }), 400, "BATON_VALIDATION_FAILED", "order_by");
    });

    it("GET /importErrors/{import_error_id} answers one import error, 404 for an unknown id and 400 for a malformed one", async () => {
      const all = (await h.app.inject({ method: "GET", url: "/api/v1/importErrors" })).json().import_errors as { import_error_id: number }[];
      for (const entry of all) {
        const one = await h.app.inject({ method: "GET", url: `/api/v1/importErrors/${entry.import_error_id}` });
        expect(one.statusCode).toBe(200);
        expect(one.json()).toEqual(entry);
      }
      const unknown = Math.max(...all.map((e) => e.import_error_id)) + 1000;
      expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/importErrors/${unknown}` }), 404, "BATON_IMPORT_ERROR_NOT_FOUND", String(unknown));
      for (const bad of ["abc", "0", "-1", "1.5"]) {
        expectProblem(await h.app.inject({ method: "GET", url: `/api/v1/importErrors/${bad}` }), 400, "BATON_VALIDATION_FAILED", "import_error_id");
      }
    });

    it("ignores query parameters it does not know, as Airflow does", async () => {
      const plain = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
      const extra = await h.app.inject({ method: "GET", url: "/api/v1/importErrors?no_such_filter=x&limit=100" });
      expect(extra.statusCode).toBe(200);
      expect(extra.json()).toEqual(plain.json());
    });
  });

  describe("pausing", () => {
    it("starts a DAG with isPausedUponCreation: true paused", async () => {
      const res = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_born_paused" });
      expect(res.statusCode).toBe(200);
      expect(res.json().is_paused).toBe(true);
      const paused = await h.app.inject({ method: "GET", url: "/api/v1/dags?paused=true" });
      expect(paused.json().dags.map((d: { dag_id: string }) => d.dag_id)).toEqual(["api_born_paused"]);
    });

    it("PATCH is_paused pauses and unpauses, and repeating it is idempotent", async () => {
      const pause = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_2", payload: { is_paused: true } });
      expect(pause.statusCode).toBe(200);
      expect(pause.json()).toMatchObject({ dag_id: "api_page_2", is_paused: true });
      const again = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_2", payload: { is_paused: true } });
      expect(again.statusCode).toBe(200);
      expect(again.json().is_paused).toBe(true);
      expect((await h.app.inject({ method: "GET", url: "/api/v1/dags/api_page_2" })).json().is_paused).toBe(true);
      const unpause = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_page_2", payload: { is_paused: false } });
      expect(unpause.statusCode).toBe(200);
      expect(unpause.json().is_paused).toBe(false);
    });

    it("keeps a run of a paused DAG queued with no task instances until the DAG is unpaused, then runs it to success", async () => {
      expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_pausable", payload: { is_paused: true } })).statusCode).toBe(200);
      const res = await trigger("api_pausable", { dag_run_id: "while_paused" });
      expect(res.statusCode).toBe(200);
      expect(res.json().state).toBe("queued");

      // A later run of an unpaused DAG finishing proves the scheduler has looked at the
      // paused run (runs are started in id order) and passed it over.
      expect((await trigger("api_hello", { dag_run_id: "pause_witness" })).statusCode).toBe(200);
      expect((await waitForRun("api_hello", "pause_witness")).state).toBe("success");

      const held = await getRun("api_pausable", "while_paused");
      expect(held.json()).toMatchObject({ state: "queued", start_date: null, end_date: null });
      const tis = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_pausable/dagRuns/while_paused/taskInstances" });
      expect(tis.json()).toEqual({ task_instances: [], total_entries: 0, next_cursor: null });
      const [[count]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'api_pausable'");
      expect(Number(count!.n)).toBe(0);

      expect((await h.app.inject({ method: "PATCH", url: "/api/v1/dags/api_pausable", payload: { is_paused: false } })).statusCode).toBe(200);
      const done = await waitForRun("api_pausable", "while_paused");
      expect(done.state).toBe("success");
      const xcom = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_pausable/dagRuns/while_paused/taskInstances/two/xcomEntries/return_value" });
      expect(xcom.json().value).toBe(2);
    });
  });

  describe("health, logs and OpenAPI", () => {
    it("GET /api/v1/health reports the metadatabase healthy and the scheduler heartbeat", async () => {
      const body = await waitFor("the scheduler to heartbeat", async () => {
        const res = await h.app.inject({ method: "GET", url: "/api/v1/health" });
        return res.statusCode === 200 && res.json().scheduler.status === "healthy" ? res.json() : null;
      });
      expect(body.metadatabase).toEqual({ status: "healthy" });
      const beat = Date.parse(body.scheduler.latest_scheduler_heartbeat);
      expect(Number.isFinite(beat)).toBe(true);
      expect(Math.abs(Date.now() - beat)).toBeLessThan(30_000);
    });

    it("GET …/logs/1 returns what the task printed with console.log and ctx.log.info", async () => {
      expect((await trigger("api_hello", { dag_run_id: "log_run" })).statusCode).toBe(200);
      expect((await waitForRun("api_hello", "log_run")).state).toBe("success");
      const url = "/api/v1/dags/api_hello/dagRuns/log_run/taskInstances/say/logs/1";
      const text = await h.app.inject({ method: "GET", url });
      expect(text.statusCode).toBe(200);
      expect(text.headers["content-type"]).toMatch(/^text\/plain/);
      expect(text.body).toContain("printed-by-console-log run=log_run");
      expect(text.body).toContain("printed-by-ctx-log");
      expect(text.body).toContain("42");
      expect(text.body).toContain("Task succeeded");

      const json = await h.app.inject({ method: "GET", url, headers: { accept: "application/json" } });
      expect(json.json()).toEqual({ content: text.body, continuation_token: null });
    });

    it("answers 404 BATON_LOG_NOT_FOUND for a try that never happened, and 400 for try 0", async () => {
      if ((await dagRunRows("log_run")) === 0) await trigger("api_hello", { dag_run_id: "log_run" });
      await waitForRun("api_hello", "log_run");
      const base = "/api/v1/dags/api_hello/dagRuns/log_run/taskInstances/say/logs";
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/2` }), 404, "BATON_LOG_NOT_FOUND", "try");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/0` }), 400, "BATON_VALIDATION_FAILED", "try_number");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/abc` }), 400, "BATON_VALIDATION_FAILED", "try_number");
      // Airflow's map_index: -1 is the unmapped task instance; any other index is not there.
      const unmapped = await h.app.inject({ method: "GET", url: `${base}/1?map_index=-1` });
      expect(unmapped.statusCode).toBe(200);
      expect(unmapped.body).toBe((await h.app.inject({ method: "GET", url: `${base}/1` })).body);
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/1?map_index=3` }), 404, "BATON_TASK_NOT_FOUND", "map_index 3");
      expectProblem(await h.app.inject({ method: "GET", url: `${base}/1?map_index=-2` }), 400, "BATON_VALIDATION_FAILED", "map_index");
    });

    it("answers 404 BATON_LOG_NOT_FOUND for a task of a paused run that never started a try", async () => {
      // The born-paused DAG never starts runs, so its tasks never have a try.
      expect((await trigger("api_born_paused", { dag_run_id: "never_started" })).statusCode).toBe(200);
      const res = await h.app.inject({ method: "GET", url: "/api/v1/dags/api_born_paused/dagRuns/never_started/taskInstances/only/logs/1" });
      // Task instances are created when the run starts; until then the task is unknown in the run.
      expect(res.statusCode).toBe(404);
      expect(["BATON_LOG_NOT_FOUND", "BATON_TASK_NOT_FOUND"]).toContain(res.json().code);
    });

    it("GET /api/v1/openapi.json returns an OpenAPI document listing the routes", async () => {
      const res = await h.app.inject({ method: "GET", url: "/api/v1/openapi.json" });
      expect(res.statusCode).toBe(200);
      const doc = res.json() as { openapi: string; info: { title: string }; paths: Record<string, Record<string, unknown>> };
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.info.title).toBe("Baton REST API");
      const expected: [string, string][] = [
        ["/api/v1/health", "get"],
        ["/api/v1/importErrors", "get"],
        ["/api/v1/dags", "get"],
        ["/api/v1/dags/{dag_id}", "get"],
        ["/api/v1/dags/{dag_id}", "patch"],
        ["/api/v1/dags/{dag_id}/dagRuns", "get"],
        ["/api/v1/dags/{dag_id}/dagRuns", "post"],
        ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}", "get"],
        ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", "get"],
        ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", "get"],
        ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}", "get"],
        ["/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", "get"],
      ];
      for (const [route, method] of expected) {
        expect({ route, method, present: !!doc.paths[route]?.[method] }).toEqual({ route, method, present: true });
      }
      expect(doc.paths["/api/v1/openapi.json"]).toBeUndefined();
    });
  });

  it("a rejected POST leaves no dag_run row behind", async () => {
    const [[before]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run");
    const attempts = [
      trigger("api_hello", { dag_run_id: "half_written", conf: "nope" }),
      trigger("api_hello", { dag_run_id: "half_written", logical_date: "not a date" }),
      trigger("api_hello", { dag_run_id: "half_written", extra: true }),
      trigger("api_nope", { dag_run_id: "half_written" }),
      trigger("api_hello", { dag_run_id: "half_written", conf: { blob: "y".repeat(2 * 1024 * 1024) } }),
    ];
    for (const res of await Promise.all(attempts)) expect(res.statusCode).toBeGreaterThanOrEqual(400);
    const [[after]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run");
    expect(Number(after!.n)).toBe(Number(before!.n));
    expect(await dagRunRows("half_written")).toBe(0);
  });
});
