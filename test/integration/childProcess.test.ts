// Task processes boot from a compiled entry (core/childProcess.ts compiledEntry) instead of
// through tsx: the same code, bundled once per process and content-addressed.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Child, compiledEntry } from "../../core/childProcess.ts";

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
