import { FakeClock, offsetFromWallClock, systemClock } from "../../core/clock.ts";

// A task process reads the worker's time as its wall clock plus this offset: taken in the worker,
// it does not depend on when the process receives the try (a cold child once read its sensor's
// first poke 90–385 ms early when the process took the worker's time as of the message instead).
describe("offsetFromWallClock", () => {
  it("is 0 for the system clock, whenever it is taken", () => {
    expect(Math.abs(offsetFromWallClock(systemClock))).toBeLessThanOrEqual(50);
  });

  it("is a fake clock's distance from the wall clock, following the fake clock when it moves", () => {
    const clock = new FakeClock(new Date(Date.now() + 3_600_000));
    const before = offsetFromWallClock(clock);
    expect(Math.abs(before - 3_600_000)).toBeLessThanOrEqual(50);
    clock.advance(60_000);
    expect(Math.abs(offsetFromWallClock(clock) - 3_660_000)).toBeLessThanOrEqual(50);
  });
});
