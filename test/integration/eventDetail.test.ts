// Event log details: a transition says why in the events its statements cause (`extra` in GET
// /api/v1/eventLogs; the triggers read @baton_event_detail, set per connection by
// Db.withEventDetail or eventDetailStatement), and a pooled connection that carried one hands
// none to the next transition that runs on it. A fake clock and manual ticks: timeouts are
// reached by moving the clock, never by waiting.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { FakeClock } from "../../core/clock.ts";
import { Worker } from "../../executor/worker.ts";
import { eventDetailStatement, openDb, type Db, type RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { handBack } from "../../store/transitions/handBack.ts";
import { reapZombies } from "../../store/transitions/reapZombies.ts";
import { VersionCache } from "../../store/versions.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
import { existsSync } from "node:fs";

// Runs until conf.release exists (or it is aborted): a worker is stopped while it runs.
export const held = dag({ id: "ed_held" }, (t) => {
  t.task("h", { queue: "ed_held" }, async (ctx) => {
    while (!existsSync(String(ctx.conf.release)) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  });
});

// "a" is on a queue no worker serves: claimed by a test's ghost worker, which then goes silent.
export const zombie = dag({ id: "ed_zombie" }, (t) => {
  const a = t.task("a", { queue: "ed_ghost" }, async () => 1);
  t.task("b", { upstream: [a], queue: "ed_ghost" }, async () => 2);
});

export const cleared = dag({ id: "ed_clear" }, (t) => {
  t.task("a", async () => 1);
});

export const signalled = dag({ id: "ed_signal" }, (t) => {
  const wait = t.waitForSignal("wait", { signal: "approved", timeout: "1d", onTimeout: "skip" });
  wait.then(t.task("use", async (ctx) => ctx.get(wait)));
});

export const marked = dag({ id: "ed_mark" }, (t) => {
  t.task("m", { queue: "ed_unserved" }, async () => 1);
});

export const slow = dag({ id: "ed_timeout", dagrunTimeout: "1h" }, (t) => {
  t.task("never", { queue: "ed_unserved" }, async () => 1);
});
`);

const DAY = 86_400_000;
const TIMEOUT = 30_000;

interface EventJson {
  event: string;
  task_id: string | null;
  from_state: string | null;
  to_state: string;
  try_number: number | null;
  owner: string | null;
  hostname: string | null;
  extra: string | null;
}

describe("event details", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ clock, manualTicks: true, runIds: "numbered", taskHeartbeatTimeoutMs: TIMEOUT });
  let versions: VersionCache;
  const shapeOf = (hash: string) => versions.shape(hash);
  const enc = encodeURIComponent;
  beforeAll(async () => {
    await h.start({ "event_detail.ts": DAGS });
    await h.run();
    versions = new VersionCache(h.db.pool);
  });
  afterAll(() => h.stop());

  /** A run's events, oldest first, as GET /api/v1/eventLogs answers them. */
  async function events(dagId: string, runId: string): Promise<EventJson[]> {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?dag_id=${dagId}&run_id=${enc(runId)}&limit=1000` });
    expect(res.statusCode).toBe(200);
    return res.json().event_logs as EventJson[];
  }
  const transitions = (list: EventJson[]) => list.map((e) => [e.task_id, e.from_state, e.to_state, e.extra]);
  const taskState = async (runId: string, taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | undefined;
  };

  it("a try a stopping worker hands back says which worker and why; the scheduler's own changes carry none", async () => {
    // In the harness's folder, which stop() removes.
    const release = path.join(path.dirname(h.dagsFolder), "ed-release");
    const runId = await h.trigger("ed_held", { conf: { release }, tick: true });
    const worker = new Worker(h.db, clock, h.logger, {
      concurrency: 1,
      queues: ["ed_held"],
      hostname: "ed-host",
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      heartbeatMs: 200,
    });
    worker.start();
    try {
      await waitFor("the try to run", async () => (await taskState(runId, "h")) === "running");
    } finally {
      await worker.stop(5000);
    }
    expect(await taskState(runId, "h")).toBe("queued");
    const all = await events("ed_held", runId);
    expect(transitions(all.filter((e) => e.task_id === "h"))).toEqual([
      ["h", null, "queued", null],
      ["h", "queued", "running", null],
      ["h", "running", "queued", `handed back by worker ed-host:${process.pid} (shutdown)`],
    ]);
    writeFileSync(release, "");
  });

  it("a reaped zombie says how long its worker was silent; the failures it causes say a zombie was reaped", async () => {
    const runId = await h.trigger("ed_zombie", { tick: true });
    const [claimed] = await claimTasks(h.db, { now: clock.now(), limit: 10, queues: ["ed_ghost"], hostname: "ghost-host", pid: 4242, token: randomBytes(16).toString("hex") });
    expect(claimed).toMatchObject({ runId, taskId: "a" });
    const { reaped } = await reapZombies(h.db, new Date(clock.now().getTime() + 45_000), TIMEOUT, shapeOf);
    expect(reaped).toEqual([expect.objectContaining({ id: claimed!.id, state: "failed" })]);
    const after = "after a zombie was reaped (no heartbeat for over 30s)";
    const failures = (await events("ed_zombie", runId)).filter((e) => e.to_state === "failed" || e.to_state === "upstream_failed");
    expect(transitions(failures)).toEqual([
      ["a", "running", "failed", "zombie: worker ghost-host pid 4242 sent no heartbeat for 45s, over the 30s timeout"],
      ["b", "none", "upstream_failed", after],
      [null, "running", "failed", after],
    ]);
  });

  it("a clear says who cleared, in every event it causes", async () => {
    const runId = await h.trigger("ed_clear", { tick: true });
    expect(await h.runEnded("ed_clear", runId)).toBe("success");
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/ed_clear/clearTaskInstances",
      payload: { dry_run: false, dag_run_id: runId, task_ids: ["a"], only_failed: false },
    });
    expect(res.statusCode).toBe(200);
    const byClear = (await events("ed_clear", runId)).filter((e) => e.from_state === "success");
    expect(byClear.map((e) => [e.task_id, e.to_state])).toEqual([
      ["a", "none"],
      [null, "running"],
    ]);
    for (const e of byClear) expect(e.extra).toBe(`cleared by ${e.owner}`);
    expect(byClear[0]!.owner).toBe(h.db.actor);
  });

  it("a delivered signal names itself in the wait's events; a wait that times out says so", async () => {
    const runId = await h.trigger("ed_signal", { tick: true });
    await waitFor("the wait to defer", async () => (await taskState(runId, "wait")) === "deferred");
    const sent = await h.app.inject({ method: "POST", url: `/api/v1/dags/ed_signal/dagRuns/${enc(runId)}/signals/approved`, payload: { signal_id: "sig-1", payload: 7 } });
    expect(sent.json()).toMatchObject({ delivered_to: "wait" });
    expect(await h.runEnded("ed_signal", runId)).toBe("success");
    const delivered = 'signal "approved" (signal_id "sig-1")';
    const changes = (await events("ed_signal", runId)).filter((e) => e.from_state !== null);
    expect(transitions(changes.filter((e) => e.from_state === "deferred" || e.to_state === "queued" || e.to_state === "success"))).toEqual([
      ["wait", "deferred", "success", delivered],
      ["use", "none", "queued", delivered],
      // Recorded by the worker's finish (the hot path): no detail.
      ["use", "running", "success", null],
      [null, "running", "success", null],
    ]);

    const late = await h.trigger("ed_signal", { tick: true });
    await waitFor("the wait to defer", async () => (await taskState(late, "wait")) === "deferred");
    clock.advance(DAY + 1000);
    await h.scheduler.tick();
    expect(await h.runEnded("ed_signal", late)).toBe("success");
    const timedOut = (await events("ed_signal", late)).find((e) => e.from_state === "deferred");
    expect(timedOut).toMatchObject({ task_id: "wait", to_state: "skipped", extra: 'no "approved" signal within its timeout (onTimeout: skip)' });
  });

  it("a run past its dagrunTimeout says so in the run's and its tasks' events", async () => {
    const runId = await h.trigger("ed_timeout", { tick: true });
    clock.advance(3_600_000 + 1000);
    await h.scheduler.tick();
    expect(await h.runState("ed_timeout", runId)).toBe("failed");
    const ended = (await events("ed_timeout", runId)).filter((e) => e.to_state === "failed" || e.to_state === "skipped");
    expect(transitions(ended)).toEqual([
      ["never", "queued", "skipped", "timed out: the run ran past its dagrunTimeout"],
      [null, "running", "failed", "timed out: the run ran past its dagrunTimeout"],
    ]);
  });

  it("a mark and a cancel say who made them", async () => {
    const runId = await h.trigger("ed_mark", { tick: true });
    const res = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ed_mark/dagRuns/${enc(runId)}/taskInstances/m`, payload: { new_state: "failed" } });
    expect(res.statusCode).toBe(200);
    const marks = (await events("ed_mark", runId)).filter((e) => e.to_state === "failed");
    expect(transitions(marks)).toEqual([
      ["m", "queued", "failed", `marked failed by ${h.db.actor}`],
      [null, "running", "failed", `marked failed by ${h.db.actor}`],
    ]);

    const other = await h.trigger("ed_mark", { tick: true });
    const cancelled = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/ed_mark/dagRuns/${enc(other)}`, payload: { state: "failed" } });
    expect(cancelled.statusCode).toBe(200);
    const ends = (await events("ed_mark", other)).filter((e) => e.to_state === "failed" || e.to_state === "skipped");
    expect(transitions(ends)).toEqual([
      ["m", "queued", "skipped", `run cancelled (marked failed) by ${h.db.actor}`],
      [null, "running", "failed", `run cancelled (marked failed) by ${h.db.actor}`],
    ]);
  });

  describe("on one pooled connection", () => {
    let one: Db;
    /** What the connection was sent (its core connection's query calls, the pool's own SETs included). */
    const sent: string[] = [];
    beforeAll(() => {
      one = openDb(h.db.url, { connectionLimit: 1 });
      const spied = new WeakSet<object>();
      one.pool.on("acquire", (conn) => {
        if (spied.has(conn)) return;
        spied.add(conn);
        const core = conn as unknown as { query(...args: unknown[]): unknown };
        const query = core.query.bind(core);
        core.query = (...args: unknown[]) => {
          const sql = args[0] as string | { sql: string };
          sent.push(typeof sql === "string" ? sql : sql.sql);
          return query(...args);
        };
      });
    });
    afterAll(() => one.close());

    const connectionId = async (db: Db) => Number((await db.pool.query<RowDataPacket[]>("SELECT CONNECTION_ID() AS id"))[0][0]!.id);
    const detailNow = async (db: Db) => (await db.pool.query<RowDataPacket[]>("SELECT @baton_event_detail AS d"))[0][0]!.d as string | null;

    it("a claim and a finish after a hand-back on the same connection inherit no detail", async () => {
      const thread = await connectionId(one);
      const runId = await h.trigger("ed_zombie", { tick: true });
      const ghost = { queues: ["ed_ghost"], hostname: "ghost-host", pid: 4242, token: randomBytes(16).toString("hex") };
      const [first] = await claimTasks(one, { now: clock.now(), limit: 10, ...ghost });
      expect(await handBack(one, clock.now(), [first!], "handed back by a test")).toBe(1);
      // The connection was reset as the hand-back gave it back: the claim (a hot path) sends nothing for it.
      sent.length = 0;
      const [again] = await claimTasks(one, { now: clock.now(), limit: 10, ...ghost });
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.filter((sql) => sql.includes("@baton_event_detail"))).toEqual([]);
      await finishTries(one, clock.now(), [{ task: again!, outcome: "success", output: 1, endedAt: clock.now() }], shapeOf);
      expect(await connectionId(one)).toBe(thread);
      expect(transitions((await events("ed_zombie", runId)).filter((e) => e.task_id === "a" && e.from_state !== null && e.from_state !== "none"))).toEqual([
        ["a", "queued", "running", null],
        ["a", "running", "queued", "handed back by a test"],
        ["a", "queued", "running", null],
        ["a", "running", "success", null],
      ]);
    });

    it("the variable itself is unset once a statement or transaction that set it gives the connection back", async () => {
      const thread = await connectionId(one);
      expect(await detailNow(one.withEventDetail("through a view"))).toBe("through a view");
      expect(await detailNow(one)).toBeNull();
      await one.tx(async (tx) => {
        const set = eventDetailStatement(tx, "within a transaction");
        await tx.query(set.sql, set.params);
      });
      expect(await detailNow(one)).toBeNull();
      // A transaction that fails (rolled back) gives it back unset too.
      await expect(
        one.withEventDetail("failed").tx(async (tx) => {
          await tx.query("SELECT 1");
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      expect(await detailNow(one)).toBeNull();
      expect(await connectionId(one)).toBe(thread);
    });
  });
});
