// What a task's code does outside the await chain of its function: an exception thrown in a
// timer or a promise rejection nobody handles, during its try or after it returned, and output it
// keeps printing after its try ended. A warm task process runs other tries afterwards: they must
// not pay for it. Real MariaDB, real worker child processes.
import { Harness, dagSource } from "../helpers/harness.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
export const thrown = dag({ id: "lo_thrown" }, (t) => {
  t.task("t", async () => {
    setTimeout(() => { throw new Error("boom in a timer"); }, 10);
    await new Promise(() => {});
  });
});

export const rejected = dag({ id: "lo_rejected" }, (t) => {
  t.task("t", async () => {
    Promise.reject(new TypeError("rejected and forgotten"));
    await new Promise(() => {});
  });
});

export const inCallback = dag({ id: "lo_in_callback" }, (t) => {
  t.task("t", {
    onSuccess: async () => {
      setTimeout(() => { throw new Error("boom in onSuccess"); }, 10);
      await new Promise(() => {});
    },
  }, async () => "fine");
});
`);

describe("a task's code outside its function's await chain", () => {
  // One slot: consecutive tries run in the same warm process.
  const h = new Harness({ workers: 1, runIds: "numbered" });

  beforeAll(async () => {
    await h.start({ "leftovers.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  async function taskInstance(dagId: string, runId: string) {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    const row = rows[0]!;
    return { state: row.state as string, tryNumber: Number(row.try_number), error: row.error ? JSON.parse(String(row.error)) : null };
  }

  it.each([
    ["lo_thrown", "Error", "boom in a timer"],
    ["lo_rejected", "TypeError", "rejected and forgotten"],
  ])("fails a try of %s with the error its code left uncaught, in its error and its log", async (dagId, name, message) => {
    const runId = await h.trigger(dagId);
    expect(await h.runEnded(dagId, runId)).toBe("failed");
    const ti = await taskInstance(dagId, runId);
    // Was: BATON_WORKER_CHILD_EXITED, "child process exited (code 1)", the error only on the worker's stderr.
    expect(ti.error).toMatchObject({ name, message });
    expect(ti.error.stack).toContain(message);
    const log = (await h.taskLog(dagId, runId, "t", 1)) ?? "";
    expect(log).toContain(`${name}: ${message}`);
    expect(log).toMatch(/uncaught|unhandled/);
  });

  it("fails only the callback when the error goes uncaught in a callback: the try keeps its outcome", async () => {
    const runId = await h.trigger("lo_in_callback");
    // Was: failed, BATON_WORKER_CHILD_EXITED: the process died before it reported the success.
    expect(await h.runEnded("lo_in_callback", runId)).toBe("success");
    expect(await taskInstance("lo_in_callback", runId)).toMatchObject({ state: "success", tryNumber: 1, error: null });
    expect(await h.taskLog("lo_in_callback", runId, "t", 1)).toContain("onSuccess callback failed (an uncaught exception in its process)");
  });
});
