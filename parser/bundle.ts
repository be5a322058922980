import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type BuildFailure, type Message } from "esbuild";

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

/**
 * Bundles a DAG file with its local imports and packages into one ES module. "baton"
 * resolves to this installation's SDK, so a DAG always runs against the SDK of the Baton
 * that parsed it. The source map (inline, absolute paths) maps stack traces back to the
 * user's file and line.
 */
export async function bundleDagFile(file: string): Promise<BundleOk | BundleFailed> {
  try {
    const result = await build({
      entryPoints: [file],
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
      plugins: [{ name: "baton-sdk", setup: (b) => b.onResolve({ filter: /^baton$/ }, () => ({ path: SDK_ENTRY })) }],
    });
    const js = result.outputFiles.find((f) => f.path.endsWith(".mjs"))!.text;
    const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"));
    let code = js.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
    if (mapFile) {
      const map = JSON.parse(mapFile.text) as { sources: string[] };
      map.sources = map.sources.map((s) => path.resolve("/", s));
      code += `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString("base64")}\n`;
    }
    return { ok: true, code, deps: localInputs(Object.keys(result.metafile.inputs), file) };
  } catch (err) {
    const first: Message | undefined = (err as BuildFailure).errors?.[0];
    if (!first) return { ok: false, message: (err as Error).message, line: null, deps: [] };
    const where = first.location ? `${first.location.file}:${first.location.line}:${first.location.column + 1}: ` : "";
    // An error inside an imported module: fixing that module must re-parse this file.
    const deps = first.location ? localInputs([first.location.file], file) : [];
    return { ok: false, message: `${where}${first.text}`, line: first.location?.line ?? null, deps };
  }
}
