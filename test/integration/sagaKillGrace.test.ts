// A saga's compensations must not overlap the run's own task code: a try told to stop (its run
// cancelled with compensate) still runs during its kill grace, and undoing the work it may still
// be doing would let, say, a shipment go out after its booking was cancelled (Temporal waits for
// a cancelled activity to end before the workflow's compensation runs).
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
import { appendFileSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");

export const grace = dag({ id: "saga_grace" }, (t) => {
  const book = t.task("book", { compensate: async (ctx) => mark(ctx, "cancel booking") }, async (ctx) => { mark(ctx, "book"); return 1; });
  // Told to stop, it takes a while to wind down (well inside its kill grace) and says when it is done.
  const ship = t.task("ship", async (ctx) => {
    while (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1500));
    mark(ctx, "ship wound down");
  });
  book.then(ship);
});
`);

describe("saga compensation after a cancel", () => {
  const h = new Harness({ workers: 2, heartbeatMs: 100, killGraceMs: 20_000 });
  beforeAll(async () => {
    await h.start({ "grace.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  // Known bug, not fixed yet: cancelRun (endRuns) fails the running try and startCompensation queues
  // the compensation in the same transaction, so a worker runs it while the cancelled try's process
  // is still inside its kill grace. Flip to it(...) once compensations wait for every try of the run to end.
  it.failing("starts the compensations only once the cancelled try's process has ended", async () => {
    const marks = path.join(await mkdtemp(path.join(os.tmpdir(), "baton-grace-")), "marks.txt");
    const runId = await h.trigger("saga_grace", { conf: { marks } });
    const runUrl = `/api/v1/dags/saga_grace/dagRuns/${encodeURIComponent(runId)}`;
    await waitFor("ship to run", async () => (await h.app.inject({ method: "GET", url: `${runUrl}/taskInstances/ship` })).json().state === "running");
    const cancel = await h.app.inject({ method: "PATCH", url: runUrl, payload: { state: "failed", compensate: true } });
    expect(cancel.statusCode).toBe(200);
    await waitFor("the saga to end", async () => (await h.app.inject({ method: "GET", url: runUrl })).json().compensation === "compensated", 30_000);
    const lines = await waitFor("ship to wind down", async () => {
      const text = await readFile(marks, "utf8");
      return text.includes("ship wound down") ? text.split("\n").filter(Boolean) : null;
    }, 30_000);
    expect(lines).toEqual(["book", "ship wound down", "cancel booking"]);
  });
});
