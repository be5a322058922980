// Assertions shared by test files.
import type { LightMyRequestResponse } from "fastify";
import type { BatonError } from "../../core/errors.ts";

/** The answer is problem JSON with this status and code (and, when given, a detail containing that text). */
export function expectProblem(res: LightMyRequestResponse, status: number, code: string, detailContains?: string): void {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
  if (detailContains) expect(res.json().detail).toContain(detailContains);
}

/**
 * `name` spoiled as the API's one name rule refuses (core/dagLimits.ts NAME_PATTERN): a tab, a
 * newline or a NUL inside it, and a tab after it.
 */
export function withControlCharacters(name: string): string[] {
  const at = Math.max(1, Math.floor(name.length / 2));
  return ["\t", "\n", "\u0000"].map((c) => name.slice(0, at) + c + name.slice(at)).concat(`${name}\t`);
}

/** What the API answers a name its rule refuses: the field, then the rule. */
export const NAME_RULE_DETAIL = "must not end with a space or other whitespace, nor contain control characters";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
export function thrown(fn: () => unknown): BatonError {
  try {
    fn();
  } catch (err) {
    return err as BatonError;
  }
  throw new Error("expected a throw");
}
