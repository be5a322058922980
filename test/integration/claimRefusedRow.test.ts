// A queued try the database refuses to claim must not stop its worker from claiming the others.
// The claim took it with them in one UPDATE, so one refused value failed every claim of every
// worker that read it, for ever (no other task ran anywhere). Now the claim takes the others:
// a try whose claim is refused as a new try (here its try_number is at the column's limit) is
// claimed without counting one and failed at once (BATON_TASK_UNCLAIMABLE), which settles its
// run; one refused even so (here by a trigger) stays queued and is left out of that worker's
// claims for a minute.
import { systemClock } from "../../core/clock.ts";
import { createLogger } from "../../core/logger.ts";
import { Worker } from "../../executor/worker.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { createDagRun } from "../../store/transitions/createDagRun.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const DAGS = dagSource(`
export const maxed = dag({ id: "unclaim_maxed" }, (t) => {
  t.task("x", { priorityWeight: 100 }, async () => 1).then(t.task("y", async () => 2));
});
export const refused = dag({ id: "unclaim_refused" }, (t) => { t.task("x", { priorityWeight: 100 }, async () => 1); });
export const other = dag({ id: "unclaim_other" }, (t) => {
  const a = t.task("a", async () => 1);
  t.task("b", { upstream: [a] }, async (ctx) => ctx.get(a) + 1);
});
`);

const h = new Harness({ clock: systemClock, manualTicks: true, worker: false });
const lines: string[] = [];
let worker: Worker | undefined;

beforeAll(async () => {
  await h.start({ "unclaim.ts": DAGS });
  await h.processor.scan();
});
afterAll(async () => {
  await worker?.stop(0).catch(() => undefined);
  await h.stop();
});

async function rows(dagId: string): Promise<RowDataPacket[]> {
  const [found] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT ti.task_id, ti.state, ti.try_number, ti.error, r.state AS run_state FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.dag_id = ? ORDER BY ti.task_id",
    [dagId],
  );
  return found;
}

it("claims the other tries: one refused as a new try fails its run, one refused even so stays queued", async () => {
  const now = systemClock.now();
  for (const dagId of ["unclaim_maxed", "unclaim_refused", "unclaim_other"]) {
    await createDagRun(h.db, now, { dagId, runId: "r1", runType: "manual", logicalDate: now, conf: {} });
  }
  await h.scheduler.tick();
  // try_number + 1 no longer fits its column.
  await h.db.pool.query("UPDATE task_instance SET try_number = 2147483647 WHERE dag_id = 'unclaim_maxed' AND task_id = 'x'");
  // Any claim of this row is refused, as for a value the database cannot hold.
  await h.db.pool.query(`CREATE TRIGGER test_refuse_claim BEFORE UPDATE ON task_instance FOR EACH ROW
    IF NEW.dag_id = 'unclaim_refused' AND NEW.state = 'running' THEN
      SIGNAL SQLSTATE '22001' SET MESSAGE_TEXT = 'Data too long for column ''hostname'' at row 1', MYSQL_ERRNO = 1406;
    END IF`);

  const logger = createLogger("info", {}, (line) => lines.push(line), { format: "json" });
  // Every queued try in the first claim.
  worker = new Worker(h.db, h.clock, logger, { concurrency: 4, queues: ["default"], logsFolder: h.logsFolder, cacheFolder: h.cacheFolder, heartbeatMs: 500 });
  worker.start();

  await waitFor("the other DAG's run to succeed", async () => (await rows("unclaim_other")).every((r) => r.run_state === "success"), 20_000).catch((err) => {
    console.log(lines.join("\n"));
    throw err;
  });
  await waitFor("the maxed run to fail", async () => (await rows("unclaim_maxed")).every((r) => r.run_state === "failed"), 20_000);
  const [x, y] = await rows("unclaim_maxed");
  expect(x).toMatchObject({ task_id: "x", state: "failed", try_number: 2147483647 });
  expect(JSON.parse(x!.error)).toMatchObject({ code: "BATON_TASK_UNCLAIMABLE", nonRetryable: true });
  expect(JSON.parse(x!.error).message).toContain("Out of range value for column 'try_number'");
  expect(y).toMatchObject({ task_id: "y", state: "upstream_failed" });

  // Claims go on, without reading it again for now.
  await createDagRun(h.db, systemClock.now(), { dagId: "unclaim_other", runId: "r2", runType: "manual", logicalDate: systemClock.now(), conf: {} });
  await h.scheduler.tick();
  worker.wake();
  await waitFor("the other DAG's next run to succeed", async () => (await rows("unclaim_other")).every((r) => r.run_state === "success"), 20_000);
  expect(await rows("unclaim_refused")).toEqual([expect.objectContaining({ state: "queued", try_number: 0, run_state: "running" })]);
  const refusals = lines.filter((l) => l.includes("could not be claimed"));
  expect(refusals).toHaveLength(1);
  expect(refusals[0]).toContain("unclaim_refused");
  expect(refusals[0]).toContain("BATON_TASK_UNCLAIMABLE");
  // No claim failed on their account.
  expect(lines.filter((l) => l.includes("worker database work failed"))).toEqual([]);
});
