// A signal name is one rule for DAG files (waitForSignal's `signal`) and the API (POST and GET
// …/dagRuns/{run}/signals/{name}, core/dagLimits.ts): every signal a DAG waits for can be sent,
// and the API takes no name a DAG could not wait for.
import { MAX_SIGNAL_NAME_LENGTH, SIGNAL_NAME_PATTERN, SIGNAL_NAME_RULE, signalNameProblem } from "../../core/dagLimits.ts";
import { dag } from "../../sdk/index.ts";

/** What the API's schema accepts: ajv compiles patterns with the u flag and counts code points. */
function schemaAccepts(name: string): boolean {
  const length = [...name].length;
  return length >= 1 && length <= MAX_SIGNAL_NAME_LENGTH && new RegExp(SIGNAL_NAME_PATTERN, "u").test(name);
}

function dagAccepts(signal: unknown): boolean {
  try {
    dag({ id: "signal_names" }, (t) => void t.waitForSignal("w", { signal } as { signal: string }));
    return true;
  } catch {
    return false;
  }
}

describe("signal names", () => {
  it.each(["signed", "doc.signed", "evt:1", "a-b_c", "A9", "s".repeat(MAX_SIGNAL_NAME_LENGTH)])("accepts %j in the API and in DAGs", (name) => {
    expect(signalNameProblem("signal", name)).toBeNull();
    expect(schemaAccepts(name)).toBe(true);
    expect(dagAccepts(name)).toBe(true);
  });

  it.each(["", "a b", "a\tb", "a\nb", "a\u0000b", "signed\t", "a/b", "a~b", "café", "s".repeat(MAX_SIGNAL_NAME_LENGTH + 1)])(
    "refuses %j in the API and in DAGs",
    (name) => {
      expect(signalNameProblem("signal", name)).toBe(`signal ${SIGNAL_NAME_RULE}, got ${JSON.stringify(name)}`);
      expect(schemaAccepts(name)).toBe(false);
      expect(dagAccepts(name)).toBe(false);
    },
  );

  it("names the rule in a DAG's import error", () => {
    expect(() => dag({ id: "signal_names" }, (t) => void t.waitForSignal("w", { signal: "a\tb" }))).toThrow(
      'waitForSignal "w": signal must be 1-255 letters, digits, "_", ".", ":" or "-", got "a\\tb"',
    );
    expect(dagAccepts(undefined)).toBe(false);
  });
});
