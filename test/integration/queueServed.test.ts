// A queued task on a queue no live worker serves waits without a word (as a Celery queue nobody
// consumes, or a Temporal task queue without pollers): …/dependencies says why, from the
// workers' heartbeats (a QA sweep of distributed execution found it answered []).
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const h = new Harness({ workers: 1 });

beforeAll(async () => {
  await h.start({
    "elsewhere.ts": dagSource(`export default dag({ id: "elsewhere" }, (t) => { t.task("gpu_job", { queue: "gpu" }, async () => 1); });`),
  });
  await h.run();
});
afterAll(() => h.stop());

it("a task queued on a queue no live worker serves names the queue and the queues served", async () => {
  const runId = await h.trigger("elsewhere");
  await waitFor("gpu_job queued", async () => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'elsewhere' AND task_id = 'gpu_job'");
    return rows[0]?.state === "queued";
  });
  await waitFor("the worker's heartbeat", async () => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT 1 FROM baton_process WHERE kind = 'worker'");
    return rows.length > 0;
  });
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/elsewhere/dagRuns/${encodeURIComponent(runId)}/taskInstances/gpu_job/dependencies` });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({
    dependencies: [{ name: "queue", reason: 'No live worker serves queue "gpu" (live workers serve "default"): start one with `baton worker --queues gpu`' }],
  });
});
