// Keyset paging of GET /eventLogs (`next_cursor`, `?cursor=`), as GET …/dagRuns and …/taskInstances
// page: a walk that follows next_cursor sees every row exactly once while events are recorded
// mid-walk (newest first it shows the log as it was when the walk began; oldest first the new
// events come at its end), its pages count nothing, a cursor serves only its own list, and a page
// deep in the log reads about a page of index entries for each filter the indexes serve. Events are
// inserted directly (as the triggers write them) for runs inserted directly: no DAG file, no worker.
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { buildApp } from "../../api/app.ts";
import { openDb, type RowDataPacket } from "../../store/db.ts";
import { expectProblem } from "../helpers/expect.ts";
import { Harness } from "../helpers/harness.ts";
import { ContractValidator, operationsOf, specOf } from "../helpers/openapi.ts";

type Json = Record<string, any>;
type Query = Record<string, string | number | undefined>;

/** The runs events are recorded for; shared_1 is a run id of two DAGs. */
const RUNS = [
  ["evc_a", "shared_1"],
  ["evc_a", "a_only"],
  ["evc_b", "shared_1"],
  ["evc_b", "b_only"],
] as const;
const TASKS = ["t0", "t1", "t2", "t3"];
const STATES = ["queued", "running", "success", "failed", "up_for_retry"];
const OWNERS = ["worker_1", "worker_2", "token:ops"];
const BASE = Date.parse("2026-05-01T00:00:00.000Z");

/** An event_log row as the triggers (kind task) and recordAuthEvent (kind auth) write them. */
interface EventRow {
  at: Date;
  dagId: string;
  runId: string;
  kind: "task" | "auth";
  taskId: string | null;
  toState: string;
  owner: string;
}

describe("cursor paging of the event log", () => {
  const h = new Harness({ worker: false });
  const answers: LightMyRequestResponse[] = [];
  const runIds = new Map<string, number>();
  let recorded = 0;

  /** n events: the runs, tasks, states and owners in turn, with `auth` an auth event (a refused request) every fifth. */
  function events(n: number, runs: readonly (readonly [string, string])[] = RUNS, auth = true): EventRow[] {
    return Array.from({ length: n }, () => {
      const i = recorded++;
      const at = new Date(BASE + i * 1000);
      if (auth && i % 5 === 4) return { at, dagId: "", runId: "", kind: "auth" as const, taskId: null, toState: i % 2 ? "forbidden" : "unauthenticated", owner: "anonymous" };
      const [dagId, runId] = runs[i % runs.length]!;
      return { at, dagId, runId, kind: "task" as const, taskId: TASKS[i % TASKS.length]!, toState: STATES[i % STATES.length]!, owner: OWNERS[i % OWNERS.length]! };
    });
  }

  async function record(rows: EventRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 1000) {
      const values = rows.slice(i, i + 1000).map((e) => [
        e.at,
        e.kind,
        e.dagId,
        e.runId,
        e.kind === "auth" ? 0 : runIds.get(`${e.dagId}/${e.runId}`),
        e.taskId,
        e.kind === "auth" ? null : -1,
        e.kind === "auth" ? null : 1,
        e.kind === "auth" ? null : "queued",
        e.toState,
        e.owner,
      ]);
      await h.db.pool.query("INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor) VALUES ?", [values]);
    }
  }

  async function addRuns(runs: readonly (readonly [string, string])[]): Promise<void> {
    await h.db.pool.query("INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, queued_at) VALUES ?", [
      runs.map(([dagId, runId]) => [dagId, runId, "0".repeat(64), "manual", "success", new Date(BASE)]),
    ]);
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT id, dag_id, run_id FROM dag_run");
    for (const r of rows) runIds.set(`${r.dag_id}/${r.run_id}`, Number(r.id));
  }

  const get = async (path: string, query: Query, app: FastifyInstance = h.app) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
    const res = await app.inject({ method: "GET", url: `/api/v1${path}?${params}` });
    if (path === "/eventLogs") answers.push(res);
    return res;
  };
  const page = async (query: Query) => {
    const res = await get("/eventLogs", query);
    expect({ status: res.statusCode, body: res.body.slice(0, 300) }).toMatchObject({ status: 200 });
    return res.json() as Json;
  };
  const idsOf = (p: Json) => (p.event_logs as Json[]).map((e) => e.event_log_id as number);
  /** Every matching event as offset pages show them (the walk's reference); nothing is recorded meanwhile. */
  const everything = async (query: Query) => {
    const ids: number[] = [];
    for (;;) {
      const p = await page({ ...query, limit: 1000, offset: ids.length });
      ids.push(...idsOf(p));
      if (p.event_logs.length < 1000) {
        expect(p.total_entries).toBe(ids.length);
        return ids;
      }
    }
  };

  beforeAll(async () => {
    await h.start();
    // The run rows themselves record run events (trigger), as in life.
    await addRuns(RUNS);
    await record(events(150));
  }, 60_000);

  afterAll(async () => {
    await h.stop();
  });

  const FILTERS: Query[] = [
    {},
    { dag_id: "evc_a" },
    { run_id: "shared_1" },
    { dag_run_id: "shared_1", dag_id: "evc_b" },
    { dag_id: "evc_a", task_id: "t1" },
    { run_id: "a_only", event: "task:failed" },
    { included_events: "auth:forbidden,auth:unauthenticated" },
    { event: "task:failed" },
    { dag_id: "evc_a", excluded_events: "task:success,run:success" },
    { owner: "worker_2" },
    { after: new Date(BASE + 20_000).toISOString(), before: new Date(BASE + 10_000_000).toISOString() },
  ];

  describe.each(["event_log_id", "-event_log_id", "when", "-when"])("order_by=%s", (orderBy) => {
    const newestFirst = orderBy.startsWith("-");

    it.each(FILTERS.map((f) => [JSON.stringify(f), f] as const))("%s: every event once while events are recorded mid-walk", async (_, filter) => {
      const query = { ...filter, order_by: orderBy };
      const before = await everything(query);
      expect(before.length).toBeGreaterThan(8);
      // About 25 pages, however many events the walks before this one recorded.
      const limit = Math.max(3, Math.ceil(before.length / 25));
      const first = await page({ ...query, limit });
      expect(first.total_entries).toBe(before.length);
      const seen = idsOf(first);
      let next: string | null = first.next_cursor;
      let pages = 1;
      while (next !== null) {
        // New events at the first page and at the third, some matching the filter.
        if (pages === 1 || pages === 3) await record(events(23));
        const p = await page({ ...query, limit, cursor: next });
        // Carried from the first page, not counted again.
        expect(p.total_entries).toBe(before.length);
        seen.push(...idsOf(p));
        next = p.next_cursor;
        pages++;
        expect(pages).toBeLessThan(100);
      }
      const after = await everything(query);
      // Events matching the filter were recorded during the walk, and a first page counts them.
      expect(after.length).toBeGreaterThan(before.length);
      expect(new Set(seen).size).toBe(seen.length);
      // Newest first the walk is the log as it began (the new events are above its first page);
      // oldest first it is the log as it ends (the new events follow the last page read).
      expect(seen).toEqual(newestFirst ? before : after);
      expect(after.filter((id) => !before.includes(id))).toEqual(newestFirst ? after.slice(0, after.length - before.length) : after.slice(before.length));
    });
  });

  it("a cursor page counts nothing: its total_entries stays the walk's while events are added, and it reaches them", async () => {
    const query = { dag_id: "evc_b", limit: 10 };
    const first = await page(query);
    const total = first.total_entries as number;
    await record(events(8, [["evc_b", "b_only"]]));
    const seen: number[] = idsOf(first);
    let next = first.next_cursor;
    while (next) {
      const p = await page({ ...query, cursor: next });
      expect(p.total_entries).toBe(total);
      seen.push(...idsOf(p));
      next = p.next_cursor;
    }
    const [[last]] = await h.db.pool.query<RowDataPacket[]>("SELECT MAX(id) AS id FROM event_log WHERE dag_id = 'evc_b'");
    expect(seen.at(-1)).toBe(Number(last!.id));
    // Counted, the list holds the new events.
    expect((await page({ dag_id: "evc_b", limit: 1 })).total_entries).toBeGreaterThan(total);
  });

  it("next_cursor of an offset page continues where that page ends", async () => {
    const query = { order_by: "-event_log_id", limit: 5, dag_id: "evc_a" };
    const at10 = await page({ ...query, offset: 10 });
    const at15 = await page({ ...query, offset: 15 });
    const after = await page({ ...query, cursor: at10.next_cursor });
    expect(idsOf(after)).toEqual(idsOf(at15));
    expect(after.total_entries).toBe(at10.total_entries);
    // The last page says so.
    const all = await everything({ dag_id: "evc_a" });
    expect((await page({ dag_id: "evc_a", limit: all.length })).next_cursor).toBeNull();
  });

  describe("a cursor serves only the list it was made for", () => {
    const cursorOf = async (query: Query) => {
      const next = (await page({ ...query, limit: 2 })).next_cursor as string | null;
      expect(typeof next).toBe("string");
      return next!;
    };

    it("an event log cursor with an offset is BATON_CURSOR_WITH_OFFSET", async () => {
      const next = await cursorOf({ dag_id: "evc_a" });
      expectProblem(await get("/eventLogs", { dag_id: "evc_a", cursor: next, offset: 2 }), 400, "BATON_CURSOR_WITH_OFFSET", "give one of them");
      expect((await get("/eventLogs", { dag_id: "evc_a", cursor: next, offset: 0 })).statusCode).toBe(200);
    });

    it("a dag run cursor is refused on the event log, and an event log cursor on dag runs and task instances", async () => {
      const runCursor = (await get("/dags/~/dagRuns", { limit: 1 })).json().next_cursor as string;
      expect(typeof runCursor).toBe("string");
      expectProblem(await get("/eventLogs", { cursor: runCursor }), 400, "BATON_INVALID_CURSOR", "another list");
      const eventCursor = await cursorOf({});
      expectProblem(await get("/dags/~/dagRuns", { cursor: eventCursor }), 400, "BATON_INVALID_CURSOR", "another list");
      expectProblem(await get("/dags/~/dagRuns/~/taskInstances", { cursor: eventCursor }), 400, "BATON_INVALID_CURSOR", "another list");
    });

    it("an event log cursor is refused with other filters or another order, and accepted with run_id's alias", async () => {
      const query = { dag_id: "evc_a", run_id: "shared_1", included_events: "task:failed,task:success" };
      const next = await cursorOf(query);
      expectProblem(await get("/eventLogs", { cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expectProblem(await get("/eventLogs", { ...query, run_id: "a_only", cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expectProblem(await get("/eventLogs", { ...query, owner: "worker_1", cursor: next }), 400, "BATON_INVALID_CURSOR", "other filters");
      expectProblem(await get("/eventLogs", { ...query, order_by: "-event_log_id", cursor: next }), 400, "BATON_INVALID_CURSOR", 'made for order_by "event_log_id"');
      // The same list asked another way: the events in another order, run_id by its alias.
      expect((await get("/eventLogs", { ...query, included_events: "task:success, task:failed", cursor: next })).statusCode).toBe(200);
      const { run_id, ...rest } = query;
      expect((await get("/eventLogs", { ...rest, dag_run_id: run_id, cursor: next })).statusCode).toBe(200);
    });
  });

  it("every event log answer above conforms to the OpenAPI document", () => {
    const spec = specOf(h.app);
    const validator = new ContractValidator(spec);
    const op = operationsOf(spec).find((o) => o.key === "GET /api/v1/eventLogs")!;
    const problems = answers.flatMap((res) => validator.check(op, res).map((p) => `${res.statusCode}: ${p}`));
    expect(problems.slice(0, 5)).toEqual([]);
  });

  // Last: it adds thousands of events the walks above would page through.
  it("a cursor page deep in the log reads about a page of index entries, for each filter the indexes serve", async () => {
    // Runs of one id in two DAGs, then 6,000 events of the first DAG's other run, then the two runs
    // again: a page that starts before the 6,000 and ends after them, walking the log, the DAG or
    // the run id's rows in id order, reads all 6,000. Refused requests are only around them too.
    const deep = [
      ["evh", "deep"],
      ["evh_other", "deep"],
      ["evh", "history"],
    ] as const;
    await addRuns(deep);
    const around = () => [...events(40, deep.slice(0, 2), false), ...events(10).map((e) => ({ ...e, dagId: "", runId: "", kind: "auth" as const, taskId: null, toState: "forbidden" }))];
    await record(around());
    await record(events(6_000, [deep[2]], false));
    await record(around());
    // One connection, so the page's reads show in this session's handler counters.
    const single = openDb(h.db.url, { connectionLimit: 1 });
    const app = await buildApp({ db: single, clock: h.clock, logger: h.logger, config: { logsFolder: h.logsFolder }, auth: { mode: "off" } });
    try {
      const handlerReads = async () => {
        const [rows] = await single.pool.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler_read_%'");
        return rows.reduce((sum, r) => sum + Number(r.Value), 0);
      };
      // What reading the counters reads itself.
      const idle = await handlerReads();
      const overhead = (await handlerReads()) - idle;
      // The matching events before the page: a page of 10 after them reaches across the 6,000.
      for (const [filter, skip] of [
        [{}, 16],
        [{ dag_id: "evh" }, 16],
        [{ dag_id: "evh", run_id: "deep" }, 16],
        [{ run_id: "deep" }, 36],
        [{ included_events: "auth:forbidden,auth:unauthenticated" }, 6],
      ] as const) {
        for (const order_by of ["event_log_id", "-event_log_id"]) {
          // Oldest first, the refused requests of the walks above come first: skipped as well.
          const [[earlier]] = await h.db.pool.query<RowDataPacket[]>(
            "SELECT COUNT(*) AS n FROM event_log WHERE kind = 'auth' AND id < (SELECT MIN(id) FROM event_log WHERE run_id = 'deep')",
          );
          const before = order_by === "event_log_id" && "included_events" in filter ? Number(earlier!.n) : 0;
          const cursor = (await page({ ...filter, order_by, limit: before + skip })).next_cursor as string;
          expect(typeof cursor).toBe("string");
          const reads = await handlerReads();
          const res = await get("/eventLogs", { ...filter, order_by, limit: 10, cursor }, app);
          const read = (await handlerReads()) - reads - overhead;
          expect(res.statusCode).toBe(200);
          expect(res.json().event_logs).toHaveLength(10);
          expect({ filter, order_by, read: read < 150 ? "< 150" : read }).toEqual({ filter, order_by, read: "< 150" });
        }
      }
    } finally {
      await app.close();
      await single.close();
    }
  }, 60_000);
});
