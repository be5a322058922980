import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { withClient, type ApiClient } from "../client.ts";
import type { OutputFormat } from "../output.ts";

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

export function integerArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
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
