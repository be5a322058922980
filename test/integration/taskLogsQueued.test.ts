// The log of a try while its task is queued again: a failed try whose retry is queued has ended
// (a retry keeps the failed try's number until it is claimed), while a reschedule-mode sensor's
// poke, whose try number is given back between pokes, is still under way.
import { FakeClock } from "../../core/clock.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const DAGS = dagSource(`
export const flaky = dag({ id: "queued_logs_retry" }, (t) => {
  t.task("flaky", { retries: 1, retryDelay: "1h" }, async (ctx) => {
    console.log("running try " + ctx.tryNumber);
    if (ctx.tryNumber === 1) throw new Error("first try broke");
  });
});

// Its first try fails, its retry is rescheduled: it waits with try 1 ended and try 2 poking.
export const poker = dag({ id: "queued_logs_poke" }, (t) => {
  t.sensor("later", {
    mode: "reschedule",
    pokeInterval: "1h",
    timeout: "1d",
    retries: 1,
    retryDelay: "1m",
    poke: async (ctx) => {
      console.log("poking in try " + ctx.tryNumber);
      if (ctx.tryNumber === 1) throw new Error("first poke broke");
      return false;
    },
  });
});
`);

describe("task logs while the task is queued again", () => {
  const clock = new FakeClock(new Date());
  const h = new Harness({ workers: 1, clock, heartbeatMs: 100 });
  const get = (url: string) => h.app.inject({ method: "GET", url, headers: { accept: "application/json" } });
  const tiUrl = (dagId: string, runId: string, taskId: string) => `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}`;
  let retryRun: string;
  let pokeRun: string;

  beforeAll(async () => {
    await h.start({ "queued.ts": DAGS });
    await h.run();
    retryRun = await h.trigger("queued_logs_retry");
    pokeRun = await h.trigger("queued_logs_poke");
    const flaky = tiUrl("queued_logs_retry", retryRun, "flaky");
    const later = tiUrl("queued_logs_poke", pokeRun, "later");
    await waitFor("the first try to fail", async () => (await get(flaky)).json().state === "up_for_retry", 30_000);
    await waitFor("the sensor's first try to fail", async () => (await get(later)).json().state === "up_for_retry", 30_000);
    clock.advance(2 * 60_000);
    await waitFor("the sensor's retry to be rescheduled", async () => (await get(later)).json().state === "up_for_reschedule", 30_000);
    // No worker from here on: the retry and the next poke stay queued once due.
    await h.worker!.stop(2000);
    clock.advance(2 * 3_600_000);
    await waitFor("the retry and the next poke to be queued", async () => {
      await h.scheduler.tick();
      return (await get(flaky)).json().state === "queued" && (await get(later)).json().state === "queued";
    }, 30_000);
  });
  afterAll(() => h.stop());

  it("answers the failed try's log as ended while its retry is queued: no continuation token", async () => {
    const ti = tiUrl("queued_logs_retry", retryRun, "flaky");
    expect((await get(ti)).json()).toMatchObject({ state: "queued", try_number: 1 });
    const res = await get(`${ti}/logs/1`);
    expect(res.statusCode).toBe(200);
    expect(res.json().content).toMatch(/running try 1[^]*first try broke/);
    expect(res.json().continuation_token).toBeNull();
    expect(res.headers["x-continuation-token"]).toBeUndefined();
    expect((await get(`${ti}/logs/2`)).statusCode).toBe(404);
  });

  it("answers a rescheduled sensor's poke as under way while its next poke is queued, and its failed first try as ended", async () => {
    const ti = tiUrl("queued_logs_poke", pokeRun, "later");
    // The poke gave its try number back: the row shows the failed try's.
    expect((await get(ti)).json()).toMatchObject({ state: "queued", try_number: 1 });
    const poking = await get(`${ti}/logs/2`);
    expect(poking.statusCode).toBe(200);
    expect(poking.json().content).toContain("poking in try 2");
    expect(poking.json().continuation_token).not.toBeNull(); // the next poke writes on
    const failed = await get(`${ti}/logs/1`);
    expect(failed.statusCode).toBe(200);
    expect(failed.json().content).toMatch(/poking in try 1[^]*first poke broke/);
    expect(failed.json().continuation_token).toBeNull();
  });
});
