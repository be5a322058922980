import { failureLines } from "../../cli/dagsTest.ts";

describe("failureLines (a failed task's error under its line in `baton dags test`)", () => {
  const logs = "baton tasks logs d 'r' t";

  it("prints the error's class and message, then where the rest is", () => {
    expect(failureLines({ name: "TypeError", message: "x is undefined" }, logs)).toEqual(["TypeError: x is undefined", `full error and stack: ${logs}`]);
  });

  it("prints the first 5 lines of a long message and counts the rest", () => {
    const message = Array.from({ length: 8 }, (_, i) => `line ${i + 1}`).join("\n");
    expect(failureLines({ name: "Error", message }, logs)).toEqual([
      "Error: line 1", "line 2", "line 3", "line 4", "line 5", `full error (3 more line(s)) and stack: ${logs}`,
    ]);
  });

  it("prints nothing for a task without an error", () => {
    expect(failureLines(null, logs)).toEqual([]);
  });
});
