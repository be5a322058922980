// finishTries commits a chain's hop in its first round trip (BatchTx.runCommittingIf) when
// nothing in it needs the first round trip's answers; everything else, and every hop whose
// guard fails (a fenced try, a run that ends after all), keeps the two-round-trip path with
// the same outcome. The test plays the worker (no worker serves ec_q) so it can count the
// round trips of each finish.
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { countingDb } from "../helpers/countingDb.ts";
import { claimTasks, type ClaimedTask } from "../../store/transitions/claimTasks.ts";
import { finishTries, type FinishedTry, type TakeRequest } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";

const CHAIN = dagSource(`
export default dag({ id: "ec_chain" }, (t) => {
  const a = t.task("a", { queue: "ec_q" }, async () => "a out");
  const b = t.task("b", { queue: "ec_q", upstream: [a] }, async () => 0);
  t.task("c", { queue: "ec_q", upstream: [b] }, async () => 0);
});
`);

const FAN_IN = dagSource(`
export default dag({ id: "ec_fanin" }, (t) => {
  const ps = [1, 2, 3].map((i) => t.task("p" + i, { queue: "ec_q" }, async () => i));
  t.task("j", { queue: "ec_q", upstream: ps }, async () => 0);
});
`);

const ANY = dagSource(`
export default dag({ id: "ec_any" }, (t) => {
  const ps = [1, 2].map((i) => t.task("p" + i, { queue: "ec_q" }, async () => i));
  t.task("j", { queue: "ec_q", upstream: ps, triggerRule: "one_success" }, async () => 0);
});
`);


describe("finishTries' one-round-trip hop", () => {
  const h = new Harness({ worker: false, runIds: "numbered" });
  let versions: VersionCache;
  const shapeOf = (hash: string) => versions.shape(hash);
  let tokens = 0;
  const token = () => String(++tokens).padStart(32, "0");

  beforeAll(async () => {
    await h.start({ "chain.ts": CHAIN, "fanin.ts": FAN_IN, "any.ts": ANY });
    await h.run();
    versions = new VersionCache(h.db.pool);
  });
  afterAll(() => h.stop());

  /** Claims the queued tasks there are, which must be these (each test leaves none behind). */
  async function claimAll(taskIds: string[]): Promise<ClaimedTask[]> {
    const got: ClaimedTask[] = [];
    await waitFor(`${taskIds.join(", ")} to be claimed`, async () => {
      got.push(...(await claimTasks(h.db, { now: new Date(), limit: 5, queues: ["ec_q"], hostname: "test", pid: 1, token: token() })));
      return got.length >= taskIds.length;
    });
    expect(got.map((t) => t.taskId).sort()).toEqual([...taskIds].sort());
    return [...got].sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  }
  const claim = async (taskId: string) => (await claimAll([taskId]))[0]!;

  const done = (task: ClaimedTask, outcome: FinishedTry["outcome"] = "success", output?: unknown): FinishedTry => ({
    task,
    outcome,
    output,
    log: `${task.taskId} log\n`,
    endedAt: new Date(),
    ...(outcome === "failed" ? { error: { name: "FailError", message: "failed for the test", nonRetryable: true } } : {}),
  });
  const take = (): TakeRequest => ({ limit: 1, queues: ["ec_q"], hostname: "test", pid: 1, token: token() });

  async function rows(runId: string) {
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, claim_token FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    const [[run]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, unfinished_tasks FROM dag_run WHERE run_id = ?", [runId]);
    const [[pool]] = await h.db.pool.query<RowDataPacket[]>("SELECT occupied_slots FROM pool WHERE name = 'default_pool'");
    const [logs] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT ti.task_id FROM task_log l JOIN task_instance ti ON ti.id = l.task_instance_id WHERE ti.run_id = ? ORDER BY ti.task_id",
      [runId],
    );
    return {
      tasks: Object.fromEntries(tis.map((t) => [t.task_id, t.state])),
      tokens: Object.fromEntries(tis.map((t) => [t.task_id, t.claim_token])),
      run: `${run!.state}/${run!.unfinished_tasks}`,
      occupied: Number(pool!.occupied_slots),
      logged: logs.map((l) => l.task_id),
    };
  }

  it("records a try, claims its downstream task and commits in one round trip; the run's last task takes two", async () => {
    const runId = await h.trigger("ec_chain");
    const a = await claim("a");
    const trips: string[] = [];
    const request = take();
    const result = await finishTries(countingDb(h.db, trips), new Date(), [done(a, "success", "a out")], shapeOf, request);
    expect(trips).toEqual(["run+commit"]);
    expect(result.finished).toEqual([a.id]);
    expect(result.taken.map((t) => [t.taskId, t.upstreamOutputs])).toEqual([["b", { a: "a out" }]]);
    const after = await rows(runId);
    expect(after).toMatchObject({ tasks: { a: "success", b: "running", c: "none" }, run: "running/2", occupied: 1, logged: ["a"] });
    expect(after.tokens.b).toBe(request.token);

    trips.length = 0;
    const c = (await finishTries(countingDb(h.db, trips), new Date(), [done(result.taken[0]!)], shapeOf, take())).taken[0]!;
    expect(trips).toEqual(["run+commit"]);
    trips.length = 0;
    const last = await finishTries(countingDb(h.db, trips), new Date(), [done(c)], shapeOf, take());
    // c has no downstream task: its run may end, which the second round trip decides.
    expect(trips).toEqual(["run", "commit"]);
    expect(last.runsFinished).toEqual([{ dagRunId: c.dagRunId, state: "success" }]);
    expect(await rows(runId)).toMatchObject({ tasks: { a: "success", b: "success", c: "success" }, run: "success/0", occupied: 0, logged: ["a", "b", "c"] });
  });

  it("frees the pool slot in the same round trip when the downstream task is only queued", async () => {
    const runId = await h.trigger("ec_chain");
    const a = await claim("a");
    expect((await rows(runId)).occupied).toBe(1);
    const trips: string[] = [];
    const result = await finishTries(countingDb(h.db, trips), new Date(), [done(a)], shapeOf);
    expect(trips).toEqual(["run+commit"]);
    expect(result.queued).toEqual([-1]);
    expect(await rows(runId)).toMatchObject({ tasks: { a: "success", b: "queued", c: "none" }, run: "running/2", occupied: 0 });
    // Run the rest, leaving nothing queued for the next test's claims.
    const c = (await finishTries(h.db, new Date(), [done(await claim("b"))], shapeOf, take())).taken[0]!;
    await finishTries(h.db, new Date(), [done(c)], shapeOf);
    expect(await rows(runId)).toMatchObject({ run: "success/0", occupied: 0 });
  });

  it("a fenced try commits nothing and is reported fenced", async () => {
    const runId = await h.trigger("ec_chain");
    const a = await claim("a");
    const trips: string[] = [];
    const result = await finishTries(countingDb(h.db, trips), new Date(), [done({ ...a, token: "f".repeat(32) })], shapeOf, take());
    expect(trips).toEqual(["run (no commit)", "rollback"]);
    expect(result).toMatchObject({ finished: [], fenced: [a.id], taken: [] });
    expect(await rows(runId)).toMatchObject({ tasks: { a: "running", b: "none", c: "none" }, run: "running/3", occupied: 1, logged: [] });
    await finishTries(h.db, new Date(), [done(a, "failed")], shapeOf);
    expect((await rows(runId)).run).toBe("failed/0");
  });

  /** A run of ec_chain with `a` claimed and `ended` marked successful by hand meanwhile (the run's count follows). */
  async function claimedWhileEnded(ended: string[]): Promise<{ runId: string; a: ClaimedTask }> {
    const runId = await h.trigger("ec_chain");
    const a = await claim("a");
    await h.db.pool.query(`UPDATE task_instance SET state = 'success' WHERE run_id = ? AND task_id IN (${ended.map(() => "?").join(", ")})`, [runId, ...ended]);
    await h.db.pool.query("UPDATE dag_run SET unfinished_tasks = ? WHERE run_id = ?", [3 - ended.length, runId]);
    return { runId, a };
  }

  it("a run that ends after all (its downstream task had already ended) is finished the usual way", async () => {
    // b and c ended meanwhile; the run still counts a as unfinished.
    const { runId, a } = await claimedWhileEnded(["b", "c"]);
    const trips: string[] = [];
    const result = await finishTries(countingDb(h.db, trips), new Date(), [done(a)], shapeOf, take());
    expect(trips).toEqual(["run (no commit)", "commit"]);
    expect(result.taken).toEqual([]);
    expect(result.runsFinished).toEqual([{ dagRunId: a.dagRunId, state: "success" }]);
    expect(await rows(runId)).toMatchObject({ tasks: { a: "success", b: "success", c: "success" }, run: "success/0", occupied: 0 });
  });

  it("a downstream claim that matches no row does not keep a pool slot, early or not", async () => {
    // b ended meanwhile; c still waits, so the run does not end.
    const { runId, a } = await claimedWhileEnded(["b"]);
    const trips: string[] = [];
    const result = await finishTries(countingDb(h.db, trips), new Date(), [done(a)], shapeOf, take());
    expect(trips).toEqual(["run (no commit)", "commit"]);
    expect(result).toMatchObject({ finished: [a.id], taken: [], runsFinished: [] });
    expect(await rows(runId)).toMatchObject({ tasks: { a: "success", b: "success", c: "none" }, run: "running/1", occupied: 0 });
    await h.db.pool.query("UPDATE dag_run SET state = 'success' WHERE run_id = ?", [runId]);
  });

  it("a fan-in's upstream tasks commit in one round trip while the join waits; the one that readies it takes two", async () => {
    const runId = await h.trigger("ec_fanin");
    const [p1, p2, p3] = await claimAll(["p1", "p2", "p3"]);
    const trips: string[] = [];
    await finishTries(countingDb(h.db, trips), new Date(), [done(p1!)], shapeOf, take());
    expect(trips).toEqual(["run+commit"]);
    expect(await rows(runId)).toMatchObject({ tasks: { p1: "success", p2: "running", p3: "running", j: "none" }, run: "running/3", occupied: 2 });

    trips.length = 0;
    const last = await finishTries(countingDb(h.db, trips), new Date(), [done(p2!), done(p3!)], shapeOf, take());
    expect(trips).toEqual(["run (no commit)", "commit"]);
    expect(last.taken.map((t) => t.taskId)).toEqual(["j"]);
    expect(await rows(runId)).toMatchObject({ tasks: { p1: "success", p2: "success", p3: "success", j: "running" }, run: "running/1", occupied: 1 });
    await finishTries(h.db, new Date(), [done(last.taken[0]!)], shapeOf);
    expect(await rows(runId)).toMatchObject({ run: "success/0", occupied: 0 });
  });

  it("a failed upstream task of a fan-in (the join may end) and a rule that fires on one success take two round trips", async () => {
    const failing = await h.trigger("ec_fanin");
    const [p1, p2, p3] = await claimAll(["p1", "p2", "p3"]);
    const trips: string[] = [];
    await finishTries(countingDb(h.db, trips), new Date(), [done(p1!, "failed")], shapeOf, take());
    expect(trips).toEqual(["run", "commit"]);
    expect(await rows(failing)).toMatchObject({ tasks: { p1: "failed", j: "upstream_failed" } });
    await finishTries(h.db, new Date(), [done(p2!), done(p3!)], shapeOf);
    expect(await rows(failing)).toMatchObject({ run: "failed/0", occupied: 0 });

    const any = await h.trigger("ec_any");
    const [a1, a2] = await claimAll(["p1", "p2"]);
    trips.length = 0;
    const first = await finishTries(countingDb(h.db, trips), new Date(), [done(a1!)], shapeOf, take());
    expect(trips).toEqual(["run", "commit"]);
    expect(first.taken.map((t) => t.taskId)).toEqual(["j"]);
    await finishTries(h.db, new Date(), [done(a2!), done(first.taken[0]!)], shapeOf);
    expect(await rows(any)).toMatchObject({ run: "success/0", occupied: 0 });
  });
});
