// Where a DAG or task was defined (definedAt, the line of an import error) is the first stack frame
// outside Baton's SDK. The SDK's frames were told apart by an `sdk` folder anywhere in the path, so a
// user's DAG file under a folder named sdk (/home/me/sdk/dags/x.ts) had its own frames skipped as
// the SDK's: no definedAt, and import errors without their line. Parsed by the DAG processor's child.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ParseOutcome } from "../../parser/child.ts";
import { ParserPool } from "../../parser/pool.ts";

describe("a DAG file in a folder named sdk", () => {
  let root: string;
  let folder: string;
  let pool: ParserPool;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "baton-sdkfolder-"));
    folder = path.join(root, "sdk", "dags");
    await mkdir(folder, { recursive: true });
    pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 100, scratchFolder: path.join(root, ".scratch") });
  });
  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  async function parse(name: string, lines: string[]): Promise<{ file: string; outcome: ParseOutcome }> {
    const file = path.join(folder, name);
    await writeFile(file, [`import { dag } from "baton";`, ...lines, ""].join("\n"));
    return { file, outcome: await pool.parse(file) };
  }

  it("tells where each task was defined: the user's file and line", async () => {
    const { file, outcome } = await parse("defined.ts", [
      `export default dag({ id: "in_sdk_folder" }, (t) => {`,
      `  const a = t.task("a", async () => 1);`,
      `  const b = t.task("b", async () => 2);`,
      `  a.then(b);`,
      `});`,
    ]);
    if (!outcome.ok) throw new Error(outcome.message);
    expect(outcome.dags[0]!.tasks.map((t) => [t.taskId, t.definedAt])).toEqual([
      ["a", `${file}:3`],
      ["b", `${file}:4`],
    ]);
  });

  it("gives an import error the line in the user's file: a cycle at the .then() closing it, a DAG not exported at its dag()", async () => {
    const cycle = await parse("cycle.ts", [
      `export default dag({ id: "sdk_folder_cycle" }, (t) => {`,
      `  const a = t.task("a", async () => 1);`,
      `  const b = t.task("b", async () => 2);`,
      `  a.then(b);`,
      `  b.then(a);`,
      `});`,
    ]);
    expect(cycle.outcome).toMatchObject({ ok: false, code: "BATON_DAG_CYCLE", line: 6 });
    const lost = await parse("lost.ts", [`export const kept = dag({ id: "sdk_folder_kept" }, (t) => void t.task("a", () => 1));`, `dag({ id: "sdk_folder_lost" }, (t) => void t.task("a", () => 1));`]);
    expect(lost.outcome).toMatchObject({ ok: false, code: "BATON_DAG_NOT_EXPORTED", line: 3 });
  });
});
