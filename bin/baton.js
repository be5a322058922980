#!/usr/bin/env node
// Entry point for `baton`: runs the CLI from a compiled entry (one JavaScript file, bundled at
// start, see core/compiledEntry.js): through tsx, every command's start spent ≈ 0.3 s of CPU
// compiling and resolving the TypeScript sources. Where compiling fails (no esbuild binary, a
// read-only installation), through tsx's loader as before.
import { fileURLToPath, pathToFileURL } from "node:url";
import { compiledEntry } from "../core/compiledEntry.js";

const entry = compiledEntry(fileURLToPath(new URL("../cli/main.ts", import.meta.url)));
if (entry) {
  // Stack traces name the TypeScript sources (the entry carries an inline source map).
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
}
