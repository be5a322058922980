// The end of a task instance or a dag run that ends "now": never before its start. A start_date may
// have been written with another host's clock (a worker's claim, another scheduler's startRuns),
// ahead of the clock of the process that ends the row: its now would record an end before the
// start and a negative duration. Every statement that ends a row at now writes these expressions
// (finishTries clamps the same way in JS: it writes the start it read along with the end).
import type { Statement } from "./db.ts";

/**
 * SQL for the end_date of the row ending at `now`: `now`, or the row's start_date when that is later
 * (`now` when it has none). Its params, in order, go where the SQL is placed.
 */
export function endAt(now: Date): Required<Pick<Statement, "sql" | "params">> {
  return { sql: "IF(start_date > ?, start_date, ?)", params: [now, now] };
}

/** SQL for the duration (seconds) of the row ending at `now`: start_date to endAt(now), never negative; NULL without a start_date. */
export function durationTo(now: Date): Required<Pick<Statement, "sql" | "params">> {
  const end = endAt(now);
  return { sql: `TIMESTAMPDIFF(MICROSECOND, start_date, ${end.sql}) / 1e6`, params: end.params };
}
