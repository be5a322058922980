// maxActiveTisPerDag (Airflow's max_active_tis_per_dag): at most N instances of a task run at
// once across its DAG's runs. Here N = 1, four runs triggered at once and a worker with four
// slots: the limited task of each run records its start and end in a ledger file and holds until
// the test releases that run's instance, so two instances running at once would both write their
// start before any end. Its upstream task ends first, so its readiness goes through the finishing
// worker's hand-off, which must not take it past the limit either. A queued instance names the
// reason in GET …/dependencies while another runs.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const RUNS = 4;

const h = new Harness({ workers: RUNS, runIds: "numbered" });
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "baton-tis-"));
  await h.start({
    "tis.ts": dagSource(`
import { appendFileSync, existsSync } from "node:fs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const limited = dag({ id: "tis_limited", maxActiveTasks: 16 }, (t) => {
  const start = t.task("start", async () => 1);
  const call = t.task("call", { maxActiveTisPerDag: 1 }, async (ctx) => {
    const ledger = String(ctx.conf.dir) + "/ledger";
    appendFileSync(ledger, "S " + ctx.runId + "\\n");
    while (!existsSync(String(ctx.conf.dir) + "/release-" + ctx.runId) && !ctx.signal.aborted) await sleep(10);
    appendFileSync(ledger, "E " + ctx.runId + "\\n");
  });
  start.then(call);
});
`),
  });
  await h.run();
});

afterAll(async () => {
  await h.stop();
  await rm(scratch, { recursive: true, force: true });
});

async function callStates(): Promise<{ run_id: string; state: string }[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id, state FROM task_instance WHERE dag_id = 'tis_limited' AND task_id = 'call' ORDER BY run_id");
  return rows as { run_id: string; state: string }[];
}

async function ledger(): Promise<string[]> {
  return (await readFile(path.join(scratch, "ledger"), "utf8").catch(() => "")).split("\n").filter(Boolean);
}

async function dependencies(runId: string): Promise<Record<string, string>> {
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags/tis_limited/dagRuns/${runId}/taskInstances/call/dependencies` });
  expect(res.statusCode).toBe(200);
  return Object.fromEntries((res.json() as { dependencies: { name: string; reason: string }[] }).dependencies.map((d) => [d.name, d.reason]));
}

it("runs one instance of a task limited to 1 at a time across runs, names the reason for the others, and finishes them all", async () => {
  const runIds: string[] = [];
  for (let i = 0; i < RUNS; i++) runIds.push(await h.trigger("tis_limited", { conf: { dir: scratch } }));

  // Every run's `call` is ready: one runs, the others wait queued, though the worker has free slots.
  await waitFor("one call running, the others queued", async () => {
    const states = (await callStates()).map((r) => r.state).sort();
    return states.length === RUNS && states.filter((s) => s === "running").length === 1 && states.filter((s) => s === "queued").length === RUNS - 1;
  });
  const first = (await callStates()).find((r) => r.state === "running")!.run_id;
  const waiting = (await callStates()).find((r) => r.state === "queued")!.run_id;
  const deps = await dependencies(waiting);
  expect(deps.max_active_tis_per_dag).toContain("The max task concurrency has been breached: 1 instances of task 'call' run across DAG 'tis_limited''s runs");
  expect(deps.max_active_tasks).toBeUndefined();
  expect(await dependencies(first)).toEqual({});

  // Release the running instance, one at a time; never more than one runs.
  const released = new Set<string>();
  while (released.size < RUNS) {
    let running: string[] = [];
    await waitFor("the next call running", async () => {
      const states = await callStates();
      running = states.filter((r) => r.state === "running" && !released.has(r.run_id)).map((r) => r.run_id);
      expect(states.filter((r) => r.state === "running").length).toBeLessThanOrEqual(1);
      return running.length === 1 || states.every((r) => r.state === "success");
    });
    if (running.length === 0) break;
    released.add(running[0]!);
    await writeFile(path.join(scratch, `release-${running[0]}`), "");
  }
  for (const runId of runIds) expect(await h.runEnded("tis_limited", runId)).toBe("success");

  // The instances' own record: each ended before the next started.
  const lines = await ledger();
  expect(lines).toHaveLength(2 * RUNS);
  for (let i = 0; i < lines.length; i += 2) {
    expect(lines[i]).toMatch(/^S /);
    expect(lines[i + 1]).toBe(`E ${lines[i]!.slice(2)}`);
  }
  expect(new Set(lines.filter((l) => l.startsWith("S ")).map((l) => l.slice(2)))).toEqual(new Set(runIds));
});
