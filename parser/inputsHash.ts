// The hash that decides whether a DAG file is parsed again: the file's content plus everything
// its last parse depended on (parser/bundle.ts says what that is).
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

const GLOB = "glob:";

/** A `glob:` input as a RegExp on absolute paths: `**` spans folders, `*` does not. */
export function globPattern(pattern: string): RegExp {
  const escaped = pattern
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === "**/" ? "(?:.*/)?" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${escaped}$`);
}

/** The folder a glob is listed from: the part of it before the first `*`, up to its last `/`. */
export function globRoot(pattern: string): string {
  const head = pattern.slice(0, pattern.indexOf("*"));
  return head.slice(0, head.lastIndexOf("/")) || "/";
}

/** Files under `dir` (not in node_modules or dot-folders, as the DAG folder is searched), recursively if `deep`. */
async function listFiles(dir: string, deep: boolean, into: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (deep && entry.name !== "node_modules" && !entry.name.startsWith(".")) await listFiles(full, deep, into);
    } else {
      into.push(full);
    }
  }
}

/** The sorted paths matching a `glob:` input (its hash changes when a match appears or goes). */
async function globMatches(pattern: string): Promise<string> {
  const root = globRoot(pattern);
  const files: string[] = [];
  await listFiles(root, pattern.slice(root.length + 1).includes("/"), files);
  const re = globPattern(pattern);
  return files.filter((f) => re.test(f)).sort().join("\n");
}

/**
 * Hashes files with their inputs for one scan: an input shared by many files (a common helper
 * module, a package's package.json, a glob) is read once per scan, not once per file. A new
 * instance per scan, so a change between scans is always seen.
 */
export class InputsHasher {
  private readonly cache = new Map<string, Promise<Buffer | string>>();

  private read(input: string): Promise<Buffer | string> {
    let value = this.cache.get(input);
    if (!value) {
      value = input.startsWith(GLOB) ? globMatches(input.slice(GLOB.length)) : readFile(input).catch(() => "\0missing");
      this.cache.set(input, value);
    }
    return value;
  }

  /**
   * After a parse, the inputs as this scan first read them: before the parse, for those it checked
   * the file with. One read after the parse may be newer than what the parse bundled (a module
   * saved while the file imported), and the hash would take that version for parsed; an older one
   * only makes the next scan parse the file again.
   */
  async hash(content: Buffer, inputs: string[]): Promise<string> {
    const hash = createHash("sha256").update(content);
    for (const input of inputs) {
      hash.update(`\0${input}\0`);
      hash.update(await this.read(input));
    }
    return hash.digest("hex");
  }
}
