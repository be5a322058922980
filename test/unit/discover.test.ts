import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { discoverDagFiles, discoverDagFolder } from "../../parser/discover.ts";
import { lineInFile } from "../../parser/stackLine.ts";

let root: string;

async function touch(rel: string): Promise<void> {
  const full = path.join(root, rel);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, "export {};\n");
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "baton-discover-"));
  for (const rel of [
    "b.ts",
    "a.ts",
    "c.mts",
    "d.js",
    "e.mjs",
    "nested/deep/f.ts",
    "nested/g.js",
    "Z_upper.ts",
    "x/y.ts",
    "x-z.ts",
    // not DAG files
    "types.d.ts",
    "nested/more.d.ts",
    "helper.test.ts",
    "helper.spec.ts",
    "nested/helper.test.js",
    "helper.spec.mjs",
    "helper.test.mts",
    "types.d.mts",
    "notes.md",
    "data.json",
    "script.cjs",
    "script.cts",
    "noext",
    "ts",
    "file.ts.bak",
    "node_modules/pkg/index.js",
    "nested/node_modules/x.ts",
    ".hidden/secret.ts",
    "nested/.cache/h.ts",
    ".dotfile.ts",
  ]) {
    await touch(rel);
  }
  await mkdir(path.join(root, "empty_dir"));
  await mkdir(path.join(root, "dir.ts")); // a folder named like a file is walked, not returned
  await touch("dir.ts/inside.ts");
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("discoverDagFiles", () => {
  it("finds .ts/.mts/.js/.mjs files recursively, sorted, as absolute paths", async () => {
    const found = await discoverDagFiles(root);
    expect(found).toEqual(
      [
        "Z_upper.ts",
        "a.ts",
        "b.ts",
        "c.mts",
        "d.js",
        "dir.ts/inside.ts",
        "e.mjs",
        "nested/deep/f.ts",
        "nested/g.js",
        "x-z.ts", // "-" sorts before "/": the whole list is sorted, not each folder
        "x/y.ts",
      ].map((rel) => path.join(root, rel)),
    );
  });

  it("returns a sorted list", async () => {
    const found = await discoverDagFiles(root);
    expect([...found].sort()).toEqual(found);
  });

  it("skips node_modules, dot-folders, dot-files, .d.ts, test and spec files", async () => {
    const found = (await discoverDagFiles(root)).map((f) => path.relative(root, f));
    for (const f of found) {
      expect(f.split(path.sep)).not.toContain("node_modules");
      expect(f.split(path.sep).some((part) => part.startsWith("."))).toBe(false);
      // Whatever the extension: a test of a .js DAG file is no more a DAG file than one of a .ts file.
      expect(f).not.toMatch(/\.d\.m?ts$|\.(test|spec)\.m?[jt]s$/);
    }
  });

  it("resolves a relative folder", async () => {
    const rel = path.relative(process.cwd(), root);
    expect(await discoverDagFiles(rel)).toEqual(await discoverDagFiles(root));
  });

  it("scans only below the folder it is given", async () => {
    expect(await discoverDagFiles(path.join(root, "nested"))).toEqual([path.join(root, "nested/deep/f.ts"), path.join(root, "nested/g.js")]);
  });

  it("returns [] for a missing folder", async () => {
    expect(await discoverDagFiles(path.join(root, "does-not-exist"))).toEqual([]);
  });

  it("returns [] for an empty folder", async () => {
    expect(await discoverDagFiles(path.join(root, "empty_dir"))).toEqual([]);
  });

  it("follows a DAG folder that is itself a symlink (git-sync layout)", async () => {
    const link = path.join(os.tmpdir(), `baton-root-link-${process.pid}`);
    await rm(link, { force: true });
    await symlink(path.join(root, "nested"), link);
    try {
      expect(await discoverDagFiles(link)).toEqual([path.join(link, "deep/f.ts"), path.join(link, "g.js")]);
    } finally {
      await rm(link, { force: true });
    }
  });

  it("lists the directories it searched, for the watcher: not node_modules or dot-folders", async () => {
    const { files, dirs } = await discoverDagFolder(root);
    expect(files).toEqual(await discoverDagFiles(root));
    expect(dirs.map((d) => path.relative(root, d)).sort()).toEqual(["", "dir.ts", "empty_dir", "nested", "nested/deep", "x"]);
  });

  // A missing folder (an unmounted volume, a typo'd BATON_DAGS_FOLDER) is not an empty one: the
  // processor must not take it as every file deleted.
  it("reports a missing folder, or one that is a file, as unreadable rather than empty", async () => {
    const missing = path.join(root, "does-not-exist");
    expect(await discoverDagFolder(missing)).toMatchObject({ files: [], dirs: [], unreadable: [{ path: missing, code: "ENOENT" }] });
    const file = path.join(root, "a.ts");
    expect(await discoverDagFolder(file)).toMatchObject({ files: [], dirs: [], unreadable: [{ path: file, code: "ENOTDIR" }] });
    expect((await discoverDagFolder(path.join(root, "empty_dir"))).unreadable).toEqual([]);
  });
});

describe("discoverDagFolder: folders it cannot read", () => {
  it("reports a subfolder it cannot list (EACCES) and lists everything else", async () => {
    const sub = path.join(root, "nested");
    const readdirFailing = (async (dir: string, options: { withFileTypes: true }) => {
      if (dir === sub) throw Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: "EACCES" });
      return readdir(dir, options);
    }) as typeof readdir;
    const listing = await discoverDagFolder(root, { readdir: readdirFailing });
    expect(listing.unreadable).toEqual([{ path: sub, code: "EACCES", message: expect.stringContaining("permission denied") }]);
    expect(listing.files).toContain(path.join(root, "a.ts"));
    expect(listing.files.filter((f) => f.startsWith(sub + path.sep))).toEqual([]);
  });

  it("reports a symbolic link whose target is missing (an unmounted volume linked in)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-dangling-"));
    try {
      await writeFile(path.join(dir, "own.ts"), "export {};\n");
      await symlink(path.join(dir, "gone"), path.join(dir, "mounted"));
      const listing = await discoverDagFolder(dir);
      expect(listing.files).toEqual([path.join(dir, "own.ts")]);
      expect(listing.unreadable).toEqual([{ path: path.join(dir, "mounted"), code: "ENOENT", message: expect.stringContaining("symbolic link") }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Airflow walks the DAG folder with followlinks=True.
describe("discoverDagFolder: symbolic links", () => {
  let dir: string;
  let outside: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-links-"));
    outside = await mkdtemp(path.join(os.tmpdir(), "baton-outside-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it("follows linked folders and files, naming the files by their path through the link", async () => {
    await mkdir(path.join(outside, "team"));
    await writeFile(path.join(outside, "team", "far.ts"), "export {};\n");
    await writeFile(path.join(outside, "single.ts"), "export {};\n");
    await writeFile(path.join(dir, "own.ts"), "export {};\n");
    await symlink(path.join(outside, "team"), path.join(dir, "team_link"));
    await symlink(path.join(outside, "single.ts"), path.join(dir, "linked.ts"));
    const listing = await discoverDagFolder(dir);
    expect(listing.files).toEqual([path.join(dir, "linked.ts"), path.join(dir, "own.ts"), path.join(dir, "team_link", "far.ts")]);
    // The linked folder is watched through its link; a linked file is watched itself (its folder's
    // watch does not see writes to the link's target).
    expect(listing.dirs).toEqual([dir, path.join(dir, "team_link")]);
    expect(listing.linkedFiles).toEqual([path.join(dir, "linked.ts")]);
    expect(listing.unreadable).toEqual([]);
  });

  it("does not loop on a link to an ancestor, nor list a folder twice through a second link", async () => {
    await mkdir(path.join(dir, "a"));
    await writeFile(path.join(dir, "a", "f.ts"), "export {};\n");
    await symlink(dir, path.join(dir, "a", "up")); // a/up -> the DAG folder itself
    await symlink(path.join(dir, "a"), path.join(dir, "b")); // b -> a: the same folder again
    const listing = await discoverDagFolder(dir);
    expect(listing.files).toEqual([path.join(dir, "a", "f.ts")]);
    expect(listing.skippedLinks.map((s) => path.relative(dir, s.path)).sort()).toEqual(["a/up", "b"]);
    expect(listing.unreadable).toEqual([]);
  });

  // A folder inside the DAG folder is walked under its own path: a link to it, sorting before or
  // after it, must not rename its files (their DAGs would be deactivated and parsed again under
  // the link's path, and ignore rules written for the folder would stop matching).
  it.each([
    ["before", "a"],
    ["after", "zz"],
  ])("names the files of a folder inside the DAG folder by its own path, a link to it sorting %s it not followed", async (_order, link) => {
    await mkdir(path.join(dir, "z"));
    await writeFile(path.join(dir, "z", "job.ts"), "export {};\n");
    await symlink(path.join(dir, "z"), path.join(dir, link));
    const listing = await discoverDagFolder(dir);
    expect(listing.files).toEqual([path.join(dir, "z", "job.ts")]);
    expect(listing.dirs).toEqual([dir, path.join(dir, "z")]);
    expect(listing.skippedLinks).toEqual([{ path: path.join(dir, link), target: path.join(dir, "z"), reason: "inside" }]);
    expect(listing.unreadable).toEqual([]);
  });

  it("follows the first of two links to one folder outside the DAG folder, not the second", async () => {
    await writeFile(path.join(outside, "far.ts"), "export {};\n");
    await symlink(outside, path.join(dir, "one"));
    await symlink(outside, path.join(dir, "two"));
    const listing = await discoverDagFolder(dir);
    expect(listing.files).toEqual([path.join(dir, "one", "far.ts")]);
    expect(listing.skippedLinks).toEqual([{ path: path.join(dir, "two"), target: outside, reason: "walked" }]);
  });

  it("reports a link that points at itself (ELOOP) as unreadable, not as a hang", async () => {
    await symlink(path.join(dir, "self"), path.join(dir, "self"));
    await writeFile(path.join(dir, "own.ts"), "export {};\n");
    const listing = await discoverDagFolder(dir);
    expect(listing.files).toEqual([path.join(dir, "own.ts")]);
    expect(listing.unreadable).toEqual([{ path: path.join(dir, "self"), code: "ELOOP", message: expect.any(String) }]);
  });
});

// Airflow's .airflowignore, default (regexp) syntax: each non-comment line is a regular expression
// searched (not anchored) in the path relative to the DAG folder; a file applies to its folder and
// the folders below it; a matching folder is not walked at all.
describe("discoverDagFolder: .batonignore", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-ignore-"));
    for (const rel of ["keep.ts", "project_a_dag.ts", "TESTING_project_a.ts", "tenant_1.ts", "tenant_x.ts", "project_a/dag.ts", "tenant_2/dag.ts", "sub/keep.ts", "sub/local_skip.ts", "other/local_skip.ts"]) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), "export {};\n");
    }
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));
  const relFiles = async () => (await discoverDagFolder(dir)).files.map((f) => path.relative(dir, f));

  it("skips files and folders whose path matches a pattern; # starts a comment", async () => {
    await writeFile(path.join(dir, ".batonignore"), "project_a   # the old project\ntenant_[\\d]\n\n# a comment line\n");
    expect(await relFiles()).toEqual(["keep.ts", "other/local_skip.ts", "sub/keep.ts", "sub/local_skip.ts", "tenant_x.ts"]);
    // An ignored folder is not walked, so not watched either.
    expect((await discoverDagFolder(dir)).dirs.map((d) => path.relative(dir, d)).sort()).toEqual(["", "other", "sub"]);
  });

  it("applies a subfolder's file to that folder and below only", async () => {
    await writeFile(path.join(dir, "sub", ".batonignore"), "local_skip\n");
    expect(await relFiles()).toContain("other/local_skip.ts");
    expect(await relFiles()).not.toContain("sub/local_skip.ts");
  });

  it("matches paths relative to the DAG folder, as Airflow's regexp syntax does", async () => {
    await writeFile(path.join(dir, "sub", ".batonignore"), "^sub/local\n");
    await writeFile(path.join(dir, ".batonignore"), "^other/\n");
    expect(await relFiles()).toEqual(["TESTING_project_a.ts", "keep.ts", "project_a/dag.ts", "project_a_dag.ts", "sub/keep.ts", "tenant_1.ts", "tenant_2/dag.ts", "tenant_x.ts"]);
  });

  it("reads .airflowignore too, and reports an invalid pattern while keeping the others", async () => {
    await writeFile(path.join(dir, ".airflowignore"), "tenant_\n");
    await writeFile(path.join(dir, ".batonignore"), "project_(a\nkeep\n");
    const listing = await discoverDagFolder(dir);
    expect(listing.files.map((f) => path.relative(dir, f))).toEqual(["TESTING_project_a.ts", "other/local_skip.ts", "project_a/dag.ts", "project_a_dag.ts", "sub/local_skip.ts"]);
    expect(listing.invalidPatterns).toEqual([{ file: path.join(dir, ".batonignore"), pattern: "project_(a", message: expect.any(String) }]);
  });
});

describe("lineInFile", () => {
  const file = path.resolve("/srv/dags/etl.ts");
  const other = path.resolve("/srv/dags/lib/helpers.ts");

  it("finds the line in a V8 frame with a function name", () => {
    const stack = [
      "Error: boom",
      `    at helper (${other}:3:9)`,
      `    at build (${file}:12:5)`,
      `    at dag (${file}:40:1)`,
    ].join("\n");
    expect(lineInFile(stack, file)).toBe(12);
  });

  it("finds the line in an anonymous frame and in a file:// URL", () => {
    expect(lineInFile(`Error: x\n    at ${file}:7:3`, file)).toBe(7);
    expect(lineInFile(`Error: x\n    at ${pathToFileURL(file).href}:8:3`, file)).toBe(8);
    expect(lineInFile(`Error: x\n    at async Module.f (${pathToFileURL(file).href}:9:14)`, file)).toBe(9);
  });

  it("decodes escaped characters in file:// URLs", () => {
    const spaced = path.resolve("/srv/my dags/etl.ts");
    expect(lineInFile(`Error: x\n    at run (${pathToFileURL(spaced).href}:21:2)`, spaced)).toBe(21);
  });

  it("finds the line when the path holds spaces, parentheses, % or #, as a path or as a file URL", () => {
    const odd = path.resolve("/srv/my dags (copy)/100% #1 étl.ts");
    expect(lineInFile(`Error: x\n    at load (${odd}:3:9)\n    at ${odd}:4:1`, odd)).toBe(3);
    expect(lineInFile(`Error: x\n    at ${odd}:4:1`, odd)).toBe(4);
    expect(lineInFile(`Error: x\n    at async load (${pathToFileURL(odd).href}:5:2)`, odd)).toBe(5);
    expect(lineInFile(`Error: x\n    at ${pathToFileURL(odd).href}:6:2`, odd)).toBe(6);
    // The same name in another folder, or another name ending like it, is not the file.
    expect(lineInFile(`Error: x\n    at load (/elsewhere${odd}:3:9)`, odd)).toBeNull();
    expect(lineInFile(`Error: x\n    at load (${path.dirname(odd)}/x${path.basename(odd)}:3:9)`, odd)).toBeNull();
  });

  it("returns the first frame in the file, not a later one", () => {
    expect(lineInFile(`E\n    at a (${file}:1:1)\n    at b (${file}:2:1)`, file)).toBe(1);
  });

  it("does not match another file or a file with the same prefix", () => {
    expect(lineInFile(`E\n    at f (${other}:3:9)`, file)).toBeNull();
    expect(lineInFile(`E\n    at f (${file}x:3:9)`, file)).toBeNull();
    expect(lineInFile(`E\n    at f (${path.dirname(file)}/copy-etl.ts:3:9)`, file)).toBeNull();
  });

  it("ignores internal frames and the message line", () => {
    const stack = [`SyntaxError: ${file}:99:1 unexpected token`, "    at node:internal/modules/esm/loader:1:1", "    at async Promise.all (index 0)"].join("\n");
    expect(lineInFile(stack, file)).toBeNull();
  });

  it("returns null for a missing or empty stack", () => {
    expect(lineInFile(undefined, file)).toBeNull();
    expect(lineInFile("", file)).toBeNull();
  });
});
