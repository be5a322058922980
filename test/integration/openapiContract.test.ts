// The OpenAPI document is the contract: docs/openapi.json matches what the app generates, every
// operation is documented (operationId, success schema), and every operation in the spec is
// called against a real scenario, its answers validated against the schema the spec declares
// for their status. A route added without a call here that succeeds fails this test.
import { readFile } from "node:fs/promises";
import { encodeCursor } from "../../api/cursor.ts";
import { renderOpenApi, SPEC_FILE } from "../../scripts/openapi.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { eventOrder } from "../../store/queries/events.ts";
import { dagRunOrder, TASK_INSTANCE_ORDER } from "../../store/queries/read.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import {
  bodySchemaOf,
  ContractValidator,
  describeRequest,
  fillPath,
  operationsOf,
  paramsOf,
  problemErrors,
  sampleOf,
  send,
  specOf,
  successStatuses,
  type OpenApiSpec,
  type Operation,
  type Sent,
} from "../helpers/openapi.ts";

const DAGS: Record<string, string> = {
  "main.ts": dagSource(`
export default dag({ id: "contract_main" }, (t) => {
  const extract = t.task("extract", async (ctx) => { ctx.log.info("extracting"); return { rows: await ctx.step("count_rows", () => 3) }; });
  t.task("load", { upstream: [extract] }, async (ctx) => ctx.get(extract).rows);
});`),
  "signal.ts": dagSource(`
export default dag({ id: "contract_signal" }, (t) => {
  const wait = t.waitForSignal("wait", { signal: "go" });
  wait.then(t.task("after", async (ctx) => ctx.get(wait)));
});`),
  "failing.ts": dagSource(`
export default dag({ id: "contract_failing", defaultArgs: { retries: 0 } }, (t) => {
  t.task("boom", async () => { throw new TypeError("contract boom"); });
});`),
  // Paused: a backfill of it stays running (its runs wait), so pause/unpause/cancel all apply.
  "daily.ts": dagSource(`
export default dag({ id: "contract_daily", schedule: "@daily", startDate: "2026-01-01", catchup: false, isPausedUponCreation: true }, (t) => {
  t.task("noop", async () => 1);
});`),
  "broken.ts": `import { dag } from "baton";\nexport default dag({ id: "contract_broken" }, (t) => { t.task("x", async () => { ) });\n`,
};

/** A call of one operation: path parameters over the scenario's, a body over the sampled one. */
interface Call {
  params?: Record<string, string | number>;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Order: creates 0, reads 1, updates and actions 2, deletes 3 (see rankOf). */
  rank?: number;
}

/**
 * Operations a generic call cannot make succeed: the path parameters come from the scenario,
 * the body is sampled from the request schema (required fields only). Keyed "METHOD path".
 */
const CALLS: Record<string, Call[]> = {
  "POST /api/v1/dags/{dag_id}/dagRuns": [{ body: { dag_run_id: "contract_triggered", conf: { source: "contract" }, note: "from the contract test" } }],
  "PATCH /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}": [{ params: { dag_id: "contract_signal", dag_run_id: "contract_cancel" }, body: { state: "failed" } }],
  "POST /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/signals/{name}": [
    { params: { dag_id: "contract_signal", dag_run_id: "contract_waiting", name: "go" }, body: { payload: { approved: true }, signal_id: "contract-1" } },
    // The same signal_id again: a duplicate, answered without delivering.
    { params: { dag_id: "contract_signal", dag_run_id: "contract_waiting", name: "go" }, body: { payload: { approved: true }, signal_id: "contract-1" } },
  ],
  // After the signal above was sent (rank 2): the list holds it, delivered.
  "GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/signals": [{}, { params: { dag_id: "contract_signal", dag_run_id: "contract_waiting" }, query: { name: "go" }, rank: 2.5 }],
  // A keyset page: the rows after id 0, as a cursor the API issued would ask.
  "GET /api/v1/dags/{dag_id}/dagRuns": [{}, { query: { limit: "1", cursor: encodeCursor("dag_runs", { path: { dag_id: "contract_main" }, filters: {} }, dagRunOrder(undefined), { id: 0 }, 1) } }],
  "GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances": [
    {},
    {
      query: {
        limit: "1",
        cursor: encodeCursor("task_instances", { path: { dag_id: "contract_main", dag_run_id: "contract_run" }, filters: {} }, TASK_INSTANCE_ORDER, { id: 0 }, 1),
      },
    },
  ],
  "POST /api/v1/dags/{dag_id}/clearTaskInstances": [{ body: { dag_run_id: "contract_run", dry_run: true } }],
  "POST /api/v1/deadLetters/redrive": [{ body: { dag_id: "contract_failing", dry_run: true } }],
  "GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}": [{}, { headers: { accept: "application/json" } }],
  "GET /api/v1/eventLogs": [
    {},
    { query: { dag_id: "contract_main", limit: "2", offset: "1" } },
    { query: { run_id: "contract_run", event: "task:success", owner: "x", map_index: "-1", try_number: "1", included_events: "task:success,run:success", excluded_events: "run:failed" } },
    // A keyset page, newest first: the events below an id no event reaches.
    { query: { limit: "1", order_by: "-event_log_id", cursor: encodeCursor("event_logs", { path: {}, filters: {} }, eventOrder("-event_log_id"), { id: Number.MAX_SAFE_INTEGER }, 1) } },
  ],
  "POST /api/v1/backfills": [
    { body: { dag_id: "contract_daily", from_date: "2026-01-01", to_date: "2026-01-03", dry_run: true } },
    { body: { dag_id: "contract_daily", from_date: "2026-01-01", to_date: "2026-03-01", max_active_runs: 1 } },
  ],
  "PATCH /api/v1/dags": [{ query: { dag_id_pattern: "contract_main" }, body: { is_paused: false } }],
  "POST /api/v1/dags/{dag_id}/updateTaskInstancesState": [{ body: { dag_run_id: "contract_run", task_id: "extract", new_state: "success", dry_run: true } }],
  // Last: deleting a DAG takes its runs with it.
  "DELETE /api/v1/dags/{dag_id}": [{ params: { dag_id: "contract_failing" }, rank: 4 }],
  "PATCH /api/v1/variables/{variable_key}": [{ body: { value: "changed" } }],
  "PATCH /api/v1/connections/{connection_id}": [{ body: { host: "example.com" } }],
  // A PATCH setting no field is refused; this one answers an unlimited pool's -1s.
  "PATCH /api/v1/pools/{pool_name}": [{ body: { slots: -1, description: null } }],
  "POST /api/v1/backfills/{backfill_id}/pause": [{ rank: 2.1 }],
  "POST /api/v1/backfills/{backfill_id}/unpause": [{ rank: 2.2 }],
  "POST /api/v1/backfills/{backfill_id}/cancel": [{ rank: 2.3, body: { force: true } }],
};

/** Operations that may pass without any successful call, and why. Keep empty when possible. */
const NO_SUCCESS_NEEDED: Record<string, string> = {};

/** Values for path parameters from the scenario; others are learned from creates (see learn). */
const SCENARIO_PARAMS: Record<string, string | number> = {
  dag_id: "contract_main",
  dag_run_id: "contract_run",
  task_id: "extract",
  try_number: 1,
  xcom_key: "return_value",
};

function rankOf(op: Operation, call: Call): number {
  if (call.rank !== undefined) return call.rank;
  if (op.method === "GET") return 1;
  if (op.method === "DELETE") return 3;
  if (op.method === "POST" && !op.path.endsWith("}") && !/\/(redrive|clearTaskInstances)$/.test(op.path)) return 0;
  return 2;
}

interface Outcome {
  operation: Operation;
  request: string;
  res: Sent;
}

describe("OpenAPI contract", () => {
  const h = new Harness({ workers: 2 });
  let spec: OpenApiSpec;
  let validator: ContractValidator;
  let operations: Operation[];

  const api = (method: string, url: string, payload?: object) => h.app.inject({ method: method as "GET", url: `/api/v1${url}`, ...(payload ? { payload } : {}) });
  const tiState = async (runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | undefined;
  };
  const runState = async (dagId: string, runId: string) => (await api("GET", `/dags/${dagId}/dagRuns/${runId}`)).json().state as string;

  beforeAll(async () => {
    await h.start(DAGS);
    await h.run();
    for (const [dagId, runId] of [
      ["contract_main", "contract_run"],
      ["contract_failing", "contract_failed"],
      ["contract_signal", "contract_waiting"],
      ["contract_signal", "contract_cancel"],
    ]) {
      const res = await api("POST", `/dags/${dagId}/dagRuns`, { dag_run_id: runId });
      if (res.statusCode !== 200) throw new Error(`could not trigger ${dagId}/${runId}: ${res.body}`);
    }
    await waitFor("contract_run to succeed", async () => (await runState("contract_main", "contract_run")) === "success", 20_000);
    await waitFor("contract_failed to fail", async () => (await runState("contract_failing", "contract_failed")) === "failed", 20_000);
    await waitFor("both signal runs to wait", async () => (await tiState("contract_waiting", "wait")) === "deferred" && (await tiState("contract_cancel", "wait")) === "deferred", 20_000);
    const [[version]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_version WHERE dag_id = 'contract_main' LIMIT 1");
    SCENARIO_PARAMS.dag_version = version!.version_hash as string;
    const [[event]] = await h.db.pool.query<RowDataPacket[]>("SELECT MIN(id) AS id FROM event_log WHERE run_id = 'contract_run'");
    SCENARIO_PARAMS.event_log_id = Number(event!.id);
    const [[importError]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM import_error WHERE fileloc LIKE '%broken.ts'");
    SCENARIO_PARAMS.import_error_id = Number(importError!.id);
    spec = specOf(h.app);
    validator = new ContractValidator(spec);
    operations = operationsOf(spec);
  }, 60_000);
  afterAll(() => h.stop());

  it("docs/openapi.json is what `npm run openapi` generates", async () => {
    const generated = await renderOpenApi();
    const stored = await readFile(SPEC_FILE, "utf8").catch(() => "");
    if (generated === stored) return;
    // Which operations differ, to say more than "stale".
    const opsOf = (text: string) => {
      try {
        return operationsOf(JSON.parse(text) as OpenApiSpec).map((o) => [o.key, JSON.stringify(o.op)] as const);
      } catch {
        return [];
      }
    };
    const before = new Map(opsOf(stored));
    const after = new Map(opsOf(generated));
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k)).sort();
    throw new Error(
      `docs/openapi.json is out of date: run \`npm run openapi\` and commit docs/openapi.json.\n` +
        `Operations added, removed or changed: ${changed.length > 0 ? changed.join(", ") : "none (the change is outside paths)"}`,
    );
  });

  it("declares servers, bearerAuth as the global security scheme, the Problem schema, and tags", () => {
    expect(spec.openapi).toMatch(/^3\.1\./);
    const doc = spec as unknown as Record<string, unknown> & { components: Record<string, Record<string, unknown>>; tags: { name: string }[] };
    expect(Array.isArray(doc.servers) && (doc.servers as unknown[]).length).toBeGreaterThan(0);
    expect(doc.components.securitySchemes!.bearerAuth).toEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.components.schemas!.Problem).toEqual(expect.objectContaining({ required: ["type", "title", "status", "detail", "code"] }));
    const used = new Set(operations.flatMap((o) => o.op.tags ?? []));
    expect(doc.tags.map((t) => t.name).sort()).toEqual([...used].sort());
    // Routes hidden on purpose stay out of the document.
    expect(Object.keys(spec.paths).filter((p) => p === "/metrics" || p.startsWith("/docs") || p.endsWith("openapi.json"))).toEqual([]);
  });

  it("every operation has a unique operationId, a tag, request schemas, a schema for its success status, and problem responses", () => {
    const problems: string[] = [];
    const seen = new Map<string, string>();
    for (const o of operations) {
      const id = o.op.operationId;
      if (!id) problems.push(`${o.key}: no operationId`);
      else if (seen.has(id)) problems.push(`${o.key}: operationId ${id} is also used by ${seen.get(id)}`);
      else seen.set(id, o.key);
      if (!o.op.tags?.length) problems.push(`${o.key}: no tags`);
      const ok = successStatuses(o.op);
      if (ok.length === 0) problems.push(`${o.key}: no 2xx response declared`);
      for (const status of ok) {
        const content = o.op.responses![status]!.content;
        if (status !== "204" && !Object.values(content ?? {}).some((m) => m.schema)) problems.push(`${o.key}: response ${status} has no schema`);
      }
      for (const range of ["4XX", "5XX"]) {
        if (!o.op.responses?.[range]?.content?.["application/problem+json"]) problems.push(`${o.key}: no ${range} problem response`);
      }
      for (const p of o.op.parameters ?? []) if (!p.schema) problems.push(`${o.key}: parameter ${p.name} has no schema`);
      if (["POST", "PUT", "PATCH"].includes(o.method) && !bodySchemaOf(o.op)) problems.push(`${o.key}: no JSON request body schema`);
    }
    expect(problems).toEqual([]);
  });

  it("the validator catches departures from the spec (so the next test cannot pass vacuously)", () => {
    const pools = operations.find((o) => o.key === "GET /api/v1/pools")!;
    const json = { "content-type": "application/json; charset=utf-8" };
    const ok = { statusCode: 200, headers: json, body: JSON.stringify({ pools: [], total_entries: 0 }) };
    expect(validator.check(pools, ok)).toEqual([]);
    expect(validator.check(pools, { ...ok, body: JSON.stringify({ pools: [{ name: 1 }], total_entries: 0 }) })).not.toEqual([]);
    expect(validator.check(pools, { ...ok, body: "{" }).join()).toMatch(/not JSON/);
    expect(validator.check(pools, { ...ok, statusCode: 302 }).join()).toMatch(/not declared/);
    expect(validator.check(pools, { ...ok, headers: { "content-type": "text/html" } }).join()).toMatch(/content-type/);
    const problem = { type: "t", title: "t", status: 404, detail: "d", code: "BATON_NO_SUCH_CODE" };
    const notFound = { statusCode: 404, headers: { "content-type": "application/problem+json" }, body: JSON.stringify(problem) };
    expect(validator.check(pools, notFound)).not.toEqual([]);
    expect(problemErrors(notFound).join()).toMatch(/not in core\/errors.ts/);
    expect(problemErrors({ ...notFound, body: JSON.stringify({ ...problem, code: "BATON_POOL_NOT_FOUND", extra: 1 }) }).join()).toMatch(/keys/);
    // details: an RFC 9457 extension member the spec declares, with declared members only.
    const finished = { type: "t", title: "t", status: 409, detail: "d", code: "BATON_DAG_RUN_FINISHED" };
    const conflict = (details: unknown) => ({ statusCode: 409, headers: { "content-type": "application/problem+json" }, body: JSON.stringify({ ...finished, details }) });
    expect([...validator.check(pools, conflict({ state: "success" })), ...problemErrors(conflict({ state: "success" }))]).toEqual([]);
    expect(validator.check(pools, conflict({ state: "success", secret: "x" }))).not.toEqual([]);
    expect(problemErrors(conflict({ secret: "x" })).join()).toMatch(/details/);
  });

  it("every operation answers as the spec says: real ids first, then unknown ids", async () => {
    const learned: Record<string, string | number> = {};
    const outcomes: Outcome[] = [];
    const mismatches: string[] = [];
    const succeeded = new Set<string>();

    const record = (operation: Operation, request: string, res: Sent) => {
      outcomes.push({ operation, request, res });
      const errors = res.timedOut ? ["no answer within 5 s"] : validator.check(operation, res);
      if (res.statusCode >= 400) errors.push(...problemErrors(res));
      for (const e of errors) mismatches.push(`${request} → ${res.statusCode}: ${e}`);
      if (errors.length === 0 && res.statusCode >= 200 && res.statusCode < 300) succeeded.add(operation.key);
    };

    // After a create succeeds, its id fills the parameter of the paths below it: POST /pools
    // {name} → {pool_name}; POST /backfills → {id} → {backfill_id}.
    const learn = (op: Operation, body: unknown, res: Sent) => {
      let answer: Record<string, unknown> = {};
      try {
        answer = JSON.parse(res.body) as Record<string, unknown>;
      } catch {
        return;
      }
      for (const other of operations) {
        if (!other.path.startsWith(`${op.path}/{`)) continue;
        const name = other.path.slice(op.path.length + 2).split("}")[0]!;
        if (name in SCENARIO_PARAMS || name in learned) continue;
        const suffix = name.split("_").pop()!;
        for (const source of [answer, (body ?? {}) as Record<string, unknown>]) {
          const value = source[name] ?? source[suffix];
          if ((typeof value === "string" || typeof value === "number") && !(name in learned)) learned[name] = value;
        }
      }
    };

    const unknownValue = (schema: Record<string, unknown> | undefined): string | number => {
      if (schema?.type === "integer" || schema?.type === "number") {
        // Beyond any id the scenario creates (event log ids run into the hundreds), within the schema.
        return typeof schema.maximum === "number" ? Math.min(Number(schema.maximum), 999_999_999) : 999_999_999;
      }
      return ["contract_unknown", "f".repeat(64), "unknown"].find((c) => !schema || validator.valid(schema, c, true)) ?? "contract_unknown";
    };

    const callOf = async (o: Operation, call: Call, ids: "real" | "unknown") => {
      const params: Record<string, string | number> = {};
      for (const p of paramsOf(o.op, "path")) {
        const real = call.params?.[p.name] ?? learned[p.name] ?? SCENARIO_PARAMS[p.name];
        params[p.name] = ids === "real" && real !== undefined ? real : unknownValue(p.schema);
      }
      const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : "";
      const schema = bodySchemaOf(o.op);
      const body = call.body ?? (schema ? sampleOf(schema, validator) : undefined);
      const request = { method: o.method as "GET", url: fillPath(o.path, params) + query, headers: call.headers ?? {}, ...(body === undefined ? {} : { payload: body as object }) };
      const res = await send(h.app, request);
      record(o, describeRequest(request), res);
      return { res, body };
    };

    // Real ids, creates before reads before updates before deletes.
    const planned = operations.flatMap((o) => (CALLS[o.key] ?? [{}]).map((call) => ({ o, call, rank: rankOf(o, call) })));
    planned.sort((a, b) => a.rank - b.rank);
    for (const { o, call } of planned) {
      const { res, body } = await callOf(o, call, "real");
      if (res.statusCode >= 200 && res.statusCode < 300 && o.method === "POST") learn(o, body, res);
    }

    // Unknown ids: every operation with a path parameter answers a problem (a PUT may create).
    const unknownAnswers: string[] = [];
    for (const o of operations) {
      if (paramsOf(o.op, "path").length === 0) continue;
      const { res } = await callOf(o, CALLS[o.key]?.[0] ?? {}, "unknown");
      if (o.method !== "PUT" && (res.statusCode < 400 || res.statusCode >= 500)) unknownAnswers.push(`${o.key} with unknown ids answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
    }

    expect(mismatches).toEqual([]);
    expect(unknownAnswers).toEqual([]);
    const notSucceeded = operations
      .filter((o) => !succeeded.has(o.key) && !(o.key in NO_SUCCESS_NEEDED))
      .map((o) => {
        const last = outcomes.filter((x) => x.operation.key === o.key)[0];
        return `${o.key}: no call succeeded (first answer ${last?.res.statusCode}: ${last?.res.body.slice(0, 200)}); add a call to CALLS in test/integration/openapiContract.test.ts`;
      });
    expect(notSucceeded).toEqual([]);
    const stale = Object.keys({ ...CALLS, ...NO_SUCCESS_NEEDED }).filter((k) => !operations.some((o) => o.key === k));
    expect(stale).toEqual([]);
    // Spot checks that the scenario really ran: the signal was delivered once, then a duplicate.
    const signals = outcomes.filter((x) => x.operation.key.endsWith("/signals/{name}") && x.res.statusCode === 200).map((x) => JSON.parse(x.res.body));
    expect(signals.slice(0, 2)).toEqual([
      expect.objectContaining({ delivered_to: "wait", duplicate: false }),
      expect.objectContaining({ duplicate: true }),
    ]);
    const answer = (key: string, pathPart: string) => outcomes.find((x) => x.operation.key === key && x.request.includes(pathPart) && x.res.statusCode === 200)?.res.body;
    expect(JSON.parse(answer("GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/signals", "contract_waiting") ?? "{}")).toMatchObject({
      total_entries: 1,
      signals: [expect.objectContaining({ name: "go", signal_id: "contract-1", payload: { approved: true }, delivered_to: "wait" })],
    });
    expect(JSON.parse(answer("GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/steps", "contract_run") ?? "{}")).toMatchObject({
      total_entries: 1,
      steps: [expect.objectContaining({ name: "count_rows", try_number: 1, result: 3 })],
    });
  }, 60_000);
});
