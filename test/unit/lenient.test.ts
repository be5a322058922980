// api/lenient.ts: the query-string text fixed before validation, as Airflow's API reads it.
import { Type } from "typebox";
import { booleanText, dateTimeText, pageLimit, routeFixesOf } from "../../api/lenient.ts";
import { PageBody, PageQuery } from "../../api/schemas.ts";

describe("lenient input", () => {
  it("lowercases true and false in any case, and leaves other text for the schema to refuse", () => {
    expect(["True", "FALSE", "tRuE", "false"].map(booleanText)).toEqual(["true", "false", "true", "false"]);
    expect(["yes", "1", "", "Truee", " true"].map(booleanText)).toEqual(["yes", "1", "", "Truee", " true"]);
  });

  it("turns the space before an offset at the end back into +", () => {
    expect(dateTimeText("2026-01-01T00:00:00 00:00")).toBe("2026-01-01T00:00:00+00:00");
    expect(dateTimeText("2026-01-01T00:00:00.123456 05:30")).toBe("2026-01-01T00:00:00.123456+05:30");
    expect(dateTimeText("2026-01-01T00:00:00 0530")).toBe("2026-01-01T00:00:00+0530");
    expect(dateTimeText("2026-01-01T00:00:00 05")).toBe("2026-01-01T00:00:00+05");
    expect(dateTimeText("2026-01-01 00:00:00 01:00")).toBe("2026-01-01 00:00:00+01:00");
  });

  it("leaves every other date-time as it was", () => {
    for (const text of ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00-01:00", "2026-01-01 00:00:00Z", "2026-01-01 00:00:00", "yesterday", "2026-01-01T00:00:00 00:00 "]) {
      expect(dateTimeText(text)).toBe(text);
    }
  });

  it("finds the boolean and date-time parameters and the limits of a route's schema, intersections and repeated ones included", () => {
    const querystring = Type.Intersect([
      PageQuery,
      Type.Object({
        only_active: Type.Optional(Type.Boolean()),
        flags: Type.Optional(Type.Array(Type.Boolean())),
        after: Type.Optional(Type.String({ format: "date-time" })),
        dag_id: Type.Optional(Type.String()),
      }),
      Type.Object({ days: Type.Array(Type.String({ format: "date-time" })) }),
    ]);
    expect(routeFixesOf({ querystring })).toEqual({ booleans: ["only_active", "flags"], dateTimes: ["after", "days"], queryLimit: true, bodyLimit: false });
    expect(routeFixesOf({ body: Type.Object({ ...PageBody, dag_ids: Type.Array(Type.String()) }) })).toEqual({ booleans: [], dateTimes: [], queryLimit: false, bodyLimit: true });
    // A limit of another meaning (a string) is no page limit.
    expect(routeFixesOf({ querystring: Type.Object({ limit: Type.String() }) }).queryLimit).toBe(false);
    expect(routeFixesOf(undefined)).toEqual({ booleans: [], dateTimes: [], queryLimit: false, bodyLimit: false });
  });

  it("reads a page limit as Airflow's check_limit does", () => {
    expect([1, 7, 100, 999, 1000].map(pageLimit)).toEqual([1, 7, 100, 999, 1000]);
    expect([1001, 5000, 1e300, Infinity].map(pageLimit)).toEqual([1000, 1000, 1000, 1000]);
    expect(pageLimit(0)).toBe(100);
  });
});
