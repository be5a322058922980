// Claim-ahead (executor/worker.ts): while a worker's recent tries are short on average, it claims
// up to `claimAhead` tries beyond its free slots; they wait in the worker, start the moment a slot
// frees, and stop() or a lost claim drops them without running them. Each test starts its own
// Worker (the Harness starts none), so concurrency and claimAhead are the test's. What is asserted
// is read from the database and from ledger files the tasks append `taskId:tryNumber` lines to.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "../../core/logger.ts";
import { Worker, type WorkerOptions } from "../../executor/worker.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { capturingLogger } from "../helpers/logger.ts";

// The scheduler reaps a try whose heartbeat is older than this; workers here beat every 100 ms,
// so a try waiting for a slot longer than this is reaped unless its heartbeat covers it.
const ZOMBIE_MS = 2000;
const HEARTBEAT_MS = 100;

const DAGS = dagSource(`
import { appendFileSync, existsSync } from "node:fs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mark = (ctx) => appendFileSync(String(ctx.conf.ledger), ctx.taskId + ":" + ctx.tryNumber + "\\n");

// Thirty no-op tries: they bring a fresh worker's average try duration down (claim-ahead on).
export const warm = dag({ id: "ca_warm", maxActiveTasks: 1000 }, (t) => {
  for (let i = 0; i < 30; i++) t.task("w" + String(i).padStart(2, "0"), async () => undefined);
});

// bench/dags.ts FANOUT_DAG, its ledger given in conf.
export const fanout = dag({ id: "ca_fanout", maxActiveTasks: 1000 }, (t) => {
  const root = t.task("root", async () => undefined);
  const join = t.task("join", async () => undefined);
  for (let i = 0; i < 40; i++) {
    const task = t.task("m" + String(i).padStart(2, "0"), async (ctx) => mark(ctx));
    root.then(task);
    task.then(join);
  }
});

export const long = dag({ id: "ca_long", maxActiveTasks: 1000 }, (t) => {
  for (let i = 0; i < 10; i++) t.task("l" + i, async (ctx) => { mark(ctx); await sleep(300); });
});

// Every try runs until conf.release exists: the first to start holds a slot, the others wait.
const holding = (count) => (t) => {
  for (let i = 0; i < count; i++) {
    t.task("h" + i, async (ctx) => {
      mark(ctx);
      while (!existsSync(String(ctx.conf.release)) && !ctx.signal.aborted) await sleep(10);
    });
  }
};
export const hold = dag({ id: "ca_hold", maxActiveTasks: 1000 }, holding(6));
export const pair = dag({ id: "ca_pair", maxActiveTasks: 1000 }, holding(2));
`);

const h = new Harness({ worker: false, taskHeartbeatTimeoutMs: ZOMBIE_MS, runIds: "numbered" });
let scratch: string;
let seq = 0;
let current: Worker | undefined;

interface Ti {
  task_id: string;
  state: string;
  try_number: number;
  claim_token: string | null;
  start_date: Date | null;
  end_date: Date | null;
}


function startWorker(options: Partial<WorkerOptions> & { concurrency: number }, logger: Logger = h.logger): Worker {
  const worker = new Worker(h.db, h.clock, logger, {
    queues: ["default"],
    logsFolder: h.logsFolder,
    cacheFolder: h.cacheFolder,
    heartbeatMs: HEARTBEAT_MS,
    // Tries here wait on purpose for seconds; the hand-back of long waits has its own test.
    claimAheadMaxWaitMs: 60_000,
    ...options,
  });
  // The scheduler and the API wake h.worker when they queue tasks.
  h.worker = current = worker;
  worker.start();
  return worker;
}

async function stopWorker(graceMs = 2000): Promise<void> {
  const worker = current;
  h.worker = current = undefined;
  await worker?.stop(graceMs);
}

function files(): { ledger: string; release: string } {
  const n = ++seq;
  return { ledger: path.join(scratch, `ledger-${n}.txt`), release: path.join(scratch, `release-${n}`) };
}

async function tis(dagId: string, runId: string): Promise<Ti[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT task_id, state, try_number, claim_token, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id",
    [dagId, runId],
  );
  return rows as Ti[];
}

async function runningUnder(token: string): Promise<number> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE state = 'running' AND claim_token = ?", [token]);
  return Number(row!.n);
}

async function ledgerLines(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter(Boolean);
}

/**
 * The worker's moving average of try durations, recomputed from its finished rows: finishTries
 * writes the try's own startedAt and endedAt, which are what the worker averages, in the order
 * it saw them end.
 */
async function averageTryMs(token: string): Promise<number | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT start_date, end_date FROM task_instance WHERE claim_token = ? AND end_date IS NOT NULL ORDER BY end_date, id",
    [token],
  );
  let average: number | undefined;
  for (const r of rows) {
    const ms = (r.end_date as Date).getTime() - (r.start_date as Date).getTime();
    average = average === undefined ? ms : average * 0.8 + ms * 0.2;
  }
  return average;
}

/** Runs no-op tries on `worker` until its average is well under the claim-ahead threshold (100 ms). */
async function warmUp(worker: Worker): Promise<void> {
  // A fresh worker's first tries include starting its child processes, which can take seconds.
  for (let round = 0; round < 5; round++) {
    expect(await h.runEnded("ca_warm", await h.trigger("ca_warm"))).toBe("success");
    const average = await averageTryMs(worker.id);
    if (average !== undefined && average < 40) return;
  }
  throw new Error(`the worker's average try stayed at ${await averageTryMs(worker.id)} ms after 150 no-op tries`);
}

/**
 * Samples, until stopped, how many task instances are running under `token` and how many tasks
 * of the run have succeeded, both from one statement's snapshot.
 */
function sampleRunning(token: string, dagId: string, runId: string) {
  const samples: { mine: number; done: number }[] = [];
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>(
        `SELECT (SELECT COUNT(*) FROM task_instance WHERE state = 'running' AND claim_token = ?) AS mine,
                (SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? AND state = 'success') AS done`,
        [token, dagId, runId],
      );
      samples.push({ mine: Number(row!.mine), done: Number(row!.done) });
    }
  })();
  return {
    samples,
    stop: async () => {
      sampling = false;
      await loop;
      return samples;
    },
  };
}

/** Waits until one try of a holding run has started and `claimed` tries run under the worker's token. */
async function holdingStarted(worker: Worker, dagId: string, runId: string, ledger: string, started: number, claimed: number) {
  return waitFor(`${started} tries of ${dagId} to start and ${claimed} to be claimed`, async () => {
    const lines = await ledgerLines(ledger);
    const mine = (await tis(dagId, runId)).filter((t) => t.state === "running" && t.claim_token === worker.id);
    return lines.length === started && mine.length === claimed ? { lines, mine } : null;
  });
}

beforeAll(async () => {
  await h.start({ "claimAhead.ts": DAGS });
  await h.run();
  const errors = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
  expect(errors.json().import_errors).toEqual([]);
  scratch = await mkdtemp(path.join(os.tmpdir(), "baton-claim-ahead-"));
});
afterEach(() => stopWorker());
afterAll(async () => {
  await h.stop();
  await rm(scratch, { recursive: true, force: true });
});

describe("worker claim-ahead", () => {
  it("claims beyond its slots while tries are short, never more than concurrency + claimAhead, runs a 40-wide fan-out once each, and dates each try by its real start", async () => {
    const worker = startWorker({ concurrency: 2, claimAhead: 2 });
    await warmUp(worker);
    const { ledger } = files();
    const runId = `ca_fanout_${++seq}`;
    const sampler = sampleRunning(worker.id, "ca_fanout", runId);
    await h.trigger("ca_fanout", { conf: { ledger }, runId });
    const state = await h.runEnded("ca_fanout", runId);
    const samples = await sampler.stop();
    expect(state).toBe("success");

    const most = Math.max(...samples.map((s) => s.mine));
    expect(most).toBeGreaterThan(2); // tries were claimed ahead of the two slots…
    expect(most).toBeLessThanOrEqual(4); // …up to claimAhead of them

    const middle = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, "0")}:1`);
    expect((await ledgerLines(ledger)).sort()).toEqual(middle);
    const rows = await tis("ca_fanout", runId);
    expect(rows).toHaveLength(42);
    for (const t of rows) {
      expect({ task: t.task_id, state: t.state, try: t.try_number, token: t.claim_token }).toEqual({ task: t.task_id, state: "success", try: 1, token: worker.id });
      expect(t.start_date!.getTime()).toBeLessThanOrEqual(t.end_date!.getTime());
      // Some of these waited for a slot; their start_date is when they ran, not when they were claimed.
      if (t.task_id.startsWith("m")) expect({ task: t.task_id, ms: t.end_date!.getTime() - t.start_date!.getTime() < 1000 }).toEqual({ task: t.task_id, ms: true });
    }
  });

  it("stops claiming ahead once long tries raise the average: then never more running than slots", async () => {
    const worker = startWorker({ concurrency: 2, claimAhead: 2 });
    await warmUp(worker);
    const { ledger } = files();
    const runId = `ca_long_${++seq}`;
    const sampler = sampleRunning(worker.id, "ca_long", runId);
    await h.trigger("ca_long", { conf: { ledger }, runId });
    const state = await h.runEnded("ca_long", runId);
    const samples = await sampler.stop();
    expect(state).toBe("success");

    // The warm-up's short average let the first long tries be claimed ahead…
    expect(Math.max(...samples.map((s) => s.mine))).toBeGreaterThan(2);
    expect(Math.max(...samples.map((s) => s.mine))).toBeLessThanOrEqual(4);
    // …but two 300 ms tries take the average over 100 ms, and the third one to end started the
    // last try claimed ahead: from then on, at most one try per slot is claimed.
    const settled = samples.filter((s) => s.done >= 3);
    expect(settled.length).toBeGreaterThan(0);
    expect(Math.max(...settled.map((s) => s.mine))).toBeLessThanOrEqual(2);

    expect((await ledgerLines(ledger)).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `l${i}:1`));
    expect((await tis("ca_long", runId)).map((t) => `${t.state}#${t.try_number}`)).toEqual(Array(10).fill("success#1"));
  });

  it("keeps a try waiting for a slot alive past the zombie timeout, and dates it from when it started, not when it was claimed", async () => {
    const worker = startWorker({ concurrency: 1, claimAhead: 1 });
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_hold", { conf: { ledger, release } });
    const { lines, mine } = await holdingStarted(worker, "ca_hold", runId, ledger, 1, 2);
    const blocker = lines[0]!.split(":")[0]!;
    const waiting = mine.find((t) => t.task_id !== blocker)!;
    const claimedAt = waiting.start_date!;

    // The blocker holds the only slot for longer than the zombie timeout (this pause is the
    // measured interval, not a wait for a condition): the waiting try's heartbeat keeps it ours.
    const HELD_MS = ZOMBIE_MS + 500;
    await new Promise((r) => setTimeout(r, HELD_MS));
    expect(await ledgerLines(ledger)).toEqual(lines);
    expect((await tis("ca_hold", runId)).find((t) => t.task_id === waiting.task_id)).toMatchObject({ state: "running", try_number: 1, claim_token: worker.id });

    await writeFile(release, "");
    expect(await h.runEnded("ca_hold", runId)).toBe("success");
    const rows = new Map((await tis("ca_hold", runId)).map((t) => [t.task_id, t]));
    const b = rows.get(blocker)!;
    const w = rows.get(waiting.task_id)!;
    expect(w).toMatchObject({ state: "success", try_number: 1, claim_token: worker.id });
    // One slot: the waiting try started after the blocker ended (both dates from the worker's clock).
    expect(w.start_date!.getTime()).toBeGreaterThanOrEqual(b.end_date!.getTime());
    expect(w.start_date!.getTime() - claimedAt.getTime()).toBeGreaterThanOrEqual(HELD_MS);
    expect(w.end_date!.getTime() - w.start_date!.getTime()).toBeLessThan(1000);
    for (const t of rows.values()) {
      expect(t).toMatchObject({ state: "success", try_number: 1 });
      expect(t.start_date!.getTime()).toBeLessThanOrEqual(t.end_date!.getTime());
    }
    expect((await ledgerLines(ledger)).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `h${i}:1`));
  });

  it("stop() hands back the tries waiting for a slot with the running ones, without counting their tries", async () => {
    const worker = startWorker({ concurrency: 2, claimAhead: 2 });
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_hold", { conf: { ledger, release } });
    // Two tries hold both slots; two more were claimed ahead and wait; two are still queued.
    const { lines, mine } = await holdingStarted(worker, "ca_hold", runId, ledger, 2, 4);
    const started = lines.map((l) => l.split(":")[0]!).sort();
    const claimed = mine.map((t) => t.task_id).sort();
    expect(mine.map((t) => t.try_number)).toEqual([1, 1, 1, 1]);
    const before = await tis("ca_hold", runId);
    expect(before.filter((t) => !claimed.includes(t.task_id)).map((t) => `${t.state}#${t.try_number}`)).toEqual(["queued#0", "queued#0"]);

    await stopWorker(200);
    expect(await runningUnder(worker.id)).toBe(0);
    // Queued again as they were before their claim, try_number back to 0: the next try is try 1.
    expect((await tis("ca_hold", runId)).map((t) => ({ task: t.task_id, state: t.state, try: t.try_number, token: t.claim_token }))).toEqual(
      before.map((t) => ({ task: t.task_id, state: "queued", try: 0, token: null })),
    );
    // The tries that waited never ran.
    expect(await ledgerLines(ledger)).toHaveLength(2);

    await writeFile(release, "");
    const next = startWorker({ concurrency: 2 });
    expect(await h.runEnded("ca_hold", runId)).toBe("success");
    expect((await tis("ca_hold", runId)).map((t) => `${t.state}#${t.try_number}@${t.claim_token === next.id}`)).toEqual(Array(6).fill("success#1@true"));
    // The two killed tries ran again as try 1; every other task ran once.
    const expected = [...Array.from({ length: 6 }, (_, i) => `h${i}:1`), ...started.map((id) => `${id}:1`)].sort();
    expect((await ledgerLines(ledger)).sort()).toEqual(expected);
  });

  it("stop() lets the running tries finish within the grace but starts none of the waiting ones, and hands those back", async () => {
    const worker = startWorker({ concurrency: 2, claimAhead: 2 });
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_hold", { conf: { ledger, release } });
    const { lines, mine } = await holdingStarted(worker, "ca_hold", runId, ledger, 2, 4);
    const started = lines.map((l) => l.split(":")[0]!);
    const waiting = mine.map((t) => t.task_id).filter((id) => !started.includes(id));

    // stop() stops claiming and starting before its first await; the release then lets the two
    // running tries end within the grace, freeing both slots while two tries still wait.
    current = h.worker = undefined;
    const stopped = worker.stop(10_000);
    await writeFile(release, "");
    await stopped;

    expect(await runningUnder(worker.id)).toBe(0);
    expect((await tis("ca_hold", runId)).map((t) => `${t.task_id} ${t.state}#${t.try_number}`)).toEqual(
      Array.from({ length: 6 }, (_, i) => `h${i}`).map((id) => (started.includes(id) ? `${id} success#1` : `${id} queued#0`)),
    );
    expect(waiting).toHaveLength(2);
    expect((await ledgerLines(ledger)).sort()).toEqual(started.map((id) => `${id}:1`).sort());
  });

  it("hands back tries that waited longer than claimAheadMaxWaitMs, stops claiming ahead, and runs everything once", async () => {
    const worker = startWorker({ concurrency: 1, claimAhead: 2, claimAheadMaxWaitMs: 300 });
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_hold", { conf: { ledger, release } });
    const { lines, mine } = await holdingStarted(worker, "ca_hold", runId, ledger, 1, 3);
    const holder = lines[0]!.split(":")[0]!;
    const waiting = mine.map((t) => t.task_id).filter((id) => id !== holder);
    expect(waiting).toHaveLength(2);
    // Handed back: queued again, their claim gone and their try not counted.
    await waitFor("the waiting tries to be handed back", async () => {
      const rows = (await tis("ca_hold", runId)).filter((t) => waiting.includes(t.task_id));
      return rows.every((t) => t.state === "queued" && t.try_number === 0 && t.claim_token === null);
    });
    // Claim-ahead is off now: only the holder is running under this worker, for a while.
    for (let i = 0; i < 10; i++) {
      expect(await runningUnder(worker.id)).toBe(1);
      await new Promise((r) => setTimeout(r, 50));
    }
    await writeFile(release, "");
    expect(await h.runEnded("ca_hold", runId)).toBe("success");
    expect((await ledgerLines(ledger)).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `h${i}:1`));
  });

  it("drops a try cleared while it waited for a slot without running it, and keeps working", async () => {
    const log: string[] = [];
    const worker = startWorker({ concurrency: 1, claimAhead: 1 }, capturingLogger(log));
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_hold", { conf: { ledger, release } });
    const { lines, mine } = await holdingStarted(worker, "ca_hold", runId, ledger, 1, 2);
    const blocker = lines[0]!.split(":")[0]!;
    const victim = mine.find((t) => t.task_id !== blocker)!.task_id;

    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/ca_hold/clearTaskInstances",
      payload: { dag_run_id: runId, task_ids: [victim], only_failed: false, dry_run: false },
    });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    expect((await tis("ca_hold", runId)).find((t) => t.task_id === victim)).toMatchObject({ try_number: 1, claim_token: null });
    // The worker learns from its next heartbeat that the waiting try is no longer its own.
    await waitFor("the worker to find the waiting try lost", async () => log.some((l) => l.includes(`of ca_hold.${victim} (run ${runId}) is no longer ours`)));
    expect(await ledgerLines(ledger)).toEqual(lines);

    await writeFile(release, "");
    expect(await h.runEnded("ca_hold", runId)).toBe("success");
    // The cleared try never ran; the victim ran once, as the try its clear queued.
    const ran = (await ledgerLines(ledger)).sort();
    expect(ran).toEqual(Array.from({ length: 6 }, (_, i) => (`h${i}` === victim ? `h${i}:2` : `h${i}:1`)).sort());
    for (const t of await tis("ca_hold", runId)) {
      expect({ task: t.task_id, state: t.state, try: t.try_number, token: t.claim_token }).toEqual({
        task: t.task_id,
        state: "success",
        try: t.task_id === victim ? 2 : 1,
        token: worker.id,
      });
    }
    expect(log.filter((l) => l.includes("result discarded") || l.includes("discarded: its try is no longer ours"))).toEqual([]);
    expect(await h.runEnded("ca_warm", await h.trigger("ca_warm"))).toBe("success");
  });

  // The worker holds tries by (task instance id, try number): the cleared try 1, still waiting
  // in the worker, and try 2 of the same task instance, claimed again by this worker (it has a
  // claim-ahead place left), are two entries. Keyed by id alone, try 2 replaced try 1, try 1 ran
  // in its place and try 2 was dropped, left `running` until the zombie reaper failed it.
  it("runs only the new try of a task cleared while it waited, when the same worker claims that try", async () => {
    const worker = startWorker({ concurrency: 1, claimAhead: 2 });
    await warmUp(worker);
    const { ledger, release } = files();
    const runId = await h.trigger("ca_pair", { conf: { ledger, release } });
    const { lines, mine } = await holdingStarted(worker, "ca_pair", runId, ledger, 1, 2);
    const blocker = lines[0]!.split(":")[0]!;
    const victim = mine.find((t) => t.task_id !== blocker)!.task_id;
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/ca_pair/clearTaskInstances",
      payload: { dag_run_id: runId, task_ids: [victim], only_failed: false, dry_run: false },
    });
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: 200 });
    await waitFor("the worker to claim the victim's next try", async () => {
      const t = (await tis("ca_pair", runId)).find((r) => r.task_id === victim)!;
      return t.state === "running" && t.try_number === 2 && t.claim_token === worker.id;
    });

    await writeFile(release, "");
    const ran = await waitFor("the victim to run", async () => (await ledgerLines(ledger)).find((l) => l.startsWith(`${victim}:`)));
    expect(ran).toBe(`${victim}:2`);
    expect(await h.runEnded("ca_pair", runId)).toBe("success");
    expect((await ledgerLines(ledger)).sort()).toEqual([`${blocker}:1`, `${victim}:2`].sort());
  });
});
