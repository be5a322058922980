import { notBeforeDep } from "../../scheduler/deps/notBefore.ts";

describe("notBeforeDep: a retry's delay or a sensor's next poke", () => {
  const now = new Date("2026-03-01T12:00:00Z");
  it("holds the task until next_retry_at and names it", () => {
    expect(notBeforeDep({ state: "up_for_reschedule", nextAt: new Date("2026-03-01T12:05:00Z") }, now)).toEqual({
      dep: "reschedule",
      passed: false,
      reason: expect.stringContaining("pokes again at 2026-03-01T12:05:00.000Z"),
    });
    expect(notBeforeDep({ state: "up_for_retry", nextAt: new Date("2026-03-01T12:00:01Z") }, now)).toMatchObject({
      dep: "retry_period",
      passed: false,
      reason: expect.stringContaining("2026-03-01T12:00:01.000Z"),
    });
  });
  it("passes once the date is reached (the scheduler queues it at its next pass)", () => {
    expect(notBeforeDep({ state: "up_for_reschedule", nextAt: now }, now).passed).toBe(true);
    expect(notBeforeDep({ state: "up_for_retry", nextAt: new Date("2026-03-01T11:00:00Z") }, now).passed).toBe(true);
  });
});
