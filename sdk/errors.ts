/**
 * Errors a task may throw to control its outcome. They cross process and bundle
 * boundaries (a DAG bundle carries its own copy of this file), so Baton decides by
 * `code`, never by `instanceof` (BullMQ #1317; Temporal's symbol brand).
 */
const BRAND = Symbol.for("baton.error");

export abstract class TaskControlError extends Error {
  abstract readonly code: string;
  readonly nonRetryable: boolean = false;
  readonly [BRAND] = true;
}

/** Throw to mark the current task `skipped`; downstream tasks follow their trigger rules. */
export class SkipError extends TaskControlError {
  readonly code = "BATON_TASK_SKIPPED";
  override readonly nonRetryable = true;
  constructor(message = "task skipped") {
    super(message);
    this.name = "SkipError";
  }
}

/** Throw to fail the current task at once, without using its remaining retries. */
export class FailError extends TaskControlError {
  readonly code = "BATON_TASK_FAILED";
  override readonly nonRetryable = true;
  constructor(message: string) {
    super(message);
    this.name = "FailError";
  }
}

/**
 * The codes of InvalidDagError: the only Baton codes an error thrown while a DAG file is imported
 * keeps as its import error's code (parser/child.ts); any other (a FailError's BATON_TASK_FAILED
 * says what a task did) is BATON_DAG_IMPORT_ERROR.
 */
export const INVALID_DAG_CODES = ["BATON_DUPLICATE_TASK_ID", "BATON_INVALID_DAG", "BATON_DAG_CYCLE"] as const;
export type InvalidDagCode = (typeof INVALID_DAG_CODES)[number];

/** Raised at definition time for a DAG that cannot be valid (duplicate ids, bad options). */
export class InvalidDagError extends Error {
  readonly [BRAND] = true;
  constructor(
    readonly code: InvalidDagCode,
    message: string,
    /** "file:line" of what is wrong when it is not where the error is thrown (the edge that closes a cycle). */
    readonly definedAt?: string,
  ) {
    super(message);
    this.name = "InvalidDagError";
  }
}

/** Wraps any error as non-retryable, like Temporal's ApplicationFailure.nonRetryable. */
export function nonRetryable(error: unknown): FailError {
  const message = error instanceof Error ? error.message : String(error);
  const failure = new FailError(message);
  if (error instanceof Error && error.stack) failure.stack = error.stack;
  return failure;
}
