// When an unchanged DAG file is parsed again: its hash must cover everything its parse depended
// on, including what did not exist yet, and errors that say nothing about its content are retried.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FakeClock, type Clock } from "../../core/clock.ts";
import { DagProcessor, type DagProcessorOptions } from "../../parser/processor.ts";
import { transientRetryDelayMs } from "../../parser/reparse.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { Db, RowDataPacket, Tx } from "../../store/db.ts";
import type { Logger } from "../../core/logger.ts";
import { capturingLogger } from "../helpers/logger.ts";

/** A Db that writes down the SQL of each statement sent through it, its pool or its transactions. */
function recordingDb(db: Db, statements: string[]): Db {
  const recording = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, key, receiver) {
        const value = Reflect.get(t, key, receiver);
        if (key !== "query" && key !== "execute") return typeof value === "function" ? value.bind(t) : value;
        return (sql: string | { sql: string }, ...rest: unknown[]) => {
          statements.push(typeof sql === "string" ? sql : sql.sql);
          return (value as (...a: unknown[]) => unknown).call(t, sql, ...rest);
        };
      },
    });
  return { ...db, pool: recording(db.pool), tx: (fn) => db.tx((tx: Tx) => fn(recording(tx))) };
}
const writes = (statements: string[]) => statements.filter((s) => /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(s));

async function importError(h: Harness, file: string): Promise<{ code: string; message: string } | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT code, message FROM import_error WHERE fileloc = ?", [file]);
  return rows[0] as { code: string; message: string } | undefined;
}

async function importErrorRow(h: Harness, file: string): Promise<RowDataPacket | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT id, code, message, line, stack_trace, created_at FROM import_error WHERE fileloc = ?", [file]);
  return rows[0];
}

async function getDag(h: Harness, dagId: string): Promise<RowDataPacket | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT last_parsed_at FROM dag WHERE dag_id = ?", [dagId]);
  return rows[0];
}

async function latestCode(h: Harness, dagId: string): Promise<string | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    "SELECT c.code FROM dag d JOIN dag_version v ON v.dag_id = d.dag_id AND v.version_hash = d.latest_version_hash JOIN dag_code c ON c.code_hash = v.code_hash WHERE d.dag_id = ? AND d.is_active = 1",
    [dagId],
  );
  return rows[0]?.code as string | undefined;
}

describe("DAG processor: what makes an unchanged file parse again", () => {
  const h = new Harness({ worker: false });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  /** A processor of its own on a temporary folder (stopped and removed after `use`). */
  async function withFolder(
    tag: string,
    options: Partial<DagProcessorOptions> & { clock?: Clock; db?: Db; logger?: Logger },
    use: (processorFor: () => DagProcessor, root: string) => Promise<void>,
  ): Promise<void> {
    const root = await mkdtemp(path.join(os.tmpdir(), `baton-${tag}-dags-`));
    const processors: DagProcessor[] = [];
    const processorFor = () => {
      const p = new DagProcessor(options.db ?? h.db, options.clock ?? h.clock, options.logger ?? h.logger, {
        dagsFolder: root,
        parseTimeoutMs: 30_000,
        rescanIntervalMs: 3_600_000,
        pausedAtCreation: false,
        scratchFolder: path.join(h.cacheFolder, `parse-${tag}-${processors.length}`),
        poolSize: 1,
        ...options,
      } as DagProcessorOptions);
      processors.push(p);
      return p;
    };
    try {
      await use(processorFor, root);
    } finally {
      for (const p of processors) await p.stop();
      await rm(root, { recursive: true, force: true });
    }
  }

  const write = async (root: string, name: string, source: string) => {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), source);
    return path.join(root, name);
  };

  it("re-parses a file whose imported module hung or killed its loader once that module is fixed", async () => {
    // The helpers sit in a dot-folder: not DAG files themselves, so only the importers hang.
    await withFolder("deploop", { parseTimeoutMs: 3_000 }, async (processorFor, root) => {
      const processor = processorFor();
      await write(root, ".lib/loops.ts", `export const v = (() => { while (true) {} ; return 1; })();\n`);
      await write(root, ".lib/exits.ts", `process.exit(3);\nexport const w = 2;\n`);
      const looping = await write(root, "uses_loop.ts", dagSource(`import { v } from "./.lib/loops.ts";\nexport default dag({ id: "uses_loop" }, (t) => { t.task("x", async () => v); });`));
      const exiting = await write(root, "uses_exit.ts", dagSource(`import { w } from "./.lib/exits.ts";\nexport default dag({ id: "uses_exit" }, (t) => { t.task("x", async () => w); });`));
      expect((await processor.scan()).errors).toBe(2);
      expect((await importError(h, looping))?.code).toBe("BATON_DAG_PARSE_TIMEOUT");
      expect((await importError(h, exiting))?.code).toBe("BATON_DAG_LOADER_DIED");

      await write(root, ".lib/loops.ts", `export const v = 1;\n`);
      await write(root, ".lib/exits.ts", `export const w = 2;\n`);
      const report = await processor.scan();
      expect(report).toMatchObject({ parsed: 2, errors: 0 });
      expect(await importError(h, looping)).toBeUndefined();
      expect(await importError(h, exiting)).toBeUndefined();
    });
  });

  // The hash stored with a parse must not name a module newer than the one the parse bundled: an
  // edit of the module while the DAG file was still importing was then taken for parsed already,
  // and the DAG kept the old module's code until something else changed.
  it("parses again when a module it imports changed while the file was being imported", async () => {
    const release = path.join(os.tmpdir(), `baton-midparse-release-${process.pid}-${Date.now()}`);
    const begun = `${release}.begun`;
    await withFolder("midparse", {}, async (processorFor, root) => {
      const processor = processorFor();
      await write(root, "lib/mark.ts", `export const MARK = "mark_v1";\n`);
      const dagFile = (hold: boolean) =>
        dagSource(
          `import { MARK } from "./lib/mark.ts";\nimport { existsSync, writeFileSync } from "node:fs";\n` +
            (hold ? `writeFileSync(${JSON.stringify(begun)}, "");\nconst until = Date.now() + 20_000;\nwhile (!existsSync(${JSON.stringify(release)}) && Date.now() < until) {}\n` : "") +
            `export default dag({ id: "midparse" }, (t) => { t.task("only", async () => MARK); });`,
        );
      await write(root, "midparse.ts", dagFile(false));
      await processor.scan();
      expect(await latestCode(h, "midparse")).toContain("mark_v1");

      // An edit of the DAG file parses it again; while it imports, the module changes.
      await write(root, "midparse.ts", dagFile(true));
      const scanning = processor.scan();
      await waitFor("the DAG file's import begun", async () => existsSync(begun), 20_000);
      await write(root, "lib/mark.ts", `export const MARK = "mark_v2";\n`);
      await writeFile(release, "");
      expect(await scanning).toMatchObject({ parsed: 1, errors: 0 });

      await processor.scan();
      expect(await latestCode(h, "midparse")).toContain("mark_v2");
    }).finally(() => Promise.all([rm(release, { force: true }), rm(begun, { force: true })]));
  });

  it("re-parses a file whose import could not be resolved once the module is created", async () => {
    await withFolder("missing", {}, async (processorFor, root) => {
      const processor = processorFor();
      const exact = await write(root, "exact.ts", dagSource(`import { v } from "./lib2/later.ts";\nexport default dag({ id: "exact_later" }, (t) => { t.task("x", async () => v); });`));
      const bare = await write(root, "bare.ts", dagSource(`import { v } from "./lib3/later";\nexport default dag({ id: "bare_later" }, (t) => { t.task("x", async () => v); });`));
      const pkg = await write(root, "pkg.ts", dagSource(`import { v } from "later-pkg";\nexport default dag({ id: "pkg_later" }, (t) => { t.task("x", async () => v); });`));
      expect((await processor.scan()).errors).toBe(3);
      expect((await importError(h, exact))?.message).toMatch(/Could not resolve/);

      await write(root, "lib2/later.ts", `export const v = 1;\n`);
      await write(root, "lib3/later.js", `export const v = 2;\n`);
      await write(root, "node_modules/later-pkg/package.json", JSON.stringify({ name: "later-pkg", version: "1.0.0", main: "index.js" }));
      await write(root, "node_modules/later-pkg/index.js", `exports.v = 3;\n`);
      expect(await processor.scan()).toMatchObject({ errors: 0 });
      for (const file of [exact, bare, pkg]) expect(await importError(h, file)).toBeUndefined();
    });
  });

  it("re-bundles a file when a module its template-literal import matches appears", async () => {
    await withFolder("glob", {}, async (processorFor, root) => {
      const processor = processorFor();
      await write(root, "dyn.ts", dagSource("export default dag({ id: \"dyn_steps\" }, (t) => { t.task(\"x\", async (ctx) => (await import(`./steps/${ctx.conf.step}.ts`)).out); });"));
      await write(root, "steps/one.ts", `export const out = "step_one_marker";\n`);
      await processor.scan();
      expect(await latestCode(h, "dyn_steps")).toContain("step_one_marker");

      await write(root, "steps/deeper/two.ts", `export const out = "step_two_marker";\n`);
      await processor.scan();
      expect(await latestCode(h, "dyn_steps")).toContain("step_two_marker");
    });
  });

  it("stores a new version when a package in the folder's node_modules is updated", async () => {
    await withFolder("pkg", {}, async (processorFor, root) => {
      const processor = processorFor();
      await write(root, "node_modules/mypkg/package.json", JSON.stringify({ name: "mypkg", version: "1.0.0", main: "index.js" }));
      await write(root, "node_modules/mypkg/index.js", `exports.answer = "answer_v1";\n`);
      await write(root, "uses_pkg.ts", dagSource(`import { answer } from "mypkg";\nexport default dag({ id: "uses_pkg" }, (t) => { t.task("x", async () => answer); });`));
      await processor.scan();
      expect(await latestCode(h, "uses_pkg")).toContain("answer_v1");

      await write(root, "node_modules/mypkg/index.js", `exports.answer = "answer_v2";\n`);
      await write(root, "node_modules/mypkg/package.json", JSON.stringify({ name: "mypkg", version: "2.0.0", main: "index.js" }));
      expect((await processor.scan()).parsed).toBe(1);
      expect(await latestCode(h, "uses_pkg")).toContain("answer_v2");
    });
  });

  // The default scratch folder is under $TMPDIR, which a cleaner may empty (macOS removes what was
  // not touched for three days, systemd-tmpfiles what is older than its age): the loader must not
  // count on the folder it found at its start.
  it("parses an edit as usual after the parse scratch folder was removed", async () => {
    await withFolder("scratch", {}, async (processorFor, root) => {
      const processor = processorFor();
      const source = (task: string) => dagSource(`export default dag({ id: "scratch_gone" }, (t) => { t.task("${task}", async () => 1); });`);
      const file = await write(root, "scratch.ts", source("before"));
      expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
      await rm(path.join(h.cacheFolder, "parse-scratch-0"), { recursive: true, force: true });

      await write(root, "scratch.ts", source("after_cleanup"));
      expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
      expect(await importError(h, file)).toBeUndefined();
      expect(await latestCode(h, "scratch_gone")).toContain("after_cleanup");
    });
  });

  // Airflow's min_file_process_interval: a DAG whose structure depends on something outside its
  // file (here a JSON file it reads at import, which no import graph sees) picks the change up.
  describe("periodic re-parse of unchanged files (BATON_DAG_REPARSE_INTERVAL)", () => {
    const versions = async (dagId: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash, structure FROM dag_version WHERE dag_id = ?", [dagId]);
      return rows.map((r) => r.version_hash as string);
    };
    const latest = async (dagId: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT d.latest_version_hash AS hash, v.structure FROM dag d JOIN dag_version v ON v.dag_id = d.dag_id AND v.version_hash = d.latest_version_hash WHERE d.dag_id = ?",
        [dagId],
      );
      const structure = typeof rows[0]?.structure === "string" ? JSON.parse(rows[0].structure) : rows[0]?.structure;
      return { hash: rows[0]?.hash as string, tasks: (structure?.tasks ?? []).map((t: { taskId: string }) => t.taskId).sort() as string[] };
    };
    /** A DAG whose task list is read at import from `input` (a file no import graph covers). */
    const readsAtImport = (dagId: string, input: string) =>
      dagSource(
        `import { readFileSync } from "node:fs";\nconst names: string[] = JSON.parse(readFileSync(${JSON.stringify(input)}, "utf8"));\n` +
          `export default dag({ id: "${dagId}" }, (t) => { for (const n of names) t.task(n, async () => n); });`,
      );

    it("re-parses an unchanged file once the interval passed: a new version when its result changed, none when not, an import error when it now fails", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const input = path.join(os.tmpdir(), `baton-reparse-input-${process.pid}-${Date.now()}.json`);
      await writeFile(input, JSON.stringify(["a", "b"]));
      await withFolder("periodic", { clock, reparseIntervalMs: 60_000 }, async (processorFor, root) => {
        const processor = processorFor();
        const file = await write(root, "reads_input.ts", readsAtImport("reparse_input", input));
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        const first = await latest("reparse_input");
        expect(first.tasks).toEqual(["a", "b"]);
        const pinned = await h.trigger("reparse_input", { via: "store", runId: "pinned_before_reparse" });

        // The input changes; the file does not. Within the interval nothing is parsed.
        await writeFile(input, JSON.stringify(["a", "b", "c"]));
        clock.advance(59_000);
        expect((await processor.scan()).parsed).toBe(0);
        expect((await latest("reparse_input")).hash).toBe(first.hash);

        // Past it: parsed again, a new version with the new task; the run in flight keeps its own.
        clock.advance(1_000);
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        const second = await latest("reparse_input");
        expect(second.tasks).toEqual(["a", "b", "c"]);
        expect(second.hash).not.toBe(first.hash);
        expect(await versions("reparse_input")).toHaveLength(2);
        const [runs] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_run WHERE dag_id = ? AND run_id = ?", ["reparse_input", pinned]);
        expect(runs[0]?.version_hash).toBe(first.hash);

        // The interval counts from that parse; unchanged input: parsed, and no new version.
        expect((await processor.scan()).parsed).toBe(0);
        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        expect((await latest("reparse_input")).hash).toBe(second.hash);
        expect(await versions("reparse_input")).toHaveLength(2);

        // An input that now breaks the import: an import error as on an edit; the DAG keeps its version.
        await writeFile(input, "not json");
        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
        expect((await importError(h, file))?.code).toBe("BATON_DAG_IMPORT_ERROR");
        expect((await latest("reparse_input")).hash).toBe(second.hash);

        // And a broken file is re-parsed too: fixed input, the error goes.
        await writeFile(input, JSON.stringify(["a", "b", "c"]));
        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        expect(await importError(h, file)).toBeUndefined();
        expect(await versions("reparse_input")).toHaveLength(2);
      }).finally(() => rm(input, { force: true }));
    });

    const fileRow = async (file: string) => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT parsed_at FROM dag_file WHERE fileloc = ?", [file]);
      return rows[0]?.parsed_at as Date | undefined;
    };

    // A re-parse whose outcome is what is stored writes the parse time alone: no transaction of
    // upserts per file every interval, for each file of the folder.
    it("a re-parse with the stored result writes only the parse times", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const input = path.join(os.tmpdir(), `baton-reparse-same-${process.pid}-${Date.now()}.json`);
      await writeFile(input, JSON.stringify(["a", "b"]));
      const statements: string[] = [];
      await withFolder("periodic-same", { clock, reparseIntervalMs: 60_000, db: recordingDb(h.db, statements) }, async (processorFor, root) => {
        const processor = processorFor();
        const file = await write(root, "same.ts", readsAtImport("reparse_same", input));
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        const version = await latest("reparse_same");

        clock.advance(60_000);
        statements.length = 0;
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0, dags: 1 });
        expect(writes(statements).map((s) => s.replace(/\s+/g, " ").trim().slice(0, 30))).toEqual(["UPDATE dag SET last_parsed_at ", "UPDATE dag_file SET parsed_at "]);
        expect((await latest("reparse_same")).hash).toBe(version.hash);
        expect(await versions("reparse_same")).toHaveLength(1);
        // Airflow's last_parsed_time: the time of the last parse, changed or not.
        expect((await getDag(h, "reparse_same"))?.last_parsed_at).toEqual(clock.now());
        expect(await fileRow(file)).toEqual(clock.now());

        // A different result still records a version as before.
        await writeFile(input, JSON.stringify(["a", "b", "c"]));
        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        expect((await latest("reparse_same")).tasks).toEqual(["a", "b", "c"]);
      }).finally(() => rm(input, { force: true }));
    });

    // A broken file stays broken between edits: re-parsed every interval, its error is said once
    // (and again when it changes), and its import_error row is kept but for its `timestamp`: the
    // last parse that saw the error, as Airflow's update_import_errors sets it at every parse.
    it("logs a file's import error when it appears or changes, not at each re-parse, and keeps its row but for its timestamp", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const input = path.join(os.tmpdir(), `baton-reparse-broken-${process.pid}-${Date.now()}.json`);
      await writeFile(input, "not json");
      const lines: string[] = [];
      const statements: string[] = [];
      await withFolder(
        "periodic-broken",
        { clock, reparseIntervalMs: 60_000, logger: capturingLogger(lines), db: recordingDb(h.db, statements) },
        async (processorFor, root) => {
          const processor = processorFor();
          const file = await write(root, "broken.ts", readsAtImport("reparse_broken", input));
          const warnings = () => lines.filter((l) => l.startsWith("warn:") && l.includes(file));
          expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
          expect(warnings()).toHaveLength(1);
          const first = await importErrorRow(h, file);
          expect(first?.code).toBe("BATON_DAG_IMPORT_ERROR");

          for (let i = 0; i < 3; i++) {
            clock.advance(60_000);
            statements.length = 0;
            expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
            expect(writes(statements).map((s) => s.replace(/\s+/g, " ").trim().slice(0, 30))).toEqual(["UPDATE dag_file SET parsed_at ", "UPDATE import_error SET create"]);
            expect(await fileRow(file)).toEqual(clock.now());
            expect(await importErrorRow(h, file)).toEqual({ ...first, created_at: clock.now() });
          }
          expect(warnings()).toHaveLength(1);
          const listed = await h.app.inject({ method: "GET", url: "/api/v1/importErrors?limit=100" });
          const mine = (listed.json() as { import_errors: { import_error_id: number; filename: string; timestamp: string }[] }).import_errors.filter((e) => e.filename === file);
          expect(mine).toEqual([expect.objectContaining({ import_error_id: Number(first!.id), timestamp: clock.now().toISOString() })]);

          // Another error: said, and stored.
          await writeFile(input, "{ still not json");
          clock.advance(60_000);
          expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
          expect(warnings()).toHaveLength(2);
          expect((await importErrorRow(h, file))?.message).not.toBe(first?.message);

          // An edit with the same error is said again: the file changed.
          await write(root, "broken.ts", readsAtImport("reparse_broken", input) + "\n// edited\n");
          expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
          expect(warnings()).toHaveLength(3);

          // Fixed: the error goes, and a new one is said again.
          await writeFile(input, JSON.stringify(["a"]));
          clock.advance(60_000);
          expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
          expect(await importErrorRow(h, file)).toBeUndefined();
          await writeFile(input, "not json");
          clock.advance(60_000);
          expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 1 });
          expect(warnings()).toHaveLength(4);
        },
      ).finally(() => rm(input, { force: true }));
    });

    // Airflow's trap of a dynamic start_date: a DAG built from the time (or a random value, the
    // environment) at import differs at every re-parse, and each parse stores a new version. Said
    // once per DAG, as the first version that differs while the file and its imports did not.
    it("warns once when a DAG differs at a re-parse although its file and imports did not", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const lines: string[] = [];
      await withFolder("periodic-varies", { clock, reparseIntervalMs: 60_000, logger: capturingLogger(lines) }, async (processorFor, root) => {
        const processor = processorFor();
        const varying = await write(
          root,
          "varies.ts",
          dagSource(`export default dag({ id: "reparse_varies", description: \`built at \${Date.now()} \${Math.random()}\` }, (t) => { t.task("a", async () => 1); });`),
        );
        const steady = await write(root, "steady.ts", dagSource(`export default dag({ id: "reparse_steady" }, (t) => { t.task("a", async () => 1); });`));
        const warnings = () => lines.filter((l) => l.startsWith("warn:") && l.includes("changed although"));
        expect(await processor.scan()).toMatchObject({ parsed: 2, errors: 0 });
        expect(warnings()).toEqual([]);

        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 2, errors: 0 });
        // Stored as before (as Airflow stores it): only the log says so.
        expect(await versions("reparse_varies")).toHaveLength(2);
        expect(await versions("reparse_steady")).toHaveLength(1);
        expect(warnings()).toEqual([
          `warn: DAG "reparse_varies" (${varying}) changed although its file and imports did not: something it reads at import varies ` +
            `(the time, a random value, the environment, a file or a service); each change is stored as a new version and new runs use it`,
        ]);

        // Said once per DAG, not at every re-parse.
        clock.advance(60_000);
        expect(await processor.scan()).toMatchObject({ parsed: 2, errors: 0 });
        expect(await versions("reparse_varies")).toHaveLength(3);
        expect(warnings()).toHaveLength(1);

        // An edit that changes the structure is a change of the file: nothing to say.
        await write(root, "steady.ts", dagSource(`export default dag({ id: "reparse_steady" }, (t) => { t.task("a", async () => 1); t.task("b", async () => 2); });`));
        expect(await processor.scan()).toMatchObject({ parsed: 1, errors: 0 });
        expect(await versions("reparse_steady")).toHaveLength(2);
        expect(warnings()).toHaveLength(1);
        expect(lines.filter((l) => l.includes(steady) && l.startsWith("warn:"))).toEqual([]);
      });
    });

    it("without an interval, an unchanged file is never parsed again", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const input = path.join(os.tmpdir(), `baton-reparse-off-${process.pid}-${Date.now()}.json`);
      await writeFile(input, JSON.stringify(["a"]));
      await withFolder("periodic-off", { clock }, async (processorFor, root) => {
        const processor = processorFor();
        await write(root, "reads_input.ts", readsAtImport("reparse_off", input));
        expect((await processor.scan()).parsed).toBe(1);
        await writeFile(input, JSON.stringify(["a", "b"]));
        clock.advance(365 * 86_400_000);
        expect((await processor.scan()).parsed).toBe(0);
        expect((await latest("reparse_off")).tasks).toEqual(["a"]);
      }).finally(() => rm(input, { force: true }));
    });

    it("spreads the re-parses of files due together over the interval", async () => {
      const clock = new FakeClock("2026-04-01T00:00:00Z");
      const input = path.join(os.tmpdir(), `baton-reparse-spread-${process.pid}-${Date.now()}.json`);
      await writeFile(input, JSON.stringify(["a"]));
      await withFolder("periodic-spread", { clock, reparseIntervalMs: 40_000 }, async (processorFor, root) => {
        const processor = processorFor();
        for (let i = 0; i < 4; i++) await write(root, `spread_${i}.ts`, readsAtImport(`reparse_spread_${i}`, input));
        expect((await processor.scan()).parsed).toBe(4);
        // All four fall due together 40 s later; scans every 10 s (a quarter of the interval)
        // re-parse them one at a time, oldest first, instead of all in one scan.
        const parsed: number[] = [];
        for (let i = 0; i < 7; i++) {
          clock.advance(10_000);
          parsed.push((await processor.scan()).parsed);
        }
        expect(parsed).toEqual([0, 0, 0, 1, 1, 1, 1]);
      }).finally(() => rm(input, { force: true }));
    });

    it("re-parses on its own, from start(), on the system clock", async () => {
      const input = path.join(os.tmpdir(), `baton-reparse-live-${process.pid}-${Date.now()}.json`);
      await writeFile(input, JSON.stringify(["a"]));
      await withFolder("periodic-live", { rescanIntervalMs: 200, reparseIntervalMs: 500 }, async (processorFor, root) => {
        const processor = processorFor();
        await write(root, "reads_input.ts", readsAtImport("reparse_live", input));
        await processor.start();
        expect((await latest("reparse_live")).tasks).toEqual(["a"]);
        await writeFile(input, JSON.stringify(["a", "live"]));
        await waitFor("the re-parse that sees the new input", async () => (await latest("reparse_live")).tasks.includes("live"), 20_000);
        expect(await versions("reparse_live")).toHaveLength(2);
      }).finally(() => rm(input, { force: true }));
    });
  });

  it("retries a timed-out file after the retry delay and after a restart, but not a file that throws", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00Z");
    const options = { parseTimeoutMs: 3_000, rescanIntervalMs: 5_000, clock };
    await withFolder("transient", options, async (processorFor, root) => {
      const first = processorFor();
      // Warm the loader: the SDK build of a fresh child must not count against the slow file's timeout.
      await write(root, "warm.ts", dagSource(`export default dag({ id: "warm_transient" }, (t) => { t.task("x", async () => 1); });`));
      await first.scan();

      // Hangs on the first load only, as a stalled machine or network call would.
      const marker = path.join(root, ".hung-once");
      const slowSource = (id: string) =>
        dagSource(
          `import { existsSync, writeFileSync } from "node:fs";\nif (!existsSync(${JSON.stringify(`${marker}-${id}`)})) { writeFileSync(${JSON.stringify(`${marker}-${id}`)}, "1"); while (true) {} }\nexport default dag({ id: "${id}" }, (t) => { t.task("x", async () => 1); });`,
        );
      const slow = await write(root, "slow.ts", slowSource("slow_once"));
      const throws = await write(root, "throws.ts", dagSource(`throw new Error("deterministic");\nexport default dag({ id: "throws" }, (t) => { t.task("x", async () => 1); });`));
      expect((await first.scan()).errors).toBe(2);
      expect((await importError(h, slow))?.code).toBe("BATON_DAG_PARSE_TIMEOUT");

      // Unchanged and within the delay: neither is parsed again.
      expect((await first.scan()).parsed).toBe(0);
      clock.advance(transientRetryDelayMs(options));
      expect((await first.scan()).parsed).toBe(1);
      expect(await importError(h, slow)).toBeUndefined();
      expect((await importError(h, throws))?.code).toBe("BATON_DAG_IMPORT_ERROR");

      // A restarted processor retries a timeout at once; the file that throws still waits for a change.
      const slowAgain = await write(root, "slow_again.ts", slowSource("slow_twice"));
      expect((await first.scan()).errors).toBe(1);
      expect((await importError(h, slowAgain))?.code).toBe("BATON_DAG_PARSE_TIMEOUT");
      await first.stop();
      clock.advance(1_000);
      const restarted = processorFor();
      expect(await restarted.scan()).toMatchObject({ parsed: 1, errors: 0 });
      expect(await importError(h, slowAgain)).toBeUndefined();
    });
  });
});
