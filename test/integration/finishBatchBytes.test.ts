// A worker records the results of the tries that finished meanwhile in one round trip (a finish
// batch). Their outputs travel in it, and the server refuses a packet past max_allowed_packet
// (16 MiB on MariaDB by default): twelve tries returning 1 MiB each (2 MiB once escaped), ending
// together, made a batch refused at every retry, so the worker recorded nothing more and the
// tries that had succeeded were reaped as zombies and failed. The batch is bounded by its size.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import type { RowDataPacket } from "../../store/db.ts";

const TASKS = 12;
// 500 Ki quotes: 1,024,002 bytes of JSON (within the 1 MiB cap), each quote escaped to 4 bytes in the statement.
const DAGS = dagSource(`
import { appendFileSync, readFileSync } from "node:fs";
const arrived = (file) => readFileSync(file, "utf8").split("\\n").filter(Boolean).length;
export const bigOutputs = dag({ id: "big_outputs" }, (t) => {
  for (let i = 0; i < ${TASKS}; i++) {
    t.task("t" + i, async (ctx) => {
      // A barrier: every try ends at the same moment, so their results reach the worker together.
      const file = String(ctx.conf.barrier);
      appendFileSync(file, "x\\n");
      while (arrived(file) < ${TASKS}) await new Promise((r) => setTimeout(r, 5));
      return '"'.repeat(500 * 1024);
    });
  }
});
`);

describe("finish batches of large outputs", () => {
  const h = new Harness({ workers: TASKS });
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-big-outputs-"));
    await h.start({ "big_outputs.ts": DAGS });
    await h.run();
  }, 60_000);
  afterAll(async () => {
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("records every try's 1 MiB output when twelve finish together, over max_allowed_packet in all", async () => {
    const runId = await h.trigger("big_outputs", { conf: { barrier: path.join(scratch, "barrier") } });
    // On failure the tries end as zombies, after the 30 s heartbeat timeout.
    expect(await h.runEnded("big_outputs", runId, 60_000)).toBe("success");
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT ti.task_id, ti.state, ti.try_number, LENGTH(x.value) AS bytes FROM task_instance ti
         LEFT JOIN xcom x ON x.dag_run_id = ti.dag_run_id AND x.task_id = ti.task_id AND x.xcom_key = 'return_value'
        WHERE ti.dag_id = 'big_outputs' AND ti.run_id = ? ORDER BY ti.task_id`,
      [runId],
    );
    expect(rows).toHaveLength(TASKS);
    for (const r of rows) expect({ task: r.task_id, state: r.state, try: r.try_number, bytes: Number(r.bytes) }).toEqual({ task: r.task_id, state: "success", try: 1, bytes: 2 * 500 * 1024 + 2 });
  }, 90_000);
});
