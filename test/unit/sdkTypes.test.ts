// What DAG authors' code type-checks to. The assertions here are mostly compile-time: `tsc --noEmit`
// (npm test, npm run typecheck) checks this file, so a typed assignment that stops compiling, or a
// `// @ts-expect-error` line that stops being an error (an unused directive is an error), fails the
// type check. The runtime parts only make sure the DAGs below build as written.
import fc from "fast-check";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parseDuration } from "../../core/durations.ts";
import { dag, dateTimeSensor, externalTaskSensor, fileSensor, httpSensor, sqlSensor, timeDeltaSensor } from "../../sdk/index.ts";
import type { Dag, Duration, DurationString, SensorOptions, TaskDefaults } from "../../sdk/index.ts";

describe("outputs and step results are typed as JSON gives them back (Jsonified)", () => {
  it("a Date reads as its ISO string, undefined as null, functions are left out; plain data as written", () => {
    const built: Dag = dag({ id: "jsonified" }, (t) => {
      const when = t.task("when", async () => new Date());
      const shape = t.task("shape", async () => ({ at: new Date(), n: 1, tags: ["a"], maybe: undefined as number | undefined, f: () => 1 }));
      const nothing = t.task("nothing", async () => undefined);
      t.task("use", { upstream: [when, shape, nothing] }, async (ctx) => {
        const iso: string = ctx.get(when);
        // @ts-expect-error a Date output comes back as its ISO string
        const date: Date = ctx.get(when);
        const at: string = ctx.get(shape).at;
        const n: number = ctx.get(shape).n;
        const tags: string[] = ctx.get(shape).tags;
        const maybe: number | undefined = ctx.get(shape).maybe;
        // A Map or Set is written as {} (its entries are no properties), not as { size }.
        const collections = await ctx.step("collections", () => ({ m: new Map([["k", 1]]), s: new Set([1]) }));
        const emptyMap: Record<string, never> = collections.m;
        // @ts-expect-error a Map has no size once it went through JSON
        const mapSize: { size: number } = collections.m;
        // @ts-expect-error nor a Set
        const setSize: { size: number } = collections.s;
        // A property that may be undefined may be missing: JSON leaves it out.
        // @ts-expect-error maybe is optional in what JSON gives back, not required
        const required: { maybe: number } = ctx.get(shape);
        const optional: { maybe?: number; n: number } = ctx.get(shape);
        // @ts-expect-error a property that is never undefined stays required
        const missingN: { n?: undefined } = ctx.get(shape);
        // @ts-expect-error a function property is left out
        const f: unknown = ctx.get(shape).f;
        const none: null = ctx.get(nothing);
        const stepped: string = await ctx.step("stamp", () => new Date());
        // @ts-expect-error a step's Date result is its ISO string, the first time too
        const steppedDate: Date = await ctx.step("stamp2", () => new Date());
        const count: number = await ctx.step("count", async () => 3);
        // A tuple keeps its positions.
        const [first, second] = await ctx.step("pair", async (): Promise<[number, string]> => [1, "a"]);
        const one: number = first;
        const a: string = second;
        const constant = await ctx.step("constant", () => ["x", 1] as const);
        const x: "x" = constant[0];
        return [emptyMap, mapSize, setSize, iso, date, at, n, tags, maybe, required, optional, missingN, f, none, stepped, steppedDate, count, one, a, x].length;
      });
    });
    expect([...built.tasks.keys()]).toEqual(["when", "shape", "nothing", "use"]);
  });
});

describe("built-in sensors type their output", () => {
  it("so ctx.get of a built-in sensor is typed as what it outputs", () => {
    const built: Dag = dag({ id: "typed_sensors" }, (t) => {
      const files = t.sensor("files", fileSensor({ path: "/x/*.csv" }));
      const status = t.sensor("status", httpSensor({ url: "http://x/health" }));
      const rows = t.sensor(
        "rows",
        httpSensor({ url: "http://x/job", predicate: async () => ({ done: true, value: 42 }) }),
      );
      const cell = t.sensor("cell", sqlSensor({ conn: "WAREHOUSE_URL", sql: "SELECT 1" }));
      const other = t.sensor("other", externalTaskSensor({ externalDagId: "etl" }));
      const later = t.sensor("later", timeDeltaSensor({ delta: "2h" }));
      const at = t.sensor("at", dateTimeSensor({ targetTime: "2026-06-01T12:00:00Z" }));
      const custom = t.sensor("custom", { poke: async () => ({ done: true, value: { n: 1 } }) });
      const plain = t.sensor("plain", { poke: async () => true });
      t.task("use", { upstream: [files, status, rows, cell, other, later, at, custom, plain] }, (ctx) => {
        const paths: string[] = ctx.get(files); // fileSensor: the matched paths
        const code: number = ctx.get(status).status; // httpSensor: { status }
        const answer: number | { status: number } = ctx.get(rows); // or the predicate's value
        const first: string | number | boolean | object = ctx.get(cell); // sqlSensor: the first cell
        const runState: string[] = ctx.get(other).states; // externalTaskSensor: { dagId, runId, …, states }
        const externalRun: string = ctx.get(other).runId;
        const when: string = ctx.get(later); // time sensors: the target time, ISO
        const noon: string = ctx.get(at);
        const n: number = ctx.get(custom).n; // a poke's { done: true, value }
        const anything: unknown = ctx.get(plain);
        // @ts-expect-error the matched paths are strings, not a number
        const wrong: number = ctx.get(files);
        // @ts-expect-error { status } is an object, not a string
        const notString: string = ctx.get(status);
        // @ts-expect-error a time sensor outputs an ISO string, not a Date
        const notDate: Date = ctx.get(at);
        // @ts-expect-error a poke that only answers true has no typed value
        const notNumber: number = ctx.get(plain);
        return [paths, code, answer, first, runState, externalRun, when, noon, n, anything, wrong, notString, notDate, notNumber].length;
      });
    });
    expect(built.tasks.size).toBe(10);
  });

  it("keeps SensorOptions<T> assignable to plain SensorOptions (t.sensor<T> with an explicit type still compiles)", () => {
    const options: SensorOptions = fileSensor({ path: "/x" });
    const explicit = dag({ id: "explicit" }, (t) => {
      const s = t.sensor<string[]>("s", fileSensor({ path: "/x" }));
      t.task("u", { upstream: [s] }, (ctx) => ctx.get(s).join(","));
    });
    expect(typeof options.poke).toBe("function");
    expect(explicit.tasks.size).toBe(2);
  });
});

describe("Duration strings are typed", () => {
  // Every form parseDuration accepts: digits alone, parts of a number and a unit (ms s m h d w), a
  // fraction, whitespace between a number and its unit, spaces between parts, and around it all.
  const accepted = [
    "0", "250", "500ms", "5s", "10m", "1h", "5d", "2w", "1.5h", "0.25s", "1h30m", "1d2h3m4s5ms", "1h 30m", "1h  30m",
    "5 m", "5\tm", " 5m", "5m ", "\t10m\n", "36525d", " 90 ",
  ] as const satisfies readonly DurationString[];
  const defaults: TaskDefaults = { retryDelay: "5m", maxRetryDelay: "1h30m", executionTimeout: 600_000 };
  const asNumber: Duration = 1500;

  it("accepts every form parseDuration accepts (the list above type-checks)", () => {
    for (const text of accepted) expect(() => parseDuration(text)).not.toThrow();
    expect(parseDuration(defaults.retryDelay!) + parseDuration(asNumber)).toBe(301_500);
  });

  it("rejects prose and typos that parseDuration refuses", () => {
    const refused: Duration[] = [
      // @ts-expect-error a unit spelled out
      "5 minutes",
      // @ts-expect-error a unit spelled out
      "2 hours",
      // @ts-expect-error a unit spelled out
      "10 seconds",
      // @ts-expect-error a unit spelled out
      "1 day",
      // @ts-expect-error no number
      "soon",
      // @ts-expect-error no number
      "m",
      // @ts-expect-error empty
      "",
    ];
    // @ts-expect-error as a task option too
    const retryDelay: TaskDefaults = { retryDelay: "5 minutes" };
    for (const text of [...refused, retryDelay.retryDelay!]) expect(() => parseDuration(text)).toThrow(RangeError);
  });

  it("accepts what parseDuration accepts, checked by the compiler on generated strings", () => {
    // JavaScript's whitespace (what String.prototype.trim and \s skip).
    const whitespace = [..." \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"];
    const ws = (max: number) => fc.array(fc.constantFrom(...whitespace), { maxLength: max }).map((a) => a.join(""));
    const spaces = fc.integer({ min: 0, max: 2 }).map((n) => " ".repeat(n));
    const digits = fc.stringMatching(/^\d{1,5}$/);
    const number = fc.tuple(digits, fc.option(fc.stringMatching(/^\d{1,3}$/), { nil: undefined })).map(([i, f]) => (f === undefined ? i : `${i}.${f}`));
    const part = fc.tuple(number, ws(2), fc.constantFrom("ms", "s", "m", "h", "d", "w")).map((p) => p.join(""));
    const parts = fc.array(fc.tuple(part, spaces), { minLength: 1, maxLength: 4 }).map((ps) => ps.map(([p, sp], i) => (i === ps.length - 1 ? p : p + sp)).join(""));
    const text = fc.tuple(ws(2), fc.oneof(digits, parts), ws(2)).map((t) => t.join(""));
    const samples = fc.sample(text, { numRuns: 400, seed: 20260101 });
    // The generator makes only strings parseDuration accepts (up to its 100-year bound, which is not about syntax).
    for (const sample of samples) {
      try {
        parseDuration(sample);
      } catch (err) {
        expect((err as Error).message).toMatch(/at most 100 years/);
      }
    }

    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    const probe = path.join(root, "test/unit/__durationProbe.ts");
    const source =
      `import type { DurationString } from "../../core/durations.ts";\n` + samples.map((s, i) => `export const d${i}: DurationString = ${JSON.stringify(s)};\n`).join("");
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      types: [],
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    host.readFile = (file) => (path.resolve(file) === probe ? source : readFile(file));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (file) => path.resolve(file) === probe || fileExists(file);
    const program = ts.createProgram([probe], options, host);
    const problems = ts
      .getPreEmitDiagnostics(program, program.getSourceFile(probe))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0]);
    expect(problems).toEqual([]);
  }, 60_000);
});
