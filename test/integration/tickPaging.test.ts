// One scheduler tick starts every queued run it may, page after page (startRuns takes 50 runs a
// transaction), and stops asking once a page comes back short.
import type { RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ manualTicks: true, worker: false });

beforeAll(async () => {
  await h.start({ "paged.ts": dagSource(`export default dag({ id: "paged", maxActiveRuns: 500 }, (t) => { t.task("only", async () => 1); });`) });
  await h.run();
});
afterAll(() => h.stop());

async function runStates(): Promise<Record<string, number>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, COUNT(*) AS n FROM dag_run WHERE dag_id = 'paged' GROUP BY state");
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

it.each([100, 23])("starts %i more queued runs in one tick", async (count) => {
  const before = (await runStates()).running ?? 0;
  for (let i = 0; i < count; i++) {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/paged/dagRuns", payload: {} })).statusCode).toBe(200);
  }
  expect((await runStates()).queued).toBe(count);
  const report = await h.scheduler.tick();
  expect(report.runsStarted).toBe(count);
  expect(await runStates()).toEqual({ running: before + count });
});
