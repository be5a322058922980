import { transientRetryDelayMs, transientRetryDue } from "../../parser/reparse.ts";

describe("transientRetryDue", () => {
  const started = new Date("2026-01-01T00:00:00Z");
  const at = (ms: number) => new Date(started.getTime() + ms);

  it("never re-parses an unchanged file after a deterministic error or a success", () => {
    for (const errorCode of [null, "BATON_DAG_IMPORT_ERROR", "BATON_DAG_CYCLE", "BATON_INVALID_DAG"]) {
      expect(transientRetryDue({ errorCode, parsedAt: at(-60_000) }, at(10 ** 9), started, 1_000)).toBe(false);
    }
  });

  it.each(["BATON_DAG_PARSE_TIMEOUT", "BATON_DAG_LOADER_DIED"])("retries %s once the delay passed", (errorCode) => {
    expect(transientRetryDue({ errorCode, parsedAt: at(1_000) }, at(1_999), started, 1_000)).toBe(false);
    expect(transientRetryDue({ errorCode, parsedAt: at(1_000) }, at(2_000), started, 1_000)).toBe(true);
  });

  it("retries a transient error recorded before this processor started, at once", () => {
    expect(transientRetryDue({ errorCode: "BATON_DAG_PARSE_TIMEOUT", parsedAt: at(-1) }, started, started, 3_600_000)).toBe(true);
  });

  it("waits at least one rescan and ten parse timeouts", () => {
    expect(transientRetryDelayMs({ rescanIntervalMs: 5_000, parseTimeoutMs: 30_000 })).toBe(300_000);
    expect(transientRetryDelayMs({ rescanIntervalMs: 600_000, parseTimeoutMs: 1_000 })).toBe(600_000);
  });
});
