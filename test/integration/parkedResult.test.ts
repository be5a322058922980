// A result the database refuses even when recorded alone as BATON_RESULT_UNRECORDABLE: what its
// outcome sets off is at fault, not its values (here a run's compensation whose task id, from a
// DAG version stored before ids were bounded, is longer than task_instance.task_id). It is
// parked, so the worker records every other result without failing a database call; it used to
// be batched with them again and again, failing the call each time: with the previous worker
// the other DAG's run below never finished.
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const DAGS = dagSource(`
export const bad = dag({ id: "park_bad" }, (t) => {
  const charge = t.task("charge", { compensate: async () => undefined }, async () => "charged");
  charge.then(t.task("boom", async () => { throw new FailError("declined"); }));
});
export const other = dag({ id: "park_other" }, (t) => {
  t.task("a", async () => 1);
});
`);

describe("a result refused even as unrecordable", () => {
  const h = new Harness({ clock: systemClock, worker: false });
  const lines: string[] = [];
  let worker: Worker;
  beforeAll(async () => {
    await h.start({ "park.ts": DAGS });
    await h.processor.scan();
    // As stored before compensable ids were bounded: the compensation's id no longer fits.
    const [res] = await h.db.pool.query<RowDataPacket[]>(
      `UPDATE dag_version SET structure = REPLACE(structure, '"charge__compensate"', '"${"c".repeat(260)}"') WHERE dag_id = 'park_bad'`,
    );
    expect((res as unknown as { affectedRows: number }).affectedRows).toBeGreaterThan(0);
    await h.run();
    const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
    worker = new Worker(h.db, h.clock, logger, { concurrency: 2, queues: ["default"], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, heartbeatMs: 500 });
    worker.start();
  });
  afterAll(async () => {
    await worker.stop(0).catch(() => undefined);
    await h.stop();
  });

  it("is parked: the other results are recorded without a failed database call, and it stays running", async () => {
    await h.trigger("park_bad", { runId: "b1" });
    await waitFor("the refused result to be parked", async () => lines.some((l) => l.includes("could not be stored")), 20_000).catch((err) => { console.log(lines.join("\n")); throw err; });
    for (const runId of ["o1", "o2", "o3"]) {
      await h.trigger("park_other", { runId });
      await waitFor(`run ${runId} to succeed`, async () => (await h.runState("park_other", runId)) === "success", 20_000);
    }
    // Parked, not batched with them: no database call failed for their sake.
    expect(lines.filter((l) => l.includes("worker database work failed"))).toEqual([]);
    expect(lines.some((l) => l.includes("could not be stored even as failed"))).toBe(true);
    const [[boom]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = 'b1' AND task_id = 'boom'");
    expect(boom!.state).toBe("running");
  });
});
