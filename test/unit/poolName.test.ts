// The API's schema pattern for pool names and the check of DAG files and the CLI
// (core/dagLimits.ts) are one rule: they must accept and refuse the same names. Control
// characters are refused (a newline in a name would split a log line or a CLI table's row);
// leading whitespace is kept, as Airflow does: the database ignores only trailing spaces.
import { MAX_POOL_LENGTH, POOL_NAME_PATTERN, poolNameProblem } from "../../core/dagLimits.ts";

/** What the API's schema accepts: ajv compiles patterns with the u flag and counts code points. */
function schemaAccepts(name: string): boolean {
  const length = [...name].length;
  return length >= 1 && length <= MAX_POOL_LENGTH && new RegExp(POOL_NAME_PATTERN, "u").test(name);
}

describe("pool names", () => {
  it.each([
    "default_pool", "etl pool", "team:gpu", "team/gpu", "100%", "a?b#c", " leading", "  two leading", "...", "a\u00a0b", "a\u200bb", ".a", "a.", "Zürich", "😀",
    "😀".repeat(MAX_POOL_LENGTH), "p".repeat(MAX_POOL_LENGTH),
  ])("accepts %j in the API and in DAGs", (name) => {
    expect(poolNameProblem("pool", name)).toBeNull();
    expect(schemaAccepts(name)).toBe(true);
  });

  it.each([
    "", ".", "..", "gpu ", "gpu\t", "gpu\n", "gpu\u00a0", " ",
    "in\nside", "x\ty", "a\rb", "a\u0000b", "a\u001bb", "a\u007fb", "a\u0085b", "a\u009fb", "\nlead", "\tlead",
    "p".repeat(MAX_POOL_LENGTH + 1), "😀".repeat(MAX_POOL_LENGTH + 1)])(
    "refuses %j in the API and in DAGs",
    (name) => {
      expect(poolNameProblem("pool", name)).not.toBeNull();
      expect(schemaAccepts(name)).toBe(false);
    },
  );
});
