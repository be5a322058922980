// scheduler/deps/poolSlots.ts: a try asking for more slots than its pool has in all never runs.
import { poolSlotsDep } from "../../scheduler/deps/poolSlots.ts";
import { WarnOnce } from "../../core/warnOnce.ts";
import { shownSlots, UNLIMITED_STORED_SLOTS } from "../../store/pools.ts";

const ti = { dagId: "d", runId: "r", taskId: "t", pool: "p", poolSlots: 3 };

describe("poolSlotsDep", () => {
  it("fails when the task asks for more slots than the pool has, naming the task, run and sizes as Airflow does", () => {
    const status = poolSlotsDep(ti, { slots: 2 });
    expect(status).toMatchObject({ dep: "pool_slots", passed: false });
    expect(status.reason).toContain('Not executing task "t" of DAG "d", run "r": Requested pool slots (3) are greater than total pool slots: 2 for pool: p');
  });

  it("passes when the pool is as large or larger (slots in use free up), and fails for a pool that does not exist", () => {
    expect(poolSlotsDep(ti, { slots: 3 }).passed).toBe(true);
    expect(poolSlotsDep(ti, { slots: 128 }).passed).toBe(true);
    expect(poolSlotsDep(ti, undefined)).toMatchObject({ passed: false, reason: expect.stringContaining("does not exist") });
  });

  it("passes for a pool without limit (slots -1, as the API shows it), saying so rather than a count", () => {
    const status = poolSlotsDep({ ...ti, poolSlots: 500 }, { slots: shownSlots(UNLIMITED_STORED_SLOTS) });
    expect(status).toMatchObject({ dep: "pool_slots", passed: true, reason: "pool p has no slot limit, the try needs 500" });
    expect(status.reason).not.toContain(String(UNLIMITED_STORED_SLOTS));
  });
});

describe("WarnOnce", () => {
  it("says yes once per key, and forgets everything rather than grow past its bound", () => {
    const once = new WarnOnce(2);
    expect([once.first("a"), once.first("a"), once.first("b"), once.first("b")]).toEqual([true, false, true, false]);
    expect(once.first("c")).toBe(true);
    expect(once.first("a")).toBe(true);
  });

  it("tells whether a key was warned about without marking it", () => {
    const once = new WarnOnce();
    expect([once.has("a"), once.has("a")]).toEqual([false, false]);
    expect(once.first("a")).toBe(true);
    expect(once.has("a")).toBe(true);
  });
});
