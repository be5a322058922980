// Pools through the API as Airflow's: a nullable description (null clears it, as for variables
// and connections), a PATCH that names no field is refused (as for variables and connections),
// and slots -1 is a pool without limit: claims take every try of it, and the API answers -1.
import { randomBytes } from "node:crypto";
import { FakeClock } from "../../core/clock.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { claimTasks } from "../../store/transitions/claimTasks.ts";
import { runBaton } from "../helpers/cli.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const clock = new FakeClock("2026-06-01T00:00:00Z");
const WIDE = 40;

const DAGS = dagSource(`
export const wide = dag({ id: "unlimited_wide", maxActiveTasks: 1000 }, (t) => {
  for (let i = 0; i < ${WIDE}; i++) t.task("t" + i, { pool: "unlimited", poolSlots: 1 + (i % 3) }, async () => i);
});
`);

describe("pools through the API", () => {
  const h = new Harness({ clock, manualTicks: true, worker: false });
  beforeAll(async () => {
    await h.start({ "wide.ts": DAGS });
  });
  afterAll(() => h.stop());

  const send = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: object) =>
    h.app.inject({ method, url: `/api/v1${url}`, ...(payload ? { payload } : {}) });

  it("description: null on POST and PATCH; PATCH null clears it", async () => {
    const created = await send("POST", "/pools", { name: "described", slots: 2, description: null });
    expect({ status: created.statusCode, description: created.json().description }).toEqual({ status: 200, description: null });
    expect((await send("PATCH", "/pools/described", { description: "GPUs" })).json().description).toBe("GPUs");
    const cleared = await send("PATCH", "/pools/described", { description: null });
    expect({ status: cleared.statusCode, body: cleared.json() }).toMatchObject({ status: 200, body: { description: null, slots: 2 } });
    const masked = await send("PATCH", "/pools/described?update_mask=description", { description: null, slots: 9 });
    expect(masked.json()).toMatchObject({ description: null, slots: 2 });
  });

  it("a PATCH that sets no field is refused, as for variables and connections", async () => {
    await send("POST", "/pools", { name: "untouched", slots: 2 });
    for (const [url, payload] of [["/pools/untouched", {}], ["/pools/untouched", { name: "untouched" }], ["/variables/k", {}]] as const) {
      const res = await send("PATCH", url, payload);
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 400, code: "BATON_VALIDATION_FAILED" });
    }
    expect((await send("PATCH", "/pools/untouched", {})).json().detail).toBe("body must set slots or description");
  });

  it("slots -1 is a pool without limit: stored, changed and answered as -1", async () => {
    const created = await send("POST", "/pools", { name: "unlimited", slots: -1 });
    expect({ status: created.statusCode, body: created.json() }).toMatchObject({ status: 200, body: { name: "unlimited", slots: -1, open_slots: -1, occupied_slots: 0 } });
    const limited = await send("PATCH", "/pools/unlimited", { slots: 3 });
    expect(limited.json()).toMatchObject({ slots: 3, open_slots: 3 });
    expect((await send("PATCH", "/pools/unlimited", { slots: -1 })).json()).toMatchObject({ slots: -1, open_slots: -1 });
    // order_by=slots sorts a pool without limit as the largest, not by the -1 answered (Airflow,
    // storing -1, sorts it first ascending): first with -slots, last with slots.
    const listed = (await send("GET", "/pools?order_by=-slots&limit=1")).json().pools;
    expect(listed).toEqual([expect.objectContaining({ name: "unlimited", slots: -1 })]);
    const ascending = (await send("GET", "/pools?order_by=slots&limit=1000")).json().pools as { name: string }[];
    expect(ascending.at(-1)).toMatchObject({ name: "unlimited", slots: -1 });
    for (const slots of [-2, 1_000_001]) {
      expect((await send("POST", "/pools", { name: `bad${slots}`, slots })).statusCode).toBe(400);
      expect((await send("PATCH", "/pools/unlimited", { slots })).statusCode).toBe(400);
    }
  });

  it("claims take every try of an unlimited pool, whatever slots they ask, and the pool counts them", async () => {
    await h.processor.scan();
    expect((await send("POST", "/dags/unlimited_wide/dagRuns", { dag_run_id: "wide" })).statusCode).toBe(200);
    await h.scheduler.tick();
    const claimed = await claimTasks(h.db, { now: clock.now(), limit: 100, queues: ["default"], hostname: "ghost", pid: 1, token: randomBytes(16).toString("hex") });
    expect(claimed.filter((c) => c.runId === "wide")).toHaveLength(WIDE);
    const [[{ n }]] = await h.db.pool.query<RowDataPacket[]>("SELECT SUM(pool_slots) AS n FROM task_instance WHERE run_id = 'wide' AND state = 'running'");
    expect((await send("GET", "/pools/unlimited")).json()).toMatchObject({ slots: -1, occupied_slots: Number(n), running_slots: Number(n), open_slots: -1 });
  });

  it("the CLI sets a pool's slots to -1", async () => {
    const r = await runBaton(["pools", "set", "cli_unlimited", "-1"], { BATON_DATABASE_URL: h.db.url });
    expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 0, stderr: "", stdout: "pool cli_unlimited: unlimited slots\n" });
    expect((await send("GET", "/pools/cli_unlimited")).json()).toMatchObject({ slots: -1 });
  });
});
