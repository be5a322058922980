// Upstream outputs (store/xcom.ts): what a claimed task is handed as ctx.get() values. A task
// with a wide fan-in reads its run's return values with one range scan instead of a huge IN
// list; either way it gets exactly the outputs of the tasks it asked for, from its own run.
import type { Db } from "../../store/db.ts";
import { WIDE_FAN_IN, upstreamOutputs, upstreamOutputsStatement } from "../../store/xcom.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

let db: Db;

beforeAll(async () => {
  db = await createTestDb();
  const rows: unknown[][] = [];
  for (const run of [1, 2]) {
    for (let i = 0; i < WIDE_FAN_IN * 2; i++) rows.push([run, `up${i}`, -1, "return_value", JSON.stringify({ run, i }), new Date()]);
    rows.push([run, "sibling", -1, "return_value", JSON.stringify("not wanted"), new Date()]);
    rows.push([run, "up0", -1, "other_key", JSON.stringify("not a return value"), new Date()]);
    rows.push([run, "up1", 3, "return_value", JSON.stringify("a mapped instance"), new Date()]);
  }
  // Task ids are the user's strings: "__proto__" and "constructor" are ids like any other.
  for (const id of ["__proto__", "constructor"]) rows.push([4, id, -1, "return_value", JSON.stringify({ from: id }), new Date()]);
  await db.pool.query("INSERT INTO xcom (dag_run_id, task_id, map_index, xcom_key, value, created_at) VALUES ?", [rows]);
});

afterAll(async () => {
  await dropTestDb(db);
});

describe("upstreamOutputs", () => {
  it("hands a narrow fan-in exactly its upstream return values", async () => {
    const outputs = await upstreamOutputs(db.pool, [{ dagRunId: 1, taskIds: ["up0", "up1", "missing"], runTasks: 4 }]);
    expect(outputs).toEqual(new Map([[1, { up0: { run: 1, i: 0 }, up1: { run: 1, i: 1 } }]]));
  });

  it("hands a wide fan-in exactly its upstream return values, not its run's others", async () => {
    const wide = Array.from({ length: WIDE_FAN_IN + 1 }, (_, i) => `up${i}`);
    const outputs = await upstreamOutputs(db.pool, [{ dagRunId: 2, taskIds: wide, runTasks: WIDE_FAN_IN * 2 + 2 }]);
    expect(Object.keys(outputs.get(2)!).sort()).toEqual([...wide].sort());
    expect(outputs.get(2)!.up0).toEqual({ run: 2, i: 0 });
    expect(outputs.get(2)![`up${WIDE_FAN_IN}`]).toEqual({ run: 2, i: WIDE_FAN_IN });
    expect(outputs.has(1)).toBe(false);
  });

  it("reads a wide fan-in that is a small share of its run by IN list, not the whole run", () => {
    const wide = Array.from({ length: WIDE_FAN_IN + 1 }, (_, i) => `up${i}`);
    expect(upstreamOutputsStatement([{ dagRunId: 1, taskIds: wide, runTasks: 10_000 }])!.sql).toContain("task_id IN");
    expect(upstreamOutputsStatement([{ dagRunId: 1, taskIds: wide, runTasks: wide.length + 1 }])!.sql).not.toContain("task_id IN");
    expect(upstreamOutputsStatement([{ dagRunId: 1, taskIds: [], runTasks: 1 }])).toBeNull();
  });

  it("answers several runs, wide and narrow, in one call, and an empty record for a task without upstream", async () => {
    const wide = Array.from({ length: WIDE_FAN_IN * 2 }, (_, i) => `up${i}`);
    const outputs = await upstreamOutputs(db.pool, [
      { dagRunId: 1, taskIds: wide, runTasks: WIDE_FAN_IN * 2 + 2 },
      { dagRunId: 2, taskIds: ["up5"], runTasks: 2 },
      { dagRunId: 3, taskIds: [], runTasks: 1 },
    ]);
    expect(Object.keys(outputs.get(1)!)).toHaveLength(WIDE_FAN_IN * 2);
    expect(outputs.get(1)!.sibling).toBeUndefined();
    expect(outputs.get(2)).toEqual({ up5: { run: 2, i: 5 } });
    expect(outputs.get(3)).toEqual({});
  });

  it("hands the output of an upstream task named __proto__ or constructor as an own key, narrow or wide", async () => {
    for (const runTasks of [100, 2]) {
      const wide = runTasks === 2;
      const taskIds = wide ? ["__proto__", "constructor", ...Array.from({ length: WIDE_FAN_IN }, (_, i) => `none${i}`)] : ["__proto__", "constructor"];
      const outputs = (await upstreamOutputs(db.pool, [{ dagRunId: 4, taskIds, runTasks: wide ? taskIds.length : runTasks }])).get(4)!;
      expect(Object.keys(outputs).sort()).toEqual(["__proto__", "constructor"]);
      expect(Object.getOwnPropertyDescriptor(outputs, "__proto__")?.value).toEqual({ from: "__proto__" });
      expect(outputs.constructor).toEqual({ from: "constructor" });
      // What the child gets over IPC (JSON) keeps it too.
      expect(JSON.parse(JSON.stringify(outputs)).__proto__).toEqual({ from: "__proto__" });
    }
  });
});
