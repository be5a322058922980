import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const ETL = dagSource(`
export default dag({ id: "etl" }, (t) => {
  const extract = t.task("extract", async (ctx) => [1, 2, Number(ctx.conf.extra ?? 3)]);
  const transform = t.task("transform", { upstream: [extract] }, async (ctx) => ctx.get(extract).reduce((a, b) => a + b, 0));
  const load = t.task("load", async (ctx) => ({ total: ctx.get(transform) }));
  transform.then(load);
});
`);

describe("walking skeleton: trigger over REST, run to success in MySQL", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "etl.ts": ETL });
    await h.run();
  });
  afterAll(() => h.stop());

  it("runs every task to success and stores typed outputs", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/etl/dagRuns", payload: { conf: { extra: 4 } } });
    expect(res.statusCode).toBe(200);
    const runId = res.json().dag_run_id as string;

    const run = await waitFor("run to finish", async () => {
      const r = await h.app.inject({ method: "GET", url: `/api/v1/dags/etl/dagRuns/${encodeURIComponent(runId)}` });
      return ["success", "failed"].includes(r.json().state) ? r.json() : null;
    });
    expect(run.state).toBe("success");

    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, try_number FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    expect(rows.map((r) => [r.task_id, r.state, r.try_number])).toEqual([
      ["extract", "success", 1],
      ["load", "success", 1],
      ["transform", "success", 1],
    ]);
    const xcom = await h.app.inject({ method: "GET", url: `/api/v1/dags/etl/dagRuns/${encodeURIComponent(runId)}/taskInstances/load/xcomEntries/return_value` });
    expect(xcom.json().value).toEqual({ total: 7 });
  });
});
