import { periodicReparses, transientRetryDelayMs, transientRetryDue, versionsChangedUnedited } from "../../parser/reparse.ts";

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

describe("periodicReparses", () => {
  const t0 = new Date("2026-01-01T00:00:00Z");
  const at = (ms: number) => new Date(t0.getTime() + ms);
  const files = (...parsedAt: number[]) => parsedAt.map((ms, i) => ({ file: `f${i}`, parsedAt: at(ms) }));

  it("takes the files whose last parse is at least the interval old, oldest first", () => {
    expect(periodicReparses(files(0, -5_000, 1, -1_000), 4, at(60_000), at(0), 60_000)).toEqual(["f1", "f3", "f0"]);
  });

  it("takes no more than the folder's share of the time since the last scan, rounded up", () => {
    const due = files(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    // 10 files, 6 s of a 60 s interval: one; 18 s: three; the whole interval or more: all due.
    expect(periodicReparses(due, 10, at(66_000), at(60_000), 60_000)).toHaveLength(1);
    expect(periodicReparses(due, 10, at(78_000), at(60_000), 60_000)).toHaveLength(3);
    expect(periodicReparses(due, 10, at(600_000), at(0), 60_000)).toHaveLength(10);
    // Any time at all gives one (a scan right after another still moves on); none, nothing.
    expect(periodicReparses(due, 10, at(60_001), at(60_000), 60_000)).toHaveLength(1);
    expect(periodicReparses(due, 10, at(60_000), at(60_000), 60_000)).toEqual([]);
  });
});

describe("versionsChangedUnedited", () => {
  const parse = (contentHash: string, versions: Record<string, string>) => ({ contentHash, versions: new Map(Object.entries(versions)) });

  it("names the DAGs whose version changed while the file's content hash did not", () => {
    expect(versionsChangedUnedited(parse("h", { a: "1", b: "1" }), parse("h", { a: "2", b: "1" }))).toEqual(["a"]);
  });

  it("says nothing of an edited file, a first parse, a DAG id new to the file or an unchanged version", () => {
    expect(versionsChangedUnedited(parse("h", { a: "1" }), parse("h2", { a: "2" }))).toEqual([]);
    expect(versionsChangedUnedited(undefined, parse("h", { a: "2" }))).toEqual([]);
    expect(versionsChangedUnedited(parse("h", { a: "1" }), parse("h", { a: "1", b: "2" }))).toEqual([]);
    expect(versionsChangedUnedited(parse("h", { a: "1" }), parse("h", { a: "1" }))).toEqual([]);
  });
});
