import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const BRANCHY = dagSource(`
export const branchy = dag({ id: "branchy" }, (t) => {
  const pick = t.branch("pick", async (ctx) => (ctx.conf.way === "b" ? "path_b" : [pathA]));
  const pathA = t.task("path_a", async () => "a");
  const pathB = t.task("path_b", async () => "b");
  const afterB = t.task("after_b", async () => "after b");
  const join = t.task("join", { triggerRule: "none_failed_min_one_success" }, async () => "joined");
  pick.then([pathA, pathB]);
  pathB.then(afterB);
  pathA.then(join);
  afterB.then(join);
});

// Airflow's "empty branch": the join is downstream of the branch and of the task it follows.
export const emptyBranch = dag({ id: "empty_branch" }, (t) => {
  const pick = t.branch("pick", async (ctx) => (ctx.conf.way === "join" ? "join" : "task1"));
  const task1 = t.task("task1", async () => 1);
  const join = t.task("join", async () => "joined");
  pick.then([task1, join]);
  task1.then(join);
});

export const gate = dag({ id: "gate" }, (t) => {
  const check = t.shortCircuit("check", async (ctx) => ctx.conf.go === true);
  const work = t.task("work", async () => 1);
  const always = t.task("cleanup", { triggerRule: "all_done" }, async () => 2);
  check.then(work).then(always);
});

export const badBranch = dag({ id: "bad_branch" }, (t) => {
  const pick = t.branch("pick", async () => "nowhere");
  pick.then(t.task("x", async () => 1));
});
`);

describe("branching and short-circuit", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "branchy.ts": BRANCHY });
    await h.run();
  });
  afterAll(() => h.stop());

  async function runToEnd(dagId: string, conf: Record<string, unknown>) {
    const runId = await h.trigger(dagId, { conf });
    const state = await h.runEnded(dagId, runId, 10_000);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    return { state, tasks: Object.fromEntries(tis.map((r) => [r.task_id, r.state])) };
  }

  it("follows the chosen branch, skips the other and its descendants, and runs the join", async () => {
    const result = await runToEnd("branchy", { way: "a" });
    expect(result).toEqual({
      state: "success",
      tasks: { pick: "success", path_a: "success", path_b: "skipped", after_b: "skipped", join: "success" },
    });
  });

  it("follows a branch chosen by task id string", async () => {
    const result = await runToEnd("branchy", { way: "b" });
    expect(result.tasks).toEqual({ pick: "success", path_a: "skipped", path_b: "success", after_b: "success", join: "success" });
  });

  it("runs a join downstream of both the branch and the task it followed (Airflow's empty branch)", async () => {
    expect(await runToEnd("empty_branch", { way: "task1" })).toEqual({ state: "success", tasks: { pick: "success", task1: "success", join: "success" } });
    // Following the join directly skips task1, and the join (all_success) is skipped by it.
    expect((await runToEnd("empty_branch", { way: "join" })).tasks).toEqual({ pick: "success", task1: "skipped", join: "skipped" });
  });

  it("short-circuit false skips everything downstream, whatever the trigger rule", async () => {
    const result = await runToEnd("gate", { go: false });
    expect(result).toEqual({ state: "success", tasks: { check: "success", work: "skipped", cleanup: "skipped" } });
  });

  it("clearing tasks a branch or short-circuit skipped leaves them skipped; clearing the decider too decides again", async () => {
    const clear = (dagId: string, runId: string, taskIds: string[]) =>
      h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/clearTaskInstances`, payload: { dag_run_id: runId, task_ids: taskIds, only_failed: false, dry_run: false } });
    const states = async (dagId: string, runId: string) => {
      const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
      return Object.fromEntries(tis.map((r) => [r.task_id, r.state]));
    };
    const runOf = async (dagId: string) => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", [dagId]);
      return row!.run_id as string;
    };

    await runToEnd("branchy", { way: "a" });
    const branchRun = await runOf("branchy");
    const res = await clear("branchy", branchRun, ["path_b", "after_b"]);
    expect(res.statusCode).toBe(200);
    // path_b stays as the branch left it; after_b (downstream of the skipped path_b) is cleared and
    // skipped again at once by its trigger rule.
    expect(res.json().task_instances.map((t: { task_id: string }) => t.task_id)).toEqual(["after_b"]);
    expect(await states("branchy", branchRun)).toEqual({ pick: "success", path_a: "success", path_b: "skipped", after_b: "skipped", join: "success" });

    await runToEnd("gate", { go: false });
    const gateRun = await runOf("gate");
    expect((await clear("gate", gateRun, ["work", "cleanup"])).json().task_instances).toEqual([]);
    expect(await states("gate", gateRun)).toEqual({ check: "success", work: "skipped", cleanup: "skipped" });

    // With the branch cleared too it decides again (same conf, same choice) and skips them anew.
    expect((await clear("branchy", branchRun, ["pick", "path_b"])).json().task_instances.map((t: { task_id: string }) => t.task_id).sort()).toEqual(["path_b", "pick"]);
    await waitFor("the run to end again", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'branchy' AND run_id = ?", [branchRun]);
      return row!.state === "success";
    });
    expect((await states("branchy", branchRun)).path_b).toBe("skipped");
  });

  it("short-circuit true lets the run continue", async () => {
    const result = await runToEnd("gate", { go: true });
    expect(result.tasks).toEqual({ check: "success", work: "success", cleanup: "success" });
  });

  it("a branch naming a task that is not its direct downstream fails without retries", async () => {
    const result = await runToEnd("bad_branch", {});
    expect(result).toEqual({ state: "failed", tasks: { pick: "failed", x: "upstream_failed" } });
  });
});
