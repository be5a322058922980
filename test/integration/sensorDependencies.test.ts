// GET …/dependencies (and `baton tasks deps`) of a reschedule-mode sensor between pokes says when it
// pokes again, as Airflow's ReadyToRescheduleDep does; it answered that nothing held the task back.
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ workers: 1 });

beforeAll(async () => {
  await h.start({
    "sensor_deps.ts": dagSource(`
export default dag({ id: "sensor_deps", schedule: null }, (t) => {
  t.sensor("later", { mode: "reschedule", pokeInterval: "1h", timeout: "1d", poke: async () => false });
});
`),
  });
  await h.run();
});
afterAll(() => h.stop());

it("a sensor between pokes waits for its next poke, and the dependencies say until when", async () => {
  const runId = await h.trigger("sensor_deps");
  const row = async () =>
    (await h.db.pool.query<RowDataPacket[]>("SELECT state, next_retry_at FROM task_instance WHERE dag_id = 'sensor_deps' AND run_id = ? AND task_id = 'later'", [runId]))[0][0];
  await waitFor("the sensor to wait for its next poke", async () => (await row())?.state === "up_for_reschedule");
  const nextAt = new Date((await row())!.next_retry_at).toISOString();
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/sensor_deps/dagRuns/${encodeURIComponent(runId)}/taskInstances/later/dependencies` });
  expect(res.statusCode).toBe(200);
  expect(res.json().dependencies).toEqual([{ name: "reschedule", reason: expect.stringContaining(`pokes again at ${nextAt}`) }]);
});
