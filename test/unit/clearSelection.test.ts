import { shapeOf, type SerializedDag, type SerializedTask } from "../../core/dagStructure.ts";
import {
  clearClosure,
  clearStateFilter,
  clearableCompensations,
  sagaClearMode,
  sagaEnded,
  skipsToKeep,
  upstreamCountsOf,
} from "../../scheduler/clearSelection.ts";

/** A DAG of plain tasks (or the given kinds) from each task's upstream ids, listed in topological order. */
function shapeFrom(edges: Record<string, string[]>, kinds: Record<string, string> = {}) {
  const tasks = Object.entries(edges).map(
    ([taskId, upstream]) =>
      ({
        taskId,
        kind: kinds[taskId] ?? "task",
        upstream,
        downstream: Object.keys(edges).filter((id) => edges[id]!.includes(taskId)),
        triggerRule: "all_success",
        retries: 0,
      }) as unknown as SerializedTask,
  );
  return shapeOf({ dagId: "d", tasks } as unknown as SerializedDag);
}

/** a → b → c, a → d, x (alone); e joins c and d. */
const shape = () => shapeFrom({ a: [], b: ["a"], c: ["b"], d: ["a"], e: ["c", "d"], x: [] });

describe("clearClosure", () => {
  const s = shape();
  it("is the tasks themselves without include flags, in topological order", () => {
    expect(clearClosure(s, ["c", "a"])).toEqual(["a", "c"]);
  });
  it("adds every downstream task transitively", () => {
    expect(clearClosure(s, ["b"], { includeDownstream: true })).toEqual(["b", "c", "e"]);
    expect(clearClosure(s, ["a"], { includeDownstream: true })).toEqual(["a", "b", "c", "d", "e"]);
  });
  it("adds every upstream task transitively", () => {
    expect(clearClosure(s, ["e"], { includeUpstream: true })).toEqual(["a", "b", "c", "d", "e"]);
    expect(clearClosure(s, ["c"], { includeUpstream: true })).toEqual(["a", "b", "c"]);
  });
  it("adds both directions from the chosen tasks only (not upstream of the downstream)", () => {
    expect(clearClosure(s, ["c"], { includeUpstream: true, includeDownstream: true })).toEqual(["a", "b", "c", "e"]);
  });
  it("ignores unknown ids (the caller rejects them)", () => {
    expect(clearClosure(s, ["nope", "x"], { includeDownstream: true })).toEqual(["x"]);
  });
});

describe("clearStateFilter", () => {
  const states = ["none", "queued", "running", "success", "failed", "up_for_retry", "skipped", "upstream_failed", "removed"];
  it("selects every state without filters", () => {
    expect(states.filter(clearStateFilter(false, false))).toEqual(states);
  });
  it("only_failed selects failed and upstream_failed", () => {
    expect(states.filter(clearStateFilter(true, false))).toEqual(["failed", "upstream_failed"]);
  });
  it("only_running selects running", () => {
    expect(states.filter(clearStateFilter(false, true))).toEqual(["running"]);
  });
  it("both select either", () => {
    expect(states.filter(clearStateFilter(true, true))).toEqual(["running", "failed", "upstream_failed"]);
  });
});

describe("upstreamCountsOf", () => {
  const s = shape();
  it("counts only terminal upstream states, by state", () => {
    const states: Record<string, string> = { c: "success", d: "upstream_failed" };
    expect(upstreamCountsOf(s, "e", (id) => states[id])).toEqual({ total: 2, success: 1, skipped: 0, failed: 0, upstreamFailed: 1, removed: 0 });
    const pending: Record<string, string> = { c: "none", d: "running" };
    expect(upstreamCountsOf(s, "e", (id) => pending[id])).toEqual({ total: 2, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 });
    const mixed: Record<string, string> = { c: "skipped", d: "failed" };
    expect(upstreamCountsOf(s, "e", (id) => mixed[id])).toMatchObject({ skipped: 1, failed: 1 });
    expect(upstreamCountsOf(s, "b", () => "removed")).toMatchObject({ total: 1, removed: 1 });
  });
  it("is all zeros for a root", () => {
    expect(upstreamCountsOf(s, "a", () => "success")).toEqual({ total: 0, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 });
  });
});

describe("skipsToKeep", () => {
  /** pick (branch) → [a, b]; b → c; gate (short-circuit) → w → z. */
  const deciders = () =>
    shapeFrom({ pick: [], a: ["pick"], b: ["pick"], c: ["b"], gate: [], w: ["gate"], z: ["w"] }, { pick: "branch", gate: "short_circuit" });
  const s = deciders();
  const states: Record<string, string> = { pick: "success", a: "success", b: "skipped", c: "skipped", gate: "success", w: "skipped", z: "skipped" };
  const stateOf = (id: string) => states[id];
  const outputs = new Map<string, unknown>([["pick", ["a"]], ["gate", false]]);

  it("keeps the direct downstream tasks a branch did not follow, and everything after a short-circuit that returned false", () => {
    expect([...skipsToKeep(s, new Set(["b", "c", "w", "z"]), stateOf, outputs)].sort()).toEqual(["b", "w", "z"]);
  });
  it("keeps nothing when the decider is cleared too (it decides again)", () => {
    expect([...skipsToKeep(s, new Set(["pick", "b", "gate", "w"]), stateOf, outputs)]).toEqual([]);
  });
  it("keeps nothing for a short-circuit that returned true, nor for a branch that followed the task", () => {
    expect([...skipsToKeep(s, new Set(["a", "b", "w"]), stateOf, new Map<string, unknown>([["pick", ["a", "b"]], ["gate", true]]))]).toEqual([]);
  });
  it("keeps only skipped tasks: a failed one the branch did not follow is cleared", () => {
    expect([...skipsToKeep(s, new Set(["b"]), (id) => (id === "b" ? "failed" : states[id]), outputs)]).toEqual([]);
  });
  it("does not keep a join the branch reaches through a followed task (Airflow's empty branch): it was never the branch's to skip", () => {
    // pick → [task1, join], task1 → join: the branch followed task1, so join is left to its rule.
    const s2 = shapeFrom({ pick: [], task1: ["pick"], join: ["pick", "task1"] }, { pick: "branch" });
    const joinSkipped = (id: string) => ({ pick: "success", task1: "success", join: "skipped" })[id];
    expect([...skipsToKeep(s2, new Set(["join"]), joinSkipped, new Map<string, unknown>([["pick", ["task1"]]]))]).toEqual([]);
    expect([...skipsToKeep(s2, new Set(["task1"]), (id) => (id === "task1" ? "skipped" : "success"), new Map<string, unknown>([["pick", ["join"]]]))]).toEqual(["task1"]);
  });
  it("accepts a branch output naming one task, not a list", () => {
    expect([...skipsToKeep(s, new Set(["a", "b"]), stateOf, new Map<string, unknown>([["pick", "b"]]))]).toEqual([]);
    expect([...skipsToKeep(s, new Set(["b"]), stateOf, new Map<string, unknown>([["pick", "a"]]))]).toEqual(["b"]);
  });
});

describe("saga clears", () => {
  /** charge → ship, each undone by its compensation; compensations chained in reverse order. */
  const saga = () => {
    const s = shapeFrom(
      { reserve: [], charge: ["reserve"], ship: ["charge"], charge__compensate: [], reserve__compensate: ["charge__compensate"] },
      { charge__compensate: "compensate", reserve__compensate: "compensate" },
    );
    (s.byId.get("charge__compensate") as { compensates?: string }).compensates = "charge";
    (s.byId.get("reserve__compensate") as { compensates?: string }).compensates = "reserve";
    return s;
  };
  const states = (m: Record<string, string>) => (id: string) => m[id];

  it("sagaEnded: a compensation that ended, or a run that ended while compensating", () => {
    expect(sagaEnded({ state: "failed", compensation: null })).toBe(false);
    expect(sagaEnded({ state: "running", compensation: "running" })).toBe(false);
    expect(sagaEnded({ state: "failed", compensation: "running" })).toBe(true);
    expect(sagaEnded({ state: "failed", compensation: "compensated" })).toBe(true);
    expect(sagaEnded({ state: "failed", compensation: "compensation_failed" })).toBe(true);
  });

  it("sagaClearMode: compensations alone, other tasks (or none named), or both", () => {
    const s = saga();
    expect(sagaClearMode(s, [])).toBe("tasks");
    expect(sagaClearMode(s, ["ship", "charge"])).toBe("tasks");
    expect(sagaClearMode(s, ["charge__compensate"])).toBe("compensations");
    expect(sagaClearMode(s, ["charge__compensate", "reserve__compensate"])).toBe("compensations");
    expect(sagaClearMode(s, ["ship", "charge__compensate"])).toBe("mixed");
  });

  it("clearableCompensations: owed ones only, never one that succeeded or had nothing to undo", () => {
    const s = saga();
    const all = clearStateFilter(false, false);
    const onlyFailed = clearStateFilter(true, false);
    const ran = { reserve: "success", charge: "success", ship: "failed" };
    expect(clearableCompensations(s, states({ ...ran, charge__compensate: "failed", reserve__compensate: "success" }), all)).toEqual(new Set(["charge__compensate"]));
    // The reservation never succeeded: its skipped compensation has nothing to undo.
    expect(
      clearableCompensations(s, states({ ...ran, reserve: "failed", charge__compensate: "failed", reserve__compensate: "skipped" }), onlyFailed),
    ).toEqual(new Set(["charge__compensate"]));
    // Cut off by a cancel or timeout: the skipped one is owed and counts as failed.
    expect(clearableCompensations(s, states({ ...ran, charge__compensate: "failed", reserve__compensate: "skipped" }), onlyFailed)).toEqual(
      new Set(["charge__compensate", "reserve__compensate"]),
    );
    // Still compensating: a queued compensation is owed, but only_failed does not take it.
    expect(clearableCompensations(s, states({ ...ran, charge__compensate: "failed", reserve__compensate: "queued" }), onlyFailed)).toEqual(
      new Set(["charge__compensate"]),
    );
    // No saga yet: no compensation task instances.
    expect(clearableCompensations(s, states(ran), all)).toEqual(new Set());
  });
});
