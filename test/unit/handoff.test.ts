import { DEEP_GATE_HOLD_MS, GateDepths, blockedByQueued, mayHandOff } from "../../scheduler/handoff.ts";

describe("mayHandOff", () => {
  it("hands off when the pool has room and nothing of higher priority waits", () => {
    expect(mayHandOff({ room: 1, topQueued: null }, 1, 1)).toBe(true);
    expect(mayHandOff({ room: 3, topQueued: 5 }, 2, 5)).toBe(true); // a tie goes to the hand-off
    expect(mayHandOff({ room: 3, topQueued: 5 }, 2, 9)).toBe(true);
  });

  it("refuses when a queued try of the pool has a higher priority", () => {
    expect(mayHandOff({ room: 1, topQueued: 2 }, 1, 1)).toBe(false);
    // A backfill task's priority is lowered by 1e9: any other try is ahead of it.
    expect(mayHandOff({ room: 1, topQueued: 1 }, 1, 1 - 1e9)).toBe(false);
  });

  it("refuses when the pool's running tries leave no room (its slots were lowered), or it is gone", () => {
    expect(mayHandOff({ room: 0, topQueued: null }, 1, 1)).toBe(false);
    expect(mayHandOff({ room: -2, topQueued: null }, 1, 1)).toBe(false);
    expect(mayHandOff({ room: 1, topQueued: null }, 2, 1)).toBe(false);
    expect(mayHandOff({ room: null, topQueued: null }, 1, 1)).toBe(false);
    expect(mayHandOff(undefined, 1, 1)).toBe(false);
  });
});

describe("blockedByQueued", () => {
  it("is true only when a queued try of higher priority alone refused the hand-off", () => {
    expect(blockedByQueued({ room: 1, topQueued: 2 }, 1, 1)).toBe(true);
    expect(blockedByQueued({ room: 1, topQueued: 2 }, 1, 2)).toBe(false); // a tie hands off
    expect(blockedByQueued({ room: 1, topQueued: null }, 1, 1)).toBe(false);
    expect(blockedByQueued(undefined, 1, 1)).toBe(false);
  });

  it("is false when the pool had no room for the task: reading deeper would change nothing", () => {
    expect(blockedByQueued({ room: 0, topQueued: null }, 1, 1)).toBe(false);
    expect(blockedByQueued({ room: 0, topQueued: 5 }, 1, 1)).toBe(false);
    expect(blockedByQueued({ room: 1, topQueued: 5 }, 2, 1)).toBe(false);
    expect(blockedByQueued({ room: null, topQueued: 5 }, 1, 1)).toBe(false);
  });
});

describe("GateDepths", () => {
  it("reads every pool shallow until a shallow read refused a hand-off", () => {
    const depths = new GateDepths();
    expect([...depths.deepPools(0)]).toEqual([]);
    depths.noteBlocked([], 0);
    expect([...depths.deepPools(0)]).toEqual([]);
  });

  it("reads a pool deep for DEEP_GATE_HOLD_MS after a refusal, then shallow again", () => {
    const depths = new GateDepths();
    depths.noteBlocked(["small"], 1_000);
    expect([...depths.deepPools(1_000)]).toEqual(["small"]);
    expect([...depths.deepPools(1_000 + DEEP_GATE_HOLD_MS - 1)]).toEqual(["small"]);
    expect([...depths.deepPools(1_000 + DEEP_GATE_HOLD_MS)]).toEqual([]);
  });

  it("extends the hold from the latest refusal, per pool", () => {
    const depths = new GateDepths(100);
    depths.noteBlocked(["a", "b"], 0);
    depths.noteBlocked(["a"], 80);
    expect([...depths.deepPools(150)]).toEqual(["a"]);
    expect([...depths.deepPools(180)]).toEqual([]);
  });
});
