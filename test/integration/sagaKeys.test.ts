// ctx.idempotencyKey across a saga's attempts: a key names one intended effect. Retries, a plain
// clear and a resumed compensation keep it (the remote system deduplicates a repeat); a task whose
// effect a compensation undid gets a new key when a new attempt does it again, and so do its steps
// and its next compensation (a provider deduplicating on the key would hand back the refunded
// charge, and deduplicate the new refund).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";
const mark = (ctx, what) => appendFileSync(String(ctx.conf.marks), what + "\\n");
const up = (ctx, what) => existsSync(String(ctx.conf.dir) + "/" + what);

export default dag({ id: "saga_keys", defaultArgs: { retries: 0 } }, (t) => {
  const reserve = t.task("reserve", {
    compensate: async (ctx) => {
      if (!up(ctx, "releases")) { mark(ctx, "release-failed " + ctx.idempotencyKey); throw new Error("release service down"); }
      mark(ctx, "release " + ctx.idempotencyKey);
    },
  }, async (ctx) => { mark(ctx, "reserve " + ctx.idempotencyKey); return 1; });
  const charge = t.task("charge", {
    compensate: async (ctx) => {
      mark(ctx, "refund " + ctx.idempotencyKey);
      await ctx.step("refund", (s) => { mark(ctx, "refund-step " + s.idempotencyKey); return 1; });
    },
  }, async (ctx) => {
    mark(ctx, "charge " + ctx.idempotencyKey);
    return await ctx.step("pay", (s) => { mark(ctx, "pay " + s.idempotencyKey); return 1; });
  });
  // Always fails, after one retry: every attempt of the run ends in its saga.
  const ship = t.task("ship", { retries: 1, retryDelay: 1 }, async (ctx) => {
    mark(ctx, "ship " + ctx.idempotencyKey);
    throw new Error("carrier down");
  });
  reserve.then(charge).then(ship);
});
`);

describe("idempotency keys across a saga's attempts", () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ "saga_keys.ts": DAGS });
    await h.run();
  });
  afterAll(() => h.stop());

  const runUrl = (runId: string) => `/api/v1/dags/saga_keys/dagRuns/${encodeURIComponent(runId)}`;
  const endsWith = (runId: string, compensation: string) =>
    waitFor(`run ${runId} to end ${compensation}`, async () => {
      const r = (await h.app.inject({ method: "GET", url: runUrl(runId) })).json();
      return r.state === "failed" && r.compensation === compensation ? r : null;
    }, 30_000);

  it("a task undone by its compensation gets a new key in the next attempt; retries, plain clears and resumes keep theirs", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-saga-keys-"));
    const marks = path.join(dir, "marks.txt");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_keys/dagRuns", payload: { conf: { marks, dir } } });
    const runId = res.json().dag_run_id as string;
    const key = (taskId: string) => `saga_keys:${runId}:${taskId}:-1`;
    let seen = 0;
    const newMarks = async () => {
      const all = (await readFile(marks, "utf8")).split("\n").filter(Boolean);
      const fresh = all.slice(seen);
      seen = all.length;
      return fresh;
    };
    const clear = async (payload: Record<string, unknown>) => {
      const r = await h.app.inject({ method: "POST", url: "/api/v1/dags/saga_keys/clearTaskInstances", payload: { dag_run_id: runId, dry_run: false, ...payload } });
      expect(r.statusCode).toBe(200);
    };

    // Attempt 0: the charge is refunded, the release fails.
    await endsWith(runId, "compensation_failed");
    expect(await newMarks()).toEqual([
      `reserve ${key("reserve")}`,
      `charge ${key("charge")}`,
      `pay ${key("charge")}:pay`,
      `ship ${key("ship")}`,
      `ship ${key("ship")}`, // its retry: the same key
      `refund ${key("charge__compensate")}`,
      `refund-step ${key("charge__compensate")}:refund`,
      `release-failed ${key("reserve__compensate")}`,
    ]);

    // Resuming the failed release keeps its key: the release it retries was never undone.
    await writeFile(path.join(dir, "releases"), "");
    await clear({ task_ids: ["reserve__compensate"] });
    await endsWith(runId, "compensated");
    expect(await newMarks()).toEqual([`release ${key("reserve__compensate")}`]);

    // Attempt 1 (clear ship): reserve and charge were undone, so they are new effects with new
    // keys, and so are their steps and compensations; ship was never undone: a plain clear keeps its key.
    await rm(path.join(dir, "releases"));
    await clear({ task_ids: ["ship"] });
    await endsWith(runId, "compensation_failed");
    expect(await newMarks()).toEqual([
      `reserve ${key("reserve")}:e1`,
      `charge ${key("charge")}:e1`,
      `pay ${key("charge")}:e1:pay`,
      `ship ${key("ship")}`,
      `ship ${key("ship")}`,
      `refund ${key("charge__compensate")}:e1`,
      `refund-step ${key("charge__compensate")}:e1:refund`,
      `release-failed ${key("reserve__compensate")}:e1`,
    ]);

    // Attempt 2 (the whole run re-queued): the charge was refunded again, a new key again; the
    // reservation's release failed, so it stands and keeps its key (a repeat is deduplicated), as
    // does its release, the same undo as the one that failed.
    await writeFile(path.join(dir, "releases"), "");
    const requeued = await h.app.inject({ method: "PATCH", url: runUrl(runId), payload: { state: "queued" } });
    expect(requeued.statusCode).toBe(200);
    await endsWith(runId, "compensated");
    expect(await newMarks()).toEqual([
      `reserve ${key("reserve")}:e1`,
      `charge ${key("charge")}:e2`,
      `pay ${key("charge")}:e2:pay`,
      `ship ${key("ship")}`,
      `ship ${key("ship")}`,
      `refund ${key("charge__compensate")}:e2`,
      `refund-step ${key("charge__compensate")}:e2:refund`,
      `release ${key("reserve__compensate")}:e1`,
    ]);
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT task_id, key_epoch FROM task_instance WHERE dag_id = 'saga_keys' AND run_id = ? ORDER BY task_id",
      [runId],
    );
    expect(Object.fromEntries(rows.map((r) => [r.task_id, Number(r.key_epoch)]))).toEqual({
      charge: 2,
      charge__compensate: 2,
      reserve: 1,
      reserve__compensate: 1,
      ship: 0,
    });
  });
});
