#!/usr/bin/env node
// Entry point for `baton`: runs the CLI from a compiled entry (one JavaScript file, bundled at
// start, see core/compiledEntry.js): through tsx, every command's start spent ≈ 0.3 s of CPU
// compiling and resolving the TypeScript sources. Where compiling fails (no esbuild binary, a
// read-only installation), or the entry is gone before it loads (another build removed it), through
// tsx's loader as before.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { compiledEntry } from "../core/compiledEntry.js";

const entry = compiledEntry(fileURLToPath(new URL("../cli/main.ts", import.meta.url)));
let loaded = false;
if (entry) {
  // Stack traces name the TypeScript sources (the entry carries an inline source map).
  process.setSourceMapsEnabled(true);
  try {
    await import(pathToFileURL(entry).href);
    loaded = true;
  } catch (err) {
    // Only the entry's own absence falls back: an error of the CLI's code is the CLI's.
    if (err?.code !== "ERR_MODULE_NOT_FOUND" || existsSync(entry)) throw err;
  }
}
if (!loaded) {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
}
