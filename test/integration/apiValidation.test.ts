// How the REST API reads what clients send, where Airflow's API is lenient or strict: paging
// numbers of any size (a 400 or a lowered limit, never a 500), booleans in any case and date-times
// whose "+" arrived as a space, names ending with a space, a dag_id filter naming no DAG, the
// event stream's head, and the answers to values a schema refuses. No worker: the runs' task
// instances stay queued, so every row is known.
import type { AddressInfo } from "node:net";
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem, NAME_RULE_DETAIL, withControlCharacters } from "../helpers/expect.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const MAIN = dagSource(`
export default dag({ id: "val_main" }, (t) => {
  t.task("step", async () => 1);
});
// Triggered while an event stream is read, so val_main's runs stay the two below.
export const stream = dag({ id: "val_stream" }, (t) => {
  t.task("step", async () => 1);
});
`);

describe("API input validation", () => {
  const h = new Harness({ worker: false });
  const get = (url: string) => h.app.inject({ method: "GET", url });
  const post = (url: string, payload: object) => h.app.inject({ method: "POST", url, payload });

  beforeAll(async () => {
    await h.start({ "main.ts": MAIN });
    await h.run();
    for (const [runId, date] of [
      ["jan1", "2026-01-01T00:00:00Z"],
      ["jan2", "2026-01-02T00:00:00Z"],
    ]) {
      const res = await post("/api/v1/dags/val_main/dagRuns", { dag_run_id: runId, logical_date: date });
      expect(res.statusCode).toBe(200);
    }
    await waitFor(
      "both runs' task instances",
      async () => {
        const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'val_main'");
        return Number(row!.n) === 2;
      },
      15_000,
    );
  }, 60_000);
  afterAll(() => h.stop());

  describe("numbers", () => {
    const BATCH_LISTS = ["/api/v1/dags/~/dagRuns/list", "/api/v1/dags/~/dagRuns/~/taskInstances/list"];

    it.each(BATCH_LISTS)("%s refuses a page_offset past 1,000,000,000 with 400, whatever its size", async (url) => {
      for (const pageOffset of [1_000_000_001, 1e20, 1e300, Number.MAX_SAFE_INTEGER + 2]) {
        expectProblem(await post(url, { page_offset: pageOffset }), 400, "BATON_VALIDATION_FAILED", "body.page_offset");
      }
      // Sent as the text a client wrote, not a number JavaScript rounded.
      const res = await h.app.inject({ method: "POST", url, headers: { "content-type": "application/json" }, payload: '{"page_offset":100000000000000000000}' });
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", "body.page_offset");
      expect((await post(url, { page_offset: 1_000_000_000 })).statusCode).toBe(200);
    });

    it("refuses a task instance id past 2^53 in a re-drive: it would name another id (1 more is the same double)", async () => {
      for (const ids of ["[1e300]", "[100000000000000000000]", "[9007199254740993]"]) {
        const res = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", headers: { "content-type": "application/json" }, payload: `{"task_instance_ids":${ids},"dry_run":true}` });
        expectProblem(res, 400, "BATON_VALIDATION_FAILED", "body.task_instance_ids.0");
      }
      expect((await post("/api/v1/deadLetters/redrive", { task_instance_ids: [Number.MAX_SAFE_INTEGER], dry_run: true })).json()).toMatchObject({ redriven: 0 });
    });
  });

  // Airflow's check_limit: a limit over the maximum page (1000) is lowered to it, 0 is the default
  // page (100), only a negative one is a 400.
  describe("page limits", () => {
    const MANY = 1001;

    beforeAll(async () => {
      // Finished runs of a DAG that does not exist: rows to page through, which no component touches.
      await h.db.pool.query(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, queued_at, start_date, end_date)
         SELECT 'val_many', CONCAT('r', LPAD(seq, 4, '0')), REPEAT('0', 64), 'manual', 'success', '2026-01-01', '2026-01-01', '2026-01-01', '2026-01-01'
           FROM seq_1_to_${MANY}`,
      );
    });

    const count = (res: { statusCode: number; body: string; json: () => { dag_runs: unknown[]; total_entries: number } }) => {
      expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
      return { rows: res.json().dag_runs.length, total: res.json().total_entries };
    };

    it("lowers a GET limit over 1000 to 1000, however large, and reads 0 as the default 100", async () => {
      // 1e309 is Infinity, which JSON Schema counts as an integer: larger than any, lowered too.
      for (const limit of ["1001", "5000", "1e300", "100000000000000000000", "1e309"]) {
        expect({ limit, ...count(await get(`/api/v1/dags/val_many/dagRuns?limit=${limit}`)) }).toEqual({ limit, rows: 1000, total: MANY });
      }
      expect(count(await get("/api/v1/dags/val_many/dagRuns?limit=1000"))).toEqual({ rows: 1000, total: MANY });
      expect(count(await get("/api/v1/dags/val_many/dagRuns?limit=0"))).toEqual({ rows: 100, total: MANY });
      expect(count(await get("/api/v1/dags/val_many/dagRuns"))).toEqual({ rows: 100, total: MANY });
      expect(count(await get("/api/v1/dags/val_many/dagRuns?limit=7"))).toEqual({ rows: 7, total: MANY });
    });

    it("does the same for the batch lists' page_limit", async () => {
      const batch = (pageLimit: number) => post("/api/v1/dags/~/dagRuns/list", { dag_ids: ["val_many"], page_limit: pageLimit });
      expect(count(await batch(5000))).toEqual({ rows: 1000, total: MANY });
      expect(count(await batch(1e300))).toEqual({ rows: 1000, total: MANY });
      expect(count(await batch(0))).toEqual({ rows: 100, total: MANY });
      const tis = await post("/api/v1/dags/~/dagRuns/~/taskInstances/list", { dag_ids: ["val_main"], page_limit: 0 });
      expect({ status: tis.statusCode, total: tis.json().total_entries, rows: tis.json().task_instances?.length }).toEqual({ status: 200, total: 2, rows: 2 });
      expect((await post("/api/v1/dags/~/dagRuns/~/taskInstances/list", { page_limit: 5000 })).statusCode).toBe(200);
    });

    it("lowers the limit of every list", async () => {
      // Variables: a list whose schema takes PageQuery as a whole.
      const values = Array.from({ length: MANY }, (_v, i) => `('val_var_${String(i).padStart(4, "0")}', '"x"')`);
      await h.db.pool.query(`INSERT INTO variable (\`key\`, val) VALUES ${values.join(", ")}`);
      const res = await get("/api/v1/variables?limit=2000");
      expect({ status: res.statusCode, rows: res.json().variables?.length, total: res.json().total_entries }).toEqual({ status: 200, rows: 1000, total: MANY });
      const events = await get("/api/v1/eventLogs?dag_id=val_many&limit=5000");
      expect({ status: events.statusCode, rows: events.json().event_logs?.length }).toEqual({ status: 200, rows: 1000 });
    });

    it("refuses a negative or fractional limit with 400", async () => {
      for (const limit of ["-1", "-1000", "1.5", "abc", ""]) {
        expectProblem(await get(`/api/v1/dags/val_many/dagRuns?limit=${limit}`), 400, "BATON_VALIDATION_FAILED", "querystring.limit");
      }
      for (const pageLimit of [-1, 1.5]) {
        expectProblem(await post("/api/v1/dags/~/dagRuns/list", { page_limit: pageLimit }), 400, "BATON_VALIDATION_FAILED", "body.page_limit");
        expectProblem(await post("/api/v1/dags/~/dagRuns/~/taskInstances/list", { page_limit: pageLimit }), 400, "BATON_VALIDATION_FAILED", "body.page_limit");
      }
    });
  });

  // An unencoded "+" in a query string is a space: 2026-01-01T00:00:00+00:00 arrives as
  // "2026-01-01T00:00:00 00:00". Airflow's format_datetime turns the space back into "+".
  describe("date-time query parameters with an unencoded + offset", () => {
    const runIds = (res: { json: () => { dag_runs: { dag_run_id: string }[] } }) => res.json().dag_runs.map((r) => r.dag_run_id).sort();

    it("reads the offset of GET …/dagRuns date filters as the + it was", async () => {
      // 05:00+05:00 is jan1 00:00Z: both runs; 06:00+05:00 is 01:00Z: only jan2.
      const both = await get("/api/v1/dags/val_main/dagRuns?execution_date_gte=2026-01-01T05:00:00+05:00");
      expect({ status: both.statusCode, body: both.body }).toMatchObject({ status: 200 });
      expect(runIds(both)).toEqual(["jan1", "jan2"]);
      expect(runIds(await get("/api/v1/dags/val_main/dagRuns?execution_date_gte=2026-01-01T06:00:00.000+05:00"))).toEqual(["jan2"]);
      expect(runIds(await get("/api/v1/dags/val_main/dagRuns?execution_date_lte=2026-01-01T00:00:00+00:00&start_date_gte=2000-01-01T00:00:00+0000"))).toEqual(["jan1"]);
      // Spelled out (%2B) it was always read so, and a date that is no date stays a 400.
      expect(runIds(await get("/api/v1/dags/val_main/dagRuns?execution_date_gte=2026-01-01T06:00:00%2B05:00"))).toEqual(["jan2"]);
      expectProblem(await get("/api/v1/dags/val_main/dagRuns?execution_date_gte=yesterday"), 400, "BATON_VALIDATION_FAILED", "querystring.execution_date_gte");
    });

    it("reads it in GET …/taskInstances filters", async () => {
      const res = await get("/api/v1/dags/val_main/dagRuns/~/taskInstances?execution_date_lte=2026-01-01T05:00:00+05:00&end_date_lte=2100-01-01T00:00:00+00:00");
      expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
      // No task ended (no worker): end_date_lte leaves none.
      expect(res.json().total_entries).toBe(0);
      const jan1 = await get("/api/v1/dags/val_main/dagRuns/~/taskInstances?execution_date_lte=2026-01-01T05:00:00+05:00");
      expect(jan1.json().task_instances.map((t: { dag_run_id: string }) => t.dag_run_id)).toEqual(["jan1"]);
    });

    it("reads it in GET /eventLogs after and before", async () => {
      const after = await get("/api/v1/eventLogs?dag_id=val_main&after=2000-01-01T00:00:00+00:00");
      expect({ status: after.statusCode, body: after.body }).toMatchObject({ status: 200 });
      expect(after.json().total_entries).toBeGreaterThan(0);
      const before = await get("/api/v1/eventLogs?dag_id=val_main&before=2000-01-01T00:00:00+00:00");
      expect(before.json().total_entries).toBe(0);
    });
  });

  // The date-time format lets through what JavaScript cannot place in time (a leap second, an
  // offset of hours alone): such a filter matched nothing, or named no date at all.
  describe("date-times the schema takes and JavaScript cannot read", () => {
    const UNREADABLE = ["2026-12-31T23:59:60Z", "2026-01-01T06:00:00%2B05"];

    it.each(UNREADABLE)("refuses %s in every date filter and date field with 400 BATON_INVALID_DATE", async (text) => {
      const raw = decodeURIComponent(text);
      expectProblem(await get(`/api/v1/dags/~/dagRuns/~/taskInstances?execution_date_gte=${text}`), 400, "BATON_INVALID_DATE", "querystring.execution_date_gte");
      expectProblem(await get(`/api/v1/dags/val_main/dagRuns?end_date_lte=${text}`), 400, "BATON_INVALID_DATE", "querystring.end_date_lte");
      expectProblem(await get(`/api/v1/eventLogs?before=${text}`), 400, "BATON_INVALID_DATE", "querystring.before");
      expectProblem(await post("/api/v1/dags/~/dagRuns/~/taskInstances/list", { start_date_lte: raw }), 400, "BATON_INVALID_DATE", "body.start_date_lte");
      expectProblem(await post("/api/v1/dags/~/dagRuns/list", { start_date_gte: raw }), 400, "BATON_INVALID_DATE", "body.start_date_gte");
      expectProblem(
        await post("/api/v1/dags/val_main/updateTaskInstancesState", { task_id: "step", execution_date: raw, new_state: "success", dry_run: true }),
        400,
        "BATON_INVALID_DATE",
        "body.execution_date",
      );
      expectProblem(await post("/api/v1/dags/val_main/clearTaskInstances", { start_date: raw, dry_run: true }), 400, "BATON_INVALID_DATE", "body.start_date");
      expectProblem(await post("/api/v1/dags/val_main/clearTaskInstances", { end_date: raw, dry_run: true }), 400, "BATON_INVALID_DATE", "body.end_date");
    });
  });

  // MySQL compares with PAD SPACE: "default_pool " = "default_pool". No pool, queue, event or owner
  // ends with a space, so a filter that does is refused rather than answered for another name.
  describe("filters ending with a space", () => {
    it("refuses pool and queue filters ending with a space, in the query string and the batch body", async () => {
      const tis = (query: string) => get(`/api/v1/dags/val_main/dagRuns/~/taskInstances?${query}`);
      expect((await tis("pool=default_pool&queue=default")).json().total_entries).toBe(2);
      expectProblem(await tis("pool=default_pool%20"), 400, "BATON_VALIDATION_FAILED", "querystring.pool.0 must not end with a space");
      expectProblem(await tis("queue=default%20"), 400, "BATON_VALIDATION_FAILED", "querystring.queue.0 must not end with a space");
      expectProblem(await tis("pool=other&pool=default_pool%20"), 400, "BATON_VALIDATION_FAILED", "querystring.pool.1 must not end with a space");
      const batch = (payload: object) => post("/api/v1/dags/~/dagRuns/~/taskInstances/list", payload);
      expectProblem(await batch({ pool: ["default_pool "] }), 400, "BATON_VALIDATION_FAILED", "body.pool.0 must not end with a space");
      expectProblem(await batch({ queue: ["default "] }), 400, "BATON_VALIDATION_FAILED", "body.queue.0 must not end with a space");
      // No queue or pool name holds a control character (core/dagLimits.ts): say so rather than match nothing.
      expectProblem(await tis("queue=a%0Ab"), 400, "BATON_VALIDATION_FAILED", "querystring.queue.0 must not end with a space or other whitespace, nor contain control characters");
      expectProblem(await tis("pool=a%09b"), 400, "BATON_VALIDATION_FAILED", "querystring.pool.0 must not end with a space or other whitespace, nor contain control characters");
      expectProblem(await batch({ queue: ["a\u0085b"] }), 400, "BATON_VALIDATION_FAILED", "body.queue.0 must not end with a space or other whitespace, nor contain control characters");
    });

    it("refuses event log event and owner filters ending with a space", async () => {
      expect((await get("/api/v1/eventLogs?dag_id=val_main&event=task:queued")).json().total_entries).toBeGreaterThan(0);
      expectProblem(await get("/api/v1/eventLogs?dag_id=val_main&event=task:queued%20"), 400, "BATON_VALIDATION_FAILED", "querystring.event must not end with a space");
      const owner = (await get("/api/v1/eventLogs?dag_id=val_main&event=task:queued")).json().event_logs[0].owner as string;
      expect((await get(`/api/v1/eventLogs?owner=${encodeURIComponent(owner)}`)).json().total_entries).toBeGreaterThan(0);
      expectProblem(await get(`/api/v1/eventLogs?owner=${encodeURIComponent(`${owner} `)}`), 400, "BATON_VALIDATION_FAILED", "querystring.owner must not end with a space");
    });
  });

  // No DAG, run or task id holds a control character (the SDK's and the trigger's id patterns): the
  // API's one name rule (core/dagLimits.ts) refuses one in every body and query field taking an id.
  describe("ids holding a control character", () => {
    const requests: Array<[string, "GET" | "POST", string, (id: string) => Record<string, unknown>]> = [
      ["querystring.dag_id", "GET", "/api/v1/deadLetters", (id) => ({ dag_id: id })],
      ["querystring.dag_id", "GET", "/api/v1/backfills", (id) => ({ dag_id: id })],
      ["body.dag_id", "POST", "/api/v1/deadLetters/redrive", (id) => ({ dag_id: id, dry_run: true })],
      ["body.dag_ids.0", "POST", "/api/v1/dags/~/dagRuns/list", (id) => ({ dag_ids: [id] })],
      ["body.dag_run_id", "POST", "/api/v1/dags/val_main/clearTaskInstances", (id) => ({ dag_run_id: id.replace("val_main", "jan1"), dry_run: true })],
      ["body.task_ids.0", "POST", "/api/v1/dags/val_main/clearTaskInstances", (id) => ({ dag_run_id: "jan1", task_ids: [id.replace("val_main", "step")], dry_run: true })],
      ["body.task_id", "POST", "/api/v1/dags/val_main/updateTaskInstancesState", (id) => ({ task_id: id.replace("val_main", "step"), dag_run_id: "jan1", new_state: "success" })],
      ["body.dag_run_id", "POST", "/api/v1/dags/val_main/updateTaskInstancesState", (id) => ({ task_id: "step", dag_run_id: id.replace("val_main", "jan1"), new_state: "success" })],
    ];
    it.each(requests)("refuses %s of %s %s, and takes a plain one", async (field, method, url, fields) => {
      const send = (id: string) =>
        method === "GET"
          ? get(`${url}?${new URLSearchParams(fields(id) as Record<string, string>)}`)
          : post(url, fields(id));
      for (const bad of withControlCharacters("val_main")) expectProblem(await send(bad), 400, "BATON_VALIDATION_FAILED", `${field} ${NAME_RULE_DETAIL}`);
      const res = await send("val_main");
      expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    });

    it("refuses body.dag_id of POST /api/v1/backfills", async () => {
      for (const bad of withControlCharacters("val_main")) {
        expectProblem(await post("/api/v1/backfills", { dag_id: bad, from_date: "2026-01-01", to_date: "2026-01-02", dry_run: true }), 400, "BATON_VALIDATION_FAILED", `body.dag_id ${NAME_RULE_DETAIL}`);
      }
    });
  });

  // A dag_id filter naming no DAG is a 404 that shows the typo, as GET /deadLetters answers.
  describe("lists filtered by an unknown dag_id", () => {
    it("answers 404 BATON_DAG_NOT_FOUND for GET /backfills?dag_id=<unknown>, and an empty list for a DAG without backfills", async () => {
      expectProblem(await get("/api/v1/backfills?dag_id=nope"), 404, "BATON_DAG_NOT_FOUND", 'DAG "nope" not found');
      expectProblem(await get("/api/v1/deadLetters?dag_id=nope"), 404, "BATON_DAG_NOT_FOUND", 'DAG "nope" not found');
      const none = await get("/api/v1/backfills?dag_id=val_main");
      expect({ status: none.statusCode, body: none.json() }).toEqual({ status: 200, body: { backfills: [], total_entries: 0 } });
      expect((await get("/api/v1/backfills")).statusCode).toBe(200);
    });
  });

  // GET /api/v1/events writes its head itself (a stream, not a reply Fastify sends).
  describe("the event stream", () => {
    let base = "";
    beforeAll(async () => {
      await h.app.listen({ port: 0, host: "127.0.0.1" });
      base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    });

    /** Reads the stream until `until` holds for what came so far, or `ms` passed; what came. */
    async function readStream(response: Response, until: (text: string) => boolean, ms: number): Promise<string> {
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      const deadline = Date.now() + ms;
      while (!until(text) && Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(1, deadline - Date.now()))));
        const chunk = await Promise.race([reader.read(), timeout]);
        clearTimeout(timer);
        if (chunk === null || chunk.done) break;
        text += decoder.decode(chunk.value);
      }
      return text;
    }

    it("answers X-Request-Id like every other answer: the caller's, or a new one", async () => {
      const controller = new AbortController();
      try {
        // The unencoded + of a date filter is read here too.
        const given = await fetch(`${base}/api/v1/events?poll_ms=50&after=2000-01-01T00:00:00+00:00`, { headers: { "x-request-id": "val-sse-1" }, signal: controller.signal });
        expect(given.status).toBe(200);
        expect(given.headers.get("content-type")).toContain("text/event-stream");
        expect(given.headers.get("x-request-id")).toBe("val-sse-1");
        const fresh = await fetch(`${base}/api/v1/events?poll_ms=50`, { signal: controller.signal });
        expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      } finally {
        controller.abort();
      }
    });

    it("ignores a Last-Event-ID past 2^53, as it ignores one that is no id, instead of waiting for ids that never come", async () => {
      const controller = new AbortController();
      try {
        const response = await fetch(`${base}/api/v1/events?poll_ms=50&dag_id=val_stream`, { headers: { "last-event-id": "1e300" }, signal: controller.signal });
        expect(response.status).toBe(200);
        const read = readStream(response, (text) => text.includes('"dag_run_id":"after_stream"'), 15_000);
        expect((await post("/api/v1/dags/val_stream/dagRuns", { dag_run_id: "after_stream" })).statusCode).toBe(200);
        const text = await read;
        expect(text).toContain('"dag_run_id":"after_stream"');
        expect(text).not.toContain("e+");
      } finally {
        controller.abort();
      }
    });
  });

  // A value outside an enumeration says what is allowed, as Airflow's "'x' is not one of [...]" does.
  describe("enumerated values", () => {
    const patch = (url: string, payload: object) => h.app.inject({ method: "PATCH", url, payload });

    it("lists the allowed values of a union of literals (states, new_state)", async () => {
      expectProblem(await get("/api/v1/dags/val_main/dagRuns?state=succeeded"), 400, "BATON_VALIDATION_FAILED", "querystring.state.0 must be one of: queued, running, success, failed");
      expectProblem(await get("/api/v1/dags/val_main/dagRuns?state=running&state=bogus"), 400, "BATON_VALIDATION_FAILED", "querystring.state.1 must be one of: queued, running, success, failed");
      expectProblem(
        await get("/api/v1/dags/val_main/dagRuns/~/taskInstances?state=succeeded"),
        400,
        "BATON_VALIDATION_FAILED",
        "querystring.state.0 must be one of: none, scheduled, queued, running, success, failed, up_for_retry, up_for_reschedule, deferred, skipped, upstream_failed, removed",
      );
      expectProblem(await patch("/api/v1/dags/val_main/dagRuns/jan1/taskInstances/step", { new_state: "succes" }), 400, "BATON_VALIDATION_FAILED", "body.new_state must be one of: success, failed, skipped");
      expectProblem(await post("/api/v1/dags/~/dagRuns/list", { states: ["done"] }), 400, "BATON_VALIDATION_FAILED", "body.states.0 must be one of: queued, running, success, failed");
      expectProblem(await get("/api/v1/eventLogs?order_by=newest"), 400, "BATON_VALIDATION_FAILED", "querystring.order_by must be one of: event_log_id, -event_log_id, when, -when");
    });

    it("lists the allowed values of an enum (run state, order_by)", async () => {
      expectProblem(await patch("/api/v1/dags/val_main/dagRuns/jan1", { state: "succes" }), 400, "BATON_VALIDATION_FAILED", "body.state must be one of: failed, success, queued");
      const bogus = await get("/api/v1/dags/val_main/dagRuns?order_by=bogus");
      expectProblem(bogus, 400, "BATON_VALIDATION_FAILED", "querystring.order_by must be one of: id, -id, dag_id, -dag_id, dag_run_id, -dag_run_id,");
      expectProblem(await get("/api/v1/dags?order_by=fileloc"), 400, "BATON_VALIDATION_FAILED", "querystring.order_by must be one of: dag_id, -dag_id, last_parsed_time");
    });

    it("keeps the schema's own words where the value had another type or a union mixes kinds", async () => {
      expectProblem(await patch("/api/v1/dags/val_main/dagRuns/jan1/taskInstances/step", { new_state: 5 }), 400, "BATON_VALIDATION_FAILED", "body.new_state must be string");
      expectProblem(await patch("/api/v1/dags/val_main/dagRuns/jan1/setNote", { note: 5 }), 400, "BATON_VALIDATION_FAILED", "body.note must be string");
    });
  });

  // Python's requests sends True as "True"; Airflow's connexion reads booleans in any case.
  describe("boolean query parameters", () => {
    const dagIds = (res: { json: () => { dags: { dag_id: string }[] } }) => res.json().dags.map((d) => d.dag_id);

    it("reads true and false in any case", async () => {
      for (const value of ["False", "FALSE", "false", "True", "TRUE", "tRuE"]) {
        const res = await get(`/api/v1/dags?only_active=${value}`);
        expect({ value, status: res.statusCode }).toEqual({ value, status: 200 });
      }
      expect(dagIds(await get("/api/v1/dags?paused=True"))).toEqual([]);
      expect(dagIds(await get("/api/v1/dags?paused=FALSE"))).toEqual(["val_main", "val_stream"]);
    });

    it("still refuses what is no boolean", async () => {
      for (const value of ["yes", "1", "Truee", ""]) {
        expectProblem(await get(`/api/v1/dags?only_active=${value}`), 400, "BATON_VALIDATION_FAILED", "querystring.only_active");
      }
    });
  });
});
