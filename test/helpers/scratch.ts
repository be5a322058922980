// Scratch folders for a test file: made under the OS temp folder, removed when the file's tests end.
import { afterAll } from "@jest/globals";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const made: string[] = [];

/** A fresh folder under the OS temp folder (`prefix` + random), removed after the test file (this module is per file). */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
