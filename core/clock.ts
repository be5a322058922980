/**
 * Every component reads time from a Clock so tests can move time without sleeping.
 * SQL never calls NOW(): the current time is passed in as a parameter.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

/**
 * How far `clock` is from this host's wall clock (0 for systemClock). A task process on the same
 * host reads the worker's time as its own wall clock plus this, moving on with real time.
 */
export function offsetFromWallClock(clock: Clock): number {
  return clock.now().getTime() - Date.now();
}

/** A clock that only moves when told to; used by unit and integration tests. */
export class FakeClock implements Clock {
  private current: number;

  constructor(start: Date | string = "2026-01-01T00:00:00Z") {
    this.current = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  set(to: Date | string): void {
    this.current = new Date(to).getTime();
  }

  advance(ms: number): Date {
    this.current += ms;
    return this.now();
  }
}
