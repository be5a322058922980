import { mayHandOff } from "../../scheduler/handoff.ts";

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
