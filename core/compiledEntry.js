// Plain JavaScript, not TypeScript: bin/baton.js imports it before any TypeScript loader exists,
// to run the CLI itself from a compiled entry. Types: compiledEntry.d.ts.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);

/**
 * Compiled entries live under the installation's node_modules/.cache, so the packages they
 * import (left external) and createRequire(import.meta.url) resolve as from the source file.
 */
const COMPILED_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules", ".cache", "baton");
/** @type {Map<string, string | null>} */
const compiled = new Map();

/**
 * A TypeScript entry point bundled once per process into plain JavaScript (content-addressed,
 * with an inline source map), or null where that fails (the caller falls back to tsx). Booting
 * a task process through tsx took ≈ 200 ms of CPU on this project's 2-core machine; the
 * compiled entry ≈ 45 ms. For entries one folder below the installation's root (see the define):
 * every module of the bundle sees the entry's URL as its import.meta.url, so a path a module
 * derives from it must go up exactly one folder to the root ("../executor/child.ts", never
 * "./child.ts" or "../..").
 * @param {string} script
 * @param {{ racyMs?: number }} [options] racyMs: see RACY_MS (tests set 0)
 * @returns {string | null}
 */
export function compiledEntry(script, options = {}) {
  // Compiled before, unless another installation process of a newer build has removed the file
  // since (it removes the entries of earlier builds): then compile again, or no child could start.
  const known = compiled.get(script);
  if (known === null || (known !== undefined && existsSync(known))) return known;
  const prefix = `${path.basename(path.dirname(script))}-${path.basename(script, ".ts")}-`;
  const stampFile = path.join(COMPILED_FOLDER, `${prefix}stamp.json`);
  let entry = upToDate(stampFile, script);
  if (entry) {
    compiled.set(script, entry);
    return entry;
  }
  const buildStartMs = Date.now();
  const metafile = path.join(COMPILED_FOLDER, `${prefix}meta.${process.pid}.json`);
  const outfile = path.join(COMPILED_FOLDER, `${prefix}out.${process.pid}.tmp`);
  try {
    // esbuild's own binary, in a process of its own: its buildSync would keep a worker thread
    // (a V8 isolate, ≈ 10 MB of RSS) alive in every process that compiled an entry.
    // Every module sees the entry's own URL as import.meta.url: Baton's modules all sit one
    // folder below the installation's root, so their "../migrations", "../sdk/…" and
    // createRequire resolve as they do from source.
    // Run from the output folder: the inline source map names sources relative to it.
    mkdirSync(COMPILED_FOLDER, { recursive: true });
    execFileSync(
      require.resolve("esbuild/bin/esbuild"),
      [
        script,
        "--bundle",
        "--platform=node",
        "--format=esm",
        "--packages=external",
        "--sourcemap=inline",
        `--outfile=${outfile}`,
        `--metafile=${metafile}`,
        `--define:import.meta.url=${JSON.stringify(pathToFileURL(script).href)}`,
        "--log-level=error",
      ],
      { cwd: COMPILED_FOLDER, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024, timeout: 30_000 },
    );
    const hash = createHash("sha256").update(readFileSync(outfile)).digest("hex").slice(0, 16);
    entry = path.join(COMPILED_FOLDER, `${prefix}${hash}.mjs`);
    if (!existsSync(entry)) {
      renameSync(outfile, entry);
      removeOldEntries(prefix, entry);
    }
    writeStamp(stampFile, script, entry, metafile, buildStartMs - (options.racyMs ?? RACY_MS));
  } catch {
    entry = null;
  } finally {
    rmSync(metafile, { force: true });
    rmSync(outfile, { force: true });
  }
  compiled.set(script, entry);
  return entry;
}

/**
 * Entries of earlier builds, once unused for ENTRY_KEEP_MS: a process that just found one (its
 * stamp, another build's) may be about to import it or fork a child from it, and a process still
 * running one has it loaded already. A stamp's user touches its entry.
 * @param {string} prefix @param {string} current
 */
function removeOldEntries(prefix, current) {
  const before = Date.now() - ENTRY_KEEP_MS;
  for (const name of readdirSync(COMPILED_FOLDER)) {
    if (!name.startsWith(prefix) || !name.endsWith(".mjs") || name === path.basename(current)) continue;
    const file = path.join(COMPILED_FOLDER, name);
    try {
      if (statSync(file).mtimeMs < before) rmSync(file, { force: true });
    } catch {
      // removed by another build meanwhile
    }
  }
}
const ENTRY_KEEP_MS = 10 * 60_000;

/**
 * Inputs changed this shortly before a build began (or while it ran) leave it without a stamp, as
 * git leaves "racily clean" files unstamped: esbuild may have read them before the change, and a
 * file system that keeps times to the second may show the next change with the same time.
 */
const RACY_MS = 2000;

/**
 * The files a compiled entry was bundled from, as its metafile names them, each with its size, its
 * modification time and its change time (ctime: a copy that keeps the old mtime, rsync -t or cp -p,
 * still changes it): while none has changed, the next process takes the entry without running
 * esbuild (≈ 80 ms, and a `baton` command's start waits for it). A file an edit starts importing
 * is seen through the file that imports it, which changed.
 * @typedef {{ script: string, entry: string, inputs: [string, number, number, number][] }} Stamp
 */

/** @param {string} stampFile @param {string} script @returns {string | null} */
function upToDate(stampFile, script) {
  try {
    /** @type {Stamp} */
    const stamp = JSON.parse(readFileSync(stampFile, "utf8"));
    if (stamp.script !== script || !existsSync(stamp.entry)) return null;
    for (const [file, size, mtimeMs, ctimeMs] of stamp.inputs) {
      const now = statSync(file);
      if (now.size !== size || now.mtimeMs !== mtimeMs || now.ctimeMs !== ctimeMs) return null;
    }
    try {
      // In use: no other build removes it for ENTRY_KEEP_MS.
      const now = new Date();
      utimesSync(stamp.entry, now, now);
    } catch {
      // not ours to touch (a read-only installation): it is used all the same
    }
    return stamp.entry;
  } catch {
    return null;
  }
}

/**
 * Stamps the entry, unless an input changed at or after `racySinceMs` (RACY_MS before the build).
 * @param {string} stampFile @param {string} script @param {string} entry @param {string} metafile @param {number} racySinceMs
 */
function writeStamp(stampFile, script, entry, metafile, racySinceMs) {
  /** @type {{ inputs: Record<string, unknown> }} */
  const meta = JSON.parse(readFileSync(metafile, "utf8"));
  /** @type {Stamp["inputs"]} */
  const inputs = [];
  for (const input of Object.keys(meta.inputs)) {
    // Relative to esbuild's working folder; inputs of its own (a define, a virtual module) have no file.
    const file = path.resolve(COMPILED_FOLDER, input);
    if (!existsSync(file)) continue;
    const { size, mtimeMs, ctimeMs } = statSync(file);
    if (ctimeMs >= racySinceMs || mtimeMs >= racySinceMs) return;
    inputs.push([file, size, mtimeMs, ctimeMs]);
  }
  const temporary = `${stampFile}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify({ script, entry, inputs }));
  renameSync(temporary, stampFile);
}
