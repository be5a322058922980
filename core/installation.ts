import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The installation's root folder (package.json, .git, node_modules, the sources' folders). Derived
 * in this module, one folder below it, because a compiled entry (compiledEntry.js) gives every
 * module it bundles the entry's import.meta.url: a path taken from a module's own URL is only right
 * from a module one folder below the root.
 */
export const INSTALL_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
