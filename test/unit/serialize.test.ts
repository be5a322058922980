import type { SerializedDag, SerializedTask } from "../../core/dagStructure.ts";
import * as graphlib from "@dagrejs/graphlib";
import { findCycles, serializeDag } from "../../parser/serialize.ts";
import { dag } from "../../sdk/dag.ts";
import { InvalidDagError } from "../../sdk/errors.ts";
import type { DagBuilder, DagOptions, TaskRef } from "../../sdk/types.ts";

const noop = () => undefined;
const FILE = "/dags/example.ts";

const serialize = (options: Partial<DagOptions>, build: (t: DagBuilder) => void): SerializedDag =>
  serializeDag(dag({ id: "d", ...options }, build), FILE);

const oneTask = (t: DagBuilder) => void t.task("a", noop);

function byId(s: SerializedDag): Map<string, SerializedTask> {
  return new Map(s.tasks.map((t) => [t.taskId, t]));
}

function invalid(fn: () => unknown): InvalidDagError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidDagError) return err;
    throw new Error(`expected an InvalidDagError, got ${String(err)}`);
  }
  throw new Error("expected an InvalidDagError, nothing was thrown");
}

/** Builds a DAG from "a>b" edge strings over the given task ids. */
function graph(ids: string[], edges: string[], weights: Record<string, number> = {}) {
  return (t: DagBuilder) => {
    const refs = new Map<string, TaskRef<unknown>>();
    for (const id of ids) refs.set(id, t.task(id, Object.hasOwn(weights, id) ? { priorityWeight: weights[id] } : {}, noop));
    for (const e of edges) {
      const [from, to] = e.split(">");
      refs.get(from!)!.then(refs.get(to!)!);
    }
  };
}

describe("serializeDag", () => {
  describe("cycles", () => {
    it.each([
      ["a self-loop", ["a"], ["a>a"]],
      ["two tasks", ["a", "b"], ["a>b", "b>a"]],
      ["three tasks", ["a", "b", "c"], ["a>b", "b>c", "c>a"]],
      ["a cycle behind a root", ["root", "x", "y", "z"], ["root>x", "x>y", "y>z", "z>x"]],
      ["four tasks declared out of order", ["a", "b", "c", "d"], ["c>a", "a>d", "d>b", "b>c"]],
    ])("are detected in %s with BATON_DAG_CYCLE, and the message shows the cycle edge by edge", (_label, ids, edges) => {
      const err = invalid(() => serialize({ id: "loop" }, graph(ids, edges)));
      expect(err.code).toBe("BATON_DAG_CYCLE");
      expect(err.message).toMatch(/^dag "loop" has a cycle: /);
      const shown = err.message.replace(/^dag "loop" has a cycle: /, "").split("; ");
      const edgeSet = new Set(edges);
      for (const cycle of shown) {
        const nodes = cycle.split(" → ");
        expect(nodes[0]).toBe(nodes[nodes.length - 1]); // it closes
        expect(nodes.length).toBeGreaterThanOrEqual(2);
        for (let i = 0; i + 1 < nodes.length; i++) expect(edgeSet).toContain(`${nodes[i]}>${nodes[i + 1]}`);
      }
    });

    it("lists every independent cycle", () => {
      const err = invalid(() => serialize({}, graph(["a", "b", "c", "d"], ["a>b", "b>a", "c>d", "d>c"])));
      expect(err.message.split("; ")).toHaveLength(2);
      expect(err.message).toMatch(/a → b → a|b → a → b/);
      expect(err.message).toMatch(/c → d → c|d → c → d/);
    });

    // A generated chain closed by mistake into a loop: graphlib's findCycles (Tarjan) recursed once
    // per task of the cycle, and a cycle of a few thousand tasks gave "Maximum call stack size
    // exceeded" as the file's import error instead of naming the cycle.
    it("names a cycle of 10,000 tasks with BATON_DAG_CYCLE", () => {
      const err = invalid(() =>
        serialize({ id: "loop" }, (t) => {
          const first = t.task("t0", noop);
          let previous = first;
          for (let i = 1; i < 10_000; i++) previous = previous.then(t.task(`t${i}`, noop));
          previous.then(first);
        }),
      );
      expect(err.code).toBe("BATON_DAG_CYCLE");
      const nodes = err.message.replace(/^dag "loop" has a cycle: /, "").split(" → ");
      expect(nodes).toHaveLength(10_001);
      expect(nodes[0]).toBe(nodes[10_000]);
      const at = nodes.indexOf("t0");
      expect(nodes[at + 1] ?? nodes[1]).toBe("t1");
    });

    it("finds the cycles graphlib's findCycles finds, in its order, on random graphs", () => {
      let seed = 7;
      const random = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
      for (let round = 0; round < 300; round++) {
        const g = new graphlib.Graph();
        const n = 1 + random(12);
        for (let i = 0; i < n; i++) g.setNode(`n${random(20)}`);
        const nodes = g.nodes();
        for (let e = random(3 * n); e > 0; e--) g.setEdge(nodes[random(nodes.length)]!, nodes[random(nodes.length)]!);
        expect(findCycles(g)).toEqual(graphlib.alg.findCycles(g));
      }
    });

    it("does not mistake a diamond for a cycle", () => {
      expect(() => serialize({}, graph(["a", "b", "c", "d"], ["a>b", "a>c", "b>d", "c>d"]))).not.toThrow();
    });
  });

  describe("structure", () => {
    it("orders tasks topologically: every task after its upstream tasks", () => {
      const ids = ["load", "transform", "extract_b", "extract_a", "report", "notify"];
      const edges = ["extract_a>transform", "extract_b>transform", "transform>load", "load>report", "transform>notify", "extract_a>notify"];
      const s = serialize({}, graph(ids, edges));
      const position = new Map(s.tasks.map((t, i) => [t.taskId, i]));
      expect([...position.keys()].sort()).toEqual([...ids].sort());
      for (const e of edges) {
        const [from, to] = e.split(">");
        expect(position.get(from!)!).toBeLessThan(position.get(to!)!);
      }
    });

    it("lists sorted upstream and downstream ids for each task", () => {
      const s = serialize({}, graph(["z", "m", "a", "join", "tail"], ["z>join", "a>join", "m>join", "join>tail", "a>tail"]));
      const t = byId(s);
      expect(t.get("join")!.upstream).toEqual(["a", "m", "z"]);
      expect(t.get("join")!.downstream).toEqual(["tail"]);
      expect(t.get("a")!.downstream).toEqual(["join", "tail"]);
      expect(t.get("tail")!.upstream).toEqual(["a", "join"]);
      expect(t.get("tail")!.downstream).toEqual([]);
      expect(t.get("z")!.upstream).toEqual([]);
    });

    it("keeps upstream and downstream lists consistent with each other", () => {
      const s = serialize({}, graph(["a", "b", "c", "d", "e"], ["a>b", "a>c", "b>d", "c>d", "d>e", "a>e"]));
      const t = byId(s);
      for (const task of s.tasks) {
        for (const up of task.upstream) expect(t.get(up)!.downstream).toContain(task.taskId);
        for (const down of task.downstream) expect(t.get(down)!.upstream).toContain(task.taskId);
      }
    });

    it("records the file, DAG-level defaults and the DAG options", () => {
      const s = serialize({ id: "plain" }, oneTask);
      expect(s).toMatchObject({
        dagId: "plain",
        fileloc: FILE,
        description: null,
        schedule: null,
        timezone: "UTC",
        startDate: null,
        endDate: null,
        catchup: false,
        maxActiveRuns: 16,
        maxActiveTasks: 16,
        tags: [],
        owner: "baton",
        isPausedUponCreation: null,
        params: {},
      });
      const full = serialize(
        {
          id: "full",
          description: "desc",
          schedule: "@daily",
          timezone: "Europe/Paris",
          startDate: "2026-01-01",
          endDate: new Date("2026-12-31T00:00:00Z"),
          catchup: true,
          maxActiveRuns: 2,
          maxActiveTasks: 4,
          tags: ["x"],
          owner: "ops",
          isPausedUponCreation: true,
          params: { n: 1 },
        },
        oneTask,
      );
      expect(full).toMatchObject({
        description: "desc",
        schedule: "@daily",
        timezone: "Europe/Paris",
        startDate: "2025-12-31T23:00:00.000Z", // "2026-01-01" is midnight in the DAG's time zone
        endDate: "2026-12-31T00:00:00.000Z",
        catchup: true,
        maxActiveRuns: 2,
        maxActiveTasks: 4,
        tags: ["x"],
        owner: "ops",
        isPausedUponCreation: true,
        params: { n: 1 },
      });
    });

    it("is plain JSON (what dag_version stores) and round-trips unchanged", () => {
      const s = serialize({ defaultArgs: { retries: 1 } }, graph(["a", "b"], ["a>b"]));
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    });

    it("is deterministic for the same DAG", () => {
      const build = graph(["c", "a", "b"], ["a>b", "c>b"]);
      const strip = (s: SerializedDag) => JSON.stringify({ ...s, tasks: s.tasks.map((t) => ({ ...t, definedAt: null })) });
      expect(strip(serialize({}, build))).toBe(strip(serialize({}, build)));
    });
  });

  describe("task options and defaults", () => {
    it("fills Airflow-like defaults when nothing is set", () => {
      const t = byId(serialize({}, oneTask)).get("a")!;
      expect(t).toMatchObject({
        taskId: "a",
        triggerRule: "all_success",
        retries: 0,
        retryDelayMs: 300_000,
        retryExponentialBackoff: false,
        maxRetryDelayMs: null,
        executionTimeoutMs: null,
        priorityWeight: 1,
        pool: "default_pool",
        poolSlots: 1,
        queue: "default",
        hasCompensate: false,
        description: null,
      });
    });

    it("applies defaultArgs to every task, and task options win over them", () => {
      const s = serialize(
        {
          defaultArgs: {
            retries: 3,
            retryDelay: "1s",
            retryExponentialBackoff: true,
            maxRetryDelay: "1h",
            executionTimeout: "10m",
            triggerRule: "all_done",
            pool: "etl",
            poolSlots: 2,
            queue: "fast",
          },
        },
        (t) => {
          t.task("inherits", noop);
          t.task("overrides", { retries: 0, retryDelay: 250, executionTimeout: "1h30m", triggerRule: "one_success", queue: "slow" }, noop);
        },
      );
      const t = byId(s);
      expect(t.get("inherits")).toMatchObject({
        retries: 3,
        retryDelayMs: 1000,
        retryExponentialBackoff: true,
        maxRetryDelayMs: 3_600_000,
        executionTimeoutMs: 600_000,
        triggerRule: "all_done",
        pool: "etl",
        poolSlots: 2,
        queue: "fast",
      });
      expect(t.get("overrides")).toMatchObject({
        retries: 0,
        retryDelayMs: 250,
        retryExponentialBackoff: true,
        maxRetryDelayMs: 3_600_000,
        executionTimeoutMs: 5_400_000,
        triggerRule: "one_success",
        pool: "etl",
        queue: "slow",
      });
    });

    it("records each task's kind (branch and short-circuit tasks may skip downstream tasks)", () => {
      const t = byId(
        serialize({}, (b) => {
          const pick = b.branch("pick", () => "x");
          const gate = b.shortCircuit("gate", () => true);
          pick.then(gate).then(b.task("x", noop));
        }),
      );
      expect([t.get("pick")!.kind, t.get("gate")!.kind, t.get("x")!.kind]).toEqual(["branch", "short_circuit", "task"]);
    });

    it("records compensate, description and where the task was defined", () => {
      const t = byId(
        serialize({}, (b) => {
          b.task("pay", { compensate: async () => undefined, description: "charge the card" }, noop);
        }),
      ).get("pay")!;
      expect(t.hasCompensate).toBe(true);
      expect(t.description).toBe("charge the card");
      expect(t.definedAt).toMatch(/serialize\.test\.ts:\d+$/);
    });
  });

  describe('priority weights (Airflow weight rule "downstream": own + all descendants)', () => {
    it("sums a chain from the leaf back to the root", () => {
      const t = byId(serialize({}, graph(["a", "b", "c"], ["a>b", "b>c"])));
      expect([t.get("a")!.priorityWeight, t.get("b")!.priorityWeight, t.get("c")!.priorityWeight]).toEqual([3, 2, 1]);
    });

    it("counts a shared descendant once (diamond)", () => {
      const t = byId(serialize({}, graph(["a", "b", "c", "d"], ["a>b", "a>c", "b>d", "c>d"])));
      expect(t.get("a")!.priorityWeight).toBe(4);
      expect(t.get("b")!.priorityWeight).toBe(2);
      expect(t.get("c")!.priorityWeight).toBe(2);
      expect(t.get("d")!.priorityWeight).toBe(1);
    });

    it("uses each task's own weight, falling back to defaultArgs then 1", () => {
      const s = serialize({ defaultArgs: { priorityWeight: 10 } }, (t) => {
        const a = t.task("a", { priorityWeight: 1 }, noop);
        const b = t.task("b", noop); // 10 from defaultArgs
        const c = t.task("c", { priorityWeight: 100 }, noop);
        const lone = t.task("lone", noop);
        a.then(b).then(c);
        void lone;
      });
      const t = byId(s);
      expect(t.get("c")!.priorityWeight).toBe(100);
      expect(t.get("b")!.priorityWeight).toBe(110);
      expect(t.get("a")!.priorityWeight).toBe(111);
      expect(t.get("lone")!.priorityWeight).toBe(10);
    });

    it("does not count siblings or ancestors", () => {
      const t = byId(serialize({}, graph(["root", "left", "right", "leaf"], ["root>left", "root>right", "left>leaf"], { right: 50 })));
      expect(t.get("left")!.priorityWeight).toBe(2);
      expect(t.get("right")!.priorityWeight).toBe(50);
      expect(t.get("root")!.priorityWeight).toBe(53);
    });

    it("allows negative weights", () => {
      const t = byId(serialize({}, graph(["a", "b"], ["a>b"], { a: 5, b: -2 })));
      expect(t.get("a")!.priorityWeight).toBe(3);
    });

    // A backfill try's priority is its weight - BACKFILL_PRIORITY_OFFSET and claims tell it by
    // being below BACKFILL_PRIORITY_FLOOR: an effective weight past ±499,999,999 would make an
    // ordinary try look like a backfill one, or a backfill try like an ordinary one.
    it("is capped at 499,999,999, so a backfill try's stays below BACKFILL_PRIORITY_FLOOR", () => {
      const ids = ["a", "b", "c", "d", "e", "f"];
      const t = byId(serialize({}, graph(ids, ["a>b", "b>c", "c>d", "d>e", "e>f"], Object.fromEntries(ids.map((id) => [id, 100_000_000])))));
      expect(t.get("a")!.priorityWeight).toBe(499_999_999);
      expect(t.get("b")!.priorityWeight).toBe(499_999_999);
      expect(t.get("c")!.priorityWeight).toBe(400_000_000);
    });

    it("is kept above -499,999,999, so an ordinary try's stays at or above BACKFILL_PRIORITY_FLOOR", () => {
      const ids = ["a", "b", "c", "d", "e", "f"];
      const t = byId(serialize({}, graph(ids, ["a>b", "b>c", "c>d", "d>e", "e>f"], Object.fromEntries(ids.map((id) => [id, -100_000_000])))));
      expect(t.get("a")!.priorityWeight).toBe(-499_999_999);
      expect(t.get("c")!.priorityWeight).toBe(-400_000_000);
    });

    // A DAG generated in a loop may chain thousands of tasks: the sort recursed once per task of
    // the chain (a stack overflow as the import error) and each task's descendants were a Set of
    // ids (a 10,000-task chain took 1.6 GB in the parser).
    it("serializes a chain of 10,000 tasks: every one in order, weights summed down the chain", () => {
      const s = serialize({}, (t) => {
        let previous = t.task("t0", noop);
        for (let i = 1; i < 10_000; i++) previous = previous.then(t.task(`t${i}`, noop));
      });
      expect(s.tasks.map((t) => t.taskId)).toEqual(Array.from({ length: 10_000 }, (_, i) => `t${i}`));
      expect([s.tasks[0]!.priorityWeight, s.tasks[5_000]!.priorityWeight, s.tasks[9_999]!.priorityWeight]).toEqual([10_000, 5_000, 1]);
    });

    it("stays linear-ish on a wide fan-in/fan-out (1,000 tasks)", () => {
      const ids = Array.from({ length: 1000 }, (_, i) => `t${i}`);
      const edges = ids.slice(1, 999).flatMap((id) => [`t0>${id}`, `${id}>t999`]);
      const started = performance.now();
      const t = byId(serialize({}, graph(ids, edges)));
      expect(t.get("t0")!.priorityWeight).toBe(1000);
      expect(t.get("t500")!.priorityWeight).toBe(2);
      expect(performance.now() - started).toBeLessThan(2000);
    });
  });

  describe("timezone", () => {
    it.each(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])("accepts %p", (tz) => {
      expect(serialize({ timezone: tz }, oneTask).timezone).toBe(tz);
    });

    it.each(["Mars/Olympus_Mons", "Europe/Pariss", "not a zone"])("rejects %p naming the field and the value", (tz) => {
      const err = invalid(() => serialize({ id: "tz", timezone: tz }, oneTask));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('dag "tz"');
      expect(err.message).toContain("timezone");
      expect(err.message).toContain(`"${tz}"`);
    });
  });

  describe("schedule", () => {
    it.each([
      ["@once"],
      ["@hourly"],
      ["@daily"],
      ["@weekly"],
      ["@monthly"],
      ["@yearly"],
      ["@annually"],
      ["@midnight"],
      ["0 2 * * *"],
      ["*/5 * * * *"],
      ["0 9-17 * * 1-5"],
      ["30 4 1,15 * *"],
      ["0 0 * * MON"],
      ["5m"],
      ["1h"],
      ["1h30m"],
      ["2d"],
    ])("accepts %p", (schedule) => {
      expect(serialize({ schedule, startDate: "2026-01-01" }, oneTask).schedule).toBe(schedule);
    });

    it("accepts null (manual runs only) and a missing schedule", () => {
      expect(serialize({ schedule: null }, oneTask).schedule).toBeNull();
      expect(serialize({}, oneTask).schedule).toBeNull();
    });

    it.each([
      ["@fortnightly"],
      ["@Daily"],
      ["every day"],
      ["61 * * * *"],
      ["* 25 * * *"],
      ["* * * *"],
      ["0 0 * * * *"], // seconds field: not a 5-field cron
      ["0s"],
      ["5 minutes"],
      [""],
    ])("rejects %p naming the field and the value", (schedule) => {
      const err = invalid(() => serialize({ id: "sched", schedule }, oneTask));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('dag "sched"');
      expect(err.message).toContain("schedule");
      expect(err.message).toContain(`"${schedule}"`);
    });

    it("rejects a schedule that is not a string", () => {
      const err = invalid(() => serialize({ schedule: 5 as unknown as string }, oneTask));
      expect(err.message).toMatch(/schedule must be a string or null/);
    });
  });
});

describe("weight rules", () => {
  // a → b → c, a → d; weights a=1, b=2, c=4, d=8
  const build = (rule?: "downstream" | "upstream" | "absolute") => (t: DagBuilder) => {
    const opts = (w: number) => ({ priorityWeight: w, ...(rule ? { weightRule: rule } : {}) });
    const a = t.task("a", opts(1), noop);
    const b = t.task("b", opts(2), noop);
    const c = t.task("c", opts(4), noop);
    const d = t.task("d", opts(8), noop);
    a.then([b, d]);
    b.then(c);
  };
  const weights = (rule?: "downstream" | "upstream" | "absolute") =>
    Object.fromEntries(serialize({}, build(rule)).tasks.map((t) => [t.taskId, t.priorityWeight]));

  it("downstream (default) adds every descendant", () => {
    expect(weights()).toEqual({ a: 15, b: 6, c: 4, d: 8 });
    expect(weights("downstream")).toEqual({ a: 15, b: 6, c: 4, d: 8 });
  });
  it("upstream adds every ancestor", () => expect(weights("upstream")).toEqual({ a: 1, b: 3, c: 7, d: 9 }));
  it("absolute is the task's own weight", () => expect(weights("absolute")).toEqual({ a: 1, b: 2, c: 4, d: 8 }));
  it("rejects an unknown weight rule naming it", () => {
    expect(() => dag({ id: "w" }, (t) => void t.task("a", { weightRule: "sideways" as "upstream" }, noop))).toThrow(/weightRule.*sideways/);
  });
});

describe("serializeDag: schedule dates and dagrunTimeout", () => {
  it("requires a startDate for every schedule but null, naming the schedule", () => {
    for (const schedule of ["@daily", "@once", "30m", "0 2 * * *"]) {
      const err = invalid(() => serialize({ id: "nostart", schedule }, oneTask));
      expect(err.code).toBe("BATON_INVALID_DAG");
      expect(err.message).toContain('dag "nostart"');
      expect(err.message).toContain(`startDate is required with schedule "${schedule}"`);
    }
    expect(serialize({ schedule: null }, oneTask).startDate).toBeNull();
  });

  it("reads startDate/endDate without offset in the DAG's time zone, with an offset or as a Date as given", () => {
    const s = serialize({ schedule: "@daily", timezone: "America/New_York", startDate: "2026-03-01", endDate: "2026-04-01T12:00:00Z" }, oneTask);
    expect(s.startDate).toBe("2026-03-01T05:00:00.000Z");
    expect(s.endDate).toBe("2026-04-01T12:00:00.000Z");
    expect(serialize({ startDate: new Date("2026-02-02T02:02:02Z") }, oneTask).startDate).toBe("2026-02-02T02:02:02.000Z");
  });

  it.each([
    [{ startDate: "2026-02-30" }, 'startDate "2026-02-30"'],
    [{ startDate: "next tuesday" }, 'startDate "next tuesday"'],
    [{ endDate: "2026-99-01" }, 'endDate "2026-99-01"'],
    [{ startDate: "2026-06-01", endDate: "2026-05-01" }, 'startDate "2026-06-01" is after endDate "2026-05-01"'],
  ])("rejects %p naming the field and the value", (options, message) => {
    const err = invalid(() => serialize({ id: "dates", ...options }, oneTask));
    expect(err.code).toBe("BATON_INVALID_DAG");
    expect(err.message).toContain('dag "dates"');
    expect(err.message).toContain(message);
  });

  it("serializes dagrunTimeout as dagrunTimeoutMs (null when unset)", () => {
    expect(serialize({}, oneTask).dagrunTimeoutMs).toBeNull();
    expect(serialize({ dagrunTimeout: "1h30m" }, oneTask).dagrunTimeoutMs).toBe(90 * 60_000);
    expect(serialize({ dagrunTimeout: 2500 }, oneTask).dagrunTimeoutMs).toBe(2500);
  });

  it.each([["soon"], [-5], [0], ["0s"]])("rejects dagrunTimeout %p naming the field", (value) => {
    const err = invalid(() => serialize({ id: "drt", dagrunTimeout: value as never }, oneTask));
    expect(err.message).toContain('dag "drt"');
    expect(err.message).toContain("dagrunTimeout");
  });
});

describe("options the database cannot hold", () => {
  // A DAG built by another copy of the SDK (an older bundle) reaches the serializer unchecked.
  const unchecked = (options: Record<string, unknown>, taskOptions: Record<string, unknown> = {}, taskId = "a") => {
    const built = dag({ id: "d" }, (t) => void t.task(taskId, noop));
    const task = built.tasks.get(taskId)!;
    return { ...built, options: { ...built.options, ...options }, tasks: new Map([[taskId, { ...task, options: { ...task.options, ...taskOptions } }]]) };
  };

  it.each([
    ["retries", { retries: 3_000_000_000 }],
    ["priorityWeight", { priorityWeight: -3_000_000_000 }],
    ["poolSlots", { poolSlots: 3_000_000_000 }],
    ["queue", { queue: "q".repeat(300) }],
    ["pool", { pool: "p".repeat(300) }],
    ["maxActiveTisPerDag", { maxActiveTisPerDag: 0 }],
  ])("rejects task option %s, naming the task and the option", (field, taskOptions) => {
    const err = invalid(() => serializeDag(unchecked({}, taskOptions) as never, FILE));
    expect(err.code).toBe("BATON_INVALID_DAG");
    expect(err.message).toContain('task "a"');
    expect(err.message).toContain(field);
  });

  it("rejects the same in defaultArgs", () => {
    const err = invalid(() => serializeDag(unchecked({ defaultArgs: { queue: "q".repeat(300) } }) as never, FILE));
    expect(err.message).toContain("defaultArgs");
    expect(err.message).toContain("queue");
  });

  it.each([
    ["owner", { owner: "o".repeat(300) }],
    ["maxActiveTasks", { maxActiveTasks: 3_000_000_000 }],
    ["description", { description: "x".repeat(70_000) }],
  ])("rejects DAG option %s", (field, options) => {
    const err = invalid(() => serializeDag(unchecked(options) as never, FILE));
    expect(err.message).toContain('dag "d"');
    expect(err.message).toContain(field);
  });

  it.each([
    ["pokeIntervalMs", "pokeInterval"],
    ["timeoutMs", "timeout"],
  ])("rejects a sensor's %s over 100 years from another SDK, which did not bound it", (field, option) => {
    const built = dag({ id: "d" }, (t) => void t.sensor("s", { poke: () => true }));
    const task = built.tasks.get("s")!;
    const unbounded = { ...built, tasks: new Map([["s", { ...task, sensor: { ...task.sensor!, [field]: 1e15 } }]]) };
    const err = invalid(() => serializeDag(unbounded as never, FILE));
    expect(err.code).toBe("BATON_INVALID_DAG");
    expect(err.message).toContain(`task "s": ${option} must be at most 100 years`);
  });

  it.each([
    ["a sensor's timeout", (t: DagBuilder) => void t.sensor("s", { poke: () => true, timeout: "10000000w" }), 'sensor "s": timeout'],
    ["a sensor's pokeInterval", (t: DagBuilder) => void t.sensor("s", { poke: () => true, pokeInterval: "10000000w", timeout: "10000001w" }), 'sensor "s": pokeInterval'],
    ["a signal's timeout", (t: DagBuilder) => void t.waitForSignal("w", { signal: "go", timeout: "10000000w" }), 'waitForSignal "w": timeout'],
  ])("rejects %s over 100 years (added to now into a DATETIME), as the SDK builds it", (_label, build, where) => {
    const err = invalid(() => serialize({}, build));
    expect(err.code).toBe("BATON_INVALID_DAG");
    expect(err.message).toContain(where);
    expect(err.message).toContain("100 years");
  });

  it("rejects a task with compensate whose compensation id is over 250 characters", () => {
    const err = invalid(() => serializeDag(unchecked({}, { compensate: noop }, "t".repeat(245)) as never, FILE));
    expect(err.code).toBe("BATON_INVALID_DAG");
    expect(err.message).toContain("compensate");
    expect(err.message).toContain("238");
  });
});

describe("maxActiveTisPerDag (Airflow's max_active_tis_per_dag)", () => {
  it("is serialized per task, from defaultArgs too, a task's null undoing it; absent when unset", () => {
    const s = serialize({ defaultArgs: { maxActiveTisPerDag: 3 } }, (t) => {
      t.task("a", noop);
      t.task("b", { maxActiveTisPerDag: 1 }, noop);
      t.task("c", { maxActiveTisPerDag: null }, noop);
    });
    const tasks = byId(s);
    expect(tasks.get("a")!.maxActiveTisPerDag).toBe(3);
    expect(tasks.get("b")!.maxActiveTisPerDag).toBe(1);
    expect("maxActiveTisPerDag" in tasks.get("c")!).toBe(false);
    expect("maxActiveTisPerDag" in byId(serialize({}, oneTask)).get("a")!).toBe(false);
  });

  it.each([0, -1, 1.5, "2", 3_000_000_000, Number.NaN, Infinity])("rejects %p, in a task and in defaultArgs, as the SDK builds it", (value) => {
    const inTask = invalid(() => serialize({}, (t) => void t.task("a", { maxActiveTisPerDag: value as never }, noop)));
    expect(inTask.code).toBe("BATON_INVALID_DAG");
    expect(inTask.message).toContain("maxActiveTisPerDag must be an integer from 1 to 2147483647");
    const inDefaults = invalid(() => serialize({ defaultArgs: { maxActiveTisPerDag: value as never } }, oneTask));
    expect(inDefaults.message).toContain("defaultArgs");
    expect(inDefaults.message).toContain("maxActiveTisPerDag");
  });
});

describe("task ids that are Object.prototype's names", () => {
  it("serializes tasks named __proto__, constructor and toString like any other, without touching Object.prototype", () => {
    const s = serialize({}, graph(["a", "__proto__", "constructor", "z", "toString"], ["a>__proto__", "__proto__>constructor", "constructor>z", "z>toString"]));
    expect(s.tasks.map((t) => t.taskId)).toEqual(["a", "__proto__", "constructor", "z", "toString"]);
    const tasks = byId(s);
    expect(tasks.get("__proto__")).toMatchObject({ upstream: ["a"], downstream: ["constructor"] });
    expect(tasks.get("constructor")).toMatchObject({ upstream: ["__proto__"], downstream: ["z"] });
    // graphlib keeps nodes in plain objects: "__proto__" as a key once wrote to Object.prototype,
    // breaking every file the same parser child loaded next.
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it("names __proto__ in a cycle through it", () => {
    const err = invalid(() => serialize({}, graph(["a", "__proto__"], ["a>__proto__", "__proto__>a"])));
    expect(err.code).toBe("BATON_DAG_CYCLE");
    expect(err.message).toMatch(/__proto__ → a → __proto__|a → __proto__ → a/);
    expect(Object.keys(Object.prototype)).toEqual([]);
  });
});
