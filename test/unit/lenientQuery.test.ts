// api/lenientQuery.ts: the query-string text fixed before validation, as Airflow's API reads it.
import { Type } from "typebox";
import { booleanText, dateTimeText, queryFixesOf } from "../../api/lenientQuery.ts";
import { PageQuery } from "../../api/schemas.ts";

describe("lenient query text", () => {
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

  it("finds the boolean and date-time parameters of a querystring schema, intersections and repeated ones included", () => {
    const schema = Type.Intersect([
      PageQuery,
      Type.Object({
        only_active: Type.Optional(Type.Boolean()),
        flags: Type.Optional(Type.Array(Type.Boolean())),
        after: Type.Optional(Type.String({ format: "date-time" })),
        dag_id: Type.Optional(Type.String()),
      }),
      Type.Object({ days: Type.Array(Type.String({ format: "date-time" })) }),
    ]);
    expect(queryFixesOf(schema)).toEqual({ booleans: ["only_active", "flags"], dateTimes: ["after", "days"] });
    expect(queryFixesOf(PageQuery)).toEqual({ booleans: [], dateTimes: [] });
    expect(queryFixesOf(undefined)).toEqual({ booleans: [], dateTimes: [] });
  });
});
