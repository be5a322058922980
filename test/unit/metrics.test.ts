// Counters a worker increments by state or call are exported at 0 from the start: a series that first
// appears at 1 (the first failure after a restart) is invisible to increase()/rate(), so an alert on
// increase(baton_task_finished_total{state="failed"}[5m]) would miss it.
import { createMetrics, processMetrics, resetProcessMetrics } from "../../core/metrics.ts";

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics start at zero", () => {
  it("a fresh registry exports baton_task_finished_total for every state a try is recorded in, and both worker calls, at 0", async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    for (const state of ["success", "failed", "up_for_retry", "skipped", "up_for_reschedule", "deferred"]) {
      expect(sample(text, `baton_task_finished_total{state="${state}"}`)).toBe(0);
    }
    for (const call of ["finish", "claim"]) {
      expect(sample(text, `baton_worker_db_call_tries_total{call="${call}"}`)).toBe(0);
      expect(sample(text, `baton_worker_db_call_duration_seconds_count{call="${call}"}`)).toBe(0);
    }
    expect(sample(text, "baton_worker_handoffs_total")).toBe(0);
  });

  it("resetProcessMetrics zeroes them, keeping the series", async () => {
    const metrics = processMetrics();
    metrics.taskFinished.inc({ state: "failed" }, 3);
    resetProcessMetrics();
    const text = await metrics.registry.metrics();
    expect(sample(text, `baton_task_finished_total{state="failed"}`)).toBe(0);
    expect(sample(text, `baton_worker_db_call_tries_total{call="claim"}`)).toBe(0);
  });
});
