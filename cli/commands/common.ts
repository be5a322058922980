import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { decimalValue } from "../../core/config.ts";
import { parseDateTime } from "../../core/dateTime.ts";
import { BatonError } from "../../core/errors.ts";
import { parseDagDate } from "../../scheduler/timetable.ts";
import { withClient, type ApiClient, type CallOptions } from "../client.ts";
import { printObject, type OutputFormat } from "../output.ts";

/** The program-wide options every API-backed command honours. */
export interface GlobalOptions {
  apiUrl?: string;
  output: OutputFormat;
}

export function globalsOf(command: Command): GlobalOptions {
  const all = command.optsWithGlobals() as { apiUrl?: string; output?: OutputFormat };
  return { apiUrl: all.apiUrl, output: all.output ?? "table" };
}

/** Runs an action with the command's API client (remote with --api-url, in-process otherwise). */
export function withApi<T>(command: Command, body: (client: ApiClient, globals: GlobalOptions) => Promise<T>): Promise<T> {
  const globals = globalsOf(command);
  return withClient({ apiUrl: globals.apiUrl }, (client) => body(client, globals));
}

/** Every page of a list endpoint (`query`: its filters), `limit` 1000 a page. */
export async function fetchAll<T>(client: ApiClient, path: string, field: string, query: CallOptions["query"] = {}): Promise<T[]> {
  const all: T[] = [];
  for (;;) {
    const page = await client.call<Record<string, unknown>>("GET", path, { query: { ...query, limit: 1000, offset: all.length } });
    const items = page[field] as T[];
    all.push(...items);
    if (items.length === 0 || all.length >= Number(page.total_entries)) return all;
  }
}

/** A whole number in decimal digits, as configuration numbers are (decimalValue): Number() took "" for 0 and "0x10" for 16. */
export function integerArg(value: string): number {
  const n = decimalValue(value);
  if (n === undefined) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
}

/**
 * Parser for a date option: what the API's "date-time" accepts (RFC 3339: an offset or Z), else
 * BATON_INVALID_DATE naming the option, printed by cli/main.ts before any request is sent.
 */
export function dateTimeArg(option: string): (value: string) => Date {
  return (value) => parseDateTime(value, option);
}

/**
 * Parser for a date option the API reads in the DAG's time zone (`backfill create --from/--to`): a date or a
 * date-time, with or without an offset, years 1000-9999 (what the API's schema and createBackfill take), else
 * BATON_INVALID_DATE naming the option before any request. The text itself is sent, as the API places it in
 * the DAG's time zone, which the CLI does not know: the check is the text's, read as if in UTC.
 */
export function dagDateArg(option: string): (value: string) => string {
  return (value) => {
    let valid = value.length <= 64 && /^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}/.test(value);
    try {
      if (valid) parseDagDate(value, "UTC", "startDate");
    } catch {
      valid = false;
    }
    if (!valid) {
      throw new BatonError(
        "BATON_INVALID_DATE",
        `${option} "${value}" is not a date: use ISO 8601, "2026-01-01" or "2026-01-01T06:00:00" (in the DAG's time zone) or with an offset, "2026-01-01T00:00:00Z"`,
      );
    }
    return value;
  };
}

/**
 * Parses a positional argument inside an action with an option parser (integerArg, …): its
 * InvalidArgumentError becomes BATON_VALIDATION_FAILED naming the argument and the value.
 */
export function parsedArg<T>(name: string, value: string, parse: (value: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "commander.invalidArgument") throw err;
    throw new BatonError("BATON_VALIDATION_FAILED", `<${name}> "${value}": ${(err as Error).message}`);
  }
}

export function jsonObjectArg(value: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(value);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return parsed;
  } catch {
    throw new InvalidArgumentError(`must be a JSON object, e.g. '{"rows": 10}'`);
  }
}

export function listArg(value: string): string[] {
  return value.split(",").map((v) => v.trim()).filter(Boolean);
}

/**
 * What a command that changed something prints: one line for people, or under `--output json`
 * the API's answer. For a 204 answer (a delete) pass `{<id field>: id, deleted: true}`.
 */
export function printChange(output: OutputFormat, line: string, answer: Record<string, unknown>): void {
  if (output === "json") printObject(answer, "json");
  else process.stdout.write(`${line}\n`);
}

/** Asks on a terminal; refuses (exit code 1) when stdin is not one. */
export async function confirm(question: string, nothingDone: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    process.stderr.write("baton: not a terminal, so not asking: pass --yes to go ahead\n");
    process.exitCode = 1;
    return false;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (/^y(es)?$/i.test(answer.trim())) return true;
  process.stdout.write(`${nothingDone}\n`);
  process.exitCode = 1;
  return false;
}
