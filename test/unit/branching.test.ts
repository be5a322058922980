import { decideSkips } from "../../executor/branching.ts";
import { dag } from "../../sdk/dag.ts";
import type { Dag } from "../../sdk/types.ts";
import { decideDownstream } from "../../store/transitions/settle.ts";
import type { RowDataPacket } from "../../store/db.ts";

const noop = () => undefined;

// pick → [a, b]; a → join; b → b2 → join; gate → g1 → g2
function sample(): Dag {
  return dag({ id: "branching" }, (t) => {
    const pick = t.branch("pick", noop);
    const a = t.task("a", noop);
    const b = t.task("b", noop);
    const b2 = t.task("b2", noop);
    const join = t.task("join", { triggerRule: "none_failed_min_one_success" }, noop);
    pick.then([a, b]);
    b.then(b2);
    a.then(join);
    b2.then(join);
    const gate = t.shortCircuit("gate", noop);
    gate.then(t.task("g1", noop)).then(t.task("g2", noop));
  });
}

describe("decideSkips (branch and short-circuit)", () => {
  const d = sample();
  it.each([
    ["a", ["a"], ["b"]],
    [["b"], ["b"], ["a"]],
    [["a", "b"], ["a", "b"], []],
    [null, [], ["a", "b"]],
    [undefined, [], ["a", "b"]],
  ])("branch returning %p follows %p and skips %p", (returned, followed, skipped) => {
    expect(decideSkips(d, "pick", "branch", returned)).toEqual({ output: followed, skipTasks: skipped });
  });

  it("never skips a task also downstream of a followed task (Airflow's empty branch and deeper joins)", () => {
    // pick → [t1, other, join]; t1 → t2 → join; other → join
    const deep = dag({ id: "deep" }, (t) => {
      const pick = t.branch("pick", noop);
      const t1 = t.task("t1", noop);
      const t2 = t.task("t2", noop);
      const other = t.task("other", noop);
      const join = t.task("join", noop);
      pick.then([t1, other, join]);
      t1.then(t2).then(join);
      other.then(join);
    });
    expect(decideSkips(deep, "pick", "branch", "t1").skipTasks).toEqual(["other"]);
    expect(decideSkips(deep, "pick", "branch", "other").skipTasks).toEqual(["t1"]);
    expect(decideSkips(deep, "pick", "branch", "join").skipTasks.sort()).toEqual(["other", "t1"]);
    expect(decideSkips(deep, "pick", "branch", []).skipTasks.sort()).toEqual(["join", "other", "t1"]);
  });

  it("accepts task references as well as ids", () => {
    const ref = { id: "b", then: () => ref };
    expect(decideSkips(d, "pick", "branch", ref).skipTasks).toEqual(["a"]);
  });

  it("rejects a choice that is not a direct downstream task, without retries", () => {
    for (const bad of ["b2", "join", "nope", 42]) {
      let error: (Error & { nonRetryable?: boolean }) | undefined;
      try {
        decideSkips(d, "pick", "branch", bad);
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).toContain("not its direct downstream tasks (a, b)");
      expect(error?.nonRetryable).toBe(true);
    }
  });

  it("a short-circuit that passes skips nothing; one that fails skips every descendant", () => {
    expect(decideSkips(d, "gate", "short_circuit", 1)).toEqual({ output: true, skipTasks: [] });
    for (const falsy of [false, 0, "", null, undefined]) {
      expect(decideSkips(d, "gate", "short_circuit", falsy)).toEqual({ output: false, skipTasks: ["g1", "g2"] });
    }
  });
});

describe("skip propagation through counters (decideDownstream)", () => {
  const row = (task_id: string, trigger_rule: string, upstream_total: number, counts: Partial<Record<string, number>>, state = "none") =>
    ({
      id: 1,
      task_id,
      state,
      trigger_rule,
      upstream_total,
      up_success: counts.success ?? 0,
      up_skipped: counts.skipped ?? 0,
      up_failed: counts.failed ?? 0,
      up_upstream_failed: counts.upstream_failed ?? 0,
      up_removed: 0,
    }) as unknown as RowDataPacket;

  it("a skipped branch skips an all_success descendant", () => {
    const { ready, ended } = decideDownstream([row("b2", "all_success", 1, { skipped: 1 })]);
    expect(ready).toEqual([]);
    expect(ended.map((e) => [e.row.task_id, e.state])).toEqual([["b2", "skipped"]]);
  });

  it("a join with none_failed_min_one_success runs after one branch succeeded and the other was skipped", () => {
    expect(decideDownstream([row("join", "none_failed_min_one_success", 2, { success: 1, skipped: 1 })]).ready).toHaveLength(1);
  });

  it("a join with all_success is skipped when one side was skipped", () => {
    const { ended } = decideDownstream([row("join", "all_success", 2, { success: 1, skipped: 1 })]);
    expect(ended.map((e) => e.state)).toEqual(["skipped"]);
  });

  it("waits while an upstream is still running, and ignores tasks already decided", () => {
    expect(decideDownstream([row("join", "none_failed_min_one_success", 2, { skipped: 1 })])).toEqual({ ready: [], ended: [] });
    expect(decideDownstream([row("join", "all_success", 1, { success: 1 }, "skipped")])).toEqual({ ready: [], ended: [] });
  });
});
