// A try that ended on a worker stays the worker's until its result is recorded. While the
// database fails the worker's finish (a lock wait timeout, a long stall: the worker retries it
// with its backoff) and its heartbeats still get through, the try must keep its heartbeat: it
// used to be dropped from the heartbeat as soon as it ended, so a scheduler reaped it as a zombie
// after the heartbeat timeout, and a try that had succeeded was failed (or run again).
import { capturingLogger } from "../helpers/logger.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { Worker } from "../../executor/worker.ts";

const HEARTBEAT_TIMEOUT_MS = 2000;

const DAGS = dagSource(`
export const slowRecord = dag({ id: "unrecorded_hb" }, (t) => {
  t.task("only", { queue: "unrecorded_hb" }, async () => "done");
});
`);

/** The Db, where every transaction (the worker's claims and finishes) fails while `failing` is set; plain queries (heartbeats) pass. */
function failingTransactions(db: Db): { db: Db; set(on: boolean): void; failed: () => number } {
  let failing = false;
  let failed = 0;
  const refuse = () => {
    failed++;
    return Promise.reject(Object.assign(new Error("Lock wait timeout exceeded; try restarting transaction"), { code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }));
  };
  const wrapped: Db = {
    ...db,
    tx: (fn) => (failing ? refuse() : db.tx(fn)),
    batchTx: (fn) => (failing ? refuse() : db.batchTx(fn)),
  };
  return { db: wrapped, set: (on) => void (failing = on), failed: () => failed };
}

describe("worker: a try whose result is not recorded yet", () => {
  const h = new Harness({ worker: false, taskHeartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
  const messages: string[] = [];
  let worker: Worker | undefined;

  beforeAll(async () => {
    await h.start({ "unrecorded.ts": DAGS });
    await h.run();
  });
  afterAll(async () => {
    await worker?.stop(2000).catch(() => undefined);
    await h.stop();
  });

  it("keeps its heartbeat while the database fails its finish, so it is not reaped as a zombie", async () => {
    const faults = failingTransactions(h.db);
    worker = new Worker(faults.db, h.clock, capturingLogger(messages), {
      concurrency: 1,
      queues: ["unrecorded_hb"],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      heartbeatMs: 200,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      pollMaxMs: 100,
    });
    // Finishes fail from the moment the try is claimed: its result waits in the worker.
    const tiState = async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, heartbeat_at FROM task_instance WHERE dag_id = 'unrecorded_hb' AND task_id = 'only'");
      return row;
    };
    const runId = await h.trigger("unrecorded_hb");
    worker.start();
    await waitFor("the try to be claimed", async () => (await tiState())?.state === "running", 20_000);
    faults.set(true);
    const failedAt = faults.failed();
    // Three heartbeat timeouts of failed finishes (the measured interval, not a wait for a
    // condition): a scheduler reaps tries whose heartbeat is older than one timeout.
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_TIMEOUT_MS));
    expect(faults.failed()).toBeGreaterThan(failedAt);
    const during = await tiState();
    expect(during!.state).toBe("running");
    expect(Date.now() - new Date(during!.heartbeat_at).getTime()).toBeLessThan(HEARTBEAT_TIMEOUT_MS);
    faults.set(false);
    expect(await h.runEnded("unrecorded_hb", runId)).toBe("success");
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE dag_id = 'unrecorded_hb' AND task_id = 'only'");
    expect(ti).toMatchObject({ state: "success", try_number: 1, error: null });
  }, 40_000);
});
