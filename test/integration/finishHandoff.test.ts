// The hand-off (finishTries gives a finished try's worker and pool slots to a downstream task of
// its run) is a claim, and takes only what a claim would: a queued try of higher priority in the
// pool goes first (a backfill try yields to every other), and nothing starts in a pool whose
// running tries fill its lowered slots, or in a pool that is gone. A refused task is queued and
// the next claim decides. The first tests play the worker (no worker serves ho_q) on a fake
// clock: each step runs at its own instant, so start dates give the order tries started in. The
// last runs a real worker.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries, type FinishResult, type FinishedTry } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const ARGS = `weightRule: "absolute", priorityWeight: 1, queue: "ho_q"`;

// A chain in pool ho_one (1 slot), the same chain to backfill (paused: no scheduled runs; its
// backfill runs run all the same), and tasks of the same pool of higher and equal priority.
const chain = (id: string, extra: string) =>
  dagSource(`
export default dag({ id: "${id}", ${extra} defaultArgs: { pool: "ho_one", ${ARGS} } }, (t) => {
  t.task("c1", async () => 1).then(t.task("c2", async () => 2)).then(t.task("c3", async () => 3));
});
`);
const CHAIN = chain("ho_chain", "");
const BACKFILLED = chain("ho_bf", `schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true,`);
const URGENT = dagSource(`
export default dag({ id: "ho_urgent" }, (t) => { t.task("u", { pool: "ho_one", ${ARGS}, priorityWeight: 100 }, async () => 1); });
`);
const LOW = dagSource(`
export default dag({ id: "ho_low" }, (t) => { t.task("l", { pool: "ho_one", ${ARGS} }, async () => 1); });
`);
// A fan-in in pool ho_two (2 slots): its join is readied in finishTries' second round trip.
const FAN_IN = dagSource(`
export default dag({ id: "ho_fanin", defaultArgs: { pool: "ho_two", ${ARGS} } }, (t) => {
  t.task("j", { upstream: [t.task("p1", async () => 1), t.task("p2", async () => 2)] }, async () => 0);
});
`);
const URGENT_TWO = dagSource(`
export default dag({ id: "ho_urgent_two" }, (t) => { t.task("u", { pool: "ho_two", ${ARGS}, priorityWeight: 100 }, async () => 1); });
`);
// Three parallel chains in a pool of 3 slots that the tests shrink or delete.
const PARALLEL = dagSource(`
export default dag({ id: "ho_par", defaultArgs: { pool: "ho_three", ${ARGS} } }, (t) => {
  for (const k of ["a", "b", "c"]) t.task(k + "1", async () => 1).then(t.task(k + "2", async () => 2));
});
`);
// Tasks that become ready together, named against their priorities: a chain's fan-out (readied in
// the first round trip) and joins (in the second), in pool ho_wide (5 slots), on a queue of their own.
const WIDE = `weightRule: "absolute", queue: "ho_wide_q", pool: "ho_wide"`;
const FAN_OUT = dagSource(`
export default dag({ id: "ho_fanout", defaultArgs: { ${WIDE} } }, (t) => {
  const root = t.task("root", async () => 0);
  for (const w of [1, 3, 5, 2, 4]) t.task("w" + w, { upstream: [root], priorityWeight: w * 10 }, async () => w);
});
`);
const JOINS = dagSource(`
export default dag({ id: "ho_joins", defaultArgs: { ${WIDE} } }, (t) => {
  const a = t.task("a", { priorityWeight: 1000 }, async () => 1);
  const b = t.task("b", { priorityWeight: 1000 }, async () => 2);
  for (const w of [1, 3, 2]) t.task("j" + w, { upstream: [a, b], priorityWeight: w * 100 }, async () => w);
});
`);
const GONE = dagSource(`
export default dag({ id: "ho_gone", defaultArgs: { pool: "ho_gone", ${ARGS} } }, (t) => {
  t.task("d1", async () => 1).then(t.task("d2", async () => 2));
  t.task("j", { upstream: [t.task("p1", async () => 1), t.task("p2", async () => 2)] }, async () => 0);
});
`);

describe("finishTries' hand-off takes only what a claim would", () => {
  const clock = new FakeClock("2026-04-01T00:00:00Z");
  const h = new Harness({ worker: false, clock, manualTicks: true });
  let versions: VersionCache;
  const shapeOf = (hash: string) => versions.shape(hash);
  let tokens = 0;
  const token = () => String(++tokens).padStart(32, "0");
  /** Every step at its own instant. */
  const step = () => {
    clock.advance(1000);
    return clock.now();
  };
  const api = (method: "POST" | "PATCH" | "DELETE", url: string, payload?: object) => h.app.inject({ method, url: `/api/v1${url}`, ...(payload ? { payload } : {}) });

  beforeAll(async () => {
    await h.start({
      "chain.ts": CHAIN,
      "backfilled.ts": BACKFILLED,
      "urgent.ts": URGENT,
      "low.ts": LOW,
      "fanin.ts": FAN_IN,
      "urgent_two.ts": URGENT_TWO,
      "par.ts": PARALLEL,
      "gone.ts": GONE,
      "fanout.ts": FAN_OUT,
      "joins.ts": JOINS,
    });
    for (const [name, slots] of [["ho_one", 1], ["ho_two", 2], ["ho_three", 3], ["ho_gone", 3], ["ho_wide", 5]] as const) {
      expect((await api("POST", "/pools", { name, slots })).statusCode).toBe(200);
    }
    await h.run();
    versions = new VersionCache(h.db.pool);
  });
  afterAll(() => h.stop());

  async function state(dagId: string, runId: string, taskId: string): Promise<string | undefined> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?", [dagId, runId, taskId]);
    return rows[0]?.state;
  }

  /** Triggers a run and ticks until its root tasks are queued. */
  async function triggerQueued(dagId: string, runId: string, roots: string[]): Promise<void> {
    await h.trigger(dagId, { runId });
    await waitFor(`${dagId} ${runId} queued`, async () => {
      await h.scheduler.tick();
      for (const root of roots) if ((await state(dagId, runId, root)) !== "queued") return false;
      return true;
    });
  }

  const claim = (limit = 1): Promise<ClaimedTask[]> => claimTasks(h.db, { now: step(), limit, queues: ["ho_q"], hostname: "test", pid: 1, token: token() });
  /** Claims as many tries as named, which must be these (a claim takes the highest priorities). */
  async function claimOnly(...taskIds: string[]): Promise<ClaimedTask[]> {
    const got = await claim(taskIds.length);
    expect(got.map((t) => `${t.dagId}.${t.taskId}`).sort()).toEqual([...taskIds].sort());
    return got.sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  }
  const done = (task: ClaimedTask): FinishedTry => ({ task, outcome: "success", endedAt: clock.now() });
  const finish = (tries: ClaimedTask[], limit = 1): Promise<FinishResult> =>
    finishTries(h.db, step(), tries.map(done), shapeOf, { limit, queues: ["ho_q"], hostname: "test", pid: 1, token: token() });

  /** Running tries of the pool, and its occupied count: they must agree. */
  async function running(pool: string): Promise<string[]> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT CONCAT(dag_id, '.', task_id) AS name FROM task_instance WHERE pool = ? AND state = 'running' ORDER BY name",
      [pool],
    );
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = ?", [pool]);
    if (row) expect(Number(row.occupied_slots)).toBe(rows.length);
    return rows.map((r) => r.name as string);
  }

  /** The run's tries in the order they started. */
  async function startOrder(pairs: [string, string][]): Promise<string[]> {
    const rows: { name: string; start: number }[] = [];
    for (const [dagId, runId] of pairs) {
      const [tis] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT task_id, start_date FROM task_instance WHERE dag_id = ? AND run_id = ? AND start_date IS NOT NULL",
        [dagId, runId],
      );
      for (const ti of tis) rows.push({ name: `${dagId}.${ti.task_id}`, start: new Date(ti.start_date).getTime() });
    }
    return rows.sort((a, b) => a.start - b.start).map((r) => r.name);
  }

  /**
   * Finishes each try alone (taking what the hand-off gives), then claims, until nothing is left
   * to run; the pool never runs more than `slots` tries at once.
   */
  async function drain(pool: string, slots: number, tries: ClaimedTask[]): Promise<void> {
    let pending = tries;
    for (let i = 0; i < 20 && pending.length > 0; i++) {
      const next: ClaimedTask[] = [];
      for (const t of pending) {
        next.push(...(await finish([t])).taken);
        expect((await running(pool)).length).toBeLessThanOrEqual(slots);
      }
      next.push(...(await claim(3)));
      expect((await running(pool)).length).toBeLessThanOrEqual(slots);
      pending = next;
    }
    expect(pending).toEqual([]);
  }

  it("takes the tasks of highest priority among those a finish readies, for fewer free slots than they are", async () => {
    const wide = { queues: ["ho_wide_q"], hostname: "test", pid: 1 };
    const claimWide = async (n: number) => (await claimTasks(h.db, { now: step(), limit: n, ...wide, token: token() })).sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
    const finishWide = (tries: ClaimedTask[]) => finishTries(h.db, step(), tries.map(done), shapeOf, { limit: 1, ...wide, token: token() });
    await triggerQueued("ho_fanout", "r", ["root"]);
    const root = await claimWide(5);
    expect(root.map((t) => t.taskId)).toEqual(["root"]);
    // Was: w1 (readied in the order the DAG lists them), the lowest of the five.
    expect((await finishWide(root)).taken.map((t) => t.taskId)).toEqual(["w5"]);
    await triggerQueued("ho_joins", "r", ["a", "b"]);
    // Ahead of the fan-out's tries left queued.
    const ab = await claimWide(2);
    expect(ab.map((t) => `${t.dagId}.${t.taskId}`)).toEqual(["ho_joins.a", "ho_joins.b"]);
    // Was: j1, the first join read, of priority 100 beside j3's 300 (all above the fan-out's queued tries).
    expect((await finishWide(ab)).taken.map((t) => t.taskId)).toEqual(["j3"]);
  });

  it("gives a freed slot to a queued try of higher priority in the pool, not to the chain's next task", async () => {
    await triggerQueued("ho_chain", "prio", ["c1"]);
    const [c1] = await claimOnly("ho_chain.c1");
    await triggerQueued("ho_urgent", "prio", ["u"]);
    expect(await running("ho_one")).toEqual(["ho_chain.c1"]);

    const result = await finish([c1!]);
    expect(result.taken).toEqual([]);
    expect(result.queued.length).toBeGreaterThan(0);
    expect(await state("ho_chain", "prio", "c2")).toBe("queued");
    expect(await running("ho_one")).toEqual([]);
    const [u] = await claimOnly("ho_urgent.u");
    expect(await running("ho_one")).toEqual(["ho_urgent.u"]);
    // u's finish hands nothing (it has no downstream task); the claim takes c2, whose finish hands off c3.
    await finish([u!]);
    const [c2] = await claimOnly("ho_chain.c2");
    const c3 = (await finish([c2!])).taken;
    expect(c3.map((t) => t.taskId)).toEqual(["c3"]);
    await finish(c3);
    expect(await startOrder([["ho_chain", "prio"], ["ho_urgent", "prio"]])).toEqual(["ho_chain.c1", "ho_urgent.u", "ho_chain.c2", "ho_chain.c3"]);
  });

  it("still hands off in one go when what waits in the pool has no higher priority", async () => {
    await triggerQueued("ho_chain", "tie", ["c1"]);
    const [c1] = await claimOnly("ho_chain.c1");
    // l has the chain's priority (1): the chain keeps its slot; l runs after it.
    await triggerQueued("ho_low", "tie", ["l"]);
    const c2 = (await finish([c1!])).taken;
    expect(c2.map((t) => t.taskId)).toEqual(["c2"]);
    expect(await running("ho_one")).toEqual(["ho_chain.c2"]);
    const c3 = (await finish(c2)).taken;
    expect(c3.map((t) => t.taskId)).toEqual(["c3"]);
    await finish(c3);
    const [l] = await claimOnly("ho_low.l");
    await finish([l!]);
    expect(await startOrder([["ho_chain", "tie"], ["ho_low", "tie"]])).toEqual(["ho_chain.c1", "ho_chain.c2", "ho_chain.c3", "ho_low.l"]);
  });

  it("never hands a backfill try's slot to the next backfill task while another try waits in the pool", async () => {
    const created = await api("POST", "/backfills", { dag_id: "ho_bf", from_date: "2026-01-01", to_date: "2026-01-01" });
    expect(created.statusCode).toBe(200);
    const [[run]] = await waitFor("the backfill run's c1 queued", async () => {
      await h.scheduler.tick();
      const [rows] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT r.run_id FROM dag_run r JOIN task_instance ti ON ti.dag_run_id = r.id WHERE r.backfill_id = ? AND ti.task_id = 'c1' AND ti.state = 'queued'",
        [created.json().id],
      );
      return rows.length > 0 && [rows];
    });
    const runId = run!.run_id as string;
    const [c1] = await claimOnly("ho_bf.c1");
    expect(c1!.backfill).toBe(true);
    // l's weight is the backfill task's own, but history yields to today.
    await triggerQueued("ho_low", "bf", ["l"]);
    expect((await finish([c1!])).taken).toEqual([]);
    const [l] = await claimOnly("ho_low.l");
    await finish([l!]);
    await drain("ho_one", 1, await claimOnly("ho_bf.c2"));
    expect(await startOrder([["ho_bf", runId], ["ho_low", "bf"]])).toEqual(["ho_bf.c1", "ho_low.l", "ho_bf.c2", "ho_bf.c3"]);
  });

  it("a join readied in the second round trip also yields to a queued try of higher priority", async () => {
    await triggerQueued("ho_fanin", "prio", ["p1", "p2"]);
    const [p1, p2] = await claimOnly("ho_fanin.p1", "ho_fanin.p2");
    await triggerQueued("ho_urgent_two", "prio", ["u"]);
    expect(await running("ho_two")).toEqual(["ho_fanin.p1", "ho_fanin.p2"]);
    // Both in one batch: j is ready, decided from its counters, and u waits with priority 100.
    const result = await finish([p1!, p2!], 2);
    expect(result.taken).toEqual([]);
    expect(await state("ho_fanin", "prio", "j")).toBe("queued");
    const [u] = await claimOnly("ho_urgent_two.u");
    await finish([u!]);
    const [j] = await claimOnly("ho_fanin.j");
    await finish([j!]);
    const order = await startOrder([["ho_fanin", "prio"], ["ho_urgent_two", "prio"]]);
    expect(order.slice(2)).toEqual(["ho_urgent_two.u", "ho_fanin.j"]);

    // With nothing waiting, the same join is handed off.
    await triggerQueued("ho_fanin", "alone", ["p1", "p2"]);
    const [q1, q2] = await claimOnly("ho_fanin.p1", "ho_fanin.p2");
    const handed = await finish([q1!, q2!], 2);
    expect(handed.taken.map((t) => t.taskId)).toEqual(["j"]);
    await finish(handed.taken);
  });

  it("starts nothing in a pool whose slots were lowered below its running tries", async () => {
    await triggerQueued("ho_par", "shrink", ["a1", "b1", "c1"]);
    const firsts = await claimOnly("ho_par.a1", "ho_par.b1", "ho_par.c1");
    expect((await api("PATCH", "/pools/ho_three", { slots: 1 })).statusCode).toBe(200);
    const [a1, b1, c1] = firsts;
    // 3 running, 1 slot: a1's and b1's slots are not handed on; c1's, the last over the limit, is.
    expect((await finish([a1!])).taken).toEqual([]);
    expect(await running("ho_three")).toEqual(["ho_par.b1", "ho_par.c1"]);
    expect(await claim(3)).toEqual([]);
    expect((await finish([b1!])).taken).toEqual([]);
    expect(await running("ho_three")).toEqual(["ho_par.c1"]);
    const c2 = (await finish([c1!])).taken;
    expect(c2.map((t) => t.taskId)).toEqual(["c2"]);
    expect(await running("ho_three")).toEqual(["ho_par.c2"]);
    expect(await claim(3)).toEqual([]);
    await drain("ho_three", 1, c2);
    expect((await api("PATCH", "/pools/ho_three", { slots: 3 })).statusCode).toBe(200);
  });

  it("hands on no more slots than a lowered pool has, when several tries finish in one batch", async () => {
    await triggerQueued("ho_par", "batch", ["a1", "b1", "c1"]);
    const firsts = await claimOnly("ho_par.a1", "ho_par.b1", "ho_par.c1");
    expect((await api("PATCH", "/pools/ho_three", { slots: 1 })).statusCode).toBe(200);
    const handed = await finish(firsts, 3);
    expect(handed.taken.length).toBeLessThanOrEqual(1);
    const next = [...handed.taken, ...(await claim(3))];
    expect(next).toHaveLength(1);
    expect(await running("ho_three")).toHaveLength(1);
    await drain("ho_three", 1, next);
    expect((await api("PATCH", "/pools/ho_three", { slots: 3 })).statusCode).toBe(200);
  });

  it("starts nothing in a pool that was deleted, by a chain's hop or a join", async () => {
    await triggerQueued("ho_gone", "gone", ["d1", "p1", "p2"]);
    const [d1, p1, p2] = await claimOnly("ho_gone.d1", "ho_gone.p1", "ho_gone.p2");
    expect((await api("DELETE", "/pools/ho_gone")).statusCode).toBe(204);
    expect((await finish([d1!])).taken).toEqual([]);
    expect((await finish([p1!, p2!], 2)).taken).toEqual([]);
    expect(await state("ho_gone", "gone", "d2")).toBe("queued");
    expect(await state("ho_gone", "gone", "j")).toBe("queued");
    expect(await claim(3)).toEqual([]);
    expect(await running("ho_gone")).toEqual([]);
  });
});

describe("a worker's hand-off", () => {
  const h = new Harness({ workers: 2 });
  let gate: string;
  const api = (url: string, payload: object) => h.app.inject({ method: "POST", url: `/api/v1${url}`, payload });

  beforeAll(async () => {
    await h.start({
      // c1 runs until the test writes the file named in the run's conf.
      "chain.ts": `import { existsSync } from "node:fs";
import { dag } from "baton";
export default dag({ id: "hw_chain", defaultArgs: { pool: "hw_one", weightRule: "absolute", priorityWeight: 1 } }, (t) => {
  t.task("c1", async (ctx) => {
    await new Promise((resolve, reject) => {
      const timer = setInterval(() => { if (existsSync(ctx.conf.gate)) { clearInterval(timer); resolve(undefined); } }, 10);
      ctx.signal.addEventListener("abort", () => { clearInterval(timer); reject(new Error("aborted")); });
    });
    return 1;
  }).then(t.task("c2", async () => 2)).then(t.task("c3", async () => 3));
});
`,
      "urgent.ts": dagSource(`export default dag({ id: "hw_urgent" }, (t) => { t.task("u", { pool: "hw_one", priorityWeight: 100 }, async () => 1); });`),
    });
    gate = path.join(path.dirname(h.dagsFolder), "gate");
    expect((await api("/pools", { name: "hw_one", slots: 1 })).statusCode).toBe(200);
    await h.run();
  });
  afterAll(() => h.stop());

  const rows = async (sql: string, params: unknown[] = []) => (await h.db.pool.query<RowDataPacket[]>(sql, params))[0];

  it("runs a task of higher priority that waits in the pool before the chain's next task", async () => {
    expect((await api("/dags/hw_chain/dagRuns", { dag_run_id: "r", conf: { gate } })).statusCode).toBe(200);
    await waitFor("c1 running", async () => (await rows("SELECT 1 FROM task_instance WHERE dag_id = 'hw_chain' AND task_id = 'c1' AND state = 'running'")).length > 0);
    expect((await api("/dags/hw_urgent/dagRuns", { dag_run_id: "r" })).statusCode).toBe(200);
    await waitFor("u queued", async () => (await rows("SELECT 1 FROM task_instance WHERE dag_id = 'hw_urgent' AND state = 'queued'")).length > 0);
    await writeFile(gate, "go");
    await waitFor("both runs done", async () => (await rows("SELECT 1 FROM dag_run WHERE state = 'success'")).length === 2, 20_000);
    const tries = await rows("SELECT CONCAT(dag_id, '.', task_id) AS name, start_date, end_date FROM task_instance ORDER BY start_date, id");
    expect(tries.map((t) => t.name)).toEqual(["hw_chain.c1", "hw_urgent.u", "hw_chain.c2", "hw_chain.c3"]);
    // One slot: each try ended before the next one started.
    for (let i = 1; i < tries.length; i++) expect(new Date(tries[i]!.start_date).getTime()).toBeGreaterThanOrEqual(new Date(tries[i - 1]!.end_date).getTime());
  });

});

describe("a worker's hand-off gate, read shallow then deep", () => {
  // A fresh worker: one that refused a hand-off in the last 30 s reads the pool deep already.
  const h = new Harness({ workers: 2 });
  const api = (url: string, payload: object) => h.app.inject({ method: "POST", url: `/api/v1${url}`, payload });
  const rows = async (sql: string, params: unknown[] = []) => (await h.db.pool.query<RowDataPacket[]>(sql, params))[0];

  beforeAll(async () => {
    await h.start({
      // Queued for ever ahead of everything in hw_one: it needs more slots than the pool has.
      "big.ts": dagSource(`export default dag({ id: "hw_big" }, (t) => { t.task("b", { pool: "hw_one", priorityWeight: 100, poolSlots: 5 }, async () => 1); });`),
      "long.ts": dagSource(`export default dag({ id: "hw_long", defaultArgs: { pool: "hw_one", weightRule: "absolute", priorityWeight: 1 } }, (t) => {
  t.task("l1", async () => 1).then(t.task("l2", async () => 2)).then(t.task("l3", async () => 3)).then(t.task("l4", async () => 4));
});`),
    });
    expect((await api("/pools", { name: "hw_one", slots: 1 })).statusCode).toBe(200);
    await h.run();
  });
  afterAll(() => h.stop());

  it("reads the pool's queue deep after one refusal at a try no claim takes: the chain's next hops are handed off", async () => {
    const handoffs = async () => {
      const res = await h.app.inject({ method: "GET", url: "/metrics" });
      const line = res.body.split("\n").find((l) => l.startsWith("baton_worker_handoffs_total"));
      return Number(line?.split(" ").pop() ?? 0);
    };
    expect((await api("/dags/hw_big/dagRuns", { dag_run_id: "r" })).statusCode).toBe(200);
    await waitFor("b queued", async () => (await rows("SELECT 1 FROM task_instance WHERE dag_id = 'hw_big' AND state = 'queued'")).length > 0);
    const before = await handoffs();
    expect((await api("/dags/hw_long/dagRuns", { dag_run_id: "r" })).statusCode).toBe(200);
    await waitFor("hw_long done", async () => (await rows("SELECT 1 FROM dag_run WHERE dag_id = 'hw_long' AND state = 'success'")).length === 1, 20_000);
    // l1 by a claim; its hand-off to l2 refused by the shallow read (b is first in the queue), l2
    // queued and claimed; the pool then read deep (past b): l3 and l4 handed off.
    expect((await handoffs()) - before).toBe(2);
    expect((await rows("SELECT state FROM task_instance WHERE dag_id = 'hw_big'")).map((r) => r.state)).toEqual(["queued"]);
  });
});
