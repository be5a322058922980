import { jest } from "@jest/globals";
import { abortableSleep, MAX_TIMER_MS, setLongTimeout, timeoutSignal } from "../../core/timers.ts";

const DAY = 86_400_000;

describe("setLongTimeout", () => {
  // Fake timers model Node's overflow: a plain setTimeout of more than 2^31−1 ms fires after 1 ms.
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("fires after a delay longer than Node's 2^31−1 ms limit, not before", () => {
    const fn = jest.fn();
    setLongTimeout(fn, 30 * DAY);
    jest.advanceTimersByTime(1000);
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(30 * DAY - 1001);
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(100 * DAY);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("chains timers of at most maxChunkMs", () => {
    const fn = jest.fn();
    setLongTimeout(fn, 25, 10);
    jest.advanceTimersByTime(10);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(14);
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it("is cleared in any chunk, and clearing twice or after firing is harmless", () => {
    const fn = jest.fn();
    const t = setLongTimeout(fn, 3 * MAX_TIMER_MS);
    jest.advanceTimersByTime(MAX_TIMER_MS + 5);
    t.clear();
    t.clear();
    jest.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
    const g = jest.fn();
    const u = setLongTimeout(g, 5);
    jest.advanceTimersByTime(5);
    u.clear();
    expect(g).toHaveBeenCalledTimes(1);
  });

  it("fires short and zero delays like setTimeout, and never fires for Infinity", () => {
    const fn = jest.fn();
    setLongTimeout(fn, 0);
    setLongTimeout(fn, -5);
    setLongTimeout(fn, 1);
    const never = jest.fn();
    setLongTimeout(never, Infinity);
    jest.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(3);
    jest.advanceTimersByTime(1000 * DAY);
    expect(never).not.toHaveBeenCalled();
  });
});

describe("abortableSleep", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("sleeps the whole of a delay over 2^31−1 ms (a sensor's long pokeInterval)", async () => {
    let woke = false;
    void abortableSleep(40 * DAY, new AbortController().signal).then(() => (woke = true));
    await jest.advanceTimersByTimeAsync(39 * DAY);
    expect(woke).toBe(false);
    await jest.advanceTimersByTimeAsync(DAY);
    expect(woke).toBe(true);
  });

  it("ends at once when aborted, leaving no timer behind", async () => {
    const abort = new AbortController();
    const slept = abortableSleep(40 * DAY, abort.signal);
    abort.abort();
    await slept;
    expect(jest.getTimerCount()).toBe(0);
    await abortableSleep(5, abort.signal);
  });
});

describe("timeoutSignal", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("aborts with a TimeoutError after a delay over 2^31−1 ms (httpSensor's requestTimeout), not before", () => {
    const { signal } = timeoutSignal(30 * DAY);
    jest.advanceTimersByTime(30 * DAY - 1);
    expect(signal.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe("TimeoutError");
  });

  it("never aborts once cleared", () => {
    const t = timeoutSignal(10);
    t.clear();
    jest.advanceTimersByTime(100);
    expect(t.signal.aborted).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });
});
