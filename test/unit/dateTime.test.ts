import Ajv from "ajv";
import addFormats from "ajv-formats";
import { isDateTime, parseDateTime } from "../../core/dateTime.ts";
import { isBatonError } from "../../core/errors.ts";

// The API's check: a body field declared { type: "string", format: "date-time" }, compiled as api/app.ts does.
const apiAccepts = addFormats.default(new Ajv.default({ strict: false })).compile({ type: "string", format: "date-time" });

const ACCEPTED: [string, string][] = [
  ["2026-03-01T00:00:00Z", "2026-03-01T00:00:00.000Z"],
  ["2026-03-01T00:00:00z", "2026-03-01T00:00:00.000Z"],
  ["2026-03-01T00:00:00.123456Z", "2026-03-01T00:00:00.123Z"],
  ["2026-03-01T09:00:00+09:00", "2026-03-01T00:00:00.000Z"],
  ["2026-03-01T00:00:00-05:30", "2026-03-01T05:30:00.000Z"],
  ["2026-03-01T01:00:00+0100", "2026-03-01T00:00:00.000Z"],
  ["2026-03-01 00:00:00Z", "2026-03-01T00:00:00.000Z"],
  ["2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"],
];

const REFUSED = [
  "1", // new Date("1") is 2001-01-01
  "32", // 2032-01-01
  "March 3 2026",
  "2026-03-01T00:00:00", // no offset: new Date() reads it in the local time zone
  "2026-03-01", // a date without a time
  "2026-03-01T00:00Z", // no seconds
  "2026-02-30T00:00:00Z", // no such day (new Date() rolls it over to March 2)
  "2025-02-29T00:00:00Z",
  "2026-13-01T00:00:00Z",
  "2026-03-01T24:00:00Z",
  "2026-03-01T00:00:00+24:00",
  "2026-03-01T23:59:60Z", // a leap second: the API's schema lets it through, then answers BATON_INVALID_DATE
  " 2026-03-01T00:00:00Z",
  "1772323200000",
  "",
];

describe("parseDateTime", () => {
  it.each(ACCEPTED)("accepts %p as %p", (text, iso) => {
    expect(parseDateTime(text, "--logical-date").toISOString()).toBe(iso);
  });

  it.each(REFUSED)("refuses %p with BATON_INVALID_DATE naming the option and the text", (text) => {
    let thrown: unknown;
    try {
      parseDateTime(text, "--before");
    } catch (err) {
      thrown = err;
    }
    expect(isBatonError(thrown)).toBe(true);
    expect((thrown as { code: string }).code).toBe("BATON_INVALID_DATE");
    expect((thrown as Error).message).toContain(`--before "${text}"`);
    expect((thrown as Error).message).toContain("2026-01-01T00:00:00Z");
  });

  it("accepts exactly what the API's date-time schema accepts", () => {
    for (const text of [...ACCEPTED.map(([t]) => t), ...REFUSED]) expect({ text, accepted: isDateTime(text) }).toEqual({ text, accepted: apiAccepts(text) });
  });
});
