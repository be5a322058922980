// Which keys are sensitive, redaction of JSON, the log masker, and secret encryption.
import { randomBytes } from "node:crypto";
import { isSensitiveKey, redactJson, SecretMasker, sensitiveLeaves } from "../../core/sensitive.ts";
import { decrypt, encrypt, secretKey } from "../../store/secretBox.ts";

describe("isSensitiveKey", () => {
  it.each(["password", "DB_PASSWORD", "my_secret", "passwd", "Authorization", "api_key", "stripeApiKey", "access_token", "private_key", "token", "slack_token_x"])(
    "%s is sensitive",
    (key) => expect(isSensitiveKey(key)).toBe(true),
  );
  it.each(["host", "region", "timeout", "pass", "user_name", "tok"])("%s is not", (key) => expect(isSensitiveKey(key)).toBe(false));
});

describe("redactJson and sensitiveLeaves", () => {
  const extra = { region: "eu", client_secret: "abc", nested: { api_key: { id: 1, k: "deep" }, list: [{ token: 42 }, "plain"] } };
  it("masks every value under a sensitive key, at any depth, whatever its type", () => {
    expect(redactJson(extra)).toEqual({ region: "eu", client_secret: "***", nested: { api_key: "***", list: [{ token: "***" }, "plain"] } });
    expect(extra.client_secret).toBe("abc");
  });
  it("lists the scalars under sensitive keys", () => {
    expect(sensitiveLeaves(extra).sort()).toEqual(["1", "42", "abc", "deep"]);
    expect(sensitiveLeaves(["a1", { b: "b2" }], true)).toEqual(["a1", "b2"]);
  });
});

describe("SecretMasker", () => {
  it("replaces every occurrence of each secret, longest first, and skips short ones", () => {
    const m = new SecretMasker();
    m.add("abc");
    m.add("hunter2");
    m.add("hunter2hunter2");
    m.add(undefined);
    expect(m.mask("pw=hunter2hunter2 again hunter2, abc stays")).toBe("pw=*** again ***, abc stays");
  });
  it("treats secrets as text, not patterns, and matches their JSON-escaped form", () => {
    const m = new SecretMasker();
    m.add('a.b*"c\\d');
    expect(m.mask('raw a.b*"c\\d json "a.b*\\"c\\\\d" other axb*"c\\d')).toBe('raw *** json "***" other axb*"c\\d');
  });
  it("passes text through when empty, and forgets on clear", () => {
    const m = new SecretMasker();
    expect(m.mask("nothing")).toBe("nothing");
    m.add("secret-1");
    m.clear();
    expect(m.mask("secret-1")).toBe("secret-1");
  });
});

describe("secretBox", () => {
  it("round-trips through AES-256-GCM with a fresh IV each time, and refuses another key", () => {
    const key = secretKey({ BATON_SECRET_KEY: "k1" })!;
    const a = encrypt(key, "pässword");
    expect(a).not.toContain("pässword");
    expect(encrypt(key, "pässword")).not.toBe(a);
    expect(decrypt(key, a, "x")).toBe("pässword");
    expect(() => decrypt(secretKey({ BATON_SECRET_KEY: "k2" })!, a, "the password of y")).toThrow(/the password of y cannot be decrypted/);
    expect(() => decrypt(randomBytes(32), "garbage", "z")).toThrow(/cannot be decrypted/);
    expect(secretKey({})).toBeNull();
  });
});
