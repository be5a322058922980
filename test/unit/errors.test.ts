import { readFileSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { fileURLToPath } from "node:url";
import { BatonError, ERRORS, RETIRED_CODES, isBatonError, type ErrorCode } from "../../core/errors.ts";

const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));
const doc = readFileSync(root("docs/errors.md"), "utf8");
const CODES = Object.keys(ERRORS) as ErrorCode[];

/** Rows of the code table: | `BATON_X` | 404 | meaning | what to do | */
const rows = new Map<string, { status: string; meaning: string; todo: string }>();
for (const line of doc.split("\n")) {
  const m = line.match(/^\|\s*`(BATON_[A-Z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$/);
  if (!m) continue;
  if (rows.has(m[1]!)) throw new Error(`docs/errors.md lists ${m[1]} twice`);
  rows.set(m[1]!, { status: m[2]!.trim(), meaning: m[3]!.trim(), todo: m[4]!.trim() });
}

/** Environment variables read by core/config.ts may be named in the doc without being codes. */
const configSource = readFileSync(root("core/config.ts"), "utf8");
const ENV_NAMES = new Set([...configSource.matchAll(/\b(BATON_[A-Z0-9_]+)\b/g)].map((m) => m[1]!).filter((n) => !(n in ERRORS)));

describe("ERRORS", () => {
  it("uses BATON_ upper-snake codes", () => {
    for (const code of CODES) expect(code).toMatch(/^BATON_[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
  });

  it.each(CODES)("%s has an HTTP error status (4xx/5xx) that HTTP defines, and a title", (code) => {
    const { status, title } = ERRORS[code];
    expect(Number.isInteger(status)).toBe(true);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThanOrEqual(599);
    expect(STATUS_CODES[status]).toBeDefined();
    expect(title.trim().length).toBeGreaterThan(0);
    expect(title).not.toMatch(/\.$/);
  });

  it("never reuses a retired code", () => {
    for (const code of RETIRED_CODES) expect(CODES).not.toContain(code);
  });

  it("has no duplicate titles (each code means one thing)", () => {
    const titles = CODES.map((c) => ERRORS[c].title);
    expect(new Set(titles).size).toBe(titles.length);
  });
});

describe("docs/errors.md", () => {
  it("has a table row for every code", () => {
    const missing = CODES.filter((c) => !rows.has(c));
    expect(missing).toEqual([]);
  });

  it("documents only codes that exist or are retired", () => {
    const unknown = [...rows.keys()].filter((c) => !(c in ERRORS) && !RETIRED_CODES.includes(c));
    expect(unknown).toEqual([]);
  });

  it("names no BATON_ identifier anywhere that is neither a code, a retired code nor a setting", () => {
    const mentioned = new Set([...doc.matchAll(/\bBATON_[A-Z0-9_]+\b/g)].map((m) => m[0]));
    const unknown = [...mentioned].filter((n) => !(n in ERRORS) && !RETIRED_CODES.includes(n) && !ENV_NAMES.has(n));
    expect(unknown).toEqual([]);
  });

  it.each(CODES)("%s: the documented status matches errors.ts, with a meaning and what to do", (code) => {
    const row = rows.get(code);
    expect(row).toBeDefined();
    expect(row!.status).toBe(String(ERRORS[code].status));
    expect(row!.meaning.length).toBeGreaterThan(20);
    expect(row!.todo.length).toBeGreaterThan(10);
  });
});

describe("BatonError", () => {
  it.each(CODES)("%s carries its code and status", (code) => {
    const err = new BatonError(code, "detail here");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("BatonError");
    expect(err.code).toBe(code);
    expect(err.status).toBe(ERRORS[code].status);
    expect(err.message).toBe("detail here");
    expect(isBatonError(err)).toBe(true);
  });

  it("uses the code's title when no detail is given", () => {
    expect(new BatonError("BATON_DAG_NOT_FOUND").message).toBe("DAG not found");
  });

  it("keeps structured details", () => {
    const err = new BatonError("BATON_DAG_RUN_FINISHED", "finished", { state: "failed" });
    expect(err.details).toEqual({ state: "failed" });
    expect(new BatonError("BATON_INTERNAL").details).toBeUndefined();
  });

  it("has a stack trace", () => {
    expect(new BatonError("BATON_INTERNAL").stack).toMatch(/BatonError/);
  });

  it("isBatonError rejects look-alikes", () => {
    expect(isBatonError(new Error("x"))).toBe(false);
    expect(isBatonError({ code: "BATON_INTERNAL", status: 500, message: "x" })).toBe(false);
    expect(isBatonError(null)).toBe(false);
    expect(isBatonError(undefined)).toBe(false);
  });
});
