// Keyset paging of the two big lists (GET …/dagRuns and GET …/taskInstances, `~` included): a walk
// that follows next_cursor from the first page, for every order_by, gives exactly the list that
// offset paging gives (no gap, no duplicate, ties on the sort column split across pages), and
// every bad cursor is a 400 with its stable code. History rows are inserted directly, in shuffled
// order, so ids, run_ids and dates disagree and the sort columns have ties and NULLs.
import type { LightMyRequestResponse } from "fastify";
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem } from "../helpers/expect.ts";
import { ContractValidator, operationsOf, specOf } from "../helpers/openapi.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { DAG_RUN_ORDER_FIELDS } from "../../store/queries/read.ts";

const DAGS = dagSource(`
export const a = dag({ id: "cursor_a", isPausedUponCreation: true }, (t) => { t.task("x", async () => 1); });
export const b = dag({ id: "cursor_b", isPausedUponCreation: true }, (t) => { t.task("x", async () => 1); });
`);
const RUNS_A = 60;
const RUNS_B = 25;
const STATES = ["success", "success", "failed", "running", "queued"];
const BASE = Date.parse("2026-03-01T00:00:00.000Z");

type Json = Record<string, any>;
type ListKey = "dag_runs" | "task_instances";

/** A small deterministic generator (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], next: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const forge = (json: unknown) => Buffer.from(JSON.stringify(json)).toString("base64url");
const runKey = (r: Json) => `${r.dag_id}/${r.dag_run_id}`;
const tiKey = (t: Json) => `${t.dag_id}/${t.dag_run_id}/${t.task_id}/${t.map_index}`;

describe("cursor paging of dag runs and task instances", () => {
  const h = new Harness({ worker: false });
  const answers: { key: string; res: LightMyRequestResponse }[] = [];

  const get = async (path: string, query: Record<string, string | number | string[] | undefined>) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
    }
    const res = await h.app.inject({ method: "GET", url: `/api/v1${path}?${params}` });
    const op = path.endsWith("/taskInstances") ? "GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances" : "GET /api/v1/dags/{dag_id}/dagRuns";
    answers.push({ key: op, res });
    return res;
  };
  const page = async (path: string, query: Record<string, string | number | string[] | undefined>) => {
    const res = await get(path, query);
    expect({ status: res.statusCode, body: res.body.slice(0, 300) }).toMatchObject({ status: 200 });
    return res.json() as Json;
  };

  /** The whole list by offset pages, checking next_cursor is null exactly on the last one. */
  async function byOffset(path: string, list: ListKey, query: Json, limit: number): Promise<Json[]> {
    const rows: Json[] = [];
    for (let offset = 0; ; offset += limit) {
      const p = await page(path, { ...query, limit, offset });
      rows.push(...p[list]);
      const last = rows.length >= p.total_entries;
      expect({ offset, next: p.next_cursor === null }).toEqual({ offset, next: last });
      if (last || p[list].length === 0) return rows;
    }
  }

  /** The whole list by following next_cursor from the first page; every page is full but the last. */
  async function byCursor(path: string, list: ListKey, query: Json, limit: number): Promise<{ rows: Json[]; pages: Json[][] }> {
    const first = await page(path, { ...query, limit });
    const pages: Json[][] = [first[list]];
    let next: string | null = first.next_cursor;
    while (next !== null) {
      expect(pages.at(-1)!.length).toBe(limit);
      const p = await page(path, { ...query, limit, cursor: next });
      expect(p.total_entries).toBe(first.total_entries);
      pages.push(p[list]);
      next = p.next_cursor;
      expect(pages.length).toBeLessThanOrEqual(first.total_entries + 1);
    }
    const rows = pages.flat();
    expect(rows.length).toBe(first.total_entries);
    return { rows, pages };
  }

  let aRuns: string[] = [];

  beforeAll(async () => {
    await h.start({ "cursor.ts": DAGS });
    await h.processor.scan();
    const next = random(11);
    const [dags] = await h.db.pool.query<RowDataPacket[]>("SELECT dag_id, latest_version_hash FROM dag WHERE dag_id IN ('cursor_a', 'cursor_b')");
    const version = new Map(dags.map((d) => [d.dag_id as string, d.latest_version_hash as string]));
    expect(version.size).toBe(2);
    // run_ids out of id order; cursor_b reuses some of cursor_a's, so "~" has ties on dag_run_id.
    const names = shuffle(Array.from({ length: RUNS_A }, (_, i) => `run_${String(i).padStart(3, "0")}`), next);
    const specs = [
      ...names.map((runId, i) => ({ dagId: "cursor_a", runId, i })),
      ...Array.from({ length: RUNS_B }, (_, i) => ({ dagId: "cursor_b", runId: i % 2 ? names[i]! : `other_${i}`, i })),
    ];
    const minutes = (n: number) => new Date(BASE + n * 60_000);
    const rows = shuffle(specs, next).map(({ dagId, runId, i }) => {
      const state = STATES[Math.floor(next() * STATES.length)]!;
      return [
        dagId,
        runId,
        version.get(dagId),
        "manual",
        state,
        i % 13 === 5 ? null : minutes((i % 10) * 60), // logical_date: ties, a few NULLs
        minutes(i % 7), // queued_at: ties
        state === "queued" ? null : minutes(i % 5), // start_date: ties and NULLs
        state === "queued" || state === "running" ? null : minutes(10 + (i % 4)), // end_date
      ];
    });
    await h.db.pool.query(
      "INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, queued_at, start_date, end_date) VALUES ?",
      [rows],
    );
    const [runs] = await h.db.pool.query<RowDataPacket[]>("SELECT id, dag_id, run_id FROM dag_run WHERE dag_id IN ('cursor_a', 'cursor_b')");
    aRuns = runs.filter((r) => r.dag_id === "cursor_a").map((r) => r.run_id as string);
    const tis = runs.flatMap((r) =>
      (r.dag_id === "cursor_a" ? ["t0", "t1", "t2"] : ["t0"]).map((task) => [r.id, r.dag_id, r.run_id, task, next() < 0.5 ? "success" : "failed"]),
    );
    await h.db.pool.query("INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, state) VALUES ?", [shuffle(tis, next)]);
  }, 60_000);

  afterAll(async () => {
    await h.stop();
  });

  /** The JSON field each order_by sorts on, to show the data has ties that pages split. */
  const SORT_FIELD: Record<string, string> = { execution_date: "logical_date" };
  const orders = Object.keys(DAG_RUN_ORDER_FIELDS).flatMap((f) => [f, `-${f}`]);

  describe.each<[string, number]>([
    ["cursor_a", RUNS_A],
    ["~", RUNS_A + RUNS_B],
  ])("GET /dags/%s/dagRuns", (dagId, count) => {
    const path = `/dags/${dagId}/dagRuns`;

    it.each(orders)("order_by=%s: the cursor walk is the offset list", async (orderBy) => {
      const limit = 7;
      const expected = await byOffset(path, "dag_runs", { order_by: orderBy }, limit);
      expect(expected).toHaveLength(count);
      const { rows, pages } = await byCursor(path, "dag_runs", { order_by: orderBy }, limit);
      expect(rows.map(runKey)).toEqual(expected.map(runKey));
      expect(new Set(rows.map(runKey)).size).toBe(count);
      const field = orderBy.replace(/^-/, "");
      if (!["id", "dag_run_id"].includes(field) && !(field === "dag_id" && dagId !== "~")) {
        // A tie group runs across a page boundary: the id tie-breaker is what keeps the walk exact.
        const column = SORT_FIELD[field] ?? field;
        const split = pages.slice(1).some((p, i) => p.length > 0 && p[0]![column] === pages[i]!.at(-1)![column]);
        expect({ orderBy, split }).toEqual({ orderBy, split: true });
      }
    });
  });

  it("a walk ending on a full page ends with next_cursor null, not an empty page", async () => {
    const { pages } = await byCursor("/dags/cursor_a/dagRuns", "dag_runs", {}, 6);
    expect(pages).toHaveLength(RUNS_A / 6);
    expect(pages.every((p) => p.length === 6)).toBe(true);
  });

  it("filters and cursors combine: the walk is the filtered offset list", async () => {
    for (const [path, query] of [
      ["/dags/~/dagRuns", { state: ["success", "failed"], order_by: "-start_date" }],
      ["/dags/cursor_a/dagRuns", { execution_date_gte: new Date(BASE + 3 * 3_600_000).toISOString(), order_by: "logical_date" }],
      ["/dags/cursor_b/dagRuns", { state: ["queued", "running"], order_by: "state" }],
    ] as const) {
      const expected = await byOffset(path, "dag_runs", query, 4);
      expect(expected.length).toBeGreaterThan(4);
      expect((await byCursor(path, "dag_runs", query, 4)).rows.map(runKey)).toEqual(expected.map(runKey));
    }
  });

  it("next_cursor of an offset page continues where that page ends", async () => {
    const query = { order_by: "-queued_at", limit: 7 };
    const at14 = await page("/dags/~/dagRuns", { ...query, offset: 14 });
    const at21 = await page("/dags/~/dagRuns", { ...query, offset: 21 });
    const after = await page("/dags/~/dagRuns", { ...query, cursor: at14.next_cursor });
    expect(after.dag_runs.map(runKey)).toEqual(at21.dag_runs.map(runKey));
    // The cursor page counts nothing: its total is the one of the page the walk started from.
    expect(after.total_entries).toBe(at14.total_entries);
  });

  it("a cursor page keeps the walk's total_entries while runs are added, and reaches the new ones", async () => {
    const first = await page("/dags/cursor_b/dagRuns", { limit: 10 });
    const [[dag]] = await h.db.pool.query<RowDataPacket[]>("SELECT latest_version_hash AS v FROM dag WHERE dag_id = 'cursor_b'");
    await h.db.pool.query(
      "INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, queued_at) VALUES ('cursor_b', 'late_arrival', ?, 'manual', 'queued', ?, ?)",
      [dag!.v, new Date(BASE), new Date(BASE)],
    );
    try {
      const seen: string[] = first.dag_runs.map(runKey);
      let next = first.next_cursor;
      while (next) {
        const p = await page("/dags/cursor_b/dagRuns", { limit: 10, cursor: next });
        expect(p.total_entries).toBe(RUNS_B);
        seen.push(...p.dag_runs.map(runKey));
        next = p.next_cursor;
      }
      expect(seen.at(-1)).toBe("cursor_b/late_arrival");
      expect((await page("/dags/cursor_b/dagRuns", { limit: 1 })).total_entries).toBe(RUNS_B + 1);
    } finally {
      await h.db.pool.query("DELETE FROM dag_run WHERE dag_id = 'cursor_b' AND run_id = 'late_arrival'");
    }
  });

  describe("GET …/taskInstances", () => {
    it("walks ~/~, one DAG's runs, one run_id across DAGs and one run, as offset paging lists them", async () => {
      const shared = aRuns.find((r) => r.startsWith("run_"))!;
      for (const [path, query, count] of [
        ["/dags/~/dagRuns/~/taskInstances", {}, RUNS_A * 3 + RUNS_B],
        ["/dags/cursor_a/dagRuns/~/taskInstances", {}, RUNS_A * 3],
        ["/dags/~/dagRuns/~/taskInstances", { state: "failed" }, undefined],
        [`/dags/~/dagRuns/${shared}/taskInstances`, {}, undefined],
        [`/dags/cursor_a/dagRuns/${shared}/taskInstances`, {}, 3],
      ] as const) {
        const limit = path.includes("run_") ? 2 : 9;
        const expected = await byOffset(path, "task_instances", query, limit);
        if (count !== undefined) expect(expected).toHaveLength(count);
        const { rows } = await byCursor(path, "task_instances", query, limit);
        expect({ path, keys: rows.map(tiKey) }).toEqual({ path, keys: expected.map(tiKey) });
        expect(new Set(rows.map(tiKey)).size).toBe(rows.length);
      }
    });

    it("refuses a cursor with an offset, a dag run cursor and a tampered one", async () => {
      const path = "/dags/~/dagRuns/~/taskInstances";
      const next = (await page(path, { limit: 5 })).next_cursor as string;
      expectProblem(await get(path, { cursor: next, offset: 5 }), 400, "BATON_CURSOR_WITH_OFFSET");
      expect((await get(path, { cursor: next, offset: 0 })).statusCode).toBe(200);
      const runCursor = (await page("/dags/~/dagRuns", { limit: 5 })).next_cursor as string;
      expectProblem(await get(path, { cursor: runCursor }), 400, "BATON_INVALID_CURSOR", "another list");
      const { v, l, p, f, o, t } = JSON.parse(Buffer.from(next, "base64url").toString());
      expectProblem(await get(path, { cursor: forge({ v, l, p, f, o, t, k: ["12"] }) }), 400, "BATON_INVALID_CURSOR", "sort key");
      expectProblem(await get(path, { cursor: forge({ v, l, p, f, o, t, k: ["x", 12] }) }), 400, "BATON_INVALID_CURSOR", "sort key");
    });
  });

  describe("a cursor serves only the list it was made for", () => {
    const cursorOf = async (path: string, query: Json = {}) => {
      // A run has 3 task instances: a page of 2 leaves a next_cursor.
      const next = (await page(path, { ...query, limit: 2 })).next_cursor as string | null;
      expect(typeof next).toBe("string");
      return next!;
    };

    it("a dag run cursor of one DAG, or of every DAG, is refused on another DAG's list", async () => {
      const ofA = await cursorOf("/dags/cursor_a/dagRuns");
      expectProblem(await get("/dags/cursor_b/dagRuns", { cursor: ofA }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      expectProblem(await get("/dags/~/dagRuns", { cursor: ofA }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      expectProblem(await get("/dags/cursor_a/dagRuns", { cursor: await cursorOf("/dags/~/dagRuns") }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      expect((await get("/dags/cursor_a/dagRuns", { cursor: ofA })).statusCode).toBe(200);
    });

    it("a dag run cursor is refused with other filters, and accepted with the same ones in another order", async () => {
      const query = { state: ["success", "failed"], execution_date_gte: new Date(BASE).toISOString() };
      const next = await cursorOf("/dags/~/dagRuns", query);
      expectProblem(await get("/dags/~/dagRuns", { cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expectProblem(await get("/dags/~/dagRuns", { ...query, state: ["success"], cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expectProblem(await get("/dags/~/dagRuns", { ...query, execution_date_gte: new Date(BASE + 1).toISOString(), cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expect((await get("/dags/~/dagRuns", { ...query, state: ["failed", "success"], cursor: next })).statusCode).toBe(200);
      // A parameter the endpoint does not know filters nothing, so it does not matter either.
      expect((await get("/dags/~/dagRuns", { ...query, no_such_filter: "x", cursor: next })).statusCode).toBe(200);
    });

    it("a task instance cursor of one run, DAG or filter is refused on another", async () => {
      const [one, two] = aRuns;
      const ofRun = await cursorOf(`/dags/cursor_a/dagRuns/${one}/taskInstances`);
      expectProblem(await get(`/dags/cursor_a/dagRuns/${two}/taskInstances`, { cursor: ofRun }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      expectProblem(await get("/dags/~/dagRuns/~/taskInstances", { cursor: ofRun }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      const ofDag = await cursorOf("/dags/cursor_a/dagRuns/~/taskInstances");
      expectProblem(await get("/dags/cursor_b/dagRuns/~/taskInstances", { cursor: ofDag }), 400, "BATON_INVALID_CURSOR", "another DAG or run");
      const failed = await cursorOf("/dags/~/dagRuns/~/taskInstances", { state: "failed" });
      expectProblem(await get("/dags/~/dagRuns/~/taskInstances", { state: "success", cursor: failed }), 400, "BATON_INVALID_CURSOR", "other filters");
      expect((await get("/dags/~/dagRuns/~/taskInstances", { state: "failed", cursor: failed })).statusCode).toBe(200);
    });

    it("a cursor in the format before lists were bound to their DAG, run and filters is a 400, not an empty page or a 500", async () => {
      const next = await cursorOf("/dags/cursor_a/dagRuns");
      const { l, o, k, t } = JSON.parse(Buffer.from(next, "base64url").toString());
      expectProblem(await get("/dags/cursor_a/dagRuns", { cursor: forge({ v: 1, l, o, k, t }) }), 400, "BATON_INVALID_CURSOR", "start again without cursor");
    });
  });

  describe("bad cursors on GET …/dagRuns", () => {
    const path = "/dags/~/dagRuns";
    let byState: string;
    let byDate: Json;

    beforeAll(async () => {
      byState = (await page(path, { limit: 3, order_by: "state" })).next_cursor;
      byDate = JSON.parse(Buffer.from((await page(path, { limit: 3, order_by: "logical_date" })).next_cursor, "base64url").toString());
    });

    it("a cursor with a non-zero offset is BATON_CURSOR_WITH_OFFSET", async () => {
      expectProblem(await get(path, { order_by: "state", cursor: byState, offset: 3 }), 400, "BATON_CURSOR_WITH_OFFSET", "give one of them");
      expect((await get(path, { order_by: "state", cursor: byState, offset: 0 })).statusCode).toBe(200);
    });

    it("a cursor made for another order_by is BATON_INVALID_CURSOR", async () => {
      expectProblem(await get(path, { order_by: "-state", cursor: byState }), 400, "BATON_INVALID_CURSOR", 'made for order_by "state"');
      expectProblem(await get(path, { cursor: byState }), 400, "BATON_INVALID_CURSOR", 'made for order_by "state", not "id"');
      // The default order is id: a cursor of it serves order_by=id, and the other way round.
      const byDefault = (await page(path, { limit: 3 })).next_cursor;
      expect((await get(path, { order_by: "id", cursor: byDefault })).statusCode).toBe(200);
      const byId = (await page(path, { limit: 3, order_by: "id" })).next_cursor;
      expect((await get(path, { cursor: byId })).statusCode).toBe(200);
    });

    it("malformed or tampered cursors are BATON_INVALID_CURSOR", async () => {
      const { v, l, p, f, o, k, t } = byDate;
      for (const cursor of [
        "not a cursor!",
        Buffer.from("not json").toString("base64url"),
        forge(null),
        forge([1, 2]),
        forge({ v: 99, l, p, f, o, k, t }),
        forge({ v, l, p, f, o, k, t: -1 }),
        forge({ v, l, p, f, o, k, t: 1.5 }),
        forge({ v, l, p, f, o, k: [k[1]], t }),
        forge({ v, l, p, f, o, k: [...k, 3], t }),
        forge({ v, l, p, f, o, k: [k[0], "7"], t }),
        forge({ v, l, p, f, o, k: [k[0], -7], t }),
        forge({ v, l, p, f, o, k: ["2026-03-01", k[1]], t }),
        forge({ v, l, p, f, o, k: ["yesterday", k[1]], t }),
        forge({ v, l, p, f, o, k: [12345, k[1]], t }),
        forge({ v, l: "task_instances", p, f, o, k, t }),
      ]) {
        const res = await get(path, { order_by: "logical_date", cursor });
        expect({ cursor: Buffer.from(cursor, "base64url").toString(), code: res.json().code }).toMatchObject({ code: "BATON_INVALID_CURSOR" });
        expectProblem(res, 400, "BATON_INVALID_CURSOR");
      }
      // State never is NULL, and no state is 251 characters long.
      for (const cursor of [forge({ v, l, p, f, o: "state", k: [null, 5], t }), forge({ v, l, p, f, o: "state", k: ["x".repeat(251), 5], t })]) {
        expectProblem(await get(path, { order_by: "state", cursor }), 400, "BATON_INVALID_CURSOR");
      }
      // A NULL logical date is a real position in that order (NULLs sort first).
      expect((await get(path, { order_by: "logical_date", cursor: forge({ v, l, p, f, o, k: [null, 1], t }) })).statusCode).toBe(200);
      // Longer than any cursor the API makes: the schema refuses it.
      expectProblem(await get(path, { cursor: "A".repeat(1025) }), 400, "BATON_VALIDATION_FAILED");
    });
  });

  it("every answer above conforms to the OpenAPI document", () => {
    const spec = specOf(h.app);
    const validator = new ContractValidator(spec);
    const operations = new Map(operationsOf(spec).map((o) => [o.key, o]));
    const problems = answers.flatMap(({ key, res }) => validator.check(operations.get(key)!, res).map((p) => `${key} → ${res.statusCode}: ${p}`));
    expect(problems.slice(0, 5)).toEqual([]);
    expect(answers.length).toBeGreaterThan(100);
  });
});
