// What DAG authors' code type-checks to. The assertions here are mostly compile-time: `tsc --noEmit`
// (npm test, npm run typecheck) checks this file, so a typed assignment that stops compiling, or a
// `// @ts-expect-error` line that stops being an error (an unused directive is an error), fails the
// type check. The runtime parts only make sure the DAGs below build as written.
import { dag, dateTimeSensor, externalTaskSensor, fileSensor, httpSensor, sqlSensor, timeDeltaSensor } from "../../sdk/index.ts";
import type { Dag, SensorOptions } from "../../sdk/index.ts";

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
