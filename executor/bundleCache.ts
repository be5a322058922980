import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { VersionCache } from "../store/versions.ts";

/**
 * DAG bundles on local disk, one file per version hash, fetched from MySQL on first use:
 * remote workers need no copy of the DAG folder.
 */
export class BundleCache {
  private readonly ready = new Map<string, Promise<string>>();

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
    try {
      await stat(file);
      return file;
    } catch {
      // not cached yet
    }
    const code = await this.versions.code(versionHash);
    await mkdir(this.folder, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, file);
    return file;
  }
}
