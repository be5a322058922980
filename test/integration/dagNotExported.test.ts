// A DAG file that creates a DAG with dag() but does not export it (Airflow registers `with DAG()`
// on its own, so Airflow users fall into this) is an import error, BATON_DAG_NOT_EXPORTED, with the
// line of the call. A dag() call made by a helper module the file imports, for a DAG another file
// exports, is not this file's concern. Parsed by the DAG processor's own child pool; no database.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ParseOutcome } from "../../parser/child.ts";
import { ParserPool } from "../../parser/pool.ts";

const HEADER = `import { dag } from "baton";\n`;

describe("a dag() the file does not export", () => {
  let folder: string;
  let pool: ParserPool;

  beforeAll(async () => {
    folder = await mkdtemp(path.join(os.tmpdir(), "baton-notexported-"));
    await mkdir(path.join(folder, "lib"));
    // One child, so the second parse of a file finds its bundle in that child's module cache.
    pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 1000, scratchFolder: path.join(folder, ".scratch") });
  });
  afterAll(async () => {
    await pool.close();
    await rm(folder, { recursive: true, force: true });
  });

  async function parse(name: string, source: string): Promise<ParseOutcome> {
    const file = path.join(folder, name);
    await writeFile(file, source);
    return pool.parse(file);
  }

  const dagIds = (outcome: ParseOutcome) => (outcome.ok ? outcome.dags.map((d) => d.dagId) : outcome);

  it("is an import error naming the DAG, with the line of the dag() call", async () => {
    const source = `${HEADER}\ndag({ id: "noexp" }, (t) => {\n  t.task("a", () => 1);\n});\n`;
    const outcome = await parse("noexp.ts", source);
    expect(outcome).toMatchObject({
      ok: false,
      code: "BATON_DAG_NOT_EXPORTED",
      message:
        'dag("noexp") is created in this file but not exported: export it (export default dag(...) or export const x = dag(...))',
      line: 3,
    });
  });

  it("stays an import error when the same file is parsed again by the same child (its module is cached)", async () => {
    const source = `${HEADER}\ndag({ id: "noexp" }, (t) => {\n  t.task("a", () => 1);\n});\n`;
    expect(await parse("noexp.ts", source)).toMatchObject({ ok: false, code: "BATON_DAG_NOT_EXPORTED", line: 3 });
  });

  it("is reported beside an exported DAG of the same file, and for a DAG made by a helper the file calls", async () => {
    await writeFile(path.join(folder, "lib", "factory.ts"), `${HEADER}export function makeDag(id: string) {\n  return dag({ id }, (t) => void t.task("a", () => 1));\n}\n`);
    const source = `import { makeDag } from "./lib/factory.ts";\nexport default makeDag("kept");\nmakeDag("lost");\n`;
    expect(await parse("factory_user.ts", source)).toMatchObject({
      ok: false,
      code: "BATON_DAG_NOT_EXPORTED",
      message: expect.stringContaining('dag("lost") is created in this file but not exported'),
      line: 3,
    });
    const both = `${HEADER}export const one = dag({ id: "one" }, (t) => void t.task("a", () => 1));\nconst two = dag({ id: "two" }, (t) => void t.task("a", () => 1));\nvoid two;\n`;
    expect(await parse("two.ts", both)).toMatchObject({ ok: false, code: "BATON_DAG_NOT_EXPORTED", message: expect.stringContaining('dag("two")'), line: 3 });
  });

  it("is not reported for a DAG created by a helper module at import that another file exports", async () => {
    await writeFile(
      path.join(folder, "lib", "shared.ts"),
      `${HEADER}export const shared = dag({ id: "shared" }, (t) => void t.task("a", () => 1));\nexport const retries = 3;\n`,
    );
    expect(dagIds(await parse("exports_shared.ts", `export { shared } from "./lib/shared.ts";\n`))).toEqual(["shared"]);
    const user = `${HEADER}import { retries } from "./lib/shared.ts";\nexport default dag({ id: "user", defaultArgs: { retries } }, (t) => void t.task("a", () => 1));\n`;
    expect(dagIds(await parse("uses_shared.ts", user))).toEqual(["user"]);
  });

  it("accepts every exported form: default, named, and one value exported twice", async () => {
    const source = `${HEADER}const d = dag({ id: "twice" }, (t) => void t.task("a", () => 1));\nexport default d;\nexport { d as alias };\nexport const named = dag({ id: "named" }, (t) => void t.task("a", () => 1));\n`;
    const outcome = await parse("forms.ts", source);
    expect(outcome.ok).toBe(true);
    expect(new Set(dagIds(outcome) as string[])).toEqual(new Set(["twice", "named"]));
  });

  // A value exported under two names was serialized once per name.
  it("parses a DAG exported under several names once", async () => {
    const source = `${HEADER}export const a = dag({ id: "aliased" }, (t) => void t.task("a", () => 1));\nexport default a;\nexport { a as b };\n`;
    expect(dagIds(await parse("aliased.ts", source))).toEqual(["aliased"]);
  });

  it("refuses two different DAGs with one id in a file, with the line of the later one", async () => {
    const source = `${HEADER}export const a = dag({ id: "same" }, (t) => void t.task("a", () => 1));\nexport const b = dag({ id: "same" }, (t) => void t.task("b", () => 1));\n`;
    expect(await parse("same.ts", source)).toMatchObject({
      ok: false,
      code: "BATON_INVALID_DAG",
      message: 'DAG id "same" is defined twice in this file (lines 2 and 3): each dag() needs its own id',
      line: 3,
    });
    // Made by a helper: the lines are those of the calls in this file.
    await writeFile(path.join(folder, "lib", "twin.ts"), `${HEADER}export function twin(task: string) {\n  return dag({ id: "twin" }, (t) => void t.task(task, () => 1));\n}\n`);
    const twins = `import { twin } from "./lib/twin.ts";\nexport const x = twin("a");\nexport const y = twin("b");\n`;
    expect(await parse("twins.ts", twins)).toMatchObject({
      ok: false,
      code: "BATON_INVALID_DAG",
      message: 'DAG id "twin" is defined twice in this file (lines 2 and 3): each dag() needs its own id',
      line: 3,
    });
  });
});
