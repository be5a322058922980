import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { build, type BuildFailure, type BuildOptions, type BuildResult, type Message, type Metafile } from "esbuild";
import { sdkModuleFile } from "../core/sdkModule.ts";

const SDK_ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../sdk/index.ts");

export interface BundleOk {
  ok: true;
  code: string;
  /** Local modules bundled besides the file itself (absolute paths), to re-parse when one changes. */
  deps: string[];
}
export interface BundleFailed {
  ok: false;
  message: string;
  line: number | null;
  deps: string[];
}

const SDK_FOLDER = path.dirname(SDK_ENTRY) + path.sep;
const CORE_FOLDER = path.resolve(path.dirname(SDK_ENTRY), "../core") + path.sep;
const NODE_MODULES = `${path.sep}node_modules${path.sep}`;

/** Baton's own SDK and core, bundled into every DAG file: never an input of the file's hash. */
function isBatonModule(abs: string): boolean {
  return abs.startsWith(SDK_FOLDER) || abs.startsWith(CORE_FOLDER);
}

/**
 * The package.json of the package a node_modules file belongs to: installing or updating a
 * package rewrites it, so it stands for the whole package in the file's hash (hashing every
 * package file a bundle used, per DAG file per scan, would cost far more).
 */
export function packageManifestOf(file: string): string | null {
  const at = file.lastIndexOf(NODE_MODULES);
  if (at < 0) return null;
  const root = file.slice(0, at + NODE_MODULES.length);
  const parts = file.slice(root.length).split(path.sep);
  const nameParts = parts[0]!.startsWith("@") ? 2 : 1;
  if (parts.length <= nameParts) return null;
  return path.join(root, ...parts.slice(0, nameParts), "package.json");
}

/**
 * What the file's hash covers besides the file itself, to re-parse it when one changes: local
 * modules (absolute paths, hashed by content), the package.json of each package used, and
 * `glob:` patterns of template-literal imports (import(`./steps/${x}.ts`) bundles every file
 * ./steps/(any depth)/(any name).ts that exists at bundle time: a new match must re-bundle the file).
 * Not Baton's SDK.
 */
function inputsOf(metafile: Metafile, file: string): string[] {
  const deps = new Set<string>();
  for (const [input, { imports }] of Object.entries(metafile.inputs)) {
    const abs = path.resolve(input);
    if (isBatonModule(abs)) continue;
    const manifest = packageManifestOf(abs);
    if (manifest) {
      deps.add(manifest);
      continue;
    }
    if (abs !== file) deps.add(abs);
    for (const imported of imports) {
      if (imported.external && imported.path.includes("*") && /^\.\.?\//.test(imported.path)) deps.add(`glob:${path.resolve(path.dirname(abs), imported.path)}`);
    }
  }
  return [...deps].sort();
}

/** Node's resolution looks for a bare import in node_modules of every folder up from the importer. */
function packageCandidates(importer: string, specifier: string): string[] {
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
  const candidates: string[] = [];
  for (let dir = path.dirname(importer); ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== "node_modules") candidates.push(path.join(dir, "node_modules", name, "package.json"));
    if (path.dirname(dir) === dir) return candidates;
  }
}

/**
 * What a failed bundle waits for: the file the error is in (fixing it must re-parse this file)
 * and, for an import that could not be resolved, the paths that would resolve it once created
 * (a plain path hashes as missing until it exists).
 */
function failureInputs(errors: Message[], file: string): string[] {
  const deps = new Set<string>();
  for (const error of errors) {
    if (!error.location) continue;
    const importer = path.resolve(error.location.file);
    if (importer !== file && packageManifestOf(importer) === null && !isBatonModule(importer)) deps.add(importer);
    const unresolved = error.text.match(/^Could not resolve "([^"]+)"/)?.[1];
    if (!unresolved) continue;
    if (/^\.\.?\//.test(unresolved) || path.isAbsolute(unresolved)) {
      const target = path.resolve(path.dirname(importer), unresolved);
      // Extensionless imports resolve to later.ts, later.js, later/index.ts, …
      for (const dep of [target, `glob:${target}.*`, `glob:${target}/index.*`]) deps.add(dep);
    } else if (!unresolved.startsWith("node:")) {
      for (const dep of packageCandidates(importer, unresolved)) deps.add(dep);
    }
  }
  return [...deps].sort();
}

const BUNDLE_OPTIONS = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  write: false,
  outfile: "/bundle.mjs",
  sourcemap: "external",
  sourcesContent: false,
  metafile: true,
  logLevel: "silent",
  banner: { js: 'import { createRequire as __batonCreateRequire } from "node:module"; const require = __batonCreateRequire(import.meta.url);' },
} as const satisfies BuildOptions;

/**
 * A source as esbuild names it in a map: relative to the output, percent-encoded as in a URL ("dags
 * %28copy%29/etl.ts" for "dags (copy)/etl.ts"). As the path itself: Node reads an absolute path in
 * `sources` as a file, so an encoded one named a file that does not exist (stack frames, a dag()
 * call's file) and hid the user's file and lines.
 */
function sourcePath(source: string): string {
  let decoded = source;
  try {
    decoded = decodeURIComponent(source);
  } catch {
    // not encoded after all: keep it
  }
  return path.resolve("/", decoded);
}

/** The bundle's code with its source map inline, sources as absolute paths (stack traces name the user's files). */
function withInlineMap(result: BuildResult<typeof BUNDLE_OPTIONS>): string {
  const js = result.outputFiles.find((f) => f.path.endsWith(".mjs"))!.text;
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"));
  let code = js.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  if (mapFile) {
    const map = JSON.parse(mapFile.text) as { sources: string[] };
    map.sources = map.sources.map(sourcePath);
    code += `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString("base64")}\n`;
  }
  return code;
}

/** This installation's SDK as one ES module, and its content hash (core/sdkModule.ts). */
export async function buildSdkModule(): Promise<{ hash: string; code: string }> {
  const code = withInlineMap(await build({ ...BUNDLE_OPTIONS, entryPoints: [SDK_ENTRY] }));
  return { hash: createHash("sha256").update(code).digest("hex"), code };
}

/**
 * Bundles a DAG file with its local imports and packages into one ES module. "baton" is the
 * SDK module named `sdkModule` (a sibling file, see core/sdkModule.ts), so a DAG always runs
 * against the SDK of the Baton that parsed it without carrying a copy of it: bundling the SDK
 * into every file cost ≈ 10 ms of the ≈ 12.6 ms a file took to bundle, and as much again to
 * import. The source map (inline, absolute paths) maps stack traces back to the user's file
 * and line.
 */
export async function bundleDagFile(file: string, sdkModule: string): Promise<BundleOk | BundleFailed> {
  try {
    // "baton" is aliased to the SDK module's file name, kept external: every form of import (static,
    // multi-line, re-export, dynamic, require) names it. A resolve plugin doing the same made every
    // build ≈ 4 ms slower (plugins are set up per build).
    const result = await build({ ...BUNDLE_OPTIONS, entryPoints: [file], alias: { baton: `./${sdkModule}` }, external: ["./baton-sdk-*"] });
    return { ok: true, code: withInlineMap(result), deps: inputsOf(result.metafile, file) };
  } catch (err) {
    const errors = (err as BuildFailure).errors ?? [];
    const first: Message | undefined = errors[0];
    if (!first) return { ok: false, message: (err as Error).message, line: null, deps: [] };
    // esbuild names files relative to its working directory (the process's): absolute, as the import error's filename is.
    const where = first.location ? `${path.resolve(first.location.file)}:${first.location.line}:${first.location.column + 1}: ` : "";
    return { ok: false, message: `${where}${first.text}`, line: first.location?.line ?? null, deps: failureInputs(errors, file) };
  }
}

/** What a DAG file's hash must cover (see inputsOf), for a parse that ended before saying so. */
export async function dagFileInputs(file: string): Promise<string[]> {
  return (await bundleDagFile(file, sdkModuleFile("0".repeat(64)))).deps;
}
