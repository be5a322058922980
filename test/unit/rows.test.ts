// Row conversions shared by the store: a DATETIME read as text must come out exactly as the same
// value read as a Date and formatted by toISOString (the API mixes both reads).
import { isoOfDateTimeText, isoOrNull } from "../../store/rows.ts";

describe("isoOfDateTimeText", () => {
  it.each([
    ["2026-11-25 12:34:56.789123", "2026-11-25T12:34:56.789Z"],
    ["2026-11-25 12:34:56.789999", "2026-11-25T12:34:56.789Z"],
    ["2026-11-25 12:34:56.000000", "2026-11-25T12:34:56.000Z"],
    ["2026-11-25 12:34:56", "2026-11-25T12:34:56.000Z"],
    ["2026-11-25 12:34:56.5", "2026-11-25T12:34:56.500Z"],
    ["1000-01-01 00:00:00.000000", "1000-01-01T00:00:00.000Z"],
    ["9999-12-31 23:59:59.999999", "9999-12-31T23:59:59.999Z"],
  ])("%s → %s", (text, iso) => {
    expect(isoOfDateTimeText(text)).toBe(iso);
    // The same instant as a Date (milliseconds truncated, as mysql2 parses) formats the same.
    expect(new Date(iso).toISOString()).toBe(iso);
  });
});

describe("isoOrNull", () => {
  it("formats Dates and DATETIME text alike and keeps null for none", () => {
    const date = new Date("2026-03-01T10:20:30.456Z");
    expect(isoOrNull(date)).toBe("2026-03-01T10:20:30.456Z");
    expect(isoOrNull("2026-03-01 10:20:30.456789")).toBe(isoOrNull(date));
    expect(isoOrNull(null)).toBeNull();
    expect(isoOrNull(undefined)).toBeNull();
  });
});
