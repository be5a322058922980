// The big lists (dag runs, task instances) are written with JSON.stringify (serializeAsBuilt), not
// with the serializer compiled from their response schema, which drops undeclared keys and coerces
// types. So what their builders return must already be exactly the schema's shape: these pages,
// from real runs with every kind of value (nulls, failed and skipped tries, error objects, nested
// and non-ASCII conf, notes with quotes and newlines), serialize the same both ways.
import Fastify from "fastify";
import type { TSchema } from "typebox";
import { CursorListOf, ListOf } from "../../api/openapi.ts";
import { TaskInstanceSchema } from "../../api/routes/taskInstances.ts";
import { DagRunSchema, dagRunJson, taskInstanceJson } from "../../api/serializers.ts";
import { listDagRuns, listTaskInstancesWhere } from "../../store/queries/read.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAG = dagSource(`
export default dag({ id: "ser_shapes" }, (t) => {
  const ok = t.task("ok", async () => ({ "naïve": "ünïcode ✓", quote: 'say "hi"\\n' }));
  const broken = t.task("broken", { upstream: [ok] }, async () => { throw new Error('bad "input"\\n\\ton line 2 — ✗'); });
  t.task("after_broken", { upstream: [broken] }, async () => 1);
  t.task("also_ok", { upstream: [ok] }, async () => null);
});
`);

/** What Fastify's compiled (schema) serializer writes for `body` under `schema`. */
async function compiledJson(schema: TSchema, body: unknown): Promise<unknown> {
  const app = Fastify();
  app.get("/page", { schema: { response: { 200: schema } } }, async () => body);
  try {
    const res = await app.inject({ method: "GET", url: "/page" });
    expect(res.statusCode).toBe(200);
    return JSON.parse(res.body);
  } finally {
    await app.close();
  }
}

describe("list pages written with JSON.stringify", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "ser.ts": DAG });
    await h.run();
  });
  afterAll(() => h.stop());

  it("match the schema serializer's output for runs and task instances of every state", async () => {
    const ended = [
      await h.trigger("ser_shapes", { conf: { nested: { list: [1, "two", null], "ключ": "значение" }, flag: true }, note: 'a "quoted"\nnote ✓' }),
      await h.trigger("ser_shapes"),
    ];
    await waitFor("both runs to end", async () => {
      const res = await h.app.inject({ method: "GET", url: "/api/v1/dags/ser_shapes/dagRuns?state=failed" });
      return res.json().total_entries === ended.length;
    });
    // A run that never starts (its DAG paused): null start and end dates.
    const patch = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/ser_shapes", payload: { is_paused: true } });
    expect(patch.statusCode).toBe(200);
    await h.trigger("ser_shapes", { runId: "never_started" });

    const runs = await listDagRuns(h.db.pool, { dagIds: ["ser_shapes"] }, { limit: 100, offset: 0 });
    expect(runs.rows).toHaveLength(3);
    const runPage = { dag_runs: runs.rows.map(dagRunJson), total_entries: runs.total, next_cursor: null };
    const asBuilt = JSON.parse(JSON.stringify(runPage));
    expect(asBuilt).toEqual(await compiledJson(CursorListOf("dag_runs", DagRunSchema), runPage));
    expect(asBuilt.dag_runs.map((r: { start_date: string | null }) => r.start_date === null)).toContain(true);
    expect(asBuilt.dag_runs.map((r: { note: string | null }) => r.note)).toContain('a "quoted"\nnote ✓');

    const tis = await listTaskInstancesWhere(h.db.pool, { dagIds: ["ser_shapes"] }, { limit: 100, offset: 0 });
    expect(tis.rows).toHaveLength(8); // the never-started run has none yet
    const tiPage = { task_instances: tis.rows.map((r) => taskInstanceJson(r, r.run_logical_date ?? null)), total_entries: tis.total };
    const tiAsBuilt = JSON.parse(JSON.stringify(tiPage));
    expect(tiAsBuilt).toEqual(await compiledJson(ListOf("task_instances", TaskInstanceSchema), tiPage));
    const states = new Set(tiAsBuilt.task_instances.map((t: { state: string | null }) => t.state));
    expect(states).toEqual(new Set(["success", "failed", "upstream_failed"]));
    // Never tried (upstream_failed): null pid, duration and queued time; a failed try's error object.
    expect(tiAsBuilt.task_instances.some((t: { pid: unknown; duration: unknown; queued_when: unknown }) => t.pid === null && t.duration === null && t.queued_when === null)).toBe(true);
    expect(tiAsBuilt.task_instances.some((t: { error: { message?: string } | null }) => t.error?.message === 'bad "input"\n\ton line 2 — ✗')).toBe(true);

    // The routes answer those same pages.
    const listed = await h.app.inject({ method: "GET", url: "/api/v1/dags/ser_shapes/dagRuns?limit=100" });
    expect(listed.json()).toEqual(asBuilt);
    const batch = await h.app.inject({ method: "POST", url: "/api/v1/dags/~/dagRuns/~/taskInstances/list", payload: { dag_ids: ["ser_shapes"] } });
    expect(batch.json()).toEqual(tiAsBuilt);
  });
});
