/**
 * How commands print: a human table by default, JSON with --output json (stable for scripts:
 * exactly the API's objects).
 */
export type OutputFormat = "table" | "json";

export function parseOutputFormat(value: string): OutputFormat {
  if (value !== "table" && value !== "json") throw new Error('must be "table" or "json"');
  return value;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * Columns whose values a reader pastes into another command (`dag_id`, `dag_run_id`, `task_id`, a backfill's
 * `id`, a variable's `key`, a pool's or token's `name`, a 64-character `dag_version`): printed whole, however
 * long (a task id may have 250 characters), since a cut one would be useless there.
 */
const IDENTIFIER = /^(?:id|.*_id|key|name|dag_version)$/;

/** Widest a cell of another column (not the last) is printed. */
const CUT_AT = 60;

/**
 * Rows as aligned columns (the last column is not padded), or the raw objects as JSON. Cells longer than 60
 * characters are cut and end with "…" (the JSON has them whole), except in the last column, in identifier columns
 * (IDENTIFIER) and in those named in `uncut`.
 */
export function printRows(
  rows: Record<string, unknown>[],
  columns: string[],
  format: OutputFormat = "table",
  out: NodeJS.WritableStream = process.stdout,
  uncut: readonly string[] = [],
): void {
  if (format === "json") {
    out.write(JSON.stringify(rows, null, 2) + "\n");
    return;
  }
  const cap = columns.map((c, i) => (i === columns.length - 1 || IDENTIFIER.test(c) || uncut.includes(c) ? Infinity : CUT_AT));
  const cut = (v: string, i: number) => (v.length > cap[i]! ? v.slice(0, cap[i]! - 1) + "…" : v);
  const cells = rows.map((row) => columns.map((c, i) => cut(cell(row[c]).replace(/\s*\n\s*/g, " "), i)));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join("  ").trimEnd();
  out.write(line(columns) + "\n");
  for (const r of cells) out.write(line(r) + "\n");
}

/** One object as "key  value" lines, or as JSON. */
export function printObject(object: Record<string, unknown>, format: OutputFormat = "table", out: NodeJS.WritableStream = process.stdout): void {
  if (format === "json") {
    out.write(JSON.stringify(object, null, 2) + "\n");
    return;
  }
  const width = Math.max(...Object.keys(object).map((k) => k.length));
  for (const [key, value] of Object.entries(object)) out.write(`${key.padEnd(width)}  ${cell(value)}\n`);
}
