// PATCH …/dagRuns/{id} with the state a run already has changes nothing (Airflow's set_state):
// marking a succeeded run success again kept moving its end_date, with no event-log entry
// saying so. On a fake clock, so each PATCH happens at a known, later time. The answer is the run as
// the PATCH's own transaction left it, not read again once the scheduler and workers were woken.
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { markRunSuccess } from "../../store/transitions/markRunSuccess.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-06-01T00:00:00Z");

const DAG = dagSource(`
export default dag({ id: "mark_twice" }, (t) => {
  t.task("a", async () => 1).then(t.task("b", async () => 2));
});
`);

describe("PATCH a DAG run to the state it has", () => {
  const h = new Harness({ clock, manualTicks: true, worker: false });
  beforeAll(async () => {
    await h.start({ "mark_twice.ts": DAG });
    await h.processor.scan();
  });
  afterAll(() => h.stop());

  const url = (runId: string) => `/api/v1/dags/mark_twice/dagRuns/${runId}`;
  const patch = (runId: string, state: string) => h.app.inject({ method: "PATCH", url: url(runId), payload: { state } });
  const runRow = async (runId: string) => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = 'mark_twice' AND run_id = ?", [runId]);
    return row!;
  };
  const runEvents = async (runId: string) => {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/eventLogs?dag_id=mark_twice&run_id=${runId}&limit=1000` });
    return res.json().event_logs as unknown[];
  };

  it("success on a succeeded run: 200, its times and its tasks' times unchanged, no event", async () => {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/mark_twice/dagRuns", payload: { dag_run_id: "twice" } })).statusCode).toBe(200);
    await h.scheduler.tick(); // starts the run: its task instances exist, a is queued
    clock.advance(60_000);
    const first = await patch("twice", "success");
    expect({ status: first.statusCode, previous: first.json().previous_state, state: first.json().state }).toEqual({ status: 200, previous: "running", state: "success" });
    const before = { run: first.json(), row: await runRow("twice"), events: await runEvents("twice") };
    const tis = (await h.app.inject({ method: "GET", url: `${url("twice")}/taskInstances` })).json().task_instances;

    clock.advance(3_600_000);
    const again = await patch("twice", "success");
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ ...before.run, previous_state: "success" });
    expect(await runRow("twice")).toEqual(before.row);
    expect(await runEvents("twice")).toEqual(before.events);
    expect((await h.app.inject({ method: "GET", url: `${url("twice")}/taskInstances` })).json().task_instances).toEqual(tis);
  });

  it("queued on a run not started yet: 200, nothing changes", async () => {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/mark_twice/dagRuns", payload: { dag_run_id: "waiting" } })).statusCode).toBe(200);
    const before = { row: await runRow("waiting"), events: await runEvents("waiting") };
    clock.advance(60_000);
    const res = await patch("waiting", "queued");
    expect({ status: res.statusCode, previous: res.json().previous_state, state: res.json().state }).toEqual({ status: 200, previous: "queued", state: "queued" });
    expect(await runRow("waiting")).toEqual(before.row);
    expect(await runEvents("waiting")).toEqual(before.events);
  });
  it("queued answers the run as the re-queue's transaction left it, though it finished before the answer", async () => {
    expect((await h.app.inject({ method: "POST", url: "/api/v1/dags/mark_twice/dagRuns", payload: { dag_run_id: "fast" } })).statusCode).toBe(200);
    await h.scheduler.tick(); // starts the run: a is queued
    expect((await runRow("fast")).state).toBe("running");
    // The PATCH wakes the scheduler once it committed; here that wake makes the next statement on
    // the pool wait until the run finished (as a fast run would, its workers woken too).
    const pool = h.db.pool;
    const query = pool.query;
    const finish = () => markRunSuccess(h.db, clock.now(), "mark_twice", "fast");
    let finished = false;
    h.scheduler.wake = () => {
      pool.query = (async (...args: Parameters<typeof query>) => {
        pool.query = query;
        await finish();
        finished = true;
        return query.apply(pool, args);
      }) as typeof query;
    };
    try {
      clock.advance(60_000);
      const res = await patch("fast", "queued");
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ dag_run_id: "fast", previous_state: "running", state: "running", end_date: null });
    } finally {
      h.scheduler.wake = () => undefined;
      if (pool.query !== query) pool.query = query;
    }
    if (!finished) await finish();
    expect((await runRow("fast")).state).toBe("success");
  });
});
