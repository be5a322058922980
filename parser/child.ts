// The DAG processor's child: bundles and imports DAG files, one at a time, and answers
// with their serialized structure. User code runs only here (and in workers), never in
// the scheduler. The parent kills this process on a parse timeout and recycles it after
// a number of files or an age (parser/pool.ts), because every import stays in the module cache
// and what a file's top-level code leaves running (timers, sockets) stays in this process.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { serveRequests } from "../core/childProcess.ts";
import type { SerializedDag } from "../core/dagStructure.ts";
import type { Dag } from "../sdk/types.ts";
import { DAG_CREATED_HOOK, isDag, type DagCreatedHook } from "../sdk/dag.ts";
import { INVALID_DAG_CODES } from "../sdk/errors.ts";
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

interface CreatedDag {
  dag: Dag;
  /** The user's frames on the stack of the dag() call, innermost first. */
  callers: { file: string; line: number }[];
}

/**
 * Imports so far: each import's URL carries its number, so a file parsed again by this process
 * runs again, though its bundle is the same (the same URL would come from the module cache and
 * answer what the first import made). A DAG may read a file, a variable or the date at import:
 * the periodic re-parse (BATON_DAG_REPARSE_INTERVAL) exists to see that change. Each import stays
 * in the module cache until the parent recycles this process.
 */
let imports = 0;

/** The file being imported now, and the first error its own code raised meanwhile outside the import's promise. */
let importing: { file: string; stray?: { error: Error; how: string } } | undefined;

/**
 * A DAG file's code may leave a promise rejected that nothing awaits, or throw from a callback: by
 * default Node ends the process then, failing whichever file it is loading (BATON_DAG_LOADER_DIED,
 * without the error, retried every few minutes). One raised while a file loads, whose stack is in
 * that file, is the file's import error; any other (a timer another file left) is printed, and the
 * loader goes on.
 */
function strayError(how: string): (err: unknown) => void {
  return (err) => {
    const error = err instanceof Error ? err : undefined;
    if (importing && !importing.stray && error && lineInFile(error.stack, importing.file) !== null) {
      importing.stray = { error, how };
      return;
    }
    console.error(`baton: DAG file code ${how}${importing ? ` while ${importing.file} loaded` : ""}; the DAG processor's loader goes on:`, err);
  };
}
process.on("unhandledRejection", strayError("left a promise rejected with no handler"));
process.on("uncaughtException", strayError("threw from a callback"));

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
  // Made for each file, not once at start: a temp-folder cleaner may have removed it since (a
  // write into it then failed, and the file was reported as a loader that died).
  await mkdir(scratch, { recursive: true });
  const sdkHash = await sdkModule(scratch);
  const bundled = await bundleDagFile(file, sdkModuleFile(sdkHash));
  if (!bundled.ok) return { ok: false, code: "BATON_DAG_IMPORT_ERROR", message: bundled.message, line: bundled.line, stack: null, deps: bundled.deps };
  const deps = bundled.deps;

  const hash = createHash("sha256").update(bundled.code).digest("hex");
  const bundlePath = path.join(scratch, `${hash}.mjs`);
  await writeFile(bundlePath, bundled.code);
  const href = `${pathToFileURL(bundlePath).href}?load=${++imports}`;
  const created: CreatedDag[] = [];
  const hook: DagCreatedHook = (dag, callers) => void created.push({ dag, callers });
  (globalThis as Record<string, unknown>)[DAG_CREATED_HOOK] = hook;
  let exports: Record<string, unknown>;
  const loading: NonNullable<typeof importing> = { file };
  importing = loading;
  try {
    exports = await import(href);
    // Node reports a promise left rejected once the microtasks have run: before the next turn.
    await new Promise((resolve) => setImmediate(resolve));
  } catch (err) {
    const e = err as Error & { code?: string };
    // An InvalidDagError from dag() (its codes only: a bundle's own SDK copy is another class) reads
    // like the parser's own checks; any other exception keeps its class name (TypeError: …), which
    // says what went wrong, and is an import error: a FailError's or SkipError's code says what a
    // task did, not that a file could not be imported.
    const coded = (INVALID_DAG_CODES as readonly unknown[]).includes(e?.code);
    const code = coded ? e.code! : "BATON_DAG_IMPORT_ERROR";
    const message = e instanceof Error ? (coded ? e.message : `${e.name}: ${e.message}`) : `thrown value: ${String(err)}`;
    return { ok: false, code, message, line: lineInFile(e?.stack, file), stack: stackFrames(e?.stack), deps };
  } finally {
    importing = undefined;
    delete (globalThis as Record<string, unknown>)[DAG_CREATED_HOOK];
    await rm(bundlePath, { force: true });
  }
  if (loading.stray) {
    const { error, how } = loading.stray;
    return {
      ok: false,
      code: "BATON_DAG_IMPORT_ERROR",
      message: `${error.name}: ${error.message} (the file's code ${how})`,
      line: lineInFile(error.stack, file),
      stack: stackFrames(error.stack),
      deps,
    };
  }

  // A DAG exported under several names (export default a; export { a as b }) is one DAG.
  const exported = [...new Set(Object.values(exports).filter(isDag))];
  const sameId = sharedId(exported, created, file);
  if (sameId) return { ok: false, code: "BATON_INVALID_DAG", message: sameId.message, line: sameId.line, stack: null, deps };
  const dags: SerializedDag[] = [];
  for (const value of exported) {
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
  const lost = unexported(created, exports, file);
  if (lost) {
    const message = `dag(${JSON.stringify(lost.dag.id)}) is created in this file but not exported: export it (export default dag(...) or export const x = dag(...))`;
    return { ok: false, code: "BATON_DAG_NOT_EXPORTED", message, line: lost.line, stack: null, deps };
  }
  return { ok: true, code: bundled.code, dags, deps, sdkHash };
}

/**
 * Two different DAGs the file exports with one id: only one could be stored under it, so the file is
 * refused (the other would be dropped without a word). The lines are those of their dag() calls in
 * this file, where known (the line given is the later one).
 */
function sharedId(exported: Dag[], created: CreatedDag[], file: string): { message: string; line: number | null } | null {
  const byId = new Map<string, Dag>();
  for (const dag of exported) {
    const first = byId.get(dag.id);
    if (!first) {
      byId.set(dag.id, dag);
      continue;
    }
    const lineOf = (d: Dag) => created.find((c) => c.dag === d)?.callers.find((c) => path.resolve(c.file) === file)?.line ?? null;
    const lines = [lineOf(first), lineOf(dag)].filter((l): l is number => l !== null).sort((a, b) => a - b);
    const where = lines.length === 2 ? ` (lines ${lines[0]} and ${lines[1]})` : "";
    return { message: `DAG id "${dag.id}" is defined twice in this file${where}: each dag() needs its own id`, line: lines.at(-1) ?? null };
  }
  return null;
}

/**
 * The first DAG this file's import created, from a call in the file itself (directly or through a
 * helper it called), that the file does not export: only exported DAGs are DAGs, so it would be
 * ignored without a word. A DAG a helper module creates as it is imported is that module's (another
 * file may export it), so it does not count here.
 */
function unexported(created: CreatedDag[], exports: Record<string, unknown>, file: string): { dag: Dag; line: number } | null {
  const exported = new Set(Object.values(exports).filter(isDag));
  const exportedIds = new Set([...exported].map((d) => d.id));
  for (const { dag, callers } of created) {
    if (exported.has(dag) || exportedIds.has(dag.id)) continue;
    const here = callers.find((c) => path.resolve(c.file) === file);
    if (here) return { dag, line: here.line };
  }
  return null;
}

const scratch = process.env.BATON_PARSE_SCRATCH!;
serveRequests({ parse: (m) => parse(m.file as string, scratch) });
process.send?.({ type: "ready" });
