// The DAG processor's child: bundles and imports DAG files, one at a time, and answers
// with their serialized structure. User code runs only here (and in workers), never in
// the scheduler. The parent kills this process on a parse timeout and recycles it after
// a number of files, because every import stays in the module cache.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { serveRequests } from "../core/childProcess.ts";
import type { SerializedDag } from "../core/dagStructure.ts";
import { isDag } from "../sdk/dag.ts";
import { writeFileAtomically } from "../core/atomicWrite.ts";
import { sdkModuleFile } from "../core/sdkModule.ts";
import { buildSdkModule, bundleDagFile } from "./bundle.ts";
import { serializeDag } from "./serialize.ts";
import { lineInFile, stackFrames } from "./stackLine.ts";

export type ParseOutcome =
  /** sdkHash: the SDK module the code imports, written to the scratch folder as core/sdkModule.ts names it. */
  | { ok: true; code: string; dags: SerializedDag[]; deps: string[]; sdkHash: string }
  | { ok: false; code: string; message: string; line: number | null; stack: string | null; deps?: string[] };

let sdk: Promise<{ hash: string; code: string }> | undefined;

/**
 * Builds the SDK module once per process; before each parse, writes it to the scratch folder if it
 * is not there (another child wrote it, or the folder was cleaned): the bundle imports it, and the
 * DAG processor reads it from there to store it. Its hash.
 */
async function sdkModule(scratch: string): Promise<string> {
  sdk ??= buildSdkModule();
  sdk.catch(() => (sdk = undefined));
  const { hash, code } = await sdk;
  const file = path.join(scratch, sdkModuleFile(hash));
  if (!existsSync(file)) await writeFileAtomically(file, code);
  return hash;
}

async function parse(file: string, scratch: string): Promise<ParseOutcome> {
  const sdkHash = await sdkModule(scratch);
  const bundled = await bundleDagFile(file, sdkModuleFile(sdkHash));
  if (!bundled.ok) return { ok: false, code: "BATON_DAG_IMPORT_ERROR", message: bundled.message, line: bundled.line, stack: null, deps: bundled.deps };
  const deps = bundled.deps;

  const hash = createHash("sha256").update(bundled.code).digest("hex");
  const bundlePath = path.join(scratch, `${hash}.mjs`);
  await writeFile(bundlePath, bundled.code);
  let exports: Record<string, unknown>;
  try {
    exports = await import(pathToFileURL(bundlePath).href);
  } catch (err) {
    const e = err as Error & { code?: string };
    // An error with a Baton code (InvalidDagError from dag()) reads like the parser's own checks; any
    // other exception keeps its class name (TypeError: …), which says what went wrong.
    const coded = typeof e?.code === "string" && e.code.startsWith("BATON_");
    const code = coded ? e.code! : "BATON_DAG_IMPORT_ERROR";
    const message = e instanceof Error ? (coded ? e.message : `${e.name}: ${e.message}`) : `thrown value: ${String(err)}`;
    return { ok: false, code, message, line: lineInFile(e?.stack, file), stack: stackFrames(e?.stack), deps };
  } finally {
    await rm(bundlePath, { force: true });
  }

  const dags: SerializedDag[] = [];
  for (const value of Object.values(exports)) {
    if (!isDag(value)) continue;
    try {
      dags.push(serializeDag(value, file));
    } catch (err) {
      const e = err as Error & { code?: string; definedAt?: string };
      // Where the problem was declared in this file (the edge closing a cycle), else the dag() call.
      const at = e.definedAt && e.definedAt.slice(0, e.definedAt.lastIndexOf(":")) === file ? e.definedAt : value.definedAt;
      const line = at ? Number(at.split(":").pop()) || null : null;
      return { ok: false, code: e.code ?? "BATON_INVALID_DAG", message: e.message, line, stack: stackFrames(e.stack), deps };
    }
  }
  return { ok: true, code: bundled.code, dags, deps, sdkHash };
}

const scratch = process.env.BATON_PARSE_SCRATCH!;
await mkdir(scratch, { recursive: true });
serveRequests({ parse: (m) => parse(m.file as string, scratch) });
process.send?.({ type: "ready" });
