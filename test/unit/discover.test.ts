import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
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

  it("does not descend into symlinked entries inside the folder", async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), "baton-outside-"));
    const linked = await mkdtemp(path.join(os.tmpdir(), "baton-linked-"));
    try {
      await writeFile(path.join(outside, "far.ts"), "export {};\n");
      await writeFile(path.join(linked, "own.ts"), "export {};\n");
      await symlink(outside, path.join(linked, "link"));
      expect(await discoverDagFiles(linked)).toEqual([path.join(linked, "own.ts")]);
    } finally {
      await rm(outside, { recursive: true, force: true });
      await rm(linked, { recursive: true, force: true });
    }
  });

  it("lists the directories it searched, for the watcher: not node_modules or dot-folders", async () => {
    const { files, dirs } = await discoverDagFolder(root);
    expect(files).toEqual(await discoverDagFiles(root));
    expect(dirs.map((d) => path.relative(root, d)).sort()).toEqual(["", "dir.ts", "empty_dir", "nested", "nested/deep", "x"]);
    expect(await discoverDagFolder(path.join(root, "does-not-exist"))).toEqual({ files: [], dirs: [] });
  });

  it("fails loudly when the folder is a file (not silently empty)", async () => {
    await expect(discoverDagFiles(path.join(root, "a.ts"))).rejects.toThrow(/ENOTDIR/);
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
