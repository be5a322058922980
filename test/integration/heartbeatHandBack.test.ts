// A heartbeat that began before its worker handed a try back must not take that try for one
// "no longer ours" (cleared, timed out or reaped) and abort it: the hand-back may commit before
// the heartbeat reads the try's row (queued again, so not the worker's) and answer after, while
// the try is still held as being handed back. The test makes that interleaving happen every
// time: it holds the heartbeat's statement before it reaches the server, lets the hand-back
// commit and holds its answer, then lets the heartbeat read the row and finish before the
// hand-back's answer arrives.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Pool } from "mysql2/promise";
import { capturingLogger } from "../helpers/logger.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { Db, RowDataPacket, Tx } from "../../store/db.ts";
import { Worker } from "../../executor/worker.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const held = dag({ id: "hb_handback" }, (t) => {
  t.task("h", { queue: "hb_handback" }, async (ctx) => {
    appendFileSync(String(ctx.conf.ledger), ctx.taskId + ":" + ctx.tryNumber + "\\n");
    while (!existsSync(String(ctx.conf.release)) && !ctx.signal.aborted) await sleep(10);
  });
});
`);

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The Db, where (once armed) every heartbeat of task instance `id` (beatTries) waits before it
 * is sent until releaseBeats(), and the next hand-back's transaction commits on the server and
 * then waits before answering until releaseHandBack().
 */
function holding(db: Db) {
  let beatsOf: number | undefined;
  const beatsReleased = deferred();
  const beats: Promise<unknown>[] = [];
  let handBackArmed = false;
  let handBackCommitted = false;
  const handBackReleased = deferred();

  const pool = new Proxy(db.pool, {
    get(target, prop) {
      if (prop === "query") {
        return async (sql: string, params?: unknown[]) => {
          const beat = beatsOf !== undefined && typeof sql === "string" && sql.includes("SET heartbeat_at") && !!params?.includes(beatsOf);
          if (!beat) return target.query(sql, params);
          const answer = beatsReleased.promise.then(() => target.query(sql, params));
          beats.push(answer);
          return answer;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Pool;

  const tx: Db["tx"] = (fn) =>
    db.tx((conn: Tx) => {
      const query = conn.query.bind(conn) as (sql: string, params?: unknown) => Promise<unknown>;
      const statements: string[] = [];
      (conn as unknown as { query: typeof query }).query = async (sql: string, params?: unknown) => {
        if (typeof sql === "string") statements.push(sql);
        const answer = await query(sql, params);
        // A hand-back's transaction (store/transitions/handBack.ts), committed: hold its answer.
        if (handBackArmed && sql === "COMMIT" && statements.some((s) => s.includes("steps_kept = EXISTS"))) {
          handBackArmed = false;
          handBackCommitted = true;
          await handBackReleased.promise;
        }
        return answer;
      };
      return fn(conn);
    });

  return {
    db: { ...db, pool, tx } as Db,
    holdBeatsOf: (id: number) => (beatsOf = id),
    beatsHeld: () => beats.length,
    /** Sends the held heartbeats; resolves once each has its answer and what the worker does with it has run. */
    async releaseBeats(): Promise<void> {
      beatsOf = undefined;
      beatsReleased.resolve();
      await Promise.allSettled(beats);
      // The heartbeat's continuation after its statement answered is promise jobs only: they all
      // run before the next turn of the event loop.
      await new Promise((r) => setImmediate(r));
    },
    holdNextHandBack: () => (handBackArmed = true),
    handBackCommitted: () => handBackCommitted,
    releaseHandBack: () => handBackReleased.resolve(),
  };
}

describe("worker: a heartbeat in flight while a try is handed back", () => {
  const h = new Harness({ worker: false });
  const messages: string[] = [];
  const logger = capturingLogger(messages);
  let scratch: string;
  const workers: Worker[] = [];

  beforeAll(async () => {
    await h.start({ "hb.ts": DAGS });
    await h.run();
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-hb-handback-"));
  });
  afterAll(async () => {
    for (const w of workers) await w.stop(0).catch(() => undefined);
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("does not take a try it is handing back for one no longer its own, when the hand-back commits before the heartbeat reads it and answers after", async () => {
    const gate = holding(h.db);
    const worker = new Worker(gate.db, h.clock, logger, {
      concurrency: 1,
      queues: ["hb_handback"],
      logsFolder: h.logsFolder,
      cacheFolder: h.cacheFolder,
      heartbeatMs: 50,
    });
    workers.push(worker);
    worker.start();
    const ledger = path.join(scratch, "ledger");
    const release = path.join(scratch, "release");
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/hb_handback/dagRuns", payload: { conf: { ledger, release } } });
    expect(res.statusCode).toBe(200);
    const runId = res.json().dag_run_id as string;
    await waitFor("the try to start", async () => (await readFile(ledger, "utf8").catch(() => "")).length > 0, 20_000);
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'hb_handback' AND run_id = ?", [runId]);

    // A heartbeat that counts the try among its running ones, held before its statement is sent.
    gate.holdBeatsOf(Number(ti!.id));
    await waitFor("a heartbeat of the running try", async () => gate.beatsHeld() > 0, 10_000);
    // stop() hands the try back; its transaction commits, and its answer is held.
    gate.holdNextHandBack();
    const stopped = worker.stop(0);
    await waitFor("the hand-back to commit", async () => gate.handBackCommitted(), 10_000);
    // The heartbeat reads the row (queued again) and finishes while the hand-back has not answered.
    await gate.releaseBeats();
    gate.releaseHandBack();
    await stopped;

    expect(messages.filter((m) => /no longer ours/.test(m))).toEqual([]);
    expect(messages).toContain("info: handed back 1 unfinished task instance(s)");
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, claim_token FROM task_instance WHERE id = ?", [ti!.id]);
    expect({ ...row }).toEqual({ state: "queued", try_number: 0, claim_token: null });
    await writeFile(release, "");
  }, 30_000);
});
