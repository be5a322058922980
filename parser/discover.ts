import { readdir } from "node:fs/promises";
import path from "node:path";

const DAG_FILE = /\.(ts|mts|js|mjs)$/;
/** Type declarations and tests, of .ts and .js DAG files alike. */
const NOT_A_DAG = /\.(d\.m?ts|(test|spec)\.m?[jt]s)$/;

/** DAG files under folder, recursively, skipping node_modules, dot-files and dot-folders, declarations and tests. Sorted. */
export async function discoverDagFiles(folder: string): Promise<string[]> {
  return (await discoverDagFolder(folder)).files;
}

/** The DAG files (sorted) and the directories holding them or searched for them (the folder first, if it exists). */
export async function discoverDagFolder(folder: string): Promise<{ files: string[]; dirs: string[] }> {
  const found: string[] = [];
  const dirs: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    dirs.push(dir);
    for (const entry of entries) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && DAG_FILE.test(entry.name) && !NOT_A_DAG.test(entry.name)) found.push(full);
    }
  }
  await walk(path.resolve(folder));
  return { files: found.sort(), dirs };
}
