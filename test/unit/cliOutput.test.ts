import { PassThrough } from "node:stream";
import { printRows } from "../../cli/output.ts";

/** What printRows writes, as lines. */
function table(rows: Record<string, unknown>[], columns: string[], uncut: string[] = []): string[] {
  const out = new PassThrough();
  let text = "";
  out.on("data", (b: Buffer) => (text += b.toString()));
  printRows(rows, columns, "table", out, uncut);
  return text.trimEnd().split("\n");
}

describe("printRows (CLI tables)", () => {
  it("prints an id column whole, however long: a reader pastes it into another command", () => {
    const taskId = "t".repeat(250);
    const runId = "manual__2026-01-01T00:00:00+00:00__" + "r".repeat(80);
    const lines = table([{ dag_run_id: runId, task_id: taskId, state: "success" }], ["dag_run_id", "task_id", "state"]);
    expect(lines[1]!.split(/\s{2,}/)).toEqual([runId, taskId, "success"]);
  });

  it("marks a cut cell with a trailing … and keeps the column 60 characters wide", () => {
    const message = "x".repeat(100);
    const lines = table([{ reason: message, n: 1 }], ["reason", "n"]);
    const [reason, n] = lines[1]!.split(/\s{2,}/);
    expect(reason).toBe("x".repeat(59) + "…");
    expect(n).toBe("1");
    expect(lines[0]!.lastIndexOf("n")).toBe(lines[1]!.lastIndexOf("1"));
  });

  it("leaves a cell of exactly 60 characters as it is, without a mark", () => {
    const lines = table([{ reason: "y".repeat(60), n: 1 }], ["reason", "n"]);
    expect(lines[1]).toBe("y".repeat(60) + "  1");
  });

  it("never cuts the last column, nor a column named in uncut", () => {
    const long = "z".repeat(100);
    expect(table([{ a: long, b: long }], ["a", "b"], ["a"])[1]).toBe(`${long}  ${long}`);
  });
});
