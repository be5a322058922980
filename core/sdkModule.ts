// DAG bundles import Baton's SDK as a sibling module named by its content hash, instead of each
// carrying a copy: a process then loads the SDK once for all DAGs, and a run stays pinned to the
// exact SDK that parsed its DAG (the hash is part of the bundle's code, hence of its version).
// The module's code is stored in dag_code under its hash, so a worker on any host can fetch it.

const PREFIX = "baton-sdk-";

/** The file name of the SDK module with this content hash (next to the bundles that import it). */
export function sdkModuleFile(hash: string): string {
  return `${PREFIX}${hash}.mjs`;
}

const IMPORTED = /["']\.\/baton-sdk-([0-9a-f]{64})\.mjs["']/g;

/** Hashes of the SDK modules a bundle imports (none for bundles that carry their own copy). */
export function sdkModulesOf(bundle: string): string[] {
  return [...new Set([...bundle.matchAll(IMPORTED)].map((m) => m[1]!))];
}
