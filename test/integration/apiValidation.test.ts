// How the REST API reads what clients send, where Airflow's API is lenient or strict: paging
// numbers of any size (a 400 or a lowered limit, never a 500), and the answers to values a
// schema refuses. No worker: the runs' task instances stay queued, so every row is known.
import { Harness, dagSource } from "../helpers/harness.ts";
import { expectProblem } from "../helpers/expect.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const MAIN = dagSource(`
export default dag({ id: "val_main" }, (t) => {
  t.task("step", async () => 1);
});
`);

describe("API input validation", () => {
  const h = new Harness({ worker: false });
  const post = (url: string, payload: object) => h.app.inject({ method: "POST", url, payload });

  beforeAll(async () => {
    await h.start({ "main.ts": MAIN });
    await h.run();
    for (const [runId, date] of [
      ["jan1", "2026-01-01T00:00:00Z"],
      ["jan2", "2026-01-02T00:00:00Z"],
    ]) {
      const res = await post("/api/v1/dags/val_main/dagRuns", { dag_run_id: runId, logical_date: date });
      expect(res.statusCode).toBe(200);
    }
    await waitFor(
      "both runs' task instances",
      async () => {
        const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = 'val_main'");
        return Number(row!.n) === 2;
      },
      15_000,
    );
  }, 60_000);
  afterAll(() => h.stop());

  describe("numbers", () => {
    const BATCH_LISTS = ["/api/v1/dags/~/dagRuns/list", "/api/v1/dags/~/dagRuns/~/taskInstances/list"];

    it.each(BATCH_LISTS)("%s refuses a page_offset past 1,000,000,000 with 400, whatever its size", async (url) => {
      for (const pageOffset of [1_000_000_001, 1e20, 1e300, Number.MAX_SAFE_INTEGER + 2]) {
        expectProblem(await post(url, { page_offset: pageOffset }), 400, "BATON_VALIDATION_FAILED", "body.page_offset");
      }
      // Sent as the text a client wrote, not a number JavaScript rounded.
      const res = await h.app.inject({ method: "POST", url, headers: { "content-type": "application/json" }, payload: '{"page_offset":100000000000000000000}' });
      expectProblem(res, 400, "BATON_VALIDATION_FAILED", "body.page_offset");
      expect((await post(url, { page_offset: 1_000_000_000 })).statusCode).toBe(200);
    });

    it("refuses a task instance id past 2^53 in a re-drive: it would name another id (1 more is the same double)", async () => {
      for (const ids of ["[1e300]", "[100000000000000000000]", "[9007199254740993]"]) {
        const res = await h.app.inject({ method: "POST", url: "/api/v1/deadLetters/redrive", headers: { "content-type": "application/json" }, payload: `{"task_instance_ids":${ids},"dry_run":true}` });
        expectProblem(res, 400, "BATON_VALIDATION_FAILED", "body.task_instance_ids.0");
      }
      expect((await post("/api/v1/deadLetters/redrive", { task_instance_ids: [Number.MAX_SAFE_INTEGER], dry_run: true })).json()).toMatchObject({ redriven: 0 });
    });
  });
});
