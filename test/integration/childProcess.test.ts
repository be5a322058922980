// Task processes boot from a compiled entry (core/compiledEntry.js) instead of
// through tsx: the same code, bundled once per process and content-addressed.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Child } from "../../core/childProcess.ts";
import { compiledEntry } from "../../core/compiledEntry.js";

const TASK_CHILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../executor/child.ts");

describe("compiled child entries", () => {
  it("bundles an entry once into node_modules/.cache, content-addressed, and answers the same path again", async () => {
    const entry = compiledEntry(TASK_CHILD);
    expect(entry).toMatch(/node_modules\/\.cache\/baton\/executor-child-[0-9a-f]{16}\.mjs$/);
    expect(compiledEntry(TASK_CHILD)).toBe(entry);
    const text = await readFile(entry!, "utf8");
    expect(text).toContain("sourceMappingURL=data:application/json");
  });

  it("compiles the entry again when its file was removed (a newer build removes the entries of earlier ones)", async () => {
    // An entry of its own: removing the task child's shared one would fail other test files' children.
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-entry-"));
    const script = path.join(dir, "ok.ts");
    await writeFile(script, "export const answer: number = 42;\n");
    const entry = compiledEntry(script)!;
    try {
      await rm(entry);
      expect(compiledEntry(script)).toBe(entry);
      expect(existsSync(entry)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(entry, { force: true });
    }
  });

  // Each `baton` command bundles the CLI at start: esbuild ran (≈ 80 ms) even when nothing had changed.
  it("takes an entry from its stamp in a new process while its files are unchanged, and compiles again once one changes", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-entry-"));
    const script = path.join(dir, "main.ts");
    const dependency = path.join(dir, "dep.ts");
    const ENTRY_MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../core/compiledEntry.js");
    // A new process each time: compiledEntry remembers its answers for the process it runs in.
    // racyMs 0: the files were written a moment ago (see the next test).
    const inNewProcess = () =>
      execFileSync(
        process.execPath,
        ["--input-type=module", "-e", `import { compiledEntry } from ${JSON.stringify(ENTRY_MODULE)}; process.stdout.write(String(compiledEntry(${JSON.stringify(script)}, { racyMs: 0 })));`],
        { encoding: "utf8" },
      );
    const stampFile = path.join(path.dirname(ENTRY_MODULE), "..", "node_modules", ".cache", "baton", `${path.basename(dir)}-main-stamp.json`);
    const entries: string[] = [];
    try {
      await writeFile(script, `import { word } from "./dep.ts";\nconsole.log(word);\n`);
      await writeFile(dependency, `export const word: string = "first";\n`);
      entries.push(inNewProcess());
      expect(await readFile(entries[0]!, "utf8")).toContain('"first"');
      const stamped = statSync(stampFile);

      entries.push(inNewProcess());
      expect(entries[1]).toBe(entries[0]);
      // Not compiled again: compiling writes the stamp anew.
      expect(statSync(stampFile)).toMatchObject({ ino: stamped.ino, mtimeMs: stamped.mtimeMs });

      // Same size, new content: the modification time tells.
      await writeFile(dependency, `export const word: string = "again";\n`);
      entries.push(inNewProcess());
      expect(entries[2]).not.toBe(entries[0]);
      expect(await readFile(entries[2]!, "utf8")).toContain('"again"');
    } finally {
      await rm(dir, { recursive: true, force: true });
      for (const file of [...entries, stampFile]) await rm(file, { force: true });
    }
  });

  // A file changed while esbuild ran (a deploy copying files) could be stamped with its new times
  // beside a bundle of its old content, and run stale from then on.
  it("leaves an entry whose files changed moments before its build unstamped, so the next process compiles again", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-entry-"));
    const script = path.join(dir, "main.ts");
    const stampFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../node_modules/.cache/baton", `${path.basename(dir)}-main-stamp.json`);
    let entry: string | null = null;
    try {
      await writeFile(script, `export const fresh: boolean = true;\n`);
      entry = compiledEntry(script);
      expect(entry).not.toBeNull();
      expect(existsSync(stampFile)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
      for (const file of [entry, stampFile]) if (file) await rm(file, { force: true });
    }
  });

  it("runs a precompiled child without tsx, and it answers requests", async () => {
    const child = new Child(TASK_CHILD, { serialization: "json", precompiled: true, stdio: "ignore" });
    try {
      expect(await child.request({ type: "ping" })).toBe("pong");
      const args = execFileSync("ps", ["-o", "args=", "-p", String(child.process.pid)], { encoding: "utf8" });
      expect(args).toContain("executor-child-");
      expect(args).not.toContain("tsx");
    } finally {
      await child.stop(2000);
    }
  });

  it("falls back to tsx for an entry that does not compile", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "baton-entry-"));
    try {
      const broken = path.join(dir, "broken.ts");
      await writeFile(broken, "export const = ;\n");
      expect(compiledEntry(broken)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
