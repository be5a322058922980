// api/eventCursor.ts: a live stream asks again for the ids it stepped over, so an event whose
// transaction commits after a later id's is still sent, and forgets them once they are too old.
import { EventCursor } from "../../api/eventCursor.ts";

describe("EventCursor", () => {
  it("asks for nothing missing while ids arrive in order", () => {
    const cursor = new EventCursor(10);
    cursor.advance([11, 12, 13], 0);
    expect(cursor.afterId).toBe(13);
    expect(cursor.missing).toEqual([]);
  });

  it("remembers ids stepped over until they appear", () => {
    const cursor = new EventCursor(10);
    cursor.advance([11, 14], 0);
    expect(cursor.afterId).toBe(14);
    expect(cursor.missing).toEqual([12, 13]);
    // 13 commits; 12 not yet. The read returns the late id first (ids ascending).
    cursor.advance([13, 15], 100);
    expect(cursor.afterId).toBe(15);
    expect(cursor.missing).toEqual([12]);
    cursor.advance([12], 200);
    expect(cursor.missing).toEqual([]);
  });

  it("forgets a missing id once no open transaction can hold it (a rolled-back insert)", () => {
    const cursor = new EventCursor(0, [], 0, 0, { gapTtlMs: 1_000 });
    cursor.advance([2], 0);
    cursor.advance([5], 500);
    expect(cursor.missing).toEqual([1, 3, 4]);
    cursor.advance([], 999);
    expect(cursor.missing).toEqual([1, 3, 4]);
    cursor.advance([], 1_000);
    expect(cursor.missing).toEqual([3, 4]);
    cursor.advance([], 1_500);
    expect(cursor.missing).toEqual([]);
  });

  it("keeps at most maxGaps missing ids, the newest, even across a wide jump", () => {
    const cursor = new EventCursor(0, [], 0, 0, { maxGaps: 3 });
    cursor.advance([1_000_000], 0);
    expect(cursor.missing).toEqual([999_997, 999_998, 999_999]);
    cursor.advance([1_000_002], 1);
    expect(cursor.missing).toEqual([999_998, 999_999, 1_000_001]);
  });

  it("starting at an id, counts the absent ids of the window below it as missing", () => {
    const cursor = new EventCursor(20, [15, 16, 18, 20], 14, 0);
    expect(cursor.afterId).toBe(20);
    expect(cursor.missing).toEqual([17, 19]);
    // An id at or below the window's start is not asked for.
    expect(new EventCursor(20, [], 20, 0).missing).toEqual([]);
    expect(new EventCursor(0).afterId).toBe(0);
  });

  it("an id read twice (already passed, not missing) changes nothing", () => {
    const cursor = new EventCursor(10);
    cursor.advance([12], 0);
    cursor.advance([11, 11, 12], 1);
    expect(cursor.afterId).toBe(12);
    expect(cursor.missing).toEqual([]);
  });
});
