import { BatonError } from "../../core/errors.ts";
import { decodeLogToken, encodeLogToken, utf8Boundary } from "../../api/routes/taskInstances.ts";

describe("log continuation tokens", () => {
  it("round-trips offsets", () => {
    for (const offset of [0, 1, 65_536, 2 ** 40]) expect(decodeLogToken(encodeLogToken(offset))).toBe(offset);
  });

  it.each([
    ["empty", ""],
    ["not base64url", "a+b/c="],
    ["not JSON", Buffer.from("hello").toString("base64url")],
    ["no offset", Buffer.from("{}").toString("base64url")],
    ["negative", Buffer.from('{"o":-1}').toString("base64url")],
    ["fractional", Buffer.from('{"o":1.5}').toString("base64url")],
    ["a string", Buffer.from('{"o":"1"}').toString("base64url")],
    ["null", Buffer.from("null").toString("base64url")],
    ["too long", "A".repeat(201)],
  ])("rejects %s with BATON_INVALID_CONTINUATION_TOKEN", (_what, token) => {
    expect(() => decodeLogToken(token)).toThrow(BatonError);
    try {
      decodeLogToken(token);
    } catch (err) {
      expect((err as BatonError).code).toBe("BATON_INVALID_CONTINUATION_TOKEN");
    }
  });
});

describe("utf8Boundary", () => {
  const text = "aé✓𝄞b"; // 1, 2, 3, 4 and 1 bytes
  const buf = Buffer.from(text);

  it("never cuts a character: every prefix it keeps decodes cleanly", () => {
    for (let end = 0; end <= buf.length; end++) {
      const cut = utf8Boundary(buf, end);
      expect(cut).toBeLessThanOrEqual(end);
      expect(end - cut).toBeLessThan(4);
      expect(buf.subarray(0, cut).toString("utf8")).not.toContain("\uFFFD");
    }
  });

  it("keeps whole characters at the end", () => {
    expect(utf8Boundary(buf, buf.length)).toBe(buf.length);
    expect(utf8Boundary(buf, 3)).toBe(3); // "aé"
    expect(utf8Boundary(buf, 4)).toBe(3); // "a" + "é" + 1 byte of "✓"
    expect(utf8Boundary(buf, 9)).toBe(6); // 3 bytes of "𝄞" dropped
  });
});
