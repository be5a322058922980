// store/queries/paging.ts: the LIMIT/OFFSET every list writes into its SQL is an integer literal,
// or the request is refused (400) before the query: never 1e+21 in SQL (a syntax error, a 500).
import { limitOffset, sqlCount } from "../../store/queries/paging.ts";
import { thrown } from "../helpers/expect.ts";

describe("limitOffset", () => {
  it("writes whole numbers as they are", () => {
    expect(limitOffset({ limit: 100, offset: 0 })).toBe("LIMIT 100 OFFSET 0");
    expect(limitOffset({ limit: 1, offset: Number.MAX_SAFE_INTEGER })).toBe(`LIMIT 1 OFFSET ${Number.MAX_SAFE_INTEGER}`);
    expect(limitOffset({ limit: 10.7, offset: 2.2 })).toBe("LIMIT 10 OFFSET 2");
  });

  it.each([1e21, 1e300, Number.MAX_SAFE_INTEGER + 2, -1, NaN, Infinity])("refuses %p as an offset with BATON_VALIDATION_FAILED", (offset) => {
    const err = thrown(() => limitOffset({ limit: 100, offset }));
    expect(err.code).toBe("BATON_VALIDATION_FAILED");
    expect(err.message).toContain("offset must be a whole number");
  });

  it("names the field it refuses", () => {
    expect(thrown(() => sqlCount("limit", 1e21)).message).toMatch(/^limit must be .* got 1e\+21$/);
  });
});
