// What an author reads when a DAG file cannot be imported: the messages and lines the DAG
// processor's loader reports (parser/child.ts through the ParserPool), before any database.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ParserPool } from "../../parser/pool.ts";
import type { ParseOutcome } from "../../parser/child.ts";
import { importErrorJson } from "../../api/serializers.ts";
import { dagSource } from "../helpers/harness.ts";
import type { RowDataPacket } from "../../store/db.ts";

type Failed = Extract<ParseOutcome, { ok: false }>;

describe("import error messages", () => {
  let root: string;
  let pool: ParserPool;
  beforeAll(async () => {
    // Under the system temp folder: not below the tests' working directory, so a path relative to it would show `../`.
    root = await mkdtemp(path.join(os.tmpdir(), "baton-import-messages-"));
    pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 100, scratchFolder: path.join(root, ".scratch") });
  });
  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  async function failure(name: string, source: string): Promise<Failed & { file: string }> {
    const file = path.join(root, name);
    await writeFile(file, source);
    const outcome = await pool.parse(file);
    if (outcome.ok) throw new Error(`${name} parsed`);
    return { ...outcome, file };
  }
  /** The import error as GET /api/v1/importErrors shows it. */
  const asJson = (f: Failed & { file: string }) =>
    importErrorJson({ id: 1, fileloc: f.file, line: f.line, code: f.code, message: f.message, stack_trace: f.stack, created_at: new Date() } as unknown as RowDataPacket);
  const occurrences = (text: string, part: string) => text.split(part).length - 1;

  it("an error of the SDK's with a Baton code: no class name before it, and once in stack_trace", async () => {
    const f = await failure("dup.ts", dagSource(`export default dag({ id: "dup" }, (t) => {\n  t.task("a", async () => 1);\n  t.task("a", async () => 2);\n});`));
    expect(f.code).toBe("BATON_DUPLICATE_TASK_ID");
    expect(f.message).toBe('dag "dup": duplicate task id "a"');
    const json = asJson(f);
    expect(json.stack_trace.startsWith(`${f.message}\n`)).toBe(true);
    expect(occurrences(json.stack_trace, 'duplicate task id "a"')).toBe(1);
    expect(json.stack_trace).toMatch(/\n\s+at /); // the frames are kept
  });

  it("a parser check (BATON_INVALID_DAG) reads the same way, once in stack_trace", async () => {
    const f = await failure("badtz.ts", dagSource(`export default dag({ id: "badtz", timezone: "Mars/Olympus" }, (t) => { t.task("a", async () => 1); });`));
    expect(f.code).toBe("BATON_INVALID_DAG");
    expect(f.message).toMatch(/^dag "badtz": timezone/);
    expect(occurrences(asJson(f).stack_trace, "Mars/Olympus")).toBe(1);
  });

  it("an arbitrary exception at import time keeps its class name, once in stack_trace", async () => {
    const f = await failure("type.ts", dagSource(`const config: any = undefined;\nconst name: string = config.name; // THROWS\nexport default dag({ id: name }, (t) => { t.task("a", async () => 1); });`));
    expect(f.code).toBe("BATON_DAG_IMPORT_ERROR");
    expect(f.message).toMatch(/^TypeError: /);
    const json = asJson(f);
    expect(json.stack_trace.startsWith(`${f.message}\n`)).toBe(true);
    expect(occurrences(json.stack_trace, f.message)).toBe(1);
    expect(f.line).toBe(3);
  });

  // A task-control error's code (BATON_TASK_FAILED, BATON_TASK_SKIPPED) says what a task did: thrown
  // at import, it was passed through as the import error's code. Only the SDK's definition-time codes
  // (InvalidDagError) are; anything else thrown at import is an import error, its class name kept.
  it.each([
    ["FailError", `throw new FailError("config missing");`, "FailError: config missing"],
    ["SkipError", `throw new SkipError("not today");`, "SkipError: not today"],
    ["an error with another Baton code", `throw Object.assign(new Error("mine"), { code: "BATON_TASK_UNCLAIMABLE" });`, "Error: mine"],
  ])("%s thrown at import is BATON_DAG_IMPORT_ERROR, its message kept", async (_what, statement, message) => {
    const f = await failure("control.ts", dagSource(`${statement}\nexport default dag({ id: "control" }, (t) => { t.task("a", async () => 1); });`));
    expect(f.code).toBe("BATON_DAG_IMPORT_ERROR");
    expect(f.message).toBe(message);
    expect(f.line).toBe(2);
  });

  // The file's path as `filename` shows it (absolute), not relative to the loader's working directory.
  it("a syntax error names the file by its absolute path, with line and column", async () => {
    const f = await failure("syntax.ts", dagSource(`export default dag({ id: "syntax" }, (t) => {\n  t.task("a", async () => 1));\n});`));
    expect(f.code).toBe("BATON_DAG_IMPORT_ERROR");
    expect(f.message).toMatch(new RegExp(`^${f.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:\\d+: `));
    expect(f.message).not.toContain("../");
    expect(f.line).toBe(3);
  });

  it("an unresolved import names the importing file by its absolute path", async () => {
    const f = await failure("missing.ts", `import { x } from "./lib/not_there.ts";\n${dagSource(`export default dag({ id: "missing" }, (t) => { t.task("a", async () => x); });`)}`);
    expect(f.message).toBe(`${f.file}:1:19: Could not resolve "./lib/not_there.ts"`);
  });

  it("a cycle is reported at the line of the edge that closes it, naming the path", async () => {
    const f = await failure(
      "cycle.ts",
      dagSource(`
export default dag({ id: "cyclic" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", { upstream: [a] }, async () => 2);
  const c = t.task("c", async () => 3);
  b.then(c);
  c.then(a); // CLOSES
  t.task("d", { upstream: [c] }, async () => 4);
  a.then(t.task("e", async () => 5));
});`),
    );
    expect(f.code).toBe("BATON_DAG_CYCLE");
    expect(f.message).toBe('dag "cyclic" has a cycle: a → b → c → a');
    expect(f.line).toBe(8);
  });

  it("of two cycles, the line of the edge that made the graph cyclic first", async () => {
    const f = await failure(
      "cycles.ts",
      dagSource(`
export default dag({ id: "cycles" }, (t) => {
  const a = t.task("a", async () => 1);
  const b = t.task("b", { upstream: [a] }, async () => 2);
  const c = t.task("c", async () => 3);
  const d = t.task("d", { upstream: [c] }, async () => 4);
  d.then(c); // FIRST
  b.then(a);
});`),
    );
    expect(f.code).toBe("BATON_DAG_CYCLE");
    expect(f.line).toBe(8);
  });
});

// A DAG folder's path may hold what a URL escapes (a space, parentheses, %, #, letters beyond
// ASCII: "~/My Drive/dags (copy)", "/srv/données"): errors still name the file and line as they
// do elsewhere, and a dag() the file does not export is still found.
describe("import error messages in a folder whose path needs escaping in a URL", () => {
  let root: string;
  let pool: ParserPool;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "baton dags (copy) 100% #2 données-"));
    pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 100, scratchFolder: path.join(root, ".scratch") });
  });
  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  async function parse(name: string, source: string): Promise<{ outcome: ParseOutcome; file: string }> {
    const file = path.join(root, name);
    await writeFile(file, source);
    return { outcome: await pool.parse(file), file };
  }

  it("an exception at import: its line, and stack_trace names the file as it is", async () => {
    const { outcome, file } = await parse("throws (1).ts", dagSource(`function load() {\n  throw new Error("unreachable"); // THROWS\n}\nload();\nexport default dag({ id: "t" }, (t) => { t.task("a", async () => 1); });`));
    expect(outcome).toMatchObject({ ok: false, code: "BATON_DAG_IMPORT_ERROR", message: "Error: unreachable", line: 3 });
    expect((outcome as Failed).stack).toContain(`(${file}:3:`);
  });

  it("a duplicate task id: the line of the second t.task", async () => {
    const { outcome } = await parse("dup.ts", dagSource(`export default dag({ id: "dup" }, (t) => {\n  t.task("a", async () => 1);\n  t.task("a", async () => 2);\n});`));
    expect(outcome).toMatchObject({ ok: false, code: "BATON_DUPLICATE_TASK_ID", line: 4 });
  });

  it("a dag() created but not exported is BATON_DAG_NOT_EXPORTED, not silently ignored", async () => {
    const { outcome } = await parse("unexported.ts", dagSource(`const d = dag({ id: "unexported" }, (t) => {\n  t.task("a", async () => 1);\n});`));
    expect(outcome).toMatchObject({ ok: false, code: "BATON_DAG_NOT_EXPORTED", line: 2 });
  });

  it("a cycle: the line of the edge that closes it", async () => {
    const { outcome } = await parse(
      "cycle.ts",
      dagSource(`export default dag({ id: "cyclic" }, (t) => {\n  const a = t.task("a", async () => 1);\n  const b = t.task("b", { upstream: [a] }, async () => 2);\n  b.then(a); // CLOSES\n});`),
    );
    expect(outcome).toMatchObject({ ok: false, code: "BATON_DAG_CYCLE", line: 5 });
  });
});

// A promise a DAG file leaves rejected with nothing awaiting it, or an exception thrown from one of
// its callbacks, ended the loader process: whatever file it was loading then became a
// BATON_DAG_LOADER_DIED import error, without the error, retried every five minutes.
describe("errors a DAG file's code raises outside its import", () => {
  let root: string;
  let pool: ParserPool;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "baton-stray-errors-"));
    pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 100, scratchFolder: path.join(root, ".scratch") });
  });
  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  async function parse(name: string, source: string): Promise<ParseOutcome> {
    const file = path.join(root, name);
    await writeFile(file, source);
    return pool.parse(file);
  }

  it("a promise the file rejects at import with nothing awaiting it is the file's import error, with its line", async () => {
    const outcome = await parse(
      "unawaited.ts",
      dagSource(`const config = Promise.reject(new Error("config service unreachable")); // REJECTS\nexport default dag({ id: "unawaited" }, (t) => { t.task("a", async () => config); });`),
    );
    expect(outcome).toMatchObject({ ok: false, code: "BATON_DAG_IMPORT_ERROR", line: 2 });
    expect((outcome as Failed).message).toContain("Error: config service unreachable");
  });

  it("one that names another file's code, raised while this file loads, is not this file's, and the loader goes on", async () => {
    const release = path.join(root, "release");
    // Rejects once, when the next file's import says so: while that file is loading.
    const late = dagSource(
      `import { existsSync } from "node:fs";\nconst timer = setInterval(() => { if (existsSync(${JSON.stringify(release)})) { clearInterval(timer); Promise.reject(new Error("late failure")); } }, 5);\n` +
        `export default dag({ id: "late" }, (t) => { t.task("a", async () => 1); });`,
    );
    expect(await parse("late.ts", late)).toMatchObject({ ok: true });
    const next = dagSource(
      `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(release)}, "");\nawait new Promise((resolve) => setTimeout(resolve, 200));\n` +
        `export default dag({ id: "innocent" }, (t) => { t.task("a", async () => 1); });`,
    );
    expect(await parse("innocent.ts", next)).toMatchObject({ ok: true });
    expect(await parse("after.ts", dagSource(`export default dag({ id: "after" }, (t) => { t.task("a", async () => 1); });`))).toMatchObject({ ok: true });
  });
});
