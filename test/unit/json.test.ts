import { jsonWithinBytes, truncateUtf8, jsonDepth, MAX_JSON_DEPTH, sameJson, stableJson } from "../../core/json.ts";

const nestedText = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
const nested = (levels: number): unknown => JSON.parse(nestedText(levels));

describe("jsonDepth", () => {
  it("counts objects and arrays, not scalars", () => {
    expect([jsonDepth(1), jsonDepth(null), jsonDepth("x"), jsonDepth([]), jsonDepth({}), jsonDepth({ a: [1, { b: 2 }] })]).toEqual([0, 0, 0, 1, 1, 3]);
  });

  it("measures 100,000 levels without recursion, and stops past the limit", () => {
    expect(jsonDepth(nested(100_000))).toBe(100_000);
    expect(jsonDepth(nested(100_000), MAX_JSON_DEPTH)).toBe(MAX_JSON_DEPTH + 1);
    expect(jsonDepth(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(MAX_JSON_DEPTH);
  });
});

describe("stableJson and sameJson", () => {
  it("ignore the order of object keys, not of array items", () => {
    expect(stableJson({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(sameJson('{"a":1,"b":[1,2]}', { b: [1, 2], a: 1 })).toBe(true);
    expect(sameJson("[1,2]", [2, 1])).toBe(false);
    expect(sameJson("null", undefined)).toBe(true);
    expect(sameJson('"x"', "y")).toBe(false);
  });

  it("handle values at the depth limit, and never equal stored text deeper than it", () => {
    const atLimit = nested(MAX_JSON_DEPTH);
    expect(sameJson(JSON.stringify(atLimit), atLimit)).toBe(true);
    expect(sameJson(`{"k":${nestedText(MAX_JSON_DEPTH - 1)},"j":1}`, { j: 1, k: nested(MAX_JSON_DEPTH - 1) })).toBe(true);
    // Stored text is compared by value only within the limit (JSON.stringify itself overflows at 5,000).
    expect(sameJson(`{"k":${nestedText(5000)},"j":1}`, { j: 1, k: atLimit })).toBe(false);
  });
});

describe("truncateUtf8", () => {
  it("leaves text that fits alone and cuts longer text on a character boundary, marked", () => {
    expect(truncateUtf8("abc", 3)).toBe("abc");
    expect(truncateUtf8("abcdef", 5)).toBe("ab…");
    // "界" is 3 bytes, "😀" 4 (two UTF-16 units): never half a character.
    expect(truncateUtf8("界界界界", 10)).toBe("界界…");
    expect(truncateUtf8("😀😀😀", 9)).toBe("😀…");
    for (const max of [3, 7, 50]) expect(Buffer.byteLength(truncateUtf8("界😀a".repeat(20), max))).toBeLessThanOrEqual(max);
  });
});

describe("jsonWithinBytes", () => {
  it("keeps an error whole as JSON within the bytes, shortening its stack first, then its message", () => {
    const small = { name: "Error", message: "short", stack: "at x" };
    expect(jsonWithinBytes(small, 1000)).toBe(JSON.stringify(small));
    const big = { name: "Error", code: "E", message: "界".repeat(30_000), stack: "Error: " + "界".repeat(30_000), nonRetryable: false };
    const text = jsonWithinBytes(big, 60_000);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(60_000);
    const parsed = JSON.parse(text);
    expect(parsed).toMatchObject({ name: "Error", code: "E", nonRetryable: false });
    expect(parsed.message.startsWith("界")).toBe(true);
  });

  it("stays within the bytes when escapes make the JSON longer than the text", () => {
    const quoted = { name: "Error", message: '"\\\n'.repeat(40_000) };
    const text = jsonWithinBytes(quoted, 60_000);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(60_000);
    expect(JSON.parse(text).name).toBe("Error");
  });
});
