// Pausing a DAG holds its running runs, as in Airflow: tries already running finish, and no new
// task of the DAG starts until it is unpaused — neither handed on by the worker that recorded
// the upstream try (the fast path) nor claimed from the queue.
import { randomBytes } from "node:crypto";
import { scratchDir } from "../helpers/scratch.ts";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { finishTries } from "../../store/transitions/finishTries.ts";
import { VersionCache } from "../../store/versions.ts";

const DAGS = dagSource(`
import { existsSync } from "node:fs";
const waitForRelease = async (ctx: { conf: Record<string, unknown> }) => {
  while (!existsSync(String(ctx.conf.release))) await new Promise((r) => setTimeout(r, 20));
  return "open";
};
export default dag({ id: "held" }, (t) => {
  // after: one upstream, claimed in the transaction recording it; join: two, decided after it.
  t.task("gate", waitForRelease).then(t.task("after", async () => "after"));
  const join = t.task("join", async () => "joined");
  t.task("gate2", waitForRelease).then(join);
  t.task("side", async () => "side").then(join);
});
export const history = dag({ id: "paused_history", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("extract", async () => 1).then(t.task("load", async () => 2)).then(t.task("report", async () => 3));
});
export const other = dag({ id: "other" }, (t) => {
  t.task("one", async () => 1).then(t.task("two", async () => 2)).then(t.task("three", async () => 3));
});
`);

describe("pausing a DAG with a running run", () => {
  const h = new Harness({ workers: 3 });
  beforeAll(async () => {
    await h.start({ "held.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const states = async (runId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = 'held' AND run_id = ? ORDER BY task_id", [runId]);
    return Object.fromEntries(rows.map((r) => [r.task_id as string, r.state as string]));
  };
  const pause = async (paused: boolean) => {
    const res = await h.app.inject({ method: "PATCH", url: "/api/v1/dags/held", payload: { is_paused: paused } });
    expect(res.statusCode).toBe(200);
  };

  it("lets running tries finish and starts nothing else until unpaused", async () => {
    const release = path.join(await scratchDir("baton-pause-"), "release");
    const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/held/dagRuns", payload: { dag_run_id: "r1", conf: { release } } });
    expect(trigger.statusCode).toBe(200);
    await waitFor("gate to run and side to succeed", async () => {
      const s = await states("r1");
      return s.gate === "running" && s.gate2 === "running" && s.side === "success";
    });
    await pause(true);
    await writeFile(release, "");
    await waitFor("the running gates to finish", async () => {
      const s = await states("r1");
      return s.gate === "success" && s.gate2 === "success";
    });
    // Another DAG's run makes the worker claim and hand on tries meanwhile: had the paused DAG's
    // ready tasks been takeable, they would have been taken by its end.
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/other/dagRuns", payload: { dag_run_id: "o1" } });
    expect(res.statusCode).toBe(200);
    await waitFor("the other DAG's run to succeed", async () => (await h.runState("other", "o1")) === "success");
    expect(await states("r1")).toEqual({ after: "queued", gate: "success", gate2: "success", join: "queued", side: "success" });
    expect(await h.runState("held", "r1")).toBe("running");

    await pause(false);
    await waitFor("the held run to finish once unpaused", async () => (await h.runState("held", "r1")) === "success");
    expect(await states("r1")).toEqual({ after: "success", gate: "success", gate2: "success", join: "success", side: "success" });
  });

  it("a paused DAG's backfill runs still run every task", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/backfills", payload: { dag_id: "paused_history", from_date: "2026-02-01", to_date: "2026-02-02" } });
    expect(res.statusCode).toBe(200);
    const id = res.json().id as number;
    await waitFor("the backfill to complete", async () => (await h.app.inject({ method: "GET", url: `/api/v1/backfills/${id}` })).json().state === "completed");
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, COUNT(*) AS n FROM task_instance WHERE dag_id = 'paused_history' GROUP BY state");
    expect(rows.map((r) => [r.state, Number(r.n)])).toEqual([["success", 6]]);
  });
});

// The worker recording a try takes its ready downstream task in the same transaction; for a
// backfill try (of a paused DAG too) it reads no pause, and must take it on a connection that
// never read one (a session variable is NULL there).
describe("a backfill try's downstream task on a fresh connection", () => {
  const h = new Harness({ worker: false, manualTicks: true });
  beforeAll(async () => {
    await h.start({
      "ghost.ts": dagSource(`export default dag({ id: "ghost_bf", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("first", async () => 1).then(t.task("second", async () => 2));
});`),
    });
    await h.run();
  });
  afterAll(() => h.stop());

  it("is taken by the worker that recorded its upstream try", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/backfills", payload: { dag_id: "ghost_bf", from_date: "2026-02-01", to_date: "2026-02-01" } });
    expect(res.statusCode).toBe(200);
    await h.scheduler.tick();
    await h.scheduler.tick();
    const take = { limit: 4, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") };
    const [first] = await claimTasks(h.db, { ...take, now: new Date() });
    expect(first).toMatchObject({ taskId: "first", backfill: true });
    const versions = new VersionCache(h.db.pool);
    const result = await finishTries(h.db, new Date(), [{ task: first!, outcome: "success", endedAt: new Date() }], (hash) => versions.shape(hash), take);
    expect(result.taken.map((t) => t.taskId)).toEqual(["second"]);
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'ghost_bf' AND task_id = 'second'");
    expect(rows[0]!.state).toBe("running");
  });
});
