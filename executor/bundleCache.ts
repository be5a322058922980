import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomically } from "../core/atomicWrite.ts";
import { sdkModuleFile, sdkModulesOf } from "../core/sdkModule.ts";
import type { VersionCache } from "../store/versions.ts";

/**
 * DAG bundles on local disk, one file per version hash, fetched from MySQL on first use, with
 * the SDK module each imports: remote workers need no copy of the DAG folder.
 */
export class BundleCache {
  private readonly ready = new Map<string, Promise<string>>();
  /** SDK modules (core/sdkModule.ts) on disk next to the bundles, by hash. */
  private readonly sdk = new Map<string, Promise<void>>();

  constructor(
    private readonly folder: string,
    private readonly versions: VersionCache,
  ) {}

  path(versionHash: string): Promise<string> {
    let p = this.ready.get(versionHash);
    if (!p) {
      p = this.materialize(versionHash);
      p.catch(() => this.ready.delete(versionHash));
      this.ready.set(versionHash, p);
    }
    return p;
  }

  private async materialize(versionHash: string): Promise<string> {
    const file = path.join(this.folder, `${versionHash}.mjs`);
    if (await exists(file)) {
      // Cached by an earlier process: its SDK module may have been cleaned away since.
      await Promise.all(sdkModulesOf(await readFile(file, "utf8")).map((hash) => this.sdkModule(hash)));
      return file;
    }
    const code = await this.versions.code(versionHash);
    await mkdir(this.folder, { recursive: true });
    // The SDK module the bundle imports goes first: the bundle file existing means it is usable.
    await Promise.all(sdkModulesOf(code).map((hash) => this.sdkModule(hash)));
    await writeFileAtomically(file, code);
    return file;
  }

  private sdkModule(hash: string): Promise<void> {
    let p = this.sdk.get(hash);
    if (!p) {
      p = (async () => {
        const file = path.join(this.folder, sdkModuleFile(hash));
        if (await exists(file)) return;
        const code = await this.versions.codeByHash(hash);
        if (code === null) throw new Error(`the SDK module ${hash} this DAG version imports is not stored in dag_code`);
        await writeFileAtomically(file, code);
      })();
      p.catch(() => this.sdk.delete(hash));
      this.sdk.set(hash, p);
    }
    return p;
  }

}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
