import { forEachConcurrently } from "../../core/concurrency.ts";

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
