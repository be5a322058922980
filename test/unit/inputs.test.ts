import { packageManifestOf } from "../../parser/bundle.ts";
import { globPattern, globRoot } from "../../parser/inputsHash.ts";

describe("glob inputs", () => {
  it("matches esbuild's template-literal globs: ** spans folders, * does not", () => {
    const re = globPattern("/d/steps/**/*.ts");
    expect(re.test("/d/steps/one.ts")).toBe(true);
    expect(re.test("/d/steps/a/b/two.ts")).toBe(true);
    expect(re.test("/d/steps/one.js")).toBe(false);
    expect(re.test("/d/stepsx/one.ts")).toBe(false);
    const ext = globPattern("/d/lib/later.*");
    expect(ext.test("/d/lib/later.ts")).toBe(true);
    expect(ext.test("/d/lib/later/index.ts")).toBe(false);
    expect(globPattern("/d/a+b (1)/x.*").test("/d/a+b (1)/x.ts")).toBe(true);
  });

  it("lists a glob from the folder before its first *", () => {
    expect(globRoot("/d/steps/**/*.ts")).toBe("/d/steps");
    expect(globRoot("/d/lib/later.*")).toBe("/d/lib");
    expect(globRoot("/d/step-*.ts")).toBe("/d");
  });
});

describe("packageManifestOf", () => {
  it("names the package.json of the innermost package a node_modules file belongs to", () => {
    expect(packageManifestOf("/d/node_modules/mypkg/lib/index.js")).toBe("/d/node_modules/mypkg/package.json");
    expect(packageManifestOf("/d/node_modules/@scope/pkg/index.js")).toBe("/d/node_modules/@scope/pkg/package.json");
    expect(packageManifestOf("/d/node_modules/.pnpm/a@1/node_modules/a/index.js")).toBe("/d/node_modules/.pnpm/a@1/node_modules/a/package.json");
    expect(packageManifestOf("/d/lib/helper.ts")).toBeNull();
  });
});
