// Malformed requests against every operation in the OpenAPI document: wrong types for each
// parameter and body field, huge and odd strings (NUL, emoji, SQL and LIKE metacharacters,
// path traversal), bad limits and dates, invalid JSON, wrong content types, oversized bodies,
// duplicate query parameters. Whatever arrives: never a 5xx, never a hang (5 s), every error is
// problem JSON with a code from core/errors.ts, successes match the spec, and rejected requests
// leave every table as it was. Deterministic: BATON_FUZZ_SEED replays a run (printed on failure).
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import {
  bodySchemaOf,
  ContractValidator,
  describeRequest,
  operationsOf,
  paramsOf,
  problemErrors,
  sampleOf,
  send,
  specOf,
  type Operation,
  type Parameter,
  type Schema,
} from "../helpers/openapi.ts";

const SEED = Number(process.env.BATON_FUZZ_SEED ?? 20_261_125);
const MIN_REQUESTS = 2_000;
const RANDOM_PER_OPERATION = 30;
const SLOW_MS = 5_000;

/**
 * Requests not sent at all, because they are known to hang the server (reported; remove when fixed).
 */
const KNOWN_HANGS: { operation: string; when: (body: Record<string, unknown>) => boolean; todo: string }[] = [];

/**
 * Failures already reported to the owner of the route, skipped here until fixed:
 * { operation: "METHOD /path" or "*", mutation: substring of the mutation description, todo }.
 */
const KNOWN_FAILURES: { operation: string; mutation: string; todo: string }[] = [];

/** mulberry32: a small seeded PRNG, so a seed replays the same requests. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!, chance: (p: number) => next() < p };
}

const HUGE = "x".repeat(100 * 1024);
const OVER_LIMIT = 1024 * 1024 + 16;

/** Odd strings for ids, filters and text fields. */
const NASTY_STRINGS = [
  "' OR 1=1 --",
  "\" OR \"\"=\"",
  "%",
  "_",
  "%_%",
  "\\",
  "\\'; DROP TABLE dag; --",
  "a\u0000b",
  "\u0000",
  "😀🔥👩‍👩‍👧",
  "\u202Eevil",
  "\uFFFF",
  "Ω≈ç√∫",
  "../../etc/passwd",
  "..\\..\\windows",
  "${7*7}{{7*7}}",
  "<script>alert(1)</script>",
  " ",
  "null",
  "x".repeat(251),
  HUGE,
];
/** Written into the URL as they are (not percent-encoded): traversal and broken escapes. */
const RAW_PATH_VALUES = ["../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2F..%2F", "%", "%zz", "%00", "%ff%fe", "a%2Fb", "..", "~", "%E2%80%AE"];
const NUMBER_TEXTS = ["-1", "0", "1.5", "-0", "1e3", "1e309", "1e300", "99999999999999999999", "100000000000000000000", "9007199254740993", "0x10", " 1", "1 ", "", "abc", "NaN", "Infinity", "true"];
const DATE_TEXTS = ["2026-13-45T00:00:00Z", "2026-02-30T00:00:00Z", "0000-00-00T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "yesterday", "2026-01-01", "1e12", "-271821-04-20T00:00:00Z"];
/** JSON values of every type, for fields of any type. */
const WRONG_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e21, 1e308, -1e308, "", "x", "' OR 1=1 --", "a\u0000b", [], [1, "a"], {}, { $gt: "" }, HUGE];
const INVALID_JSON = ["{", '{"a":', "nope", "{'a':1}", '{"a":1}}', "[1,2", "NaN", "\u0000", "{\"a\":\"\\u12\"}", " "];
const PROTO_JSON = ['{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}'];
const CONTENT_TYPES = ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "*/*", "application/octet-stream", "image/png"];
const HEADER_VALUES = ["", "x".repeat(8_000), "' OR 1=1 --", "-1", "1e309", "../../etc/passwd", "%00", "\u00ff\u00fe"];

/**
 * Numbers past 2^53, which JavaScript writes as 1e+21: a schema that does not bound a number let
 * one through to SQL, where it was a syntax error (a 500). Sent in every numeric place.
 */
const HUGE_NUMBERS = [1e21, 1e300, Number.MAX_SAFE_INTEGER + 2, -1e300];

/** POSTs that only read (Airflow's batch lists): valid requests are sent to them too, as to a GET. */
const READ_ONLY_POSTS = new Set(["POST /api/v1/dags/~/dagRuns/list", "POST /api/v1/dags/~/dagRuns/~/taskInstances/list"]);

/** Valid bodies that reach past the "not found" checks, so mutations of one field go deep. */
const BASE_BODIES: Record<string, unknown> = {
  "POST /api/v1/backfills": { dag_id: "fuzz_daily", from_date: "2026-01-01", to_date: "2026-01-03", dry_run: true },
  "POST /api/v1/dags/{dag_id}/clearTaskInstances": { dag_run_id: "fuzz_run", dry_run: true },
  "POST /api/v1/dags/{dag_id}/updateTaskInstancesState": { dag_run_id: "fuzz_run", task_id: "step", new_state: "success", dry_run: true },
  "POST /api/v1/deadLetters/redrive": { dag_id: "fuzz_main", dry_run: true },
  "POST /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/signals/{name}": { payload: { ok: true } },
};

interface FuzzRequest {
  operation: Operation;
  method: string;
  path: Record<string, { value: string; raw: boolean }>;
  query: [string, string][];
  headers: Record<string, string>;
  /** A JSON value (serialized on send), or text sent as is. */
  body?: { json: unknown } | { text: string };
  mutations: string[];
  /** A path id was replaced by one that cannot exist, or a body string by an odd value. */
  nasty: boolean;
  /** Rejected before any handler runs (unparseable, unsupported, oversized). */
  transportInvalid: boolean;
}

describe("API fuzz", () => {
  const h = new Harness({ workers: 1 });
  const realIds: Record<string, string> = {
    dag_id: "fuzz_main",
    dag_run_id: "fuzz_run",
    task_id: "step",
    try_number: "1",
    xcom_key: "return_value",
    pool_name: "default_pool",
    name: "go",
  };

  beforeAll(async () => {
    await h.start({
      "main.ts": dagSource(`export default dag({ id: "fuzz_main" }, (t) => { t.task("step", async () => ({ ok: true })); });`),
      "signal.ts": dagSource(`export default dag({ id: "fuzz_signal" }, (t) => { t.waitForSignal("wait", { signal: "go" }); });`),
      "daily.ts": dagSource(`export default dag({ id: "fuzz_daily", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => { t.task("noop", async () => 1); });`),
    });
    await h.run();
    const post = (url: string, payload: object) => h.app.inject({ method: "POST", url: `/api/v1${url}`, payload });
    await post("/dags/fuzz_main/dagRuns", { dag_run_id: "fuzz_run" });
    await post("/dags/fuzz_signal/dagRuns", { dag_run_id: "fuzz_waiting" });
    const backfill = await post("/backfills", { dag_id: "fuzz_daily", from_date: "2026-01-01", to_date: "2026-01-05" });
    realIds.backfill_id = String(backfill.json().id);
    const state = async (sql: string) => ((await h.db.pool.query<RowDataPacket[]>(sql))[0][0]?.state as string | undefined) ?? "";
    await waitFor("fuzz_run to succeed", async () => (await state("SELECT state FROM dag_run WHERE run_id = 'fuzz_run'")) === "success", 20_000);
    await waitFor("fuzz_waiting to wait", async () => (await state("SELECT state FROM task_instance WHERE run_id = 'fuzz_waiting'")) === "deferred", 20_000);
    // Backfill runs execute even though their DAG is paused; let them all finish first.
    await waitFor("the backfill to complete", async () => (await state(`SELECT state FROM backfill WHERE id = ${Number(realIds.backfill_id)}`)) === "completed", 30_000);
    // Quiet from here on: only the requests below may change the database.
    await h.scheduler.stop();
    await h.worker?.stop(2_000);
    const [[version]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_version WHERE dag_id = 'fuzz_main' LIMIT 1");
    realIds.dag_version = version!.version_hash as string;
  }, 60_000);
  afterAll(() => h.stop());

  /** Row count and checksum of every table: equal snapshots mean unchanged contents. */
  async function snapshot(): Promise<string> {
    const [tables] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name",
    );
    const names = tables.map((r) => `\`${String(r.t)}\``);
    const [sums] = await h.db.pool.query<RowDataPacket[]>(`CHECKSUM TABLE ${names.join(", ")}`);
    const [counts] = await h.db.pool.query<RowDataPacket[]>(names.map((n) => `SELECT '${n}' AS t, COUNT(*) AS n FROM ${n}`).join(" UNION ALL "));
    return JSON.stringify({ sums: sums.map((r) => [r.Table, String(r.Checksum)]), counts: counts.map((r) => [r.t, Number(r.n)]) });
  }

  function diff(a: string, b: string): string {
    const [x, y] = [JSON.parse(a), JSON.parse(b)] as { sums: [string, string][]; counts: [string, number][] }[];
    const changed = x!.sums.filter(([t, s], i) => y!.sums[i]?.[0] !== t || y!.sums[i]?.[1] !== s).map(([t]) => t);
    return `tables changed: ${changed.join(", ") || "(table list changed)"}`;
  }

  it("answers thousands of malformed requests with 4xx problem JSON, quickly, and changes nothing", async () => {
    const spec = specOf(h.app);
    const v = new ContractValidator(spec);
    const operations = operationsOf(spec);
    const rnd = prng(SEED);

    const isMutating = (op: Operation) => !["GET", "HEAD", "OPTIONS"].includes(op.method);
    /** May change the database when the request is valid: such requests are not sent (see run). */
    const mayWrite = (op: Operation) => isMutating(op) && !READ_ONLY_POSTS.has(op.key);
    const schemaOf = (p: Parameter) => (p.schema ?? {}) as Schema;

    const baseline = (operation: Operation): FuzzRequest => {
      const path: FuzzRequest["path"] = {};
      for (const p of paramsOf(operation.op, "path")) path[p.name] = { value: realIds[p.name] ?? String(sampleOf(p.schema, v)), raw: false };
      const bodySchema = bodySchemaOf(operation.op);
      return {
        operation,
        method: operation.method,
        path,
        query: [],
        headers: {},
        body: bodySchema ? { json: structuredClone(BASE_BODIES[operation.key] ?? sampleOf(bodySchema, v)) } : undefined,
        mutations: [],
        nasty: false,
        transportInvalid: false,
      };
    };

    /** Would the app's validation reject it? Mirrors api/app.ts: path/query coerced, bodies exact. */
    const schemaInvalid = (r: FuzzRequest): boolean => {
      const pathObj = Object.fromEntries(Object.entries(r.path).map(([k, x]) => [k, x.raw ? safeDecode(x.value) : x.value]));
      for (const p of paramsOf(r.operation.op, "path")) {
        if (pathObj[p.name] === undefined || !v.valid({ type: "object", properties: { [p.name]: schemaOf(p) }, required: [p.name] }, { [p.name]: pathObj[p.name] }, true)) return true;
      }
      const query: Record<string, string | string[]> = {};
      for (const [k, x] of r.query) query[k] = k in query ? ([] as string[]).concat(query[k]!, x) : x;
      const qparams = paramsOf(r.operation.op, "query");
      const qschema = { type: "object", properties: Object.fromEntries(qparams.map((p) => [p.name, schemaOf(p)])), required: qparams.filter((p) => p.required).map((p) => p.name) };
      if (!v.valid(qschema, query, true)) return true;
      const bodySchema = bodySchemaOf(r.operation.op);
      if (bodySchema && r.body && "json" in r.body && !v.valid(bodySchema, r.body.json)) return true;
      if (bodySchema && !r.body && r.operation.op.requestBody?.required) return true;
      return false;
    };

    // ---- mutations -------------------------------------------------------------------------
    const setPath = (r: FuzzRequest, name: string, value: string, raw: boolean) => {
      r.path[name] = { value, raw };
      r.nasty = true;
      r.mutations.push(`path.${name}=${label(value)}${raw ? " (raw)" : ""}`);
    };
    const setQuery = (r: FuzzRequest, name: string, values: string[]) => {
      r.query = r.query.filter(([k]) => k !== name).concat(values.map((x) => [name, x] as [string, string]));
      r.mutations.push(`query.${name}=${values.map(label).join("&")}`);
    };
    const bodyFields = (op: Operation): [string, Schema][] => {
      const s = v.resolve(bodySchemaOf(op.op));
      return Object.entries((s?.properties ?? {}) as Record<string, Schema>);
    };
    /** A JSON body replaces a text one set by an earlier mutation, with its content type. */
    const jsonBody = (r: FuzzRequest, json: unknown) => {
      if (r.body && "text" in r.body) {
        delete r.headers["content-type"];
        r.transportInvalid = false;
      }
      r.body = { json };
    };
    const setBodyField = (r: FuzzRequest, name: string, value: unknown) => {
      const base = r.body && "json" in r.body && r.body.json && typeof r.body.json === "object" && !Array.isArray(r.body.json) ? (r.body.json as object) : {};
      jsonBody(r, { ...base, [name]: value });
      if (typeof value === "string") r.nasty = true;
      r.mutations.push(`body.${name}=${label(value)}`);
    };
    const setText = (r: FuzzRequest, text: string, contentType: string, why: string) => {
      r.body = { text };
      r.headers["content-type"] = contentType;
      // Fastify parses JSON and text/plain; anything else is a 415. A text body is refused only
      // by a route with a body schema, and unparseable JSON by every route.
      const parsedAsText = contentType === "text/plain" && !bodySchemaOf(r.operation.op);
      r.transportInvalid = !parsedAsText;
      r.mutations.push(why);
    };

    const randomMutation = (r: FuzzRequest) => {
      const op = r.operation;
      const pathParams = paramsOf(op.op, "path");
      const queryParams = paramsOf(op.op, "query");
      const fields = bodyFields(op);
      const hasBody = !!bodySchemaOf(op.op);
      const choices: (() => void)[] = [];
      if (pathParams.length) {
        choices.push(() => setPath(r, rnd.pick(pathParams).name, rnd.pick([...NASTY_STRINGS, ...NUMBER_TEXTS]), false));
        choices.push(() => setPath(r, rnd.pick(pathParams).name, rnd.pick(RAW_PATH_VALUES), true));
      }
      const queryValue = (p?: Parameter) => (schemaOf(p ?? ({} as Parameter)).format === "date-time" ? rnd.pick(DATE_TEXTS) : rnd.pick([...NUMBER_TEXTS, ...NASTY_STRINGS, ...DATE_TEXTS]));
      if (queryParams.length) {
        choices.push(() => {
          const p = rnd.pick(queryParams);
          setQuery(r, p.name, [queryValue(p)]);
        });
        choices.push(() => {
          const p = rnd.pick(queryParams);
          setQuery(r, p.name, [queryValue(p), queryValue(p), ...(rnd.chance(0.3) ? [queryValue(p)] : [])]);
        });
      }
      choices.push(() => setQuery(r, rnd.pick(["limit", "offset", "order_by", "unknown_param", "__proto__", "dag_id[]"]), [queryValue()]));
      choices.push(() => {
        const name = rnd.pick(["accept", "idempotency-key", "last-event-id", "x-request-id", "authorization", "if-none-match"]);
        r.headers[name] = rnd.pick(HEADER_VALUES);
        r.mutations.push(`header.${name}=${label(r.headers[name]!)}`);
      });
      if (hasBody) {
        if (fields.length) {
          choices.push(() => setBodyField(r, rnd.pick(fields)[0], rnd.pick(WRONG_VALUES)));
          choices.push(() => setBodyField(r, rnd.pick(fields)[0], rnd.pick(NASTY_STRINGS)));
        }
        choices.push(() => setBodyField(r, rnd.pick(["unknown_field", "__proto__x", ""]), rnd.pick(WRONG_VALUES)));
        choices.push(() => {
          const json = rnd.pick([[], "text", 123, null, true, [{}]]);
          jsonBody(r, json);
          r.mutations.push(`body=${label(json)}`);
        });
      }
      if (isMutating(op)) {
        choices.push(() => setText(r, rnd.pick([...INVALID_JSON, ...PROTO_JSON]), "application/json", "invalid JSON body"));
        choices.push(() => setText(r, JSON.stringify(r.body && "json" in r.body ? r.body.json : {}), rnd.pick(CONTENT_TYPES), "wrong content-type"));
        choices.push(() => setText(r, JSON.stringify({ blob: "y".repeat(OVER_LIMIT) }), "application/json", "body over 1 MiB"));
      }
      rnd.pick(choices)();
    };

    /** Each parameter and body field with each kind of wrong value, once. */
    const systematic = (op: Operation): FuzzRequest[] => {
      const out: FuzzRequest[] = [];
      for (const p of paramsOf(op.op, "path")) {
        for (const value of ["-1", "1.5", "abc", "99999999999999999999", "' OR 1=1 --", "%_", "a\u0000b", "😀", "x".repeat(251), "x".repeat(2_000)]) {
          const r = baseline(op);
          setPath(r, p.name, value, false);
          out.push(r);
        }
        for (const value of ["../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%", "%00"]) {
          const r = baseline(op);
          setPath(r, p.name, value, true);
          out.push(r);
        }
      }
      for (const p of paramsOf(op.op, "query")) {
        const values =
          schemaOf(p).format === "date-time"
            ? DATE_TEXTS
            : ["-1", "0", "1.5", "abc", "", "1e309", "1e300", "99999999999999999999", "100000000000000000000", "9007199254740993", "true", "' OR 1=1 --", "%_", "\\", HUGE];
        for (const value of values) {
          const r = baseline(op);
          setQuery(r, p.name, [value]);
          out.push(r);
        }
        const dup = baseline(op);
        setQuery(dup, p.name, ["1", "2"]);
        out.push(dup);
      }
      for (const [name, schema] of bodyFields(op)) {
        const dates = schema.format === "date-time" || name.includes("date") ? DATE_TEXTS : [];
        const items = (schema.items ?? {}) as Schema;
        const numericItems = schema.type === "array" && (items.type === "integer" || items.type === "number");
        const huge = [...HUGE_NUMBERS, ...(numericItems ? HUGE_NUMBERS.map((n) => [n]) : [])];
        for (const value of [null, true, -1, 1.5, "x", "", [], {}, 1e308, ...huge, HUGE, "' OR 1=1 --", ...dates]) {
          const r = baseline(op);
          setBodyField(r, name, value);
          out.push(r);
        }
      }
      if (isMutating(op)) {
        for (const text of INVALID_JSON.slice(0, 4)) {
          const r = baseline(op);
          setText(r, text, "application/json", "invalid JSON body");
          out.push(r);
        }
        for (const ct of CONTENT_TYPES.slice(0, 3)) {
          const r = baseline(op);
          setText(r, "{}", ct, "wrong content-type");
          out.push(r);
        }
        const big = baseline(op);
        setText(big, JSON.stringify({ blob: "y".repeat(OVER_LIMIT) }), "application/json", "body over 1 MiB");
        out.push(big);
      }
      return out;
    };

    // ---- sending and checking --------------------------------------------------------------
    const failures = new Map<string, string>();
    const knownSeen = new Set<number>();
    const fail = (r: FuzzRequest, what: string, request: string) => {
      const known = KNOWN_FAILURES.findIndex((k) => (k.operation === "*" || k.operation === r.operation.key) && r.mutations.join(" ").includes(k.mutation));
      if (known >= 0) {
        knownSeen.add(known);
        return;
      }
      const key = `${r.operation.key} [${r.mutations.map((m) => m.split("=")[0]).join(", ")}] ${what.split(":")[0]}`;
      if (!failures.has(key)) failures.set(key, `${what}\n    request: ${request}\n    mutations: ${r.mutations.join("; ")}`);
    };

    let sent = 0;
    let skipped = 0;
    let acceptedMutations = 0;
    const accepted = new Map<string, number>();
    /** Requests since the last snapshot: the suspects when the database changed unexpectedly. */
    let sinceSnapshot: string[] = [];
    // Whatever the stopped components still had in flight lands before the first snapshot.
    let before = await waitFor(
      "the database to be quiet",
      async () => {
        const a = await snapshot();
        await new Promise((r) => setTimeout(r, 300));
        return a === (await snapshot()) ? a : "";
      },
      15_000,
    );
    const initial = before;

    const run = async (r: FuzzRequest) => {
      const mutating = isMutating(r.operation);
      const invalid = r.transportInvalid || schemaInvalid(r);
      // Only requests that must be refused go to routes that change things; a valid one goes only
      // with an id that cannot exist or an odd value, and is checked against the database alone.
      if (mayWrite(r.operation) && !invalid && !r.nasty) {
        skipped++;
        return;
      }
      const json = r.body && "json" in r.body && r.body.json && typeof r.body.json === "object" ? (r.body.json as Record<string, unknown>) : {};
      if (KNOWN_HANGS.some((k) => k.operation === r.operation.key && k.when(json))) {
        skipped++;
        return;
      }
      const url =
        r.operation.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
          const p = r.path[name]!;
          return p.raw ? p.value : encodeURIComponent(p.value);
        }) + (r.query.length ? `?${r.query.map(([k, x]) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`).join("&")}` : "");
      const headers = { ...r.headers };
      let payload: string | undefined;
      if (r.body && "text" in r.body) payload = r.body.text;
      else if (r.body && mutating) {
        payload = JSON.stringify(r.body.json);
        headers["content-type"] ??= "application/json";
      }
      const options = { method: r.method as "GET", url, headers, ...(payload === undefined ? {} : { payload }) };
      const request = describeRequest(options);
      let res;
      try {
        res = await send(h.app, options, SLOW_MS);
      } catch (err) {
        fail(r, `inject threw: ${(err as Error).message}`, request);
        return;
      }
      sent++;
      sinceSnapshot.push(`${request} → ${res.statusCode}`);
      if (res.timedOut) return fail(r, `no answer within ${SLOW_MS} ms`, request);
      if (res.ms > SLOW_MS) fail(r, `took ${Math.round(res.ms)} ms`, request);
      if (res.statusCode >= 500) return fail(r, `${res.statusCode}: ${res.body.slice(0, 300)}`, request);
      if (res.statusCode >= 400) for (const e of problemErrors(res)) fail(r, `${res.statusCode} not problem JSON: ${e}`, request);
      else for (const e of v.check(r.operation, res)) fail(r, `${res.statusCode} differs from the spec: ${e}`, request);
      if (mutating && invalid && res.statusCode < 400) fail(r, `${res.statusCode}: a request the schema refuses was accepted`, request);
      // Every mutating request is checked against the database alone, so a change made by a
      // refused request can never be booked to a later, accepted one.
      if (mutating) {
        const after = await snapshot();
        if (after !== before) {
          const suspects = `; mutating requests since the last snapshot: ${sinceSnapshot.filter((x) => !/^(GET|HEAD) /.test(x)).slice(-6).join(" | ")}`;
          if (res.statusCode >= 400) fail(r, `${res.statusCode} but the database changed (${diff(before, after)})${suspects}`, request);
          else if (invalid) fail(r, `${res.statusCode}: a request the schema refuses changed the database (${diff(before, after)})`, request);
          else {
            acceptedMutations++;
            accepted.set(r.operation.key, (accepted.get(r.operation.key) ?? 0) + 1);
          }
          before = after;
        }
        sinceSnapshot = [];
      }
    };

    const started = Date.now();
    for (const op of operations) for (const r of systematic(op)) await run(r);
    let round = 0;
    while (round < RANDOM_PER_OPERATION || sent < MIN_REQUESTS) {
      for (const op of operations) {
        const r = baseline(op);
        const n = 1 + Math.floor(rnd.next() * 3);
        for (let i = 0; i < n; i++) randomMutation(r);
        await run(r);
      }
      round++;
      if (round > RANDOM_PER_OPERATION * 10) break;
    }
    const after = await snapshot();
    // Unchanged unless a valid request (an upsert, say) was accepted, which re-took the snapshot.
    if (after !== before) failures.set("database", `the database changed during the fuzz run (${diff(before, after)})`);
    const summary = `seed ${SEED} (BATON_FUZZ_SEED=${SEED} replays it): ${sent} requests to ${operations.length} operations in ${Date.now() - started} ms, ${skipped} valid mutations or known hangs not sent, ${acceptedMutations} accepted (${[...accepted].map(([k, n]) => `${k} ×${n}`).join(", ")})`;
    KNOWN_FAILURES.forEach((k, i) => {
      if (!knownSeen.has(i)) failures.set(`stale ${i}`, `KNOWN_FAILURES entry no longer fails, remove it: ${k.operation} ${k.mutation}`);
    });
    if (process.env.BATON_FUZZ_VERBOSE) console.log(summary);
    if (acceptedMutations === 0 && after !== initial) failures.set("database-initial", `the database changed (${diff(initial, after)})`);
    expect({ summary, failures: [...failures.values()].slice(0, 40) }).toEqual({ summary, failures: [] });
    expect(sent).toBeGreaterThanOrEqual(MIN_REQUESTS);
  }, 180_000);
});

function label(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  const shown = text.length > 40 ? `${text.slice(0, 20)}…(${text.length} chars)` : text;
  return JSON.stringify(shown);
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
