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
 * Rows as aligned columns (the last column is not padded), or the raw objects as JSON. Columns are cut at 60
 * characters, except those named in `uncut`: values a reader pastes into another command (a 64-character
 * `dag_version`), which a cut would make useless.
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
  const cells = rows.map((row) => columns.map((c) => cell(row[c]).replace(/\s*\n\s*/g, " ")));
  const cap = columns.map((c) => (uncut.includes(c) ? Infinity : 60));
  const widths = columns.map((c, i) => Math.min(cap[i]!, Math.max(c.length, ...cells.map((r) => r[i]!.length))));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.slice(0, cap[i]).padEnd(widths[i]!))).join("  ").trimEnd();
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
