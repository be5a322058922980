import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { build, type BuildFailure, type BuildOptions, type BuildResult, type Message } from "esbuild";

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

/** Bundled inputs that belong to the user's DAG folder: not packages, not Baton's SDK. */
function localInputs(inputs: string[], file: string): string[] {
  const sdkFolder = path.dirname(SDK_ENTRY) + path.sep;
  return inputs
    .map((input) => path.resolve(input))
    .filter((p) => p !== file && !p.includes(`${path.sep}node_modules${path.sep}`) && !p.startsWith(sdkFolder) && !p.startsWith(path.resolve(path.dirname(SDK_ENTRY), "../core") + path.sep))
    .sort();
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

/** The bundle's code with its source map inline, sources as absolute paths (stack traces name the user's files). */
function withInlineMap(result: BuildResult<typeof BUNDLE_OPTIONS>): string {
  const js = result.outputFiles.find((f) => f.path.endsWith(".mjs"))!.text;
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"));
  let code = js.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  if (mapFile) {
    const map = JSON.parse(mapFile.text) as { sources: string[] };
    map.sources = map.sources.map((s) => path.resolve("/", s));
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
    return { ok: true, code: withInlineMap(result), deps: localInputs(Object.keys(result.metafile.inputs), file) };
  } catch (err) {
    const first: Message | undefined = (err as BuildFailure).errors?.[0];
    if (!first) return { ok: false, message: (err as Error).message, line: null, deps: [] };
    const where = first.location ? `${first.location.file}:${first.location.line}:${first.location.column + 1}: ` : "";
    // An error inside an imported module: fixing that module must re-parse this file.
    const deps = first.location ? localInputs([first.location.file], file) : [];
    return { ok: false, message: `${where}${first.text}`, line: first.location?.line ?? null, deps };
  }
}
