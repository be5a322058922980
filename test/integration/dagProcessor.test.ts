import { jest } from "@jest/globals";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { DagProcessor, type DagProcessorOptions } from "../../parser/processor.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { capturingLogger } from "../helpers/logger.ts";
import { openDb, type RowDataPacket } from "../../store/db.ts";
import { running } from "../helpers/processes.ts";

/** The 1-based line of the first line of `source` that contains `marker`. */
function lineOf(source: string, marker: string): number {
  const index = source.split("\n").findIndex((l) => l.includes(marker));
  if (index < 0) throw new Error(`marker ${marker} not in source`);
  return index + 1;
}

function simpleDag(id: string, task = "only"): string {
  return dagSource(`export default dag({ id: "${id}" }, (t) => { t.task("${task}", async () => "${id}:${task}"); });`);
}

interface ImportErrorJson {
  filename: string;
  line: number | null;
  code: string;
  message: string;
  stack_trace: string;
}

async function importErrors(h: Harness): Promise<ImportErrorJson[]> {
  const res = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
  expect(res.statusCode).toBe(200);
  return res.json().import_errors as ImportErrorJson[];
}

async function importErrorFor(h: Harness, file: string): Promise<ImportErrorJson | undefined> {
  return (await importErrors(h)).find((e) => e.filename === file);
}

async function dagIds(h: Harness, query = ""): Promise<string[]> {
  const res = await h.app.inject({ method: "GET", url: `/api/v1/dags${query}` });
  expect(res.statusCode).toBe(200);
  return (res.json().dags as { dag_id: string }[]).map((d) => d.dag_id);
}

async function dagRow(h: Harness, dagId: string): Promise<RowDataPacket | undefined> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag WHERE dag_id = ?", [dagId]);
  return rows[0];
}

async function versions(h: Harness, dagId: string): Promise<string[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_version WHERE dag_id = ? ORDER BY id", [dagId]);
  return rows.map((r) => r.version_hash as string);
}

async function runToEnd(h: Harness, dagId: string): Promise<string> {
  const res = await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: {} });
  expect(res.statusCode).toBe(200);
  const runId = res.json().dag_run_id as string;
  return waitFor(`run of ${dagId} to finish`, async () => {
    const r = await h.app.inject({ method: "GET", url: `/api/v1/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}` });
    const state = r.json().state as string;
    return ["success", "failed"].includes(state) ? state : null;
  });
}

describe("DAG processor: files become DAGs, versions and import errors", () => {
  const h = new Harness({ workers: 2 });
  beforeAll(async () => {
    await h.start();
    await h.run(); // empty folder; the scheduler and worker run for the tests that trigger runs
  });
  afterAll(() => h.stop());

  it("stores a valid file as a dag row and a dag_version, and lists it in GET /api/v1/dags", async () => {
    const file = await h.writeDag("valid.ts", simpleDag("valid_dag"));
    const report = await h.processor.scan();
    expect(report.errors).toBe(0);

    const dag = await dagRow(h, "valid_dag");
    expect(dag).toBeDefined();
    expect(dag!.fileloc).toBe(file);
    expect(dag!.is_active).toBe(1);
    const hashes = await versions(h, "valid_dag");
    expect(hashes).toEqual([dag!.latest_version_hash]);
    const [[version]] = await h.db.pool.query<RowDataPacket[]>("SELECT structure FROM dag_version WHERE dag_id = ?", ["valid_dag"]);
    expect(JSON.parse(version!.structure).tasks.map((t: { taskId: string }) => t.taskId)).toEqual(["only"]);

    expect(await dagIds(h)).toContain("valid_dag");
    const one = await h.app.inject({ method: "GET", url: "/api/v1/dags/valid_dag" });
    expect(one.json()).toMatchObject({ dag_id: "valid_dag", is_active: true, fileloc: file, has_import_errors: false, latest_version: dag!.latest_version_hash });
    expect(await importErrorFor(h, file)).toBeUndefined();
  });

  it("turns a syntax error into an import error with its line, while other DAGs still load and run", async () => {
    const broken = dagSource(`
export default dag({ id: "syntax_broken" }, (t) => {
  t.task("a", async () => 1);
  const x = ;  // BROKEN
});
`);
    const brokenFile = await h.writeDag("syntax_broken.ts", broken);
    await h.writeDag("syntax_neighbour.ts", simpleDag("syntax_neighbour"));
    const report = await h.processor.scan();
    expect(report.errors).toBe(1);

    const err = await importErrorFor(h, brokenFile);
    expect(err).toBeDefined();
    expect(err!.line).toBe(lineOf(broken, "BROKEN"));
    expect(err!.code).toBe("BATON_DAG_IMPORT_ERROR");
    expect(err!.message.length).toBeGreaterThan(0);
    expect(await dagRow(h, "syntax_broken")).toBeUndefined();

    expect(await dagIds(h)).toContain("syntax_neighbour");
    expect(await runToEnd(h, "syntax_neighbour")).toBe("success");
  });

  it("rejects a DAG with a cycle, naming the cycle (BATON_DAG_CYCLE)", async () => {
    const file = await h.writeDag(
      "cycle.ts",
      dagSource(`
export default dag({ id: "cyclic" }, (t) => {
  const a = t.task("step_a", async () => 1);
  const b = t.task("step_b", { upstream: [a] }, async () => 2);
  const c = t.task("step_c", { upstream: [b] }, async () => 3);
  c.then(a);
});
`),
    );
    await h.processor.scan();
    const err = await importErrorFor(h, file);
    expect(err).toBeDefined();
    expect(err!.code).toBe("BATON_DAG_CYCLE");
    for (const id of ["step_a", "step_b", "step_c"]) expect(err!.message).toContain(id);
    expect(err!.message).toMatch(/cycle/);
    expect(await dagRow(h, "cyclic")).toBeUndefined();
  });

  it("rejects a duplicate task id with the line of the duplicate t.task call", async () => {
    const source = dagSource(`
export default dag({ id: "dup_tasks" }, (t) => {
  t.task("same", async () => 1);
  t.task("other", async () => 2);
  t.task("same", async () => 3); // DUPLICATE
});
`);
    const file = await h.writeDag("dup_tasks.ts", source);
    await h.processor.scan();
    const err = await importErrorFor(h, file);
    expect(err).toBeDefined();
    expect(err!.code).toBe("BATON_DUPLICATE_TASK_ID");
    expect(err!.message).toContain('"same"');
    expect(err!.line).toBe(lineOf(source, "DUPLICATE"));
    expect(await dagRow(h, "dup_tasks")).toBeUndefined();
  });

  it("records the line of an exception thrown at import time", async () => {
    const source = dagSource(`
const rows = [1, 2, 3];
function loadConfig() {
  throw new Error("config service unreachable"); // THROW
}
const config = rows.length > 2 ? loadConfig() : {};
export default dag({ id: "throws_at_import" }, (t) => { t.task("a", async () => config); });
`);
    const file = await h.writeDag("throws.ts", source);
    await h.processor.scan();
    const err = await importErrorFor(h, file);
    expect(err).toBeDefined();
    expect(err!.code).toBe("BATON_DAG_IMPORT_ERROR");
    expect(err!.line).toBe(lineOf(source, "THROW"));
    expect(err!.message).toContain("config service unreachable");
    expect(await dagRow(h, "throws_at_import")).toBeUndefined();
  });

  it("logs an import error with the file's absolute path and line, as importErrors' filename names it", async () => {
    // The folder is under the system temp folder, not below the working directory: relative, it would read ../../tmp/….
    const lines: string[] = [];
    const logger = capturingLogger(lines);
    const root = await mkdtemp(path.join(os.tmpdir(), "baton-warn-dags-"));
    const processor = new DagProcessor(h.db, h.clock, logger, {
      dagsFolder: root,
      parseTimeoutMs: 30_000,
      rescanIntervalMs: 60_000,
      pausedAtCreation: false,
      scratchFolder: path.join(h.cacheFolder, "parse-warn"),
      poolSize: 1,
    });
    try {
      const file = path.join(root, "warn_throws.ts");
      await writeFile(file, dagSource(`throw new Error("warn_throws exploded"); // THROW\nexport default dag({ id: "warn_throws" }, (t) => { t.task("a", async () => 1); });`));
      await processor.scan();
      expect(lines.filter((l) => l.startsWith("warn: "))).toEqual([`warn: import error in ${file}:2: Error: warn_throws exploded`]);
      expect((await importErrorFor(h, file))!.line).toBe(2);
    } finally {
      await processor.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  it("stores a new version when a file changes, and does not re-parse an unchanged file", async () => {
    const file = await h.writeDag("versioned.ts", simpleDag("versioned", "first"));
    await h.processor.scan();
    const before = await dagRow(h, "versioned");
    expect(before).toBeDefined();
    const v1 = before!.latest_version_hash as string;

    // Unchanged: a second scan parses nothing and touches nothing.
    const idle = await h.processor.scan();
    expect(idle.parsed).toBe(0);
    const same = await dagRow(h, "versioned");
    expect(same!.last_parsed_at).toEqual(before!.last_parsed_at);
    expect(same!.latest_version_hash).toBe(v1);
    expect(await versions(h, "versioned")).toEqual([v1]);

    // Edited: a new immutable version, and the dag row points at it.
    await h.writeDag("versioned.ts", simpleDag("versioned", "second"));
    const edited = await h.processor.scan();
    expect(edited.parsed).toBe(1);
    const after = await dagRow(h, "versioned");
    expect(after!.latest_version_hash).not.toBe(v1);
    expect(await versions(h, "versioned")).toEqual([v1, after!.latest_version_hash]);
    expect(after!.fileloc).toBe(file);
    const [[latest]] = await h.db.pool.query<RowDataPacket[]>("SELECT structure FROM dag_version WHERE dag_id = ? AND version_hash = ?", [
      "versioned",
      after!.latest_version_hash,
    ]);
    expect(JSON.parse(latest!.structure).tasks.map((t: { taskId: string }) => t.taskId)).toEqual(["second"]);
  });

  it("deactivates the DAGs of a deleted file and hides them from the default list", async () => {
    const file = await h.writeDag("doomed.ts", simpleDag("doomed"));
    await h.processor.scan();
    expect(await dagIds(h)).toContain("doomed");

    await rm(file);
    const report = await h.processor.scan();
    expect(report.removed).toBe(1);
    expect((await dagRow(h, "doomed"))!.is_active).toBe(0);
    expect(await dagIds(h)).not.toContain("doomed");
    expect(await dagIds(h, "?only_active=false")).toContain("doomed");
    const one = await h.app.inject({ method: "GET", url: "/api/v1/dags/doomed" });
    expect(one.json().is_active).toBe(false);
    const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/doomed/dagRuns", payload: {} });
    expect(trigger.json().code).toBe("BATON_DAG_INACTIVE");
  });

  it("clears the import error once a broken file is fixed", async () => {
    const file = await h.writeDag("fixme.ts", dagSource(`export default dag({ id: "fixme" }, (t) => { t.task("a", async () => 1) ; ) });`));
    await h.processor.scan();
    expect(await importErrorFor(h, file)).toBeDefined();
    expect(await dagRow(h, "fixme")).toBeUndefined();

    await h.writeDag("fixme.ts", simpleDag("fixme"));
    await h.processor.scan();
    expect(await importErrorFor(h, file)).toBeUndefined();
    expect(await dagIds(h)).toContain("fixme");
    const one = await h.app.inject({ method: "GET", url: "/api/v1/dags/fixme" });
    expect(one.json().has_import_errors).toBe(false);
  });

  it("makes a second file defining an existing dag_id an import error, and keeps the first", async () => {
    const first = await h.writeDag("owner_a.ts", simpleDag("shared_id", "from_a"));
    await h.processor.scan();
    const owned = await dagRow(h, "shared_id");
    expect(owned!.fileloc).toBe(first);

    const second = await h.writeDag("owner_b.ts", simpleDag("shared_id", "from_b"));
    const report = await h.processor.scan();
    expect(report.errors).toBe(1);
    const err = await importErrorFor(h, second);
    expect(err).toBeDefined();
    expect(err!.message).toContain("shared_id");
    expect(err!.message).toContain(first);
    expect(await importErrorFor(h, first)).toBeUndefined();

    const still = await dagRow(h, "shared_id");
    expect(still!.fileloc).toBe(first);
    expect(still!.latest_version_hash).toBe(owned!.latest_version_hash);
    expect(await versions(h, "shared_id")).toEqual([owned!.latest_version_hash]);
  });
});

describe("DAG processor: changes outside the DAG file itself", () => {
  const h = new Harness({ worker: false });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  /** A second processor, on another folder of DAG files, writing to the harness's database. */
  const processorOf = (dagsFolder: string, scratch: string, rescanIntervalMs: number, options: Partial<DagProcessorOptions> = {}) =>
    new DagProcessor(h.db, h.clock, h.logger, {
      dagsFolder,
      parseTimeoutMs: 30_000,
      rescanIntervalMs,
      pausedAtCreation: false,
      scratchFolder: path.join(h.cacheFolder, scratch),
      poolSize: 1,
      ...options,
    });

  /** processorOf() a temporary folder holding `files`: stopped and the folder removed after `use`, whatever it does. */
  async function withOwnFolder(
    tag: string,
    files: Record<string, string>,
    rescanIntervalMs: number,
    use: (processor: DagProcessor, root: string) => Promise<void>,
    options: Partial<DagProcessorOptions> = {},
  ): Promise<void> {
    const root = await mkdtemp(path.join(os.tmpdir(), `baton-${tag}-dags-`));
    const processor = processorOf(root, `parse-${tag}`, rescanIntervalMs, options);
    try {
      for (const [name, source] of Object.entries(files)) await writeFile(path.join(root, name), source);
      await use(processor, root);
    } finally {
      await processor.stop();
      await rm(root, { recursive: true, force: true });
    }
  }

  // DESIGN: "Local imports are bundled with it": the file's hash covers the modules it imports.
  it("stores a new version when a local module imported by a DAG file changes", async () => {
    await h.writeDag("lib/names.ts", `export const TASK = "before_edit";\n`);
    await h.writeDag("uses_lib.ts", dagSource(`import { TASK } from "./lib/names.ts";\nexport default dag({ id: "uses_lib" }, (t) => { t.task(TASK, async () => 1); });`));
    await h.processor.scan();
    expect(await versions(h, "uses_lib")).toHaveLength(1);

    await h.writeDag("lib/names.ts", `export const TASK = "after_edit";\n`);
    await h.processor.scan();
    const dag = await dagRow(h, "uses_lib");
    const [[latest]] = await h.db.pool.query<RowDataPacket[]>("SELECT structure FROM dag_version WHERE dag_id = ? AND version_hash = ?", [
      "uses_lib",
      dag!.latest_version_hash,
    ]);
    expect(JSON.parse(latest!.structure).tasks.map((t: { taskId: string }) => t.taskId)).toEqual(["after_edit"]);
  });

  // A helper module in the DAG folder is parsed like any file, and defines no DAG: no version will
  // ever name its bundle, and dag_code is never pruned, so storing it would only grow the table.
  it("stores the bundle of a file that defines no DAG nowhere; the DAG file importing it has its own", async () => {
    await h.writeDag("lib/marked.ts", `export const MARK = "helper_marker_5d1c";\n`);
    await h.writeDag("uses_marked.ts", dagSource(`import { MARK } from "./lib/marked.ts";\nexport default dag({ id: "uses_marked" }, (t) => { t.task("only", async () => MARK); });`));
    expect(await h.processor.scan()).toMatchObject({ errors: 0 });
    const [bundles] = await h.db.pool.query<RowDataPacket[]>("SELECT code_hash FROM dag_code WHERE code LIKE '%helper_marker_5d1c%'");
    const [versions] = await h.db.pool.query<RowDataPacket[]>("SELECT code_hash FROM dag_version WHERE dag_id = 'uses_marked'");
    expect(bundles.map((r) => r.code_hash)).toEqual(versions.map((r) => r.code_hash));
  });

  it("stores the SDK module with the first DAG recorded, after a scan that recorded only helper modules", async () => {
    // SDK modules are the rows no version names: gone, only this processor's scans can store one again.
    await h.db.pool.query("DELETE FROM dag_code WHERE code_hash NOT IN (SELECT code_hash FROM dag_version)");
    await withOwnFolder("helpers_first", { "helper_only.ts": `export const HELP = 1;\n` }, 3_600_000, async (processor, root) => {
      expect(await processor.scan()).toMatchObject({ parsed: 1, dags: 0, errors: 0 });
      await writeFile(path.join(root, "after_helper.ts"), simpleDag("after_helper"));
      expect(await processor.scan()).toMatchObject({ parsed: 1, dags: 1, errors: 0 });
      const [[bundle]] = await h.db.pool.query<RowDataPacket[]>(
        "SELECT c.code FROM dag d JOIN dag_version v ON v.dag_id = d.dag_id AND v.version_hash = d.latest_version_hash JOIN dag_code c ON c.code_hash = v.code_hash WHERE d.dag_id = 'after_helper'",
      );
      const sdkHash = /baton-sdk-([0-9a-f]{64})\.mjs/.exec(bundle!.code as string)![1];
      const [sdk] = await h.db.pool.query<RowDataPacket[]>("SELECT 1 FROM dag_code WHERE code_hash = ?", [sdkHash]);
      expect(sdk).toHaveLength(1);
    });
  });

  it("lets a DAG folder take over a dag_id last defined by a file of another folder (the last parse wins)", async () => {
    const first = await h.writeDag("owner.ts", simpleDag("moved_dag", "from_old"));
    await h.processor.scan();
    expect((await dagRow(h, "moved_dag"))!.fileloc).toBe(first);

    await withOwnFolder("other", { "moved.ts": simpleDag("moved_dag", "from_new") }, 60_000, async (other, otherRoot) => {
      const report = await other.scan();
      expect(report.errors).toBe(0);
      const dag = await dagRow(h, "moved_dag");
      expect({ fileloc: dag!.fileloc, is_active: dag!.is_active }).toEqual({ fileloc: path.join(otherRoot, "moved.ts"), is_active: 1 });
    });
  });

  it("once started, parses files written at the top and in a folder created afterwards, without waiting for a rescan", async () => {
    // Rescans an hour apart: only the watcher can see the files below.
    await withOwnFolder("watched", { "watched_first.ts": simpleDag("watched_first") }, 3_600_000, async (watched, root) => {
      expect((await watched.start())?.dags).toBe(1);
      // The folder first, then a file at the top: once that file is parsed, a scan has listed the
      // new folder, and only a watch on it can see the file written there next.
      await mkdir(path.join(root, "team", "daily"), { recursive: true });
      await writeFile(path.join(root, "watched_top.ts"), simpleDag("watched_top"));
      await waitFor("the file at the top parsed", () => dagRow(h, "watched_top"));
      await writeFile(path.join(root, "team", "daily", "watched_nested.ts"), simpleDag("watched_nested"));
      const nested = await waitFor("the file in the new folder parsed", () => dagRow(h, "watched_nested"));
      expect(nested.fileloc).toBe(path.join(root, "team", "daily", "watched_nested.ts"));
    });
  });

  it("sees a file written while the first scan still parses, without waiting for a rescan", async () => {
    // One parser child: the slow file holds the first scan until the test releases it (a file
    // outside the DAG folder; 20 s at most), and says when its import began (another file). The
    // scan may hand either file to the child first (each is read and hashed before it asks for
    // the child), so the test waits for the slow import itself, not for the fast file. Rescans an
    // hour apart: only a watch already set during that scan sees new.ts.
    const release = path.join(os.tmpdir(), `baton-early-release-${process.pid}-${Date.now()}`);
    const begun = `${release}.begun`;
    const slow = dagSource(
      `import { existsSync, writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(begun)}, "");\n` +
        `const until = Date.now() + 20_000;\nwhile (!existsSync(${JSON.stringify(release)}) && Date.now() < until) {}\n` +
        `export default dag({ id: "early_slow" }, (t) => { t.task("only", async () => 0); });`,
    );
    await withOwnFolder("early", { "a_fast.ts": simpleDag("early_fast"), "z_slow.ts": slow }, 3_600_000, async (early, root) => {
      const started = early.start();
      // A cold parser child on a loaded CI machine once took over 10 s to get here.
      await waitFor("the slow file's import begun", async () => existsSync(begun), 20_000);
      expect(await dagRow(h, "early_slow")).toBeUndefined();
      await writeFile(path.join(root, "new.ts"), simpleDag("early_new"));
      await writeFile(release, "");
      expect((await started)?.dags).toBe(2);
      expect(await dagRow(h, "early_fast")).toBeDefined();
      await waitFor("the file written during the first scan parsed", () => dagRow(h, "early_new"));
    }).finally(() => Promise.all([rm(release, { force: true }), rm(begun, { force: true })]));
  });

  it("sees an edit of one file while another hangs its parser until the parse timeout", async () => {
    // Two parser children: the hanging file holds one, and its scan, until the 6 s timeout. The
    // edit starts a second scan that leaves the hanging file to the first (rescans an hour apart).
    const hanging = dagSource(`while (true) {}\nexport default dag({ id: "never_parsed" }, (t) => { t.task("x", async () => 0); });`);
    await withOwnFolder(
      "hang",
      { "hangs.ts": hanging, "edited.ts": simpleDag("beside_hang", "before") },
      3_600_000,
      async (processor, root) => {
        const started = processor.start();
        await waitFor("the other file parsed", async () => (await versions(h, "beside_hang")).length === 1);
        await writeFile(path.join(root, "edited.ts"), simpleDag("beside_hang", "after"));
        // Well before the hanging file's timeout ends the first scan.
        await waitFor("the edit stored", async () => (await versions(h, "beside_hang")).length === 2, 3_000);
        const report = await started;
        expect(report?.errors).toBe(1);
        expect((await importErrorFor(h, path.join(root, "hangs.ts")))?.code).toBe("BATON_DAG_PARSE_TIMEOUT");
      },
      { poolSize: 2, parseTimeoutMs: 6_000 },
    );
  });

  // A DAG file's code may outlive its import (a timer, a promise nobody awaits) and end the loader
  // process once the file was parsed: the next file must get a live loader, not that dead one's
  // BATON_DAG_LOADER_DIED (an import error for five minutes on a file that did nothing wrong).
  it("parses the next file in a fresh loader when an idle one died after parsing the last", async () => {
    // The loader ends once the test says so, after the file's parse was recorded.
    const release = path.join(os.tmpdir(), `baton-idle-death-${process.pid}-${Date.now()}`);
    const pidFile = `${release}.pid`;
    const dies = dagSource(
      `import { existsSync, writeFileSync } from "node:fs";\n` +
        `setInterval(() => { if (existsSync(${JSON.stringify(release)})) { writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.exit(1); } }, 10);\n` +
        `export default dag({ id: "leaves_a_timer" }, (t) => { t.task("only", async () => 0); });`,
    );
    await withOwnFolder("idle_death", { "leaves_a_timer.ts": dies }, 3_600_000, async (processor, root) => {
      expect(await processor.scan()).toMatchObject({ dags: 1, errors: 0 });
      await writeFile(release, "");
      const pid = Number(await waitFor("the loader's pid", async () => (existsSync(pidFile) ? readFile(pidFile, "utf8") : null)));
      await waitFor("the loader gone", async () => !running(pid));

      const innocent = path.join(root, "innocent.ts");
      await writeFile(innocent, simpleDag("innocent"));
      expect(await processor.scan()).toMatchObject({ parsed: 1, dags: 1, errors: 0 });
      expect(await importErrorFor(h, innocent)).toBeUndefined();
    }).finally(() => Promise.all([rm(release, { force: true }), rm(pidFile, { force: true })]));
  });

  // The same death, unseen when the next file is handed over: the loader ends as that file reaches
  // it (here, deterministically, on the message itself). The file did nothing; a fresh loader
  // parses it. One that kills a fresh loader too still fails (dagReparse: BATON_DAG_LOADER_DIED).
  it("parses a file again in a fresh loader when a loader that parsed other files dies on receiving it", async () => {
    const dies = dagSource(
      `process.on("message", () => process.exit(1));\n` + `export default dag({ id: "ends_its_loader" }, (t) => { t.task("only", async () => 0); });`,
    );
    await withOwnFolder(
      "death_on_handover",
      { "ends_its_loader.ts": dies },
      3_600_000,
      async (processor, root) => {
        expect(await processor.scan()).toMatchObject({ dags: 1, errors: 0 });
        const innocent = path.join(root, "innocent.ts");
        await writeFile(innocent, simpleDag("innocent_after_death"));
        expect(await processor.scan()).toMatchObject({ parsed: 1, dags: 1, errors: 0 });
        expect(await importErrorFor(h, innocent)).toBeUndefined();
      },
      { poolSize: 1 },
    );
  });

  it("starts no scan after stop(), even with a change seen just before it", async () => {
    // Every 10 ms a rescan is asked for, re-arming the 100 ms debounce: one is always pending at stop().
    await withOwnFolder("stopping", { "stopping.ts": simpleDag("stopping_dag") }, 10, async (stopping) => {
      expect((await stopping.start())?.dags).toBe(1);
      const scans = jest.spyOn(stopping, "scan");
      // The 10 ms interval, set before this 20 ms timer, has fired by then: a debounce is pending.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await stopping.stop();
      const scansAtStop = scans.mock.calls.length;
      // A debounce armed before stop() expires within 100 ms: a timer set now for 150 ms fires after it.
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(scans.mock.calls.length).toBe(scansAtStop);
      // A late caller gets an empty report rather than a scan on the closed parser pool.
      await expect(stopping.scan()).resolves.toEqual({ files: 0, parsed: 0, dags: 0, errors: 0, removed: 0, unreadable: [] });
    });
  });

  it("lets the other file defining a dag_id take over once the first file is deleted", async () => {
    const first = await h.writeDag("takeover_a.ts", simpleDag("takeover", "from_a"));
    await h.processor.scan();
    const second = await h.writeDag("takeover_b.ts", simpleDag("takeover", "from_b"));
    await h.processor.scan();
    expect(await importErrorFor(h, second)).toBeDefined();

    await rm(first);
    await h.processor.scan();
    const dag = await dagRow(h, "takeover");
    expect({ fileloc: dag!.fileloc, is_active: dag!.is_active }).toEqual({ fileloc: second, is_active: 1 });
    expect(await importErrorFor(h, second)).toBeUndefined();
  });
});

describe("DAG processor: a file that never finishes loading", () => {
  const h = new Harness({ worker: false, parseTimeoutMs: 4000 });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  it("becomes BATON_DAG_PARSE_TIMEOUT while other files still parse", async () => {
    // Warm both parser children first, so the timeout measures the file, not process start-up.
    await h.writeDag("warm_a.ts", simpleDag("warm_a"));
    await h.writeDag("warm_b.ts", simpleDag("warm_b"));
    expect((await h.processor.scan()).errors).toBe(0);

    const hang = dagSource(`
while (true) {}
export default dag({ id: "never_loads" }, (t) => { t.task("a", async () => 1); });
`);
    const hangFile = await h.writeDag("hang.ts", hang);
    await h.writeDag("after_hang_1.ts", simpleDag("after_hang_1"));
    await h.writeDag("after_hang_2.ts", simpleDag("after_hang_2"));
    const started = Date.now();
    const report = await h.processor.scan();
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(report.errors).toBe(1);

    const res = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
    const err = (res.json().import_errors as ImportErrorJson[]).find((e) => e.filename === hangFile);
    expect(err).toBeDefined();
    expect(err!.code).toBe("BATON_DAG_PARSE_TIMEOUT");
    expect(err!.message).toMatch(/took longer than/);

    const dags = await h.app.inject({ method: "GET", url: "/api/v1/dags" });
    const ids = (dags.json().dags as { dag_id: string }[]).map((d) => d.dag_id);
    expect(ids).toEqual(expect.arrayContaining(["warm_a", "warm_b", "after_hang_1", "after_hang_2"]));
    expect(ids).not.toContain("never_loads");

    // The killed loader was replaced: a later file still parses.
    await h.writeDag("after_hang_3.ts", simpleDag("after_hang_3"));
    expect((await h.processor.scan()).errors).toBe(0);
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT dag_id FROM dag WHERE dag_id = 'after_hang_3' AND is_active = 1");
    expect(rows).toHaveLength(1);
  });
});

describe("DAG processor: a file the database cannot hold", () => {
  const h = new Harness({ worker: false });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  it("makes a bundle over max_allowed_packet an import error saying so, records the other files, and scans again cleanly", async () => {
    const [[limit]] = await h.db.pool.query<RowDataPacket[]>("SELECT @@GLOBAL.max_allowed_packet AS n");
    const blob = "x".repeat(Number(limit!.n) + 1024 * 1024);
    const big = await h.writeDag("too_big.ts", dagSource(`const blob = "${blob}";\nexport default dag({ id: "too_big" }, (t) => { t.task("a", async () => blob.length); });`));
    await h.writeDag("fits.ts", simpleDag("fits"));
    const report = await h.processor.scan();
    expect(report.errors).toBe(1);
    const err = await importErrorFor(h, big);
    expect(err?.code).toBe("BATON_DAG_TOO_LARGE");
    expect(err!.message).toContain("max_allowed_packet");
    expect(err!.message).toMatch(/\d+\.\d MB/);
    expect(await dagRow(h, "fits")).toBeDefined();
    expect(await dagRow(h, "too_big")).toBeUndefined();
    // Unchanged, the file is not parsed again (nor does the scan fail on it again).
    expect(await h.processor.scan()).toMatchObject({ parsed: 0, errors: 0 });
  });

  it("makes an owner longer than the dag row holds an import error naming the option", async () => {
    const file = await h.writeDag("long_owner.ts", dagSource(`export default dag({ id: "long_owner", owner: "${"o".repeat(300)}" }, (t) => { t.task("a", async () => 1); });`));
    await h.writeDag("next_to_long_owner.ts", simpleDag("next_to_long_owner"));
    expect((await h.processor.scan()).errors).toBe(1);
    const err = await importErrorFor(h, file);
    expect(err?.code).toBe("BATON_INVALID_DAG");
    expect(err!.message).toContain("owner");
    expect(await dagRow(h, "next_to_long_owner")).toBeDefined();
  });

  it("makes a value the database refuses (a data error) that file's import error, not a failed scan", async () => {
    // A column narrower than the checks assume stands for any limit they miss.
    await h.db.pool.query("ALTER TABLE dag MODIFY owners VARCHAR(8) NULL");
    try {
      const file = await h.writeDag("narrow_owner.ts", dagSource(`export default dag({ id: "narrow_owner", owner: "twelve_chars" }, (t) => { t.task("a", async () => 1); });`));
      await h.writeDag("next_to_narrow_owner.ts", simpleDag("next_to_narrow_owner"));
      expect((await h.processor.scan()).errors).toBe(1);
      const err = await importErrorFor(h, file);
      expect(err?.code).toBe("BATON_INVALID_DAG");
      expect(err!.message).toContain("owners");
      expect(await dagRow(h, "narrow_owner")).toBeUndefined();
      expect(await dagRow(h, "next_to_narrow_owner")).toBeDefined();
      expect(await h.processor.scan()).toMatchObject({ parsed: 0, errors: 0 });
    } finally {
      await h.db.pool.query("ALTER TABLE dag MODIFY owners VARCHAR(255) NULL");
    }
  });
});

/** Forwards connections to the database, or, while `refusing`, closes them as they open: a database that is down. */
class RefusingProxy {
  refusing = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((client) => {
    if (this.refusing) return void client.destroy();
    const upstream = net.connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => this.sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });

  constructor(private readonly target: { host: string; port: number }) {}

  /** The URL of `databaseUrl`'s database through this proxy. */
  async listen(databaseUrl: string): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const url = new URL(databaseUrl);
    url.hostname = "127.0.0.1";
    url.port = String((this.server.address() as net.AddressInfo).port);
    return url.toString();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe("DAG processor: the database goes away", () => {
  const h = new Harness({ worker: false });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  // The scheduler and the workers outlive an outage; so must the DAG processor, even one that
  // starts during it (a standalone's first scan of a big folder takes seconds).
  it("keeps going when its first scan cannot reach the database, and records the folder once it can", async () => {
    const target = new URL(h.db.url);
    const proxy = new RefusingProxy({ host: target.hostname === "localhost" ? "127.0.0.1" : target.hostname, port: Number(target.port || 3306) });
    const db = openDb(await proxy.listen(h.db.url), { connectionLimit: 2 });
    const root = await mkdtemp(path.join(os.tmpdir(), "baton-outage-dags-"));
    const lines: string[] = [];
    const processor = new DagProcessor(db, h.clock, capturingLogger(lines), {
      dagsFolder: root,
      parseTimeoutMs: 30_000,
      rescanIntervalMs: 200,
      pausedAtCreation: false,
      scratchFolder: path.join(h.cacheFolder, "parse-outage"),
      poolSize: 1,
    });
    try {
      await writeFile(path.join(root, "outage.ts"), simpleDag("outage_dag"));
      proxy.refusing = true;
      await processor.start();
      expect(lines.some((l) => l.startsWith("error: DAG folder scan failed"))).toBe(true);
      expect(await dagRow(h, "outage_dag")).toBeUndefined();

      proxy.refusing = false;
      const dag = await waitFor("the file recorded once the database is back", () => dagRow(h, "outage_dag"));
      expect(dag.is_active).toBe(1);
    } finally {
      await processor.stop();
      await db.close();
      await proxy.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
