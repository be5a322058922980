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

/** Calls fn and returns what it threw (fails the test when it does not throw). */
export function thrown(fn: () => unknown): BatonError {
  try {
    fn();
  } catch (err) {
    return err as BatonError;
  }
  throw new Error("expected a throw");
}
