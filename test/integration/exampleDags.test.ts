// The example DAGs shipped in dags/ that wait for people, driven through the API on a fake clock.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FakeClock } from "../../core/clock.ts";
import { Harness } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dags");
const DAY = 86_400_000;
const MINUTE = 60_000;

describe("example DAGs: document_signing and ride_lifecycle", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ workers: 2, clock });

  beforeAll(async () => {
    const files: Record<string, string> = {};
    for (const name of ["document_signing.ts", "ride_lifecycle.ts"]) files[name] = await readFile(path.join(DAGS_FOLDER, name), "utf8");
    await h.start(files);
    await h.run();
  });
  afterAll(() => h.stop());

  const signal = async (dagId: string, runId: string, name: string, payload: unknown, signalId?: string) => {
    const res = await h.app.inject({
      method: "POST",
      url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/signals/${name}`,
      payload: { payload, ...(signalId ? { signal_id: signalId } : {}) },
    });
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const states = async (dagId: string, runId: string) => {
    const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances` });
    return Object.fromEntries((res.json().task_instances as { task_id: string; state: string }[]).map((t) => [t.task_id, t.state]));
  };
  const runState = async (dagId: string, runId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}` })).json().state as string;
  const output = async (dagId: string, runId: string, taskId: string) =>
    (await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/xcomEntries/return_value` })).json().value;
  /** Waits until nothing of the run is queued or running: what is left waits (deferred) or is done. */
  const settled = (dagId: string, runId: string, what: string) =>
    waitFor(what, async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT COUNT(*) AS n FROM task_instance WHERE dag_id = ? AND run_id = ? AND state IN ('scheduled', 'queued', 'running', 'up_for_retry')",
        [dagId, runId],
      );
      return Number(rows[0]!.n) === 0;
    });
  /** Moves the fake clock and lets the scheduler time out the waits that are due. */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await h.scheduler.tick();
  };

  it("both parse, with no import error", async () => {
    const dags = (await h.app.inject({ method: "GET", url: "/api/v1/dags" })).json().dags.map((d: { dag_id: string }) => d.dag_id);
    expect(dags).toEqual(expect.arrayContaining(["document_signing", "ride_lifecycle"]));
    expect((await h.app.inject({ method: "GET", url: "/api/v1/importErrors" })).json().total_entries).toBe(0);
  });

  it("document_signing: signed within 5 days → filed, no reminder", async () => {
    const runId = await h.trigger("document_signing", { conf: { document: "msa.pdf", signer: "ana@example.com" } });
    await waitFor("the signature wait", async () => (await states("document_signing", runId)).wait_for_signature === "deferred");
    await advance(3 * DAY); // three days later
    expect(await signal("document_signing", runId, "signed", { signedBy: "ana@example.com" }, "evt-1")).toMatchObject({ delivered_to: "wait_for_signature" });
    await waitFor("the run to succeed", async () => (await runState("document_signing", runId)) === "success");
    expect(await states("document_signing", runId)).toEqual({
      send_for_signature: "success",
      wait_for_signature: "success",
      send_reminder: "skipped",
      wait_after_reminder: "skipped",
      file_document: "success",
      void_request: "skipped",
    });
    expect(await output("document_signing", runId, "file_document")).toEqual({ document: "msa.pdf", signedBy: "ana@example.com" });
  });

  it("document_signing: never signed → a reminder after 5 days, then it waits again and files a late signature", async () => {
    const runId = await h.trigger("document_signing", { conf: { document: "nda.pdf" } });
    await waitFor("the signature wait", async () => (await states("document_signing", runId)).wait_for_signature === "deferred");
    await advance(5 * DAY - MINUTE);
    expect((await states("document_signing", runId)).wait_for_signature).toBe("deferred");
    await advance(2 * MINUTE);
    await waitFor("the second wait", async () => (await states("document_signing", runId)).wait_after_reminder === "deferred");
    expect(await states("document_signing", runId)).toMatchObject({ wait_for_signature: "skipped", send_reminder: "success", file_document: null, void_request: null });
    await settled("document_signing", runId, "the reminder to be sent");
    await advance(DAY); // signed a day after the reminder
    await signal("document_signing", runId, "signed", { signedBy: "bob@example.com" });
    await waitFor("the run to succeed", async () => (await runState("document_signing", runId)) === "success");
    expect(await states("document_signing", runId)).toMatchObject({ wait_after_reminder: "success", file_document: "success", void_request: "skipped" });
    expect(await output("document_signing", runId, "file_document")).toEqual({ document: "nda.pdf", signedBy: "bob@example.com" });
  });

  it("document_signing: still unsigned 2 days after the reminder → voided", async () => {
    const runId = await h.trigger("document_signing");
    await waitFor("the signature wait", async () => (await states("document_signing", runId)).wait_for_signature === "deferred");
    await advance(5 * DAY + MINUTE);
    await waitFor("the second wait", async () => (await states("document_signing", runId)).wait_after_reminder === "deferred");
    await settled("document_signing", runId, "the reminder to be sent");
    await advance(2 * DAY + MINUTE);
    await waitFor("the run to succeed", async () => (await runState("document_signing", runId)) === "success");
    expect(await states("document_signing", runId)).toMatchObject({ send_reminder: "success", wait_after_reminder: "skipped", file_document: "skipped", void_request: "success" });
  });

  it("ride_lifecycle: accepted, picked up, completed → charged; signals sent early are kept in order", async () => {
    const runId = await h.trigger("ride_lifecycle", { conf: { rider: "r-9" } });
    // The app's events may outrun the run: all three are kept until their wait starts.
    await signal("ride_lifecycle", runId, "driver_accepted", { driverId: "d-7" }, "e1");
    await signal("ride_lifecycle", runId, "picked_up", {}, "e2");
    await signal("ride_lifecycle", runId, "completed", { fareCents: 1840 }, "e3");
    await waitFor("the charge", async () => (await states("ride_lifecycle", runId)).charge_rider === "success");
    expect(await output("ride_lifecycle", runId, "charge_rider")).toEqual({ holdId: `hold_${runId}`, fareCents: 1840 });
    expect((await states("ride_lifecycle", runId)).wait_cancelled).toBe("deferred"); // the cancellation window is still open
    await settled("ride_lifecycle", runId, "the ride path to finish");
    await advance(25 * MINUTE + 1000);
    await waitFor("the run to succeed", async () => (await runState("ride_lifecycle", runId)) === "success");
    expect(await states("ride_lifecycle", runId)).toMatchObject({ wait_cancelled: "skipped", cancel_ride: "skipped", release_hold: "skipped" });
  });

  it("ride_lifecycle: the rider cancels before a driver accepts → cancel_ride at once, hold released when the waits time out", async () => {
    const runId = await h.trigger("ride_lifecycle");
    await waitFor("the waits", async () => (await states("ride_lifecycle", runId)).wait_cancelled === "deferred");
    await signal("ride_lifecycle", runId, "cancelled", { by: "rider" });
    await waitFor("cancel_ride", async () => (await states("ride_lifecycle", runId)).cancel_ride === "success");
    expect(await runState("ride_lifecycle", runId)).toBe("running");
    await settled("ride_lifecycle", runId, "cancel_ride to finish");
    await advance(5 * MINUTE + 1000); // no driver accepted
    await waitFor("the run to succeed", async () => (await runState("ride_lifecycle", runId)) === "success");
    expect(await states("ride_lifecycle", runId)).toEqual({
      request_ride: "success",
      wait_driver_accepted: "skipped",
      wait_picked_up: "skipped",
      wait_completed: "skipped",
      charge_rider: "skipped",
      wait_cancelled: "success",
      cancel_ride: "success",
      release_hold: "success",
    });
  });
});
