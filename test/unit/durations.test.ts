import { formatDuration, MAX_DURATION_MS, parseDuration } from "../../core/durations.ts";

describe("parseDuration", () => {
  it.each([
    [0, 0],
    [1500, 1500],
    ["250", 250],
    ["500ms", 500],
    ["5s", 5000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["5d", 432_000_000],
    ["1.5s", 1500],
    ["2w", 1_209_600_000],
  ])("%p → %p ms", (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([["", "abc", "5x", "-1s", "5 m x"]].flat())("rejects %p naming the field", (input) => {
    expect(() => parseDuration(input, "retryDelay")).toThrow(/retryDelay/);
  });

  it("rejects negative and non-finite numbers", () => {
    expect(() => parseDuration(-1)).toThrow(RangeError);
    expect(() => parseDuration(Number.NaN)).toThrow(RangeError);
  });

  it("accepts up to 100 years and rejects more, naming the field (now + it must fit a DATETIME)", () => {
    expect(parseDuration(MAX_DURATION_MS)).toBe(MAX_DURATION_MS);
    expect(parseDuration("36525d")).toBe(MAX_DURATION_MS);
    expect(() => parseDuration(1e15, "timeout")).toThrow(/^timeout must be at most 100 years \(3155760000000 ms\), got 1000000000000000$/);
    expect(() => parseDuration(MAX_DURATION_MS + 1, "pokeInterval")).toThrow(/pokeInterval must be at most 100 years/);
    expect(() => parseDuration("36526d", "executionTimeout")).toThrow(/executionTimeout must be at most 100 years .*got "36526d"/);
    expect(() => parseDuration("1000000000000000", "retryDelay")).toThrow(/retryDelay must be at most 100 years/);
    expect(() => parseDuration(Infinity, "timeout")).toThrow(/timeout must be a non-negative number/);
  });

  it("formats durations for humans", () => {
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(1500)).toBe("1.5s");
    expect(formatDuration(90_000)).toBe("1m30s");
  });
});
