import { RefusalThrottle } from "../../core/refusalThrottle.ts";

describe("RefusalThrottle", () => {
  it("blocks a client after max refusals within the window, and frees it as they age out", () => {
    const t = new RefusalThrottle(3, 60_000);
    for (const at of [0, 10_000, 20_000]) {
      expect(t.isBlocked("a", at)).toBe(false);
      t.refused("a", at);
    }
    expect(t.isBlocked("a", 20_001)).toBe(true);
    expect(t.retryAfterSeconds("a", 20_001)).toBe(40);
    expect(t.isBlocked("b", 20_001)).toBe(false);
    // The first refusal leaves the window at 60 s: one more is allowed.
    expect(t.isBlocked("a", 60_000)).toBe(false);
  });

  it("forgets every client when it tracks too many, rather than growing without bound", () => {
    const t = new RefusalThrottle(1, 60_000, 2);
    t.refused("a", 0);
    t.refused("b", 0);
    expect(t.isBlocked("a", 1)).toBe(true);
    t.refused("c", 1);
    expect(t.isBlocked("a", 2)).toBe(false);
    expect(t.isBlocked("c", 2)).toBe(true);
  });
});
