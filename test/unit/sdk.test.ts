import { jest } from "@jest/globals";
import { DAG_BRAND, dag, isDag } from "../../sdk/dag.ts";
import { InvalidDagError } from "../../sdk/errors.ts";
import * as sdk from "../../sdk/index.ts";
import type { DagBuilder, DagOptions, TaskDefaults, TaskRef } from "../../sdk/types.ts";

const noop = () => undefined;

/** The InvalidDagError thrown by fn (fails the test when fn does not throw one). */
function dagError(fn: () => unknown): InvalidDagError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidDagError) return err;
    throw new Error(`expected an InvalidDagError, got ${String(err)}`);
  }
  throw new Error("expected an InvalidDagError, nothing was thrown");
}

const upstreamOf = (d: ReturnType<typeof dag>, id: string) => [...(d.tasks.get(id)?.upstream ?? [])].sort();

describe("dag()", () => {
  describe("building", () => {
    it("collects tasks in declaration order with their functions and options", () => {
      const fnA = async () => 1;
      const fnB = () => "b";
      const d = dag({ id: "etl" }, (t) => {
        t.task("a", fnA);
        t.task("b", { retries: 2, description: "second" }, fnB);
      });
      expect(d.id).toBe("etl");
      expect([...d.tasks.keys()]).toEqual(["a", "b"]);
      expect(d.tasks.get("a")!.fn).toBe(fnA);
      expect(d.tasks.get("b")!.fn).toBe(fnB);
      expect(d.tasks.get("b")!.options).toMatchObject({ retries: 2, description: "second" });
      expect(d.tasks.get("a")!.options).toEqual({});
    });

    it("keeps the DAG options as given", () => {
      const options: DagOptions = { id: "x", schedule: "@daily", tags: ["t"], defaultArgs: { retries: 1 } };
      expect(dag(options, (t) => void t.task("a", noop)).options).toBe(options);
    });

    it("returns references carrying the task id", () => {
      let ref: TaskRef<number> | undefined;
      dag({ id: "x" }, (t) => {
        ref = t.task("extract", () => 42);
      });
      expect(ref!.id).toBe("extract");
    });

    it("wires upstream: [...] from options", () => {
      const d = dag({ id: "x" }, (t) => {
        const a = t.task("a", noop);
        const b = t.task("b", noop);
        t.task("c", { upstream: [a, b] }, noop);
      });
      expect(upstreamOf(d, "c")).toEqual(["a", "b"]);
      expect(upstreamOf(d, "a")).toEqual([]);
    });

    it("wires a.then(b) and returns b so chains read left to right", () => {
      const d = dag({ id: "x" }, (t) => {
        const a = t.task("a", noop);
        const b = t.task("b", noop);
        const c = t.task("c", noop);
        const returned = a.then(b);
        expect(returned).toBe(b);
        returned.then(c);
      });
      expect(upstreamOf(d, "b")).toEqual(["a"]);
      expect(upstreamOf(d, "c")).toEqual(["b"]);
    });

    it("fans out with a.then([b, c]) and returns the array", () => {
      const d = dag({ id: "x" }, (t) => {
        const a = t.task("a", noop);
        const b = t.task("b", noop);
        const c = t.task("c", noop);
        const arr = [b, c];
        expect(a.then(arr)).toBe(arr);
      });
      expect(upstreamOf(d, "b")).toEqual(["a"]);
      expect(upstreamOf(d, "c")).toEqual(["a"]);
    });

    it("fans in from several .then() calls and ignores a repeated edge", () => {
      const d = dag({ id: "x" }, (t) => {
        const a = t.task("a", noop);
        const b = t.task("b", noop);
        const j = t.task("join", { upstream: [a] }, noop);
        a.then(j);
        b.then(j);
      });
      expect(upstreamOf(d, "join")).toEqual(["a", "b"]);
    });

    it("accepts ids of 1-250 letters, digits, _, . and -", () => {
      for (const id of ["a", "A_1", "etl.v2", "x-y", "9", "a".repeat(250)]) {
        expect(dag({ id }, (t) => void t.task(id, noop)).tasks.has(id)).toBe(true);
      }
    });

    it("accepts every valid option", () => {
      const defaults: TaskDefaults = {
        retries: 0,
        retryDelay: "1s",
        retryExponentialBackoff: true,
        maxRetryDelay: 60_000,
        executionTimeout: "1h30m",
        triggerRule: "none_failed_min_one_success",
        priorityWeight: -3,
        pool: "p",
        poolSlots: 2,
        queue: "q",
      };
      expect(() => dag({ id: "x", maxActiveRuns: 1, defaultArgs: defaults }, (t) => void t.task("a", defaults, noop))).not.toThrow();
    });

    it.each(sdk.TRIGGER_RULES)("accepts triggerRule %p", (rule) => {
      expect(dag({ id: "x" }, (t) => void t.task("a", { triggerRule: rule }, noop)).tasks.get("a")!.options.triggerRule).toBe(rule);
    });

    it("records where the DAG and each task were defined (file:line)", () => {
      const d = dag({ id: "x" }, (t) => void t.task("a", noop));
      expect(d.definedAt).toMatch(/sdk\.test\.ts:\d+$/);
      expect(d.tasks.get("a")!.definedAt).toMatch(/sdk\.test\.ts:\d+$/);
    });

    it("records definition sites whatever Error.stackTraceLimit and Error.prepareStackTrace the user set, and leaves both as they were", () => {
      const limit = Error.stackTraceLimit;
      const prepare = Error.prepareStackTrace;
      const mine = (err: Error) => `custom: ${err.message}`;
      try {
        Error.stackTraceLimit = 0;
        Error.prepareStackTrace = mine;
        const d = dag({ id: "x" }, (t) => void t.task("a", noop));
        expect(d.definedAt).toMatch(/sdk\.test\.ts:\d+$/);
        expect(d.tasks.get("a")!.definedAt).toMatch(/sdk\.test\.ts:\d+$/);
        expect(Error.stackTraceLimit).toBe(0);
        expect(Error.prepareStackTrace).toBe(mine);
      } finally {
        Error.stackTraceLimit = limit;
        Error.prepareStackTrace = prepare;
      }
    });

    it("records the kind of each task: task, branch (t.branch) or short_circuit (t.shortCircuit)", () => {
      const d = dag({ id: "x" }, (t) => {
        const pick = t.branch("pick", { retries: 1 }, () => "left");
        const gate = t.shortCircuit("gate", () => true);
        const left = t.task("left", noop);
        pick.then([left, gate]);
      });
      expect(d.tasks.get("pick")!.kind).toBe("branch");
      expect(d.tasks.get("pick")!.options.retries).toBe(1);
      expect(d.tasks.get("gate")!.kind).toBe("short_circuit");
      expect(d.tasks.get("left")!.kind).toBe("task");
      expect(upstreamOf(d, "gate")).toEqual(["pick"]);
    });

    it("applies the same checks to branch and short-circuit tasks", () => {
      expect(dagError(() => dag({ id: "x" }, (t) => void t.branch("b b", () => null))).message).toContain('"b b"');
      const dup = dagError(() =>
        dag({ id: "x" }, (t) => {
          t.task("same", noop);
          t.shortCircuit("same", () => true);
        }),
      );
      expect(dup.code).toBe("BATON_DUPLICATE_TASK_ID");
      expect(dagError(() => dag({ id: "x" }, (t) => void t.shortCircuit("g", { retries: -1 }, () => true))).message).toMatch(/retries.*-1/);
    });

    it("runs the build function exactly once, at once", () => {
      const build = jest.fn((t: DagBuilder) => void t.task("a", noop));
      dag({ id: "x" }, build);
      expect(build).toHaveBeenCalledTimes(1);
    });
  });

  describe("duplicate task ids", () => {
    it("are rejected with BATON_DUPLICATE_TASK_ID naming the id", () => {
      const err = dagError(() =>
        dag({ id: "shop" }, (t) => {
          t.task("charge", noop);
          t.task("charge", noop);
        }),
      );
      expect(err.code).toBe("BATON_DUPLICATE_TASK_ID");
      expect(err.name).toBe("InvalidDagError");
      expect(err.message).toContain('"charge"');
      expect(err.message).toContain('"shop"');
    });

    it("are ids compared exactly (case matters)", () => {
      expect(() =>
        dag({ id: "x" }, (t) => {
          t.task("a", noop);
          t.task("A", noop);
        }),
      ).not.toThrow();
    });
  });

  describe("invalid ids", () => {
    it.each([["", "a b", "a/b", "../x", "é", "a".repeat(251), "tab\t"]].flat())("rejects task id %p", (id) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task(id, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain("task id");
      expect(err.message).toContain(JSON.stringify(id));
    });

    it.each([["", "my dag", "a/b", "a".repeat(251)]].flat())("rejects DAG id %p", (id) => {
      const err = dagError(() => dag({ id }, (t) => void t.task("a", noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain("id");
      expect(err.message).toContain(JSON.stringify(id));
    });

    it("rejects a non-string id", () => {
      expect(dagError(() => dag({ id: 42 as unknown as string }, (t) => void t.task("a", noop))).message).toContain("42");
      expect(dagError(() => dag({ id: "x" }, (t) => void t.task(7 as unknown as string, noop))).message).toContain("7");
    });

    it("rejects missing options and a missing build function", () => {
      expect(dagError(() => dag(null as unknown as DagOptions, noop)).message).toMatch(/options must be an object/);
      expect(dagError(() => dag({ id: "x" }, undefined as unknown as () => void)).message).toMatch(/second argument must be a function/);
    });
  });

  describe("missing function", () => {
    it.each([
      ["no function", (t: DagBuilder) => void (t.task as (id: string) => unknown)("lonely")],
      ["options but no function", (t: DagBuilder) => void (t.task as (id: string, o: object) => unknown)("lonely", { retries: 1 })],
      ["a non-function", (t: DagBuilder) => void t.task("lonely", {}, "run" as unknown as () => void)],
    ])("%s is rejected naming the task", (_label, build) => {
      const err = dagError(() => dag({ id: "x" }, build));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toMatch(/"lonely" needs a function/);
    });
  });

  describe("invalid options are rejected naming the field and the value", () => {
    const cases: [string, TaskDefaults, string, string][] = [
      ["negative retries", { retries: -1 }, "retries", "-1"],
      ["fractional retries", { retries: 1.5 }, "retries", "1.5"],
      ["string retries", { retries: "3" as unknown as number }, "retries", '"3"'],
      ["unknown triggerRule", { triggerRule: "all_good" as never }, "triggerRule", "all_good"],
      // @ts-expect-error not a Duration (a JavaScript DAG file may still pass it)
      ["bad retryDelay string", { retryDelay: "5 minutes" }, "retryDelay", "5 minutes"],
      ["negative retryDelay", { retryDelay: -5 }, "retryDelay", "-5"],
      // @ts-expect-error not a Duration (a JavaScript DAG file may still pass it)
      ["bad maxRetryDelay", { maxRetryDelay: "1y" }, "maxRetryDelay", "1y"],
      // @ts-expect-error not a Duration (a JavaScript DAG file may still pass it)
      ["bad executionTimeout", { executionTimeout: "soon" }, "executionTimeout", "soon"],
      ["NaN executionTimeout", { executionTimeout: Number.NaN }, "executionTimeout", "NaN"],
      ["fractional priorityWeight", { priorityWeight: 0.5 }, "priorityWeight", "0.5"],
      ["zero poolSlots", { poolSlots: 0 }, "poolSlots", "0"],
      // Values the database's columns cannot hold (task_instance INT / VARCHAR(256)).
      ["retries over the limit", { retries: 3_000_000_000 }, "retries", "3000000000"],
      ["priorityWeight below the limit", { priorityWeight: -3_000_000_000 }, "priorityWeight", "-3000000000"],
      ["priorityWeight over the limit", { priorityWeight: 3_000_000_000 }, "priorityWeight", "3000000000"],
      // Past ±100,000,000 a few tasks' sum would reach a backfill try's priority (BACKFILL_PRIORITY_FLOOR).
      ["priorityWeight just below the limit", { priorityWeight: -100_000_001 }, "priorityWeight", "-100000001"],
      ["priorityWeight just over the limit", { priorityWeight: 100_000_001 }, "priorityWeight", "100000001"],
      ["poolSlots over the limit", { poolSlots: 3_000_000_000 }, "poolSlots", "3000000000"],
      ["a queue of 300 characters", { queue: "q".repeat(300) }, "queue", "got 300"],
      ["an empty queue", { queue: "" }, "queue", "got 0"],
      ["a non-string queue", { queue: 7 as unknown as string }, "queue", "7"],
      ["a pool of 257 characters", { pool: "p".repeat(257) }, "pool", "got 257"],
      // Added to now into a DATETIME (ends in 9999).
      ["executionTimeout over 100 years", { executionTimeout: "10000000w" }, "executionTimeout", "100 years"],
      ["retryDelay over 100 years", { retryDelay: "10000000w" }, "retryDelay", "100 years"],
    ];

    it.each(cases)("task option: %s", (_label, options, field, value) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("work", options, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('task "work"');
      expect(err.message).toContain(field);
      expect(err.message).toContain(value);
    });

    it.each(cases)("defaultArgs: %s", (_label, options, field, value) => {
      const err = dagError(() => dag({ id: "x", defaultArgs: options }, (t) => void t.task("work", noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('dag "x" defaultArgs');
      expect(err.message).toContain(field);
      expect(err.message).toContain(value);
    });

    it("lists the valid trigger rules when one is unknown", () => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("a", { triggerRule: "dummy" as never }, noop)));
      for (const rule of sdk.TRIGGER_RULES) expect(err.message).toContain(rule);
    });

    it.each([0, -1, 1.5])("rejects maxActiveRuns %p", (value) => {
      const err = dagError(() => dag({ id: "x", maxActiveRuns: value }, (t) => void t.task("a", noop)));
      expect(err.message).toContain("maxActiveRuns");
      expect(err.message).toContain(String(value));
    });

    it.each([
      ["queue", { queue: "etl " }],
      ["pool", { pool: "db\t" }],
    ] as [string, Record<string, string>][])("rejects a %s name ending with whitespace: the database would match it to the name without", (field, options) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("a", options, noop)));
      expect(err.message).toContain(`${field} must not end with whitespace`);
      // Leading whitespace is kept in a pool name; a queue name cannot start with it (--queues trims it).
      expect(() => dag({ id: "x" }, (t) => void t.task("a", { [field]: field === "pool" ? " inner spaces ok" : "inner spaces ok" }, noop))).not.toThrow();
    });

    it.each([
      ["a comma", "gpu,fast", 'queue must not contain "," (baton worker --queues splits at commas)'],
      ["leading whitespace", " etl", "queue must not start with whitespace (baton worker --queues trims it)"],
    ])("rejects a queue name holding %s: no worker could serve it, `--queues` would name other queues", (_label, queue, message) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("a", { queue }, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain(message);
      expect(() => dag({ id: "x" }, (t) => void t.task("a", { queue: "team: gpu/fast" }, noop))).not.toThrow();
    });

    it.each([
      ["queue", { queue: "etl\nnext" }, "U+000A"],
      ["queue", { queue: "x\ty" }, "U+0009"],
      ["queue", { queue: "a\u0085b" }, "U+0085"],
      ["pool", { pool: "gpu\nnext" }, "U+000A"],
    ] as [string, Record<string, string>, string][])("rejects a %s name holding a control character %#: it is printed in log lines and CLI rows", (field, options, code) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("a", options, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain(`${field} must not contain control characters`);
      expect(err.message).toContain(code);
      expect(() => dag({ id: "x" }, (t) => void t.task("a", { [field]: field === "pool" ? " leading space, Zürich \u00a0ok" : "Zürich \u00a0ok" }, noop))).not.toThrow();
    });

    it.each([
      ["softFail", "true"],
      ["exponentialBackoff", 1],
    ] as [string, unknown][])("rejects a sensor's %s that is not a boolean (%p would read as false)", (flag, value) => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.sensor("s", { poke: () => true, [flag]: value } as never)));
      expect(err.message).toContain(`sensor "s": ${flag} must be true or false`);
    });

    it("accepts the limits themselves", () => {
      const limits = { retries: 1_000_000, priorityWeight: -100_000_000, poolSlots: 1_000_000, queue: "q".repeat(256), pool: "p".repeat(256) };
      expect(() => dag({ id: "x", defaultArgs: limits }, (t) => void t.task("a", { ...limits, priorityWeight: 100_000_000 }, noop))).not.toThrow();
      expect(() => dag({ id: "x", owner: "o".repeat(255), maxActiveRuns: 2_147_483_647, maxActiveTasks: 2_147_483_647 }, (t) => void t.task("a", noop))).not.toThrow();
    });

    it.each([
      ["owner", { owner: "o".repeat(300) }, "got 300"],
      ["owner", { owner: 5 as unknown as string }, "5"],
      ["description", { description: "é".repeat(40_000) }, "80000"],
      ["maxActiveRuns", { maxActiveRuns: 3_000_000_000 }, "3000000000"],
      ["maxActiveTasks", { maxActiveTasks: 0 }, "0"],
      ["maxActiveTasks", { maxActiveTasks: 3_000_000_000 }, "3000000000"],
      ["schedule", { schedule: `0 ${Array.from({ length: 24 }, (_, h) => h).join(",")} * * ${"1,".repeat(100)}1`, startDate: "2026-01-01" }, "schedule"],
      ["timezone", { timezone: "Z".repeat(65) }, "got 65"],
    ] as [string, Partial<DagOptions>, string][])("rejects DAG option %s the dag row cannot hold (%p)", (field, options, value) => {
      const err = dagError(() => dag({ id: "x", ...options }, (t) => void t.task("a", noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('dag "x"');
      expect(err.message).toContain(field);
      expect(err.message).toContain(value);
    });

    it("rejects a dagrunTimeout over 100 years (timeout_at = start + it is a DATETIME)", () => {
      const err = dagError(() => dag({ id: "x", dagrunTimeout: "10000000w" }, (t) => void t.task("a", noop)));
      expect(err.message).toContain("dagrunTimeout");
      expect(err.message).toContain("100 years");
      expect(() => dag({ id: "x", dagrunTimeout: "5200w" }, (t) => void t.task("a", noop))).not.toThrow();
    });

    it("rejects a task with compensate whose compensation id would not fit task_id", () => {
      const err = dagError(() => dag({ id: "x" }, (t) => void t.task("t".repeat(239), { compensate: noop }, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain("compensate");
      expect(err.message).toContain("238");
      expect(() => dag({ id: "x" }, (t) => void t.task("t".repeat(238), { compensate: noop }, noop))).not.toThrow();
      expect(() => dag({ id: "x" }, (t) => void t.task("t".repeat(250), noop))).not.toThrow();
    });

    it("rejects invalid defaultArgs before running the build function", () => {
      const build = jest.fn((t: DagBuilder) => void t.task("a", noop));
      dagError(() => dag({ id: "x", defaultArgs: { retries: -2 } }, build));
      expect(build).not.toHaveBeenCalled();
    });
  });

  describe("empty DAG", () => {
    it("is rejected naming the DAG", () => {
      const err = dagError(() => dag({ id: "nothing" }, noop));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toBe('dag "nothing" has no tasks');
    });
  });

  describe("references from another DAG", () => {
    let foreign: TaskRef<unknown>;
    let foreignSameId: TaskRef<unknown>;
    beforeAll(() => {
      dag({ id: "other" }, (t) => {
        foreign = t.task("elsewhere", noop);
        foreignSameId = t.task("a", noop);
      });
    });

    it("are rejected in upstream: [...]", () => {
      const err = dagError(() => dag({ id: "mine" }, (t) => void t.task("a", { upstream: [foreign] }, noop)));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('"elsewhere" is not a task of this DAG');
    });

    it("are rejected even when a task of this DAG has the same id", () => {
      const err = dagError(() =>
        dag({ id: "mine" }, (t) => {
          t.task("a", noop);
          t.task("b", { upstream: [foreignSameId] }, noop);
        }),
      );
      expect(err.message).toContain('"a" is not a task of this DAG');
    });

    it("are rejected as the target of .then()", () => {
      const err = dagError(() =>
        dag({ id: "mine" }, (t) => {
          t.task("a", noop).then(foreign);
        }),
      );
      expect(err.message).toContain('"elsewhere" is not a task of this DAG');
    });

    it("are rejected as the source of .then()", () => {
      expect(() =>
        dag({ id: "mine" }, (t) => {
          foreign.then(t.task("a", noop));
        }),
      ).toThrow(InvalidDagError);
    });

    it("reject hand-made look-alike refs", () => {
      const fake = { id: "a", then: (n: unknown) => n } as TaskRef<unknown>;
      expect(() =>
        dag({ id: "mine" }, (t) => {
          t.task("a", noop);
          t.task("b", { upstream: [fake] }, noop);
        }),
      ).toThrow(/"a" is not a task of this DAG/);
    });
  });

  describe("isDag brand", () => {
    it("recognizes a DAG built by dag()", () => {
      const d = dag({ id: "x" }, (t) => void t.task("a", noop));
      expect(isDag(d)).toBe(true);
      expect((d as unknown as Record<symbol, unknown>)[DAG_BRAND]).toBe(true);
      expect(Object.isFrozen(d)).toBe(true);
    });

    it("uses a registry symbol, so a DAG from another copy of the SDK (a bundle) is recognized", () => {
      expect(DAG_BRAND).toBe(Symbol.for("baton.dag"));
      expect(isDag({ [Symbol.for("baton.dag")]: true, id: "copy", tasks: new Map() })).toBe(true);
    });

    it.each([
      ["null", null],
      ["undefined", undefined],
      ["a string", "dag"],
      ["a plain object with dag-like fields", { id: "x", options: {}, tasks: new Map() }],
      ["a brand that is not true", { [Symbol.for("baton.dag")]: "yes" }],
      ["a local symbol with the same description", { [Symbol("baton.dag")]: true }],
      ["a function", () => undefined],
    ])("rejects %s", (_label, value) => {
      expect(isDag(value)).toBe(false);
    });
  });

  it("is exported from the package entry point with the SDK errors", () => {
    expect(sdk.dag).toBe(dag);
    expect(sdk.isDag).toBe(isDag);
    expect(sdk.InvalidDagError).toBe(InvalidDagError);
    expect(new sdk.SkipError().code).toBe("BATON_TASK_SKIPPED");
    expect(new sdk.FailError("no").nonRetryable).toBe(true);
  });
});

describe("durations beyond 100 years", () => {
  // now + such a duration does not fit a DATETIME (year 9999): the worker could not record the try.
  const huge = 1e15;
  it.each<[string, (t: DagBuilder) => void, RegExp]>([
    ["waitForSignal timeout", (t) => void t.waitForSignal("w", { signal: "go", timeout: huge }), /waitForSignal "w": timeout must be at most 100 years/],
    ["sensor pokeInterval", (t) => void t.sensor("s", { poke: async () => false, pokeInterval: huge, mode: "reschedule" }), /sensor "s": pokeInterval must be at most 100 years/],
    ["sensor timeout", (t) => void t.sensor("s", { poke: async () => false, timeout: "36526d" }), /sensor "s": timeout must be at most 100 years/],
    ["executionTimeout", (t) => void t.task("a", { executionTimeout: huge }, noop), /task "a": executionTimeout must be at most 100 years/],
    ["retryDelay", (t) => void t.task("a", { retryDelay: huge }, noop), /task "a": retryDelay must be at most 100 years/],
    ["maxRetryDelay", (t) => void t.task("a", { maxRetryDelay: huge }, noop), /task "a": maxRetryDelay must be at most 100 years/],
    ["httpSensor requestTimeout", (t) => void t.sensor("h", sdk.httpSensor({ url: "http://x", requestTimeout: huge })), /requestTimeout must be at most 100 years/],
  ])("refuses a %s of 1e15 ms when the DAG loads, naming the option", (_name, build, message) => {
    expect(() => dag({ id: "x" }, build)).toThrow(message);
  });

  it("refuses a dagrunTimeout or a defaultArgs duration past 100 years", () => {
    expect(dagError(() => dag({ id: "x", dagrunTimeout: huge }, (t) => void t.task("a", noop))).message).toMatch(/dag "x": dagrunTimeout must be at most 100 years/);
    expect(dagError(() => dag({ id: "x", defaultArgs: { executionTimeout: "5300w" } }, (t) => void t.task("a", noop))).message).toMatch(
      /defaultArgs: executionTimeout must be at most 100 years/,
    );
  });

  it("accepts 100 years", () => {
    expect(() => dag({ id: "x" }, (t) => void t.waitForSignal("w", { signal: "go", timeout: "36525d" }))).not.toThrow();
  });
});
