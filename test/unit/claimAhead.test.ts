import { CLAIM_AHEAD_BELOW_MS, CLAIM_AHEAD_PER_SLOT, claimAheadAllowance } from "../../executor/claimAhead.ts";

const base = { concurrency: 4, maxWaitMs: 1000 };

describe("claimAheadAllowance", () => {
  it("claims nothing ahead before a try has ended, or while tries are long", () => {
    expect(claimAheadAllowance({ ...base, tryMs: undefined, dbMs: 5 })).toBe(0);
    expect(claimAheadAllowance({ ...base, tryMs: CLAIM_AHEAD_BELOW_MS, dbMs: 5 })).toBe(0);
    expect(claimAheadAllowance({ ...base, tryMs: 5000, dbMs: 5 })).toBe(0);
    expect(claimAheadAllowance({ ...base, concurrency: 0, tryMs: 1, dbMs: 5 })).toBe(0);
  });

  it("holds at least one try per slot while tries are short, even when the database is fast", () => {
    expect(claimAheadAllowance({ ...base, tryMs: 50, dbMs: undefined })).toBe(4);
    expect(claimAheadAllowance({ ...base, tryMs: 50, dbMs: 0.5 })).toBe(4);
  });

  it("covers what the slots run during four database calls (Little's law)", () => {
    // 4 slots × (4 calls × 5 ms) / 2 ms per try = 40 tries.
    expect(claimAheadAllowance({ ...base, tryMs: 2, dbMs: 5 })).toBe(40);
    // Slower database, same tries: more ahead.
    expect(claimAheadAllowance({ ...base, tryMs: 2, dbMs: 10 })).toBe(80);
    // Longer tries, same database: fewer ahead.
    expect(claimAheadAllowance({ ...base, tryMs: 20, dbMs: 10 })).toBe(8);
  });

  it("never exceeds the cap (default 64 per slot) nor what the slots start within a quarter of the wait limit", () => {
    expect(claimAheadAllowance({ ...base, tryMs: 1, dbMs: 1000 })).toBe(4 * CLAIM_AHEAD_PER_SLOT);
    expect(claimAheadAllowance({ ...base, cap: 10, tryMs: 1, dbMs: 1000 })).toBe(10);
    // 4 slots × 250 ms / 50 ms per try = 20, though four 1-s calls would want 320.
    expect(claimAheadAllowance({ ...base, tryMs: 50, dbMs: 1000 })).toBe(20);
    // A short wait limit wins over the one-per-slot floor.
    expect(claimAheadAllowance({ ...base, maxWaitMs: 100, tryMs: 90, dbMs: 1 })).toBe(1);
  });

  it("claims nothing ahead on a non-finite try average, and ignores a non-finite database average", () => {
    expect(claimAheadAllowance({ ...base, tryMs: Number.NaN, dbMs: 5 })).toBe(0);
    expect(claimAheadAllowance({ ...base, tryMs: Number.POSITIVE_INFINITY, dbMs: 5 })).toBe(0);
    expect(claimAheadAllowance({ ...base, tryMs: 2, dbMs: Number.NaN })).toBe(4);
  });

  it("treats a try reported as taking no time as 0.1 ms (no division by zero)", () => {
    expect(claimAheadAllowance({ ...base, tryMs: 0, dbMs: 0.01 })).toBe(4);
    expect(Number.isFinite(claimAheadAllowance({ ...base, tryMs: 0, dbMs: 2 }))).toBe(true);
  });
});
