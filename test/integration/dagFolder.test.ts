// The DAG folder as an Airflow user expects it to behave: a folder that is missing or unreadable
// deactivates nothing, symbolic links are followed, .batonignore skips files, and one path too long
// for the database skips only that file.
import { mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FakeClock, type Clock } from "../../core/clock.ts";
import { DagProcessor, type DagProcessorOptions } from "../../parser/processor.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { capturingLogger } from "../helpers/logger.ts";
import type { RowDataPacket } from "../../store/db.ts";

function simpleDag(id: string, task = "only"): string {
  return dagSource(`export default dag({ id: "${id}" }, (t) => { t.task("${task}", async () => "${id}:${task}"); });`);
}

interface ImportErrorJson {
  import_error_id: number;
  filename: string;
  timestamp: string;
  code: string;
  message: string;
}

describe("DAG folder", () => {
  const h = new Harness({ worker: false });
  beforeAll(() => h.start());
  afterAll(() => h.stop());

  async function importErrorFor(file: string): Promise<ImportErrorJson | undefined> {
    const res = await h.app.inject({ method: "GET", url: "/api/v1/importErrors?limit=1000" });
    expect(res.statusCode).toBe(200);
    return (res.json().import_errors as ImportErrorJson[]).find((e) => e.filename === file);
  }

  async function isActive(dagId: string): Promise<boolean | undefined> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT is_active FROM dag WHERE dag_id = ?", [dagId]);
    return rows[0] ? rows[0].is_active === 1 : undefined;
  }

  async function versionCount(dagId: string): Promise<number> {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM dag_version WHERE dag_id = ?", [dagId]);
    return Number(row!.n);
  }

  /** A processor of its own on a fresh temporary folder holding `files`; stopped and the folders removed after `use`. */
  async function withFolder(
    tag: string,
    files: Record<string, string>,
    use: (ctx: { processor: DagProcessor; root: string; lines: string[]; scratch: string }) => Promise<void>,
    { clock, ...options }: Partial<DagProcessorOptions> & { clock?: Clock } = {},
  ): Promise<void> {
    const base = await mkdtemp(path.join(os.tmpdir(), `baton-${tag}-`));
    const root = path.join(base, "dags");
    const scratch = path.join(base, "elsewhere"); // outside the DAG folder, for link targets
    await mkdir(root);
    await mkdir(scratch);
    const lines: string[] = [];
    const processor = new DagProcessor(h.db, clock ?? h.clock, capturingLogger(lines), {
      dagsFolder: root,
      parseTimeoutMs: 30_000,
      rescanIntervalMs: 60_000,
      pausedAtCreation: false,
      scratchFolder: path.join(h.cacheFolder, `parse-${tag}`),
      poolSize: 1,
      ...options,
    });
    try {
      for (const [name, source] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(root, name)), { recursive: true });
        await writeFile(path.join(root, name), source);
      }
      await use({ processor, root, lines, scratch });
    } finally {
      await processor.stop();
      await rm(base, { recursive: true, force: true });
    }
  }

  it("deactivates nothing while the DAG folder is missing, reports it, and picks the DAGs up again once it is back", async () => {
    const clock = new FakeClock("2026-04-01T00:00:00Z");
    await withFolder("missing", { "top.ts": simpleDag("missing_top"), "sub/deep.ts": simpleDag("missing_deep") }, async ({ processor, root, lines }) => {
      expect(await processor.scan()).toMatchObject({ dags: 2, errors: 0 });

      await rename(root, `${root}.away`); // an unmounted volume, a folder briefly renamed
      expect(await processor.scan()).toMatchObject({ files: 0, removed: 0 });
      expect(await isActive("missing_top")).toBe(true);
      expect(await isActive("missing_deep")).toBe(true);
      const err = await importErrorFor(root);
      expect(err?.code).toBe("BATON_DAGS_FOLDER_UNREADABLE");
      expect(err!.message).toContain(root);
      expect(err!.message).toContain("ENOENT");
      expect(lines.filter((l) => l.startsWith("warn:") && l.includes(root))).toHaveLength(1);
      expect(err!.timestamp).toBe(clock.now().toISOString());
      clock.advance(60_000);
      await processor.scan(); // reported once in the log, not at every rescan
      expect(lines.filter((l) => l.startsWith("warn:") && l.includes(root))).toHaveLength(1);
      // As a file's import error: the same row, its timestamp the last scan that saw the problem (Airflow's at each parse).
      expect(await importErrorFor(root)).toEqual({ ...err, timestamp: clock.now().toISOString() });

      await rename(`${root}.away`, root);
      expect(await processor.scan()).toMatchObject({ files: 2, parsed: 0, removed: 0 });
      expect(await importErrorFor(root)).toBeUndefined();
      expect(await isActive("missing_top")).toBe(true);
      expect(lines.some((l) => l.startsWith("info:") && l.includes(root) && /readable again/.test(l))).toBe(true);
    }, { clock });
  });

  it("deactivates the DAGs of a folder that exists but is empty, as Airflow does", async () => {
    await withFolder("emptied", { "gone.ts": simpleDag("emptied_dag") }, async ({ processor, root }) => {
      await processor.scan();
      await rm(path.join(root, "gone.ts"));
      expect(await processor.scan()).toMatchObject({ removed: 1 });
      expect(await isActive("emptied_dag")).toBe(false);
      expect(await importErrorFor(root)).toBeUndefined();
    });
  });

  it("keeps the DAGs of a subfolder it cannot read (EACCES) and reports it, the rest of the folder still in step", async () => {
    let denied = false;
    let currentRoot = "";
    const deniedDir = () => path.join(currentRoot, "locked");
    const failingReaddir = (async (dir: string, options: { withFileTypes: true }) => {
      if (denied && dir === deniedDir()) throw Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: "EACCES" });
      return readdir(dir, options);
    }) as typeof readdir;
    await withFolder(
      "eacces",
      { "locked/kept.ts": simpleDag("eacces_kept"), "open.ts": simpleDag("eacces_open") },
      async ({ processor, root }) => {
        currentRoot = root;
        await processor.scan();
        denied = true;
        await rm(path.join(root, "open.ts"));
        expect(await processor.scan()).toMatchObject({ removed: 1 });
        expect(await isActive("eacces_kept")).toBe(true);
        expect(await isActive("eacces_open")).toBe(false);
        expect((await importErrorFor(deniedDir()))?.code).toBe("BATON_DAGS_FOLDER_UNREADABLE");

        denied = false;
        await processor.scan();
        expect(await importErrorFor(deniedDir())).toBeUndefined();
        expect(await isActive("eacces_kept")).toBe(true);
      },
      { discoverFs: { readdir: failingReaddir } },
    );
  });

  it("keeps the DAGs of a file it cannot read, saying so once", async () => {
    let denied = "";
    const failingReadFile = (async (file: string) => {
      if (file === denied) throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: "EACCES" });
      return readFile(file);
    }) as typeof readFile;
    await withFolder(
      "unreadable-file",
      { "locked.ts": simpleDag("unreadable_file_dag") },
      async ({ processor, root, lines }) => {
        await processor.scan();
        denied = path.join(root, "locked.ts");
        await writeFile(denied, simpleDag("unreadable_file_dag", "edited"));
        expect(await processor.scan()).toMatchObject({ removed: 0, parsed: 0 });
        await processor.scan();
        expect(await isActive("unreadable_file_dag")).toBe(true);
        expect(lines.filter((l) => l.startsWith("warn:") && l.includes(denied) && l.includes("EACCES"))).toHaveLength(1);
        denied = "";
        expect(await processor.scan()).toMatchObject({ parsed: 1 });
        expect(await versionCount("unreadable_file_dag")).toBe(2);
      },
      { discoverFs: { readFile: failingReadFile } },
    );
  });

  it("keeps the DAGs under a symbolic link whose target went away (a volume not mounted yet)", async () => {
    await withFolder("dangling", {}, async ({ processor, root, scratch }) => {
      await writeFile(path.join(scratch, "mounted.ts"), simpleDag("dangling_dag"));
      await symlink(scratch, path.join(root, "volume"));
      await processor.scan();
      expect(await isActive("dangling_dag")).toBe(true);

      await rename(scratch, `${scratch}.unmounted`);
      expect(await processor.scan()).toMatchObject({ removed: 0 });
      expect(await isActive("dangling_dag")).toBe(true);
      expect((await importErrorFor(path.join(root, "volume")))?.code).toBe("BATON_DAGS_FOLDER_UNREADABLE");

      await rename(`${scratch}.unmounted`, scratch);
      expect(await processor.scan()).toMatchObject({ parsed: 0 });
      expect(await importErrorFor(path.join(root, "volume"))).toBeUndefined();
    });
  });

  // The dangling link's folder problem took the file's own import error row (one per fileloc); once the
  // link led to the unchanged file again, the problem was cleared and the file skipped by its hash.
  it("brings back a linked file's own import error once the link's target is back", async () => {
    await withFolder("danglingfile", {}, async ({ processor, root, scratch }) => {
      const target = path.join(scratch, "broken.ts");
      const link = path.join(root, "broken.ts");
      await writeFile(target, `import { dag } from "baton";\nexport default dag({ id: "dangling_file" }, (t) => {\n  t.task("x", async () => 1);\n  throw new Error("broken on purpose");\n});\n`);
      await symlink(target, link);
      await processor.scan();
      const own = await importErrorFor(link);
      expect(own).toMatchObject({ code: "BATON_DAG_IMPORT_ERROR", message: expect.stringContaining("broken on purpose") });

      await rename(target, `${target}.away`);
      await processor.scan();
      expect((await importErrorFor(link))?.code).toBe("BATON_DAGS_FOLDER_UNREADABLE");

      await rename(`${target}.away`, target);
      await processor.scan();
      expect(await importErrorFor(link)).toMatchObject({ code: own!.code, message: own!.message });

      // Dangling again, then the link deleted: the file is gone, as any deleted file.
      await rename(target, `${target}.away`);
      await processor.scan();
      await rm(link);
      expect(await processor.scan()).toMatchObject({ removed: 1 });
      expect(await importErrorFor(link)).toBeUndefined();
    });
  });

  it("follows linked folders and files, and notices edits made through them without waiting for a rescan", async () => {
    await withFolder("links", { "own.ts": simpleDag("links_own") }, async ({ processor, root, scratch }) => {
      await mkdir(path.join(scratch, "team"));
      await writeFile(path.join(scratch, "team", "far.ts"), simpleDag("links_far", "v1"));
      await writeFile(path.join(scratch, "single.ts"), simpleDag("links_single", "v1"));
      await symlink(path.join(scratch, "team"), path.join(root, "team"));
      await symlink(path.join(scratch, "single.ts"), path.join(root, "single.ts"));
      await symlink(root, path.join(scratch, "team", "loop")); // a link back to the DAG folder: no endless walk
      expect(await processor.start()).toMatchObject({ dags: 3, errors: 0 });
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT dag_id, fileloc FROM dag WHERE dag_id LIKE 'links\\_%' ORDER BY dag_id");
      expect(rows.map((r) => [r.dag_id, r.fileloc])).toEqual([
        ["links_far", path.join(root, "team", "far.ts")],
        ["links_own", path.join(root, "own.ts")],
        ["links_single", path.join(root, "single.ts")],
      ]);

      // The rescan is a minute away: only the watcher can see these edits of the links' targets.
      await writeFile(path.join(scratch, "team", "far.ts"), simpleDag("links_far", "v2"));
      await waitFor("the edit through the linked folder", async () => (await versionCount("links_far")) === 2);
      await writeFile(path.join(scratch, "single.ts"), simpleDag("links_single", "v2"));
      await waitFor("the edit of the linked file's target", async () => (await versionCount("links_single")) === 2);
      // An editor that writes a new file and renames it over the old one: the new target is watched in turn.
      await writeFile(path.join(scratch, "single.ts.tmp"), simpleDag("links_single", "v3"));
      await rename(path.join(scratch, "single.ts.tmp"), path.join(scratch, "single.ts"));
      await waitFor("the target replaced by a rename", async () => (await versionCount("links_single")) === 3);
      await writeFile(path.join(scratch, "single.ts"), simpleDag("links_single", "v4"));
      await waitFor("an edit of the replaced target", async () => (await versionCount("links_single")) === 4);
    });
  });

  // The link sorted before its target and won: the DAG's fileloc moved to a/job.ts (deactivated and
  // parsed again there) and the real folder was logged as a link.
  it("keeps the files of a subfolder under their own path when a link to it is added, logging the link, not the folder", async () => {
    await withFolder("innerlink", { "z/job.ts": simpleDag("innerlink_job") }, async ({ processor, root, lines }) => {
      await processor.scan();
      await symlink(path.join(root, "z"), path.join(root, "a"));
      expect(await processor.scan()).toMatchObject({ files: 1, parsed: 0, removed: 0 });
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT fileloc, is_active FROM dag WHERE dag_id = 'innerlink_job'");
      expect(rows.map((r) => [r.fileloc, r.is_active])).toEqual([[path.join(root, "z", "job.ts"), 1]]);
      const linkLines = lines.filter((l) => l.includes("symbolic link"));
      expect(linkLines).toEqual([expect.stringContaining(`symbolic link ${path.join(root, "a")} leads to`)]);
    });
  });

  it("does not parse files a .batonignore matches, and deactivates the DAGs of a file once it is ignored", async () => {
    await withFolder(
      "ignore",
      { "kept.ts": simpleDag("ignore_kept"), "legacy_job.ts": simpleDag("ignore_legacy"), "scratch/wip.ts": simpleDag("ignore_wip") },
      async ({ processor, root }) => {
        await writeFile(path.join(root, ".batonignore"), "scratch   # work in progress\n");
        expect(await processor.scan()).toMatchObject({ files: 2, dags: 2 });
        expect(await isActive("ignore_wip")).toBeUndefined();

        await writeFile(path.join(root, ".batonignore"), "scratch\n^legacy_\n");
        expect(await processor.scan()).toMatchObject({ files: 1, removed: 1 });
        expect(await isActive("ignore_legacy")).toBe(false);
        expect(await isActive("ignore_kept")).toBe(true);

        await rm(path.join(root, ".batonignore"));
        expect(await processor.scan()).toMatchObject({ files: 3, parsed: 2 });
        expect(await isActive("ignore_legacy")).toBe(true);
        expect(await isActive("ignore_wip")).toBe(true);
      },
    );
  });

  it("skips only a file whose path is longer than the database stores, reporting it, and records the others", async () => {
    const clock = new FakeClock("2026-04-01T00:00:00Z");
    await withFolder("longpath", { "short.ts": simpleDag("longpath_short") }, async ({ processor, root, lines }) => {
      // Four folders of 200 characters: the file's path is over 800 characters, each name within the file system's 255.
      const rel = path.join(...["a", "b", "c", "d"].map((c) => c.repeat(200)), "long.ts");
      await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await writeFile(path.join(root, rel), simpleDag("longpath_long"));
      const report = await processor.scan();
      expect(report).toMatchObject({ files: 2, dags: 1, errors: 1 });
      expect(await isActive("longpath_short")).toBe(true);
      expect(await isActive("longpath_long")).toBeUndefined();
      const err = await importErrorFor(root);
      expect(err?.code).toBe("BATON_DAG_FILELOC_TOO_LONG");
      expect(err!.message).toContain(rel);
      expect(err!.message).toContain("700");
      expect(lines.some((l) => l.startsWith("warn:") && l.includes(rel))).toBe(true);

      // Still there at the next scan: the same row, stamped with that scan.
      clock.advance(60_000);
      await processor.scan();
      expect(await importErrorFor(root)).toEqual({ ...err, timestamp: clock.now().toISOString() });

      await rm(path.join(root, "a".repeat(200)), { recursive: true });
      await processor.scan();
      expect(await importErrorFor(root)).toBeUndefined();
    }, { clock });
  });
});
