// A result the database cannot store (a date past year 9999 from a DAG version stored before
// durations were bounded) must not wedge the worker: it used to retry its whole finish batch
// forever, so no other result was recorded and nothing more was claimed.
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
export const bad = dag({ id: "unrec_bad" }, (t) => {
  // Deferred as soon as claimed, in the same claim: recorded in one batch, which the database refuses.
  t.waitForSignal("wait", { signal: "go", timeout: 432000001 });
  t.waitForSignal("wait2", { signal: "go", timeout: 432000001 });
  for (const id of ["fine", "fine2"]) t.task(id, async () => "ok");
});
export const longError = dag({ id: "unrec_long_error" }, (t) => {
  // 30,000 CJK characters: 90 KB of UTF-8 in the message, and again in the stack.
  t.task("boom", { retries: 1, retryDelay: "1h" }, async () => { throw new Error("界".repeat(30000)); });
});
export const other = dag({ id: "unrec_other" }, (t) => {
  t.task("a", async () => { await new Promise((r) => setTimeout(r, 20)); return 1; });
});
`);

describe("a result the database refuses", () => {
  const h = new Harness({ workers: 4 });
  beforeAll(async () => {
    await h.start({ "unrec.ts": DAGS });
    await h.processor.scan();
    // As stored by a version before durations were limited to 100 years: now + 1e15 ms is in year 33715.
    const [res] = await h.db.pool.query<RowDataPacket[]>(
      `UPDATE dag_version SET structure = REPLACE(structure, '432000001', '1000000000000000')
        WHERE dag_id = 'unrec_bad'`,
    );
    expect((res as unknown as { affectedRows: number }).affectedRows).toBeGreaterThan(0);
    await h.run();
  });
  afterAll(() => h.stop());

  it("fails only the try at fault, with the database's reason; the others are recorded and the worker goes on claiming", async () => {
    await h.trigger("unrec_bad", { runId: "b1" });
    await h.trigger("unrec_other", { runId: "o1" });
    await waitFor("the bad run to fail", async () => (await h.runState("unrec_bad", "b1")) === "failed", 20_000);
    const [tis] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, error, next_check_at, next_retry_at FROM task_instance WHERE run_id = 'b1' ORDER BY task_id");
    const byId = Object.fromEntries(tis.map((r) => [r.task_id, r]));
    for (const id of ["fine", "fine2"]) expect(byId[id].state).toBe("success");
    for (const id of ["wait", "wait2"]) {
      expect(byId[id].state).toBe("failed");
      expect(byId[id].next_check_at).toBeNull();
      const error = typeof byId[id].error === "string" ? JSON.parse(byId[id].error) : byId[id].error;
      expect(error).toMatchObject({ name: "ResultUnrecordableError", code: "BATON_RESULT_UNRECORDABLE", nonRetryable: true });
      expect(error.message).toMatch(/^the deferred outcome of this try could not be stored: Incorrect datetime value: '33715-.*next_check_at/);
    }
    await waitFor("the other DAG's run to succeed", async () => (await h.runState("unrec_other", "o1")) === "success", 20_000);
    // Claimed and recorded after it too.
    await h.trigger("unrec_other", { runId: "o2" });
    await waitFor("a later run to succeed", async () => (await h.runState("unrec_other", "o2")) === "success", 20_000);
  });

  it("stores a failure whose error is larger than its column, shortened, and keeps its retries", async () => {
    await h.trigger("unrec_long_error", { runId: "l1" });
    const row = await waitFor("the first try to end", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE run_id = 'l1' AND task_id = 'boom'");
      return rows[0] && rows[0].state !== "running" && rows[0].state !== "queued" && rows[0].state !== "none" ? rows[0] : null;
    }, 20_000);
    expect(row.state).toBe("up_for_retry");
    const text = String(row.error);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(60_000);
    const error = JSON.parse(text);
    expect(error.name).toBe("Error");
    expect(error.message.startsWith("界界界")).toBe(true);
    expect(error.message.endsWith("…")).toBe(true);
  });
});

