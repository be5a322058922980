import { MAX_DURATION_MS } from "../../core/durations.ts";
import { retryDelayMs, shouldRetry, type RetryPolicy } from "../../scheduler/retryPolicy.ts";

const policy = (p: Partial<RetryPolicy> = {}): RetryPolicy => ({
  retries: 3,
  retryDelayMs: 1000,
  retryExponentialBackoff: false,
  maxRetryDelayMs: null,
  ...p,
});

const DAY_MS = 86_400_000;

describe("shouldRetry (Airflow: max_tries = retries, tries are 1-based)", () => {
  it("gives retries=3 four tries in all: tries 1-3 retry, try 4 fails", () => {
    expect([1, 2, 3, 4, 5].map((n) => shouldRetry(n, 3, false))).toEqual([true, true, true, false, false]);
  });

  it("never retries a task with retries=0", () => {
    expect(shouldRetry(1, 0, false)).toBe(false);
  });

  it("retries once with retries=1", () => {
    expect(shouldRetry(1, 1, false)).toBe(true);
    expect(shouldRetry(2, 1, false)).toBe(false);
  });

  it("never retries a non-retryable failure, whatever tries are left", () => {
    expect(shouldRetry(1, 10, true)).toBe(false);
    expect(shouldRetry(1, 1, true)).toBe(false);
  });
});

describe("retryDelayMs", () => {
  describe("fixed delay", () => {
    it.each([1, 2, 5, 50])("try %p waits retryDelay exactly", (tryNumber) => {
      expect(retryDelayMs(policy({ retryDelayMs: 1500 }), tryNumber, "d#t#2026-01-01")).toBe(1500);
    });

    it("is zero when retryDelay is zero", () => {
      expect(retryDelayMs(policy({ retryDelayMs: 0 }), 3, "k")).toBe(0);
    });

    it("is capped by maxRetryDelay", () => {
      expect(retryDelayMs(policy({ retryDelayMs: 10_000, maxRetryDelayMs: 4000 }), 1, "k")).toBe(4000);
    });

    it("ignores the jitter key", () => {
      expect(retryDelayMs(policy(), 2, "a")).toBe(retryDelayMs(policy(), 2, "b"));
    });

    it("honours a delay of over a year in full, up to the longest duration a DAG may declare (100 years)", () => {
      expect(retryDelayMs(policy({ retryDelayMs: 400 * DAY_MS }), 1, "k")).toBe(400 * DAY_MS);
      expect(retryDelayMs(policy({ retryDelayMs: MAX_DURATION_MS }), 3, "k")).toBe(MAX_DURATION_MS);
      expect(retryDelayMs(policy({ retryDelayMs: MAX_DURATION_MS, maxRetryDelayMs: 500 * DAY_MS }), 1, "k")).toBe(500 * DAY_MS);
    });
  });

  describe("exponential backoff", () => {
    const exp = (p: Partial<RetryPolicy> = {}) => policy({ retryExponentialBackoff: true, retryDelayMs: 1000, ...p });

    it.each([1, 2, 3, 4, 5, 8, 12])("try %p waits in [base, 2·base) with base = retryDelay·2^(try−1)", (tryNumber) => {
      const base = 1000 * 2 ** (tryNumber - 1);
      for (const key of ["a", "b", "dag#task#2026-01-01T00:00:00.000Z", "x".repeat(300)]) {
        const delay = retryDelayMs(exp(), tryNumber, key);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThan(2 * base);
      }
    });

    it("grows with the try number", () => {
      const delays = [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(exp(), n, "dag#task#2026-01-01"));
      for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
    });

    it("stays in [base, 2·base) for a fractional retryDelay", () => {
      const delay = retryDelayMs(exp({ retryDelayMs: 1.5 }), 1, "k");
      expect(delay).toBeGreaterThanOrEqual(1.5);
      expect(delay).toBeLessThan(3);
    });

    it("is deterministic: the same key and try give the same delay (every scheduler agrees)", () => {
      const key = "order_fulfillment#charge_payment#2026-01-01T00:00:00.000Z";
      const first = retryDelayMs(exp({ retryDelayMs: 60_000 }), 3, key);
      for (let i = 0; i < 5; i++) expect(retryDelayMs(exp({ retryDelayMs: 60_000 }), 3, key)).toBe(first);
    });

    it("spreads different task instances apart (jitter depends on the key)", () => {
      const keys = Array.from({ length: 40 }, (_, i) => `dag#task_${i}#2026-01-01T00:00:00.000Z`);
      const delays = new Set(keys.map((k) => retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, k)));
      // 40 keys over 120,000 possible values: nearly all distinct.
      expect(delays.size).toBeGreaterThanOrEqual(38);
      expect(retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, "dag#a#2026")).not.toBe(retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, "dag#b#2026"));
    });

    it("hashes the try number into the jitter (Airflow: dag#task#date#try), not only into the base", () => {
      // Bases double (1000·2^k), so a jitter that ignored the try would satisfy
      // jitter(n+1) mod base(n) === jitter(n) for every n.
      const key = "dag#task#2026-01-01";
      const jitter = (n: number) => retryDelayMs(exp({ retryDelayMs: 1000 }), n, key) - 1000 * 2 ** (n - 1);
      let consistent = 0;
      for (let n = 1; n < 10; n++) if (jitter(n + 1) % (1000 * 2 ** (n - 1)) === jitter(n)) consistent++;
      expect(consistent).toBeLessThan(9);
    });

    it("is capped by maxRetryDelay", () => {
      expect(retryDelayMs(policy({ retryDelayMs: 10_000, maxRetryDelayMs: 4000 }), 1, "k")).toBe(4000);
    });

    it("ignores the jitter key", () => {
      expect(retryDelayMs(policy(), 2, "a")).toBe(retryDelayMs(policy(), 2, "b"));
    });
  });

  describe("exponential backoff", () => {
    const exp = (p: Partial<RetryPolicy> = {}) => policy({ retryExponentialBackoff: true, retryDelayMs: 1000, ...p });

    it.each([1, 2, 3, 4, 5, 8, 12])("try %p waits in [base, 2·base) with base = retryDelay·2^(try−1)", (tryNumber) => {
      const base = 1000 * 2 ** (tryNumber - 1);
      for (const key of ["a", "b", "dag#task#2026-01-01T00:00:00.000Z", "x".repeat(300)]) {
        const delay = retryDelayMs(exp(), tryNumber, key);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThan(2 * base);
      }
    });

    it("grows with the try number", () => {
      const delays = [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(exp(), n, "dag#task#2026-01-01"));
      for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
    });

    it("stays in [base, 2·base) for a fractional retryDelay", () => {
      const delay = retryDelayMs(exp({ retryDelayMs: 1.5 }), 1, "k");
      expect(delay).toBeGreaterThanOrEqual(1.5);
      expect(delay).toBeLessThan(3);
    });

    it("is deterministic: the same key and try give the same delay (every scheduler agrees)", () => {
      const key = "order_fulfillment#charge_payment#2026-01-01T00:00:00.000Z";
      const first = retryDelayMs(exp({ retryDelayMs: 60_000 }), 3, key);
      for (let i = 0; i < 5; i++) expect(retryDelayMs(exp({ retryDelayMs: 60_000 }), 3, key)).toBe(first);
    });

    it("spreads different task instances apart (jitter depends on the key)", () => {
      const keys = Array.from({ length: 40 }, (_, i) => `dag#task_${i}#2026-01-01T00:00:00.000Z`);
      const delays = new Set(keys.map((k) => retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, k)));
      // 40 keys over 120,000 possible values: nearly all distinct.
      expect(delays.size).toBeGreaterThanOrEqual(38);
      expect(retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, "dag#a#2026")).not.toBe(retryDelayMs(exp({ retryDelayMs: 60_000 }), 2, "dag#b#2026"));
    });

    it("uses the try number in the jitter, not only in the base", () => {
      // Compare the jitter as a fraction of each try's base: Airflow hashes dag#task#date#try.
      const key = "dag#task#2026-01-01";
      const jitters = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => {
        const base = 60_000 * 2 ** (n - 1);
        return (retryDelayMs(exp({ retryDelayMs: 60_000 }), n, key) - base) / base;
      });
      expect(new Set(jitters.map((j) => j.toFixed(6))).size).toBeGreaterThan(1);
    });

    it("is capped by maxRetryDelay", () => {
      const p = exp({ retryDelayMs: 1000, maxRetryDelayMs: 5000 });
      expect(retryDelayMs(p, 1, "k")).toBeLessThan(2000);
      expect(retryDelayMs(p, 4, "k")).toBe(5000); // base 8000 > cap
      expect(retryDelayMs(p, 30, "k")).toBe(5000);
    });

    it("a cap of 0 means retry at once", () => {
      expect(retryDelayMs(exp({ maxRetryDelayMs: 0 }), 5, "k")).toBe(0);
    });

    it("without maxRetryDelay stops at 24 h, Airflow's default ([core] max_task_retry_delay = 86400)", () => {
      // try 18: base 131,072 s, past a day
      for (const n of [18, 60, 1100, 5000]) {
        const delay = retryDelayMs(exp(), n, "k");
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBe(DAY_MS);
      }
      // try 17: base 65,536 s plus a jitter below that, up to a day
      expect(retryDelayMs(exp(), 17, "k")).toBeGreaterThanOrEqual(65_536_000);
      expect(retryDelayMs(exp(), 17, "k")).toBeLessThanOrEqual(DAY_MS);
    });

    it("without maxRetryDelay never waits less than a retryDelay declared over 24 h", () => {
      expect(retryDelayMs(exp({ retryDelayMs: 3 * DAY_MS }), 1, "k")).toBe(3 * DAY_MS);
      expect(retryDelayMs(exp({ retryDelayMs: 3 * DAY_MS }), 40, "k")).toBe(3 * DAY_MS);
      expect(retryDelayMs(exp({ retryDelayMs: MAX_DURATION_MS }), 5, "k")).toBe(MAX_DURATION_MS);
    });

    it("stays finite and at most 100 years (the longest duration) with a cap that long", () => {
      for (const n of [60, 1100, 5000]) {
        const delay = retryDelayMs(exp({ maxRetryDelayMs: MAX_DURATION_MS }), n, "k");
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBe(MAX_DURATION_MS);
      }
    });

    it("honours a maxRetryDelay of over a year in full", () => {
      const p = exp({ retryDelayMs: DAY_MS, maxRetryDelayMs: 730 * DAY_MS });
      expect(retryDelayMs(p, 20, "k")).toBe(730 * DAY_MS);
      const base = 2 ** 9 * DAY_MS; // try 10: 512 days, plus a jitter below that
      expect(retryDelayMs(p, 10, "k")).toBeGreaterThanOrEqual(base);
      expect(retryDelayMs(p, 10, "k")).toBeLessThanOrEqual(730 * DAY_MS);
    });

    it("treats try 0 or below like try 1 (no fractional base)", () => {
      const delay = retryDelayMs(exp(), 0, "k");
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThan(2000);
    });

    it("with retryDelay 0 retries at once", () => {
      expect(retryDelayMs(exp({ retryDelayMs: 0 }), 4, "k")).toBe(0);
    });
  });
});
