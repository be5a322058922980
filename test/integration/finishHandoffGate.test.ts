// The hand-off gate (finishTries' claimReads) yields to a queued try of higher priority only when
// a claim could take that try: a paused DAG's tries and tries needing more slots than their pool
// has in all wait in the queue for as long as that lasts (for ever, for the latter), and counting
// them refused every hand-off in their pool, so each hop of a chain there paid a second round
// trip and a full claim. The gate reads a pool's first queued try alone (shallow) until that
// refuses a hand-off; the worker then reads that pool deep, past such tries, for a while
// (GateDepths). A hop handed off commits in one round trip (BatchTx.runCommittingIf); a refused
// one needs a second, so the round trips counted say which happened. The test plays the worker
// (no worker serves hg_q) on a fake clock, with a GateDepths per test as a worker keeps one.
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { countingDb } from "../helpers/countingDb.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries, type FinishResult } from "../../store/transitions/finishTries.ts";
import { GateDepths } from "../../scheduler/handoff.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const ARGS = `weightRule: "absolute", priorityWeight: 1, queue: "hg_q"`;
const CHAIN = dagSource(`export default dag({ id: "hg_chain", defaultArgs: { pool: "hg_one", ${ARGS} } }, (t) => {
  t.task("c1", async () => 1).then(t.task("c2", async () => 2)).then(t.task("c3", async () => 3));
});`);
/** `n` parallel tasks of priority 100 in the chain's pool: the tests pause their DAG once they are queued. */
const held = (id: string, n: number) =>
  dagSource(`export default dag({ id: "${id}", defaultArgs: { pool: "hg_one", ${ARGS}, priorityWeight: 100 } }, (t) => {
  for (let i = 0; i < ${n}; i++) t.task("h" + i, async () => i);
});`);
const URGENT = dagSource(`export default dag({ id: "hg_urgent" }, (t) => { t.task("u", { pool: "hg_one", ${ARGS}, priorityWeight: 50 }, async () => 1); });`);
const BIG = dagSource(`export default dag({ id: "hg_big" }, (t) => { t.task("b", { pool: "hg_one", ${ARGS}, priorityWeight: 100, poolSlots: 5 }, async () => 1); });`);


describe("the hand-off gate counts only queued tries a claim could take", () => {
  const clock = new FakeClock("2026-04-01T00:00:00Z");
  const h = new Harness({ worker: false, clock, manualTicks: true });
  let versions: VersionCache;
  let tokens = 0;
  const token = () => String(++tokens).padStart(32, "0");
  const step = () => {
    clock.advance(1000);
    return clock.now();
  };
  const api = (method: "POST" | "PATCH", url: string, payload?: object) => h.app.inject({ method, url: `/api/v1${url}`, ...(payload ? { payload } : {}) });

  beforeAll(async () => {
    await h.start({ "chain.ts": CHAIN, "few.ts": held("hg_few", 3), "many.ts": held("hg_many", 20), "urgent.ts": URGENT, "big.ts": BIG });
    expect((await api("POST", "/pools", { name: "hg_one", slots: 1 })).statusCode).toBe(200);
    await h.run();
    versions = new VersionCache(h.db.pool);
  });
  afterAll(() => h.stop());

  async function states(dagId: string, runId: string): Promise<Record<string, string>> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id, r.state]));
  }
  /** Triggers a run and ticks until its `roots` are queued. */
  async function triggerQueued(dagId: string, runId: string, roots: string[]): Promise<void> {
    await h.trigger(dagId, { runId });
    await waitFor(`${dagId} ${runId} queued`, async () => {
      await h.scheduler.tick();
      const now = await states(dagId, runId);
      return roots.every((r) => now[r] === "queued");
    });
  }
  /** Triggers a run of a DAG of held tries, then pauses the DAG: its tries stay queued, and no claim takes them. */
  async function pausedWithQueued(dagId: string, n: number): Promise<void> {
    await triggerQueued(dagId, "r", Array.from({ length: n }, (_, i) => `h${i}`));
    expect((await api("PATCH", `/dags/${dagId}`, { is_paused: true })).statusCode).toBe(200);
  }
  /** Claims one try, which must be this one. */
  async function claimOnly(name: string): Promise<ClaimedTask> {
    const got = await claimTasks(h.db, { now: step(), limit: 1, queues: ["hg_q"], hostname: "test", pid: 1, token: token() });
    expect(got.map((t) => `${t.dagId}.${t.taskId}`)).toEqual([name]);
    return got[0]!;
  }
  /** Finishes a try, taking what the hand-off gives, reading the gate as a worker does with `depths`; `trips`: its round trips. */
  async function finish(task: ClaimedTask, depths: GateDepths, trips: string[] = []): Promise<FinishResult> {
    const now = step();
    const result = await finishTries(countingDb(h.db, trips), now, [{ task, outcome: "success", endedAt: clock.now() }], (x) => versions.shape(x), {
      limit: 1,
      queues: ["hg_q"],
      hostname: "test",
      pid: 1,
      token: token(),
      deepGatePools: depths.deepPools(now.getTime()),
    });
    depths.noteBlocked(result.gateBlocked, now.getTime());
    return result;
  }
  /** Finishes the chain's try and expects it to hand `next` its slot in one round trip. */
  async function hop(task: ClaimedTask, next: string, depths: GateDepths): Promise<ClaimedTask> {
    const trips: string[] = [];
    const result = await finish(task, depths, trips);
    expect(result.taken.map((t) => t.taskId)).toEqual([next]);
    expect(trips).toEqual(["run+commit"]);
    return result.taken[0]!;
  }

  it("still yields to a try a claim would take, behind a paused DAG's queued tries of higher priority", async () => {
    const depths = new GateDepths();
    // As after a refusal: the gate reads past the paused DAG's tries (a shallow read refuses at them).
    depths.noteBlocked(["hg_one"], clock.now().getTime());
    await triggerQueued("hg_chain", "behind", ["c1"]);
    const c1 = await claimOnly("hg_chain.c1");
    await pausedWithQueued("hg_few", 3);
    await triggerQueued("hg_urgent", "r", ["u"]);
    const trips: string[] = [];
    const refused = await finish(c1, depths, trips);
    expect(refused.taken).toEqual([]);
    expect(refused.gateBlocked).toEqual([]); // read deep already: nothing to report
    expect(trips).not.toEqual(["run+commit"]);
    expect((await states("hg_chain", "behind")).c2).toBe("queued");
    await finish(await claimOnly("hg_urgent.u"), depths);
    const c3 = await hop(await claimOnly("hg_chain.c2"), "c3", depths);
    await finish(c3, depths);
    expect(await states("hg_chain", "behind")).toEqual({ c1: "success", c2: "success", c3: "success" });
  });

  /** Finishes `c1` with a fresh GateDepths: its shallow read refuses at the first queued try, a claim takes c2, and c2 hands c3 its slot in one round trip, read deep. */
  async function refusedOnceThenDeep(runId: string, c1: ClaimedTask): Promise<void> {
    const depths = new GateDepths();
    const trips: string[] = [];
    const first = await finish(c1, depths, trips);
    expect(first.taken).toEqual([]);
    expect(first.gateBlocked).toEqual(["hg_one"]);
    expect(trips).not.toEqual(["run+commit"]);
    expect((await states("hg_chain", runId)).c2).toBe("queued");
    const c3 = await hop(await claimOnly("hg_chain.c2"), "c3", depths);
    await finish(c3, depths);
    expect(await states("hg_chain", runId)).toEqual({ c1: "success", c2: "success", c3: "success" });
  }

  it("hands off in one round trip past a paused DAG's queued tries of higher priority, however many, once read deep", async () => {
    // hg_few's 3 tries are still queued and paused; hg_many adds 20 more, past the gate's depth.
    await triggerQueued("hg_chain", "paused", ["c1"]);
    const c1 = await claimOnly("hg_chain.c1");
    await pausedWithQueued("hg_many", 20);
    await refusedOnceThenDeep("paused", c1);
    // Cancelled: their tries are skipped, out of the next test's way (a claim reads a few past them, not 23).
    for (const dagId of ["hg_few", "hg_many"]) expect((await api("PATCH", `/dags/${dagId}/dagRuns/r`, { state: "failed" })).statusCode).toBe(200);
  });

  it("hands off in one round trip past a queued try needing more slots than the pool has, once read deep", async () => {
    await triggerQueued("hg_chain", "oversized", ["c1"]);
    const c1 = await claimOnly("hg_chain.c1");
    await triggerQueued("hg_big", "r", ["b"]);
    await refusedOnceThenDeep("oversized", c1);
    expect((await states("hg_big", "r")).b).toBe("queued");
    expect((await api("PATCH", "/dags/hg_big/dagRuns/r", { state: "failed" })).statusCode).toBe(200);
  });

  it("reads shallow and hands off in one round trip when nothing is queued ahead", async () => {
    const depths = new GateDepths();
    await triggerQueued("hg_chain", "clear", ["c1"]);
    const c2 = await hop(await claimOnly("hg_chain.c1"), "c2", depths);
    const c3 = await hop(c2, "c3", depths);
    const last = await finish(c3, depths);
    expect(last.gateBlocked).toEqual([]);
    expect([...depths.deepPools(clock.now().getTime())]).toEqual([]);
    expect(await states("hg_chain", "clear")).toEqual({ c1: "success", c2: "success", c3: "success" });
  });
});
