// The SDK module (core/sdkModule.ts): DAG bundles import Baton's SDK as a sibling module named by
// its content hash instead of carrying a copy. The DAG processor stores that module in dag_code
// under its hash, and a worker with an empty cache (another host) fetches it with the bundle.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { sdkModuleFile, sdkModulesOf } from "../../core/sdkModule.ts";
import { BundleCache } from "../../executor/bundleCache.ts";
import { buildSdkModule, bundleDagFile } from "../../parser/bundle.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { VersionCache } from "../../store/versions.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "baton-sdk-module-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("bundleDagFile with the SDK as a module", () => {
  it("points every import of baton at the SDK module (multi-line, namespace, re-export, dynamic, require) and leaves strings alone", async () => {
    const file = path.join(scratch, "imports.ts");
    await writeFile(
      file,
      [
        "import {",
        "  dag,",
        "  isDag,",
        '} from "baton";',
        'import * as B from "baton";',
        'export { nonRetryable } from "baton";',
        "const text = ' from \"baton\";';",
        'export default dag({ id: "imports" }, (t) => { t.task("a", async () => String((await import("baton")).isDag(B)) + text + String(isDag(require("baton").dag))); });',
      ].join("\n"),
    );
    const { hash } = await buildSdkModule();
    const bundled = await bundleDagFile(file, sdkModuleFile(hash));
    if (!bundled.ok) throw new Error(bundled.message);
    const code = bundled.code.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "");
    expect(code.match(/"\.\/baton-sdk-[0-9a-f]{64}\.mjs"/g)?.length).toBeGreaterThanOrEqual(5);
    expect(code).not.toMatch(/"baton"\s*;?\s*$|import\("baton"\)|require\("baton"\)/m);
    expect(code).toContain("' from \"baton\";'");
    expect(sdkModulesOf(bundled.code)).toEqual([hash]);
    // The SDK itself is not in the bundle.
    expect(code).not.toContain("DAG_BRAND");
  });

  it("builds the same SDK module, byte for byte, every time (its hash pins runs to it)", async () => {
    const [a, b] = await Promise.all([buildSdkModule(), buildSdkModule()]);
    expect(a.hash).toBe(b.hash);
    expect(a.code).toBe(b.code);
    expect(a.code).toContain("DAG_BRAND");
  });
});

describe("the SDK module end to end", () => {
  const h = new Harness({ worker: false });
  beforeAll(async () => {
    await h.start({
      "sdk_mod.ts": dagSource(`export default dag({ id: "sdk_mod" }, (t) => { t.task("only", async () => 42); });`),
    });
    await h.run();
  });
  afterAll(async () => {
    await h.stop();
  });

  it("stores the SDK module in dag_code under the hash the version's code imports", async () => {
    const [[version]] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT v.version_hash, c.code FROM dag_version v JOIN dag_code c ON c.code_hash = v.code_hash WHERE v.dag_id = 'sdk_mod'",
    );
    const [hash] = sdkModulesOf(version!.code);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const [[sdk]] = await h.db.pool.query<RowDataPacket[]>("SELECT code FROM dag_code WHERE code_hash = ?", [hash]);
    expect(sdk!.code).toBe((await buildSdkModule()).code);
  });

  it("a worker's empty bundle cache fetches the bundle and its SDK module from MySQL, and the bundle imports", async () => {
    const [[version]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_version WHERE dag_id = 'sdk_mod'");
    const folder = path.join(scratch, "remote-cache");
    const bundle = await new BundleCache(folder, new VersionCache(h.db.pool)).path(version!.version_hash);
    const [hash] = sdkModulesOf(await readFile(bundle, "utf8"));
    expect(existsSync(path.join(folder, sdkModuleFile(hash!)))).toBe(true);
    const module = (await import(pathToFileURL(bundle).href)) as { default: { id: string; tasks: Map<string, { fn: () => Promise<number> }> } };
    expect(module.default.id).toBe("sdk_mod");
    expect(await module.default.tasks.get("only")!.fn()).toBe(42);
  });

  it("fetches the SDK module again for a cached bundle whose module was cleaned away (another process's cache)", async () => {
    const [[version]] = await h.db.pool.query<RowDataPacket[]>("SELECT version_hash FROM dag_version WHERE dag_id = 'sdk_mod'");
    const folder = path.join(scratch, "cleaned-cache");
    const bundle = await new BundleCache(folder, new VersionCache(h.db.pool)).path(version!.version_hash);
    const [hash] = sdkModulesOf(await readFile(bundle, "utf8"));
    await rm(path.join(folder, sdkModuleFile(hash!)));
    expect(await new BundleCache(folder, new VersionCache(h.db.pool)).path(version!.version_hash)).toBe(bundle);
    expect(existsSync(path.join(folder, sdkModuleFile(hash!)))).toBe(true);
  });

  it("refuses, with the hash in the message, a bundle whose SDK module is not stored", async () => {
    const missing = "0".repeat(64);
    const versions = { code: async () => `import { dag } from "./${sdkModuleFile(missing)}";\n`, codeByHash: async () => null } as unknown as VersionCache;
    await expect(new BundleCache(path.join(scratch, "broken-cache"), versions).path("v-broken")).rejects.toThrow(missing);
    expect(existsSync(path.join(scratch, "broken-cache", "v-broken.mjs"))).toBe(false);
  });

  it("still runs bundles of earlier versions that carry their own SDK copy (no SDK module to fetch)", async () => {
    const versions = { code: async () => "export const old = 1;\n", codeByHash: async () => { throw new Error("must not be asked"); } } as unknown as VersionCache;
    const bundle = await new BundleCache(path.join(scratch, "old-cache"), versions).path("v-old");
    expect(((await import(pathToFileURL(bundle).href)) as { old: number }).old).toBe(1);
  });
});
