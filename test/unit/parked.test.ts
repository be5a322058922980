import { PARKED_RETRY_MS, ParkedIds } from "../../core/parked.ts";

describe("ParkedIds", () => {
  it("leaves an id out until PARKED_RETRY_MS after it was parked, then forgets it", () => {
    const parked = new ParkedIds();
    expect(parked.current(0)).toEqual([]);
    parked.park(7, 1_000);
    parked.park(9, 2_000);
    expect(parked.current(1_000 + PARKED_RETRY_MS - 1)).toEqual([7, 9]);
    expect(parked.current(1_000 + PARKED_RETRY_MS)).toEqual([9]);
    expect(parked.current(2_000 + PARKED_RETRY_MS)).toEqual([]);
  });

  it("parking an id again starts its wait again", () => {
    const parked = new ParkedIds();
    parked.park(7, 0);
    parked.park(7, PARKED_RETRY_MS);
    expect(parked.current(PARKED_RETRY_MS + 1)).toEqual([7]);
    expect(parked.current(2 * PARKED_RETRY_MS)).toEqual([]);
  });

  it("parkLonger doubles the wait of an id set aside again soon after it came back, up to PARKED_RETRY_MS", () => {
    const parked = new ParkedIds();
    expect(parked.parkLonger(7, 0, 1_000)).toBe(1_000);
    expect(parked.current(999)).toEqual([7]);
    expect(parked.current(1_000)).toEqual([]);
    expect(parked.parkLonger(7, 1_500, 1_000)).toBe(2_000);
    expect(parked.current(3_499)).toEqual([7]);
    expect(parked.current(3_500)).toEqual([]);
    let at = 3_500;
    for (let i = 0; i < 10; i++) at += parked.parkLonger(7, at, 1_000);
    expect(parked.parkLonger(7, at, 1_000)).toBe(PARKED_RETRY_MS);
  });

  it("parkLonger starts again from its first wait once an id stayed back PARKED_RETRY_MS", () => {
    const parked = new ParkedIds();
    parked.parkLonger(7, 0, 1_000);
    parked.parkLonger(7, 1_000, 1_000);
    // Back at 3,000: still remembered until PARKED_RETRY_MS later, then forgotten.
    expect(parked.current(3_000 + PARKED_RETRY_MS - 1)).toEqual([]);
    expect(parked.parkLonger(7, 3_000 + PARKED_RETRY_MS - 1, 1_000)).toBe(4_000);
    parked.current(7_000 + 2 * PARKED_RETRY_MS);
    expect(parked.parkLonger(7, 7_000 + 2 * PARKED_RETRY_MS, 1_000)).toBe(1_000);
  });
});
