import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { cleanBefore } from "../../store/maintenance.ts";

const DAG = dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "old" }, (t) => {
  t.task("a", async (ctx) => { while (ctx.conf.hold && !existsSync(String(ctx.conf.hold))) await new Promise((r) => setTimeout(r, 20)); return 1; });
});
`);

describe("baton db clean", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "old.ts": DAG });
    await h.run();
  });
  afterAll(() => h.stop());

  const count = async (table: string) => Number(((await h.db.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`))[0] as RowDataPacket[])[0]!.n);

  it("deletes finished runs before the date with what hangs off them, keeps running ones, and a dry run changes nothing", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.app.inject({ method: "POST", url: "/api/v1/dags/old/dagRuns", payload: {} })).json().dag_run_id);
    await waitFor("three runs to finish", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'old' AND state = 'success'");
      return Number(rows[0]!.n) === 3;
    });
    const hold = `/tmp/baton-hold-${process.pid}-${Date.now()}`;
    const running = (await h.app.inject({ method: "POST", url: "/api/v1/dags/old/dagRuns", payload: { conf: { hold } } })).json().dag_run_id;
    await waitFor("the held run to start", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ?", [running]);
      return rows[0]?.state === "running";
    });

    const dry = await cleanBefore(h.db, new Date(Date.now() + 60_000), { dryRun: true, batchSize: 2 });
    expect(dry).toMatchObject({ runs: 3, taskInstances: 3 });
    expect(await count("dag_run")).toBe(4);

    const real = await cleanBefore(h.db, new Date(Date.now() + 60_000), { dryRun: false, batchSize: 2 });
    expect(real.runs).toBe(3);
    const [left] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id FROM dag_run");
    expect(left.map((r) => r.run_id)).toEqual([running]);
    expect(await count("task_instance")).toBe(1);
    expect(await count("xcom")).toBe(0);
    const [events] = await h.db.pool.query<RowDataPacket[]>("SELECT DISTINCT run_id FROM event_log");
    expect(events.map((r) => r.run_id)).toEqual([running]);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(hold, "");
  });
});
