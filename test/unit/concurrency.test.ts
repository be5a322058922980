import { jest } from "@jest/globals";
import { beforeDeadline, forEachConcurrently, settledWithin } from "../../core/concurrency.ts";

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("forEachConcurrently", () => {
  it("runs at most `limit` at once, every item once, in order of start", async () => {
    const gates = Array.from({ length: 7 }, deferred);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const done = forEachConcurrently([0, 1, 2, 3, 4, 5, 6], 3, async (i) => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await gates[i]!.promise;
      running--;
    });
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.resolve();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.resolve();
    await done;
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(3);
  });

  it("runs every item even when some fail, then rejects with the first error", async () => {
    const seen: number[] = [];
    await expect(
      forEachConcurrently([1, 2, 3, 4, 5], 2, async (i) => {
        seen.push(i);
        if (i === 2) throw new Error("two failed");
        if (i === 4) throw new Error("four failed");
      }),
    ).rejects.toThrow("two failed");
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it("handles no items and a limit above the count", async () => {
    await forEachConcurrently([], 4, async () => {
      throw new Error("never called");
    });
    const seen: string[] = [];
    await forEachConcurrently(["a", "b"], 10, async (s) => void seen.push(s));
    expect(seen).toEqual(["a", "b"]);
  });
});

describe("settledWithin and beforeDeadline", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("settledWithin returns when the promise settles, rejected or not, and leaves no timer", async () => {
    await expect(settledWithin(Promise.reject(new Error("boom")), 1000)).resolves.toBeUndefined();
    await expect(settledWithin(Promise.resolve(1), 1000)).resolves.toBeUndefined();
    await expect(settledWithin(undefined, 1000)).resolves.toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
  });

  it("settledWithin returns after `ms` when the promise never settles", async () => {
    let returned = false;
    const waiting = settledWithin(new Promise(() => {}), 1000).then(() => (returned = true));
    await jest.advanceTimersByTimeAsync(999);
    expect(returned).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await waiting;
    expect(returned).toBe(true);
  });

  it("beforeDeadline passes the outcome through, and rejects with the message once `ms` passed", async () => {
    await expect(beforeDeadline(Promise.resolve(7), 1000, "late")).resolves.toBe(7);
    await expect(beforeDeadline(Promise.reject(new Error("own")), 1000, "late")).rejects.toThrow("own");
    expect(jest.getTimerCount()).toBe(0);
    const late = beforeDeadline(new Promise(() => {}), 1000, "took too long");
    const outcome = expect(late).rejects.toThrow("took too long");
    await jest.advanceTimersByTimeAsync(1000);
    await outcome;
  });
});
