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
});
