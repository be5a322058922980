// Lists the DAG folder as Airflow walks its DAG folder: recursively, following symbolic links
// to folders outside it (a link to a folder inside it is not followed: that folder is walked under
// its own path, which also guards against loops), skipping what .batonignore / .airflowignore files say. What it
// cannot read is reported, never taken as empty: the processor deactivates the DAGs of files that
// are gone, and a folder that is missing or unreadable has not lost its files.
import { readdir as fsReaddir, readFile as fsReadFile, realpath as fsRealpath, stat as fsStat } from "node:fs/promises";
import type { Dirent } from "node:fs";
import path from "node:path";

const DAG_FILE = /\.(ts|mts|js|mjs)$/;
/** Type declarations and tests, of .ts and .js DAG files alike. */
const NOT_A_DAG = /\.(d\.m?ts|(test|spec)\.m?[jt]s)$/;
/** Read in every folder walked, in this order; .airflowignore so that a folder moved from Airflow keeps its rules. */
export const IGNORE_FILES = [".batonignore", ".airflowignore"] as const;

/** A folder (the DAG folder itself included), link or ignore file that could not be read: the files it held are not gone. */
export interface UnreadablePath {
  path: string;
  /** The errno code: ENOENT (missing; for a link, its target), EACCES, ENOTDIR, ELOOP, EIO, … */
  code: string;
  message: string;
}

export interface DagFolderListing {
  /** The DAG files, sorted, named by their path under the folder (through links, not resolved). */
  files: string[];
  /** The directories holding them or searched for them (the folder first, if it could be read): what the watcher watches. */
  dirs: string[];
  /** DAG files that are symbolic links: watched themselves, since their folder's watch sees no write to the target. */
  linkedFiles: string[];
  unreadable: UnreadablePath[];
  /**
   * Links to folders not followed: one inside the DAG folder ("inside": that folder is walked under its
   * own path, so its files keep their names and its ignore rules, whatever sorts first; a link to an
   * ancestor, a loop, is one too), or to a folder outside it already walked through another link ("walked").
   */
  skippedLinks: { path: string; target: string; reason: "inside" | "walked" }[];
  /** Ignore-file lines that are not valid regular expressions: left out, the other lines still apply. */
  invalidPatterns: { file: string; pattern: string; message: string }[];
}

/** The file system calls the walk makes (tests inject failures root cannot get from a real one, such as EACCES). */
export interface DiscoverFs {
  readdir: typeof fsReaddir;
  readFile: typeof fsReadFile;
  stat: typeof fsStat;
  realpath: typeof fsRealpath;
}

/** An ignore rule: a pattern searched in paths relative to the DAG folder (Airflow's regexp syntax). */
type IgnoreRule = RegExp;

/** DAG files under folder, recursively, skipping node_modules, dot-files and dot-folders, declarations, tests and ignored paths. Sorted. */
export async function discoverDagFiles(folder: string): Promise<string[]> {
  return (await discoverDagFolder(folder)).files;
}

export async function discoverDagFolder(folder: string, fsOverrides: Partial<DiscoverFs> = {}): Promise<DagFolderListing> {
  const fs: DiscoverFs = { readdir: fsReaddir, readFile: fsReadFile, stat: fsStat, realpath: fsRealpath, ...fsOverrides };
  const root = path.resolve(folder);
  const listing: DagFolderListing = { files: [], dirs: [], linkedFiles: [], unreadable: [], skippedLinks: [], invalidPatterns: [] };
  /** Real paths of the folders walked: a link to one of them is not walked again (Airflow raises on a loop; one bad link must not stop the scan). */
  const walked = new Set<string>();
  const unreadable = (p: string, err: unknown, message?: string) => {
    const e = err as NodeJS.ErrnoException;
    listing.unreadable.push({ path: p, code: e.code ?? "EUNKNOWN", message: message ?? e.message });
  };
  const ignored = (full: string, rules: IgnoreRule[]) => {
    if (rules.length === 0) return false;
    const rel = path.relative(root, full);
    return rules.some((rule) => rule.test(rel));
  };

  /** Walks dir (real path `real`), whose parents' ignore rules are `inherited`. */
  async function walk(dir: string, real: string, inherited: IgnoreRule[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      // A subfolder removed since its parent was listed is gone, its files with it; the DAG folder
      // itself missing is not (an unmounted volume, a typo'd path, a folder briefly renamed).
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && dir !== root) return;
      unreadable(dir, err);
      return;
    }
    walked.add(real);
    const rules = [...inherited];
    for (const name of IGNORE_FILES) {
      if (!entries.some((e) => e.name === name)) continue; // no read attempt per folder for a file that is not there
      const file = path.join(dir, name);
      let text: string;
      try {
        text = await fs.readFile(file, "utf8");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "EISDIR") continue;
        // Without its rules the folder would list files meant to be ignored: leave it as it was.
        unreadable(file, err);
        return;
      }
      for (const line of text.split("\n")) {
        // Airflow strips `\s*#.*` from each line and skips the empty ones; a \r of a Windows line ending goes too.
        const pattern = line.replace(/\r$/, "").replace(/\s*#.*/, "");
        if (pattern === "") continue;
        try {
          rules.push(new RegExp(pattern));
        } catch (err) {
          listing.invalidPatterns.push({ file, pattern, message: (err as Error).message });
        }
      }
    }
    listing.dirs.push(dir);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)); // one walk order, whatever the file system's
    for (const entry of entries) {
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const full = path.join(dir, entry.name);
      if (ignored(full, rules)) continue;
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      const isLink = entry.isSymbolicLink();
      if (isLink) {
        try {
          const target = await fs.stat(full);
          isDir = target.isDirectory();
          isFile = target.isFile();
        } catch (err) {
          // A dangling link may be a volume not mounted yet: what it held is not gone.
          const e = err as NodeJS.ErrnoException;
          unreadable(full, err, e.code === "ENOENT" ? `symbolic link to a missing target: ${full}` : undefined);
          continue;
        }
      }
      if (isDir) {
        let realDir: string;
        try {
          realDir = await fs.realpath(full);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT" || isLink) unreadable(full, err);
          continue;
        }
        if (isLink && (realDir === realRoot || realDir.startsWith(realRoot + path.sep))) {
          listing.skippedLinks.push({ path: full, target: realDir, reason: "inside" });
          continue;
        }
        if (walked.has(realDir)) {
          listing.skippedLinks.push({ path: full, target: realDir, reason: "walked" });
          continue;
        }
        await walk(full, realDir, rules);
      } else if (isFile && DAG_FILE.test(entry.name) && !NOT_A_DAG.test(entry.name)) {
        listing.files.push(full);
        if (isLink) listing.linkedFiles.push(full);
      }
    }
  }

  let realRoot = root;
  try {
    realRoot = await fs.realpath(root);
  } catch {
    // Missing or unreadable: walk() reports why.
  }
  await walk(root, realRoot, []);
  listing.files.sort();
  listing.linkedFiles.sort();
  return listing;
}
