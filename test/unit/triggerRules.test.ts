import { RULES_WAITING_ON_SUCCESSES, evaluateTriggerRule, zeroCounts, type TriggerDecision, type UpstreamCounts } from "../../scheduler/triggerRules.ts";
import { TRIGGER_RULES, type TriggerRule } from "../../sdk/types.ts";

/** Upstream states as the scheduler sees them; "pending" is any state that is not terminal yet. */
type Up = "pending" | "success" | "skipped" | "failed" | "upstream_failed" | "removed";
const UP_STATES: readonly Up[] = ["pending", "success", "skipped", "failed", "upstream_failed", "removed"];

function counts(states: readonly Up[]): UpstreamCounts {
  const c = zeroCounts(states.length);
  for (const s of states) {
    if (s === "success") c.success++;
    else if (s === "skipped") c.skipped++;
    else if (s === "failed") c.failed++;
    else if (s === "upstream_failed") c.upstreamFailed++;
    else if (s === "removed") c.removed++;
  }
  return c;
}

const decide = (rule: TriggerRule, states: readonly Up[]) => evaluateTriggerRule(rule, counts(states));

/** Short names keep the tables readable. */
const P: Up = "pending";
const S: Up = "success";
const K: Up = "skipped";
const F: Up = "failed";
const UF: Up = "upstream_failed";
const R: Up = "removed";

/**
 * Reference model written from Airflow's trigger_rule_dep.py (_evaluate_direct_relatives with
 * flag_upstream_failed=True): first the state the task is moved to when the rule can no longer
 * be met, then whether the dependency passes. Baton's two documented choices are marked.
 */
function airflowModel(rule: TriggerRule, c: UpstreamCounts): TriggerDecision {
  const { total: upstream, success, skipped, failed, upstreamFailed, removed } = c;
  const done = success + skipped + failed + upstreamFailed + removed;
  if (upstream === 0 || rule === "always") return "ready";
  const upstreamDone = done >= upstream;

  let newState: "skipped" | "upstream_failed" | null = null;
  switch (rule) {
    case "all_success":
      if (upstreamFailed || failed) newState = "upstream_failed";
      else if (skipped) newState = "skipped";
      break;
    case "all_failed":
      if (success || skipped) newState = "skipped";
      break;
    case "one_success":
      if (upstreamDone && done === skipped) newState = "skipped";
      else if (upstreamDone && success <= 0) newState = "upstream_failed";
      break;
    case "one_failed":
      if (upstreamDone && !(failed || upstreamFailed)) newState = "skipped";
      break;
    case "one_done":
      if (upstreamDone && !(failed || success)) newState = "skipped";
      break;
    case "none_failed":
      if (upstreamFailed || failed) newState = "upstream_failed";
      break;
    case "none_failed_min_one_success":
      if (upstreamFailed || failed) newState = "upstream_failed";
      else if (skipped === upstream) newState = "skipped";
      // Baton: "removed" is neutral, so skipped + removed with no success cannot meet "min one success".
      else if (upstreamDone && success === 0) newState = "skipped";
      break;
    case "none_skipped":
      if (skipped) newState = "skipped";
      break;
    case "all_skipped":
      if (success || failed || upstreamFailed) newState = "skipped";
      break;
    case "all_done_min_one_success":
      // Baton follows Airflow's documented meaning (skipped counts as done), not apache/airflow#59925.
      if (upstreamDone && success === 0) newState = done === skipped ? "skipped" : "upstream_failed";
      break;
    case "all_done":
      break;
  }
  if (newState) return newState;

  // "removed" upstreams are subtracted as Airflow does for mapped task instances.
  let passed: boolean;
  switch (rule) {
    case "one_success":
      passed = success > 0;
      break;
    case "one_failed":
      passed = failed + upstreamFailed > 0;
      break;
    case "one_done":
      passed = success + failed > 0;
      break;
    case "all_success":
      passed = upstream - success - removed <= 0;
      break;
    case "all_failed":
      passed = upstream - failed - upstreamFailed - removed <= 0;
      break;
    case "all_done":
      passed = upstreamDone;
      break;
    case "none_failed":
    case "none_failed_min_one_success":
      passed = upstream - success - skipped - removed <= 0;
      break;
    case "none_skipped":
      passed = upstreamDone && skipped === 0;
      break;
    case "all_skipped":
      passed = upstream - skipped - removed <= 0;
      break;
    case "all_done_min_one_success":
      passed = upstreamDone && success > 0;
      break;
    default:
      throw new Error(`model has no rule ${rule}`);
  }
  return passed ? "ready" : "wait";
}

/** Every multiset of upstream states with 0..max upstream tasks. */
function allMixtures(max: number): Up[][] {
  const out: Up[][] = [];
  const grow = (prefix: Up[], from: number) => {
    out.push(prefix);
    if (prefix.length === max) return;
    for (let i = from; i < UP_STATES.length; i++) grow([...prefix, UP_STATES[i]!], i);
  };
  grow([], 0);
  return out;
}
const MIXTURES = allMixtures(5);

describe("evaluateTriggerRule", () => {
  it("covers the 12 rules Airflow defines", () => {
    expect([...TRIGGER_RULES].sort()).toEqual(
      [
        "all_done",
        "all_done_min_one_success",
        "all_failed",
        "all_skipped",
        "all_success",
        "always",
        "none_failed",
        "none_failed_min_one_success",
        "none_skipped",
        "one_done",
        "one_failed",
        "one_success",
      ].sort(),
    );
  });

  it.each(TRIGGER_RULES)("%s: a root task (no upstream) is ready at once", (rule) => {
    expect(evaluateTriggerRule(rule, zeroCounts(0))).toBe("ready");
  });

  it("zeroCounts gives a total and nothing finished", () => {
    expect(zeroCounts(7)).toEqual({ total: 7, success: 0, skipped: 0, failed: 0, upstreamFailed: 0, removed: 0 });
  });

  it("rejects a rule it does not know instead of guessing", () => {
    expect(() => evaluateTriggerRule("dummy" as TriggerRule, counts([S]))).toThrow(/unknown trigger rule dummy/);
  });

  // One table per rule: [upstream states, decision].
  const TABLE: Record<TriggerRule, [Up[], TriggerDecision][]> = {
    all_success: [
      [[P], "wait"],
      [[P, P, P], "wait"],
      [[S, P], "wait"],
      [[S, S, P], "wait"],
      [[S], "ready"],
      [[S, S, S], "ready"],
      [[F, P, P], "upstream_failed"], // early: the first failure decides
      [[UF, P], "upstream_failed"],
      [[S, S, F], "upstream_failed"],
      [[K, P], "skipped"], // early: the first skip decides
      [[S, K], "skipped"],
      [[K, F], "upstream_failed"], // failure wins over skip
      [[K, UF, P], "upstream_failed"],
      [[S, R], "ready"],
      [[R, P], "wait"],
    ],
    all_failed: [
      [[P, P], "wait"],
      [[F, P], "wait"],
      [[F, F], "ready"],
      [[F, UF], "ready"],
      [[UF, UF, UF], "ready"],
      [[S, P], "skipped"], // early: one success means not all failed
      [[F, S], "skipped"],
      [[K, P], "skipped"],
      [[F, K], "skipped"],
      [[F, R], "ready"],
    ],
    all_done: [
      [[P], "wait"],
      [[S, F, K, P], "wait"],
      [[S], "ready"],
      [[F], "ready"],
      [[K], "ready"],
      [[UF], "ready"],
      [[R], "ready"],
      [[S, F, K, UF, R], "ready"],
    ],
    all_done_min_one_success: [
      [[P, P], "wait"],
      [[S, P], "wait"], // waits for all, even with a success
      [[F, P], "wait"],
      [[S, F], "ready"],
      [[S, UF], "ready"],
      [[S, S], "ready"],
      [[S, K], "ready"], // skipped counts as done (Airflow's documented meaning)
      [[S, K, F, UF, R], "ready"],
      [[F, F], "upstream_failed"],
      [[F, UF], "upstream_failed"],
      [[F, K], "upstream_failed"],
      [[K, K], "skipped"],
      [[K], "skipped"],
      [[R], "upstream_failed"],
    ],
    all_skipped: [
      [[P, P], "wait"],
      [[K, P], "wait"],
      [[K], "ready"],
      [[K, K, K], "ready"],
      [[S, P], "skipped"], // early
      [[K, F], "skipped"],
      [[UF, P], "skipped"],
      [[K, R], "ready"],
    ],
    one_success: [
      [[P, P], "wait"],
      [[S, P, P], "ready"], // early: first success
      [[F, S, P], "ready"],
      [[F, P], "wait"],
      [[K, P], "wait"],
      [[K, K], "skipped"], // all skipped
      [[F, F], "upstream_failed"],
      [[K, F], "upstream_failed"],
      [[K, UF], "upstream_failed"],
      [[R, K], "upstream_failed"],
      [[S, F, K], "ready"],
    ],
    one_failed: [
      [[P, P], "wait"],
      [[F, P, P], "ready"], // early: first failure
      [[UF, P], "ready"], // upstream_failed counts as a failure
      [[S, P], "wait"],
      [[S, S], "skipped"],
      [[S, K], "skipped"],
      [[K, K], "skipped"],
      [[R, S], "skipped"],
      [[S, S, F], "ready"],
    ],
    one_done: [
      [[P, P], "wait"],
      [[S, P], "ready"],
      [[F, P], "ready"],
      [[K, P], "wait"],
      [[UF, P], "wait"], // upstream_failed is neither success nor failed here
      [[K, K], "skipped"],
      [[UF, UF], "skipped"],
      [[K, UF, R], "skipped"],
      [[K, UF, S], "ready"],
    ],
    none_failed: [
      [[P, P], "wait"],
      [[S, P], "wait"],
      [[S, K], "ready"],
      [[K, K], "ready"], // all skipped still runs
      [[S, S], "ready"],
      [[F, P], "upstream_failed"], // early
      [[UF, P], "upstream_failed"],
      [[S, K, F], "upstream_failed"],
      [[S, R], "ready"],
    ],
    none_failed_min_one_success: [
      [[P, P], "wait"],
      [[S, P], "wait"],
      [[K, P], "wait"],
      [[S, K], "ready"],
      [[S, S], "ready"],
      [[K, K], "skipped"],
      [[F, P], "upstream_failed"], // early
      [[S, UF], "upstream_failed"],
      [[K, F], "upstream_failed"],
      [[K, R], "skipped"],
      [[S, R], "ready"],
    ],
    none_skipped: [
      [[P, P], "wait"],
      [[S, P], "wait"],
      [[S, S], "ready"],
      [[S, F], "ready"],
      [[F, UF], "ready"],
      [[K, P], "skipped"], // early
      [[S, K], "skipped"],
      [[F, K], "skipped"],
      [[S, R], "ready"],
    ],
    always: [
      [[P], "ready"],
      [[P, P, P], "ready"],
      [[F, UF], "ready"],
      [[K, K], "ready"],
      [[S, F, K, UF, R, P], "ready"],
    ],
  };

  describe.each(TRIGGER_RULES)("%s", (rule) => {
    it.each(TABLE[rule].map(([states, expected]) => [states.join(",") || "(none)", states, expected] as const))(
      "upstream [%s] → %s",
      (_label, states, expected) => {
        expect(decide(rule, states)).toBe(expected);
      },
    );
  });

  it("has a table for every rule", () => {
    for (const rule of TRIGGER_RULES) expect(TABLE[rule].length).toBeGreaterThan(3);
  });

  describe.each(TRIGGER_RULES)("%s over every mixture of up to 5 upstream tasks", (rule) => {
    it("matches Airflow's trigger_rule_dep.py", () => {
      const mismatches = MIXTURES.flatMap((states) => {
        const got = decide(rule, states);
        const want = airflowModel(rule, counts(states));
        return got === want ? [] : [`[${states.join(",")}] got ${got}, Airflow ${want}`];
      });
      expect(mismatches).toEqual([]);
    });

    it("never waits once every upstream task is done (a run cannot hang)", () => {
      const stuck = MIXTURES.filter((s) => s.length > 0 && !s.includes(P) && decide(rule, s) === "wait");
      expect(stuck).toEqual([]);
    });

    it("never changes an early decision when the pending upstream tasks finish", () => {
      const changed: string[] = [];
      for (const states of MIXTURES) {
        const before = decide(rule, states);
        if (before === "wait") continue;
        const pending = states.filter((s) => s === P).length;
        if (pending === 0) continue;
        const finished = states.filter((s) => s !== P);
        // Every way of finishing the pending tasks.
        for (const ending of allMixtures(pending).filter((m) => m.length === pending && !m.includes(P))) {
          const after = decide(rule, [...finished, ...ending]);
          const stable = before === "ready" ? after === "ready" : after === "skipped" || after === "upstream_failed";
          if (!stable) changed.push(`[${states.join(",")}] ${before} → [${[...finished, ...ending].join(",")}] ${after}`);
        }
      }
      expect(changed).toEqual([]);
    });
  });

  it("ends a task that can no longer run in skipped or upstream_failed, never anything else", () => {
    const seen = new Set<TriggerDecision>();
    for (const rule of TRIGGER_RULES) for (const states of MIXTURES) seen.add(decide(rule, states));
    expect([...seen].sort()).toEqual(["ready", "skipped", "upstream_failed", "wait"]);
  });

  it("decides from counts alone, whatever the order upstream tasks finished in", () => {
    for (const rule of TRIGGER_RULES) {
      expect(decide(rule, [S, F, K, P])).toBe(decide(rule, [P, K, F, S]));
    }
  });
});

describe("RULES_WAITING_ON_SUCCESSES", () => {
  /** Counts with only successes and removed upstream tasks ended, and not all of them. */
  function* onlySuccessesSoFar(): Generator<UpstreamCounts> {
    for (let total = 1; total <= 6; total++) {
      for (let success = 0; success < total; success++) {
        for (let removed = 0; success + removed < total; removed++) yield { ...zeroCounts(total), success, removed };
      }
    }
  }

  it("lists exactly the rules that wait everywhere in that region", () => {
    const waitEverywhere = TRIGGER_RULES.filter((rule) => [...onlySuccessesSoFar()].every((c) => evaluateTriggerRule(rule, c) === "wait"));
    expect([...RULES_WAITING_ON_SUCCESSES].sort()).toEqual([...waitEverywhere].sort());
  });

  it("those rules decide something once all upstream tasks ended, or one ended otherwise", () => {
    for (const rule of RULES_WAITING_ON_SUCCESSES) {
      expect({ rule, decision: evaluateTriggerRule(rule, { ...zeroCounts(2), success: 2 }) }).not.toEqual({ rule, decision: "wait" });
    }
  });
});
