// Pool names: one rule for the API, the CLI and DAG files (core/dagLimits.ts poolNameProblem):
// any 1-256 characters (as Airflow), not ending with whitespace, not "." or "..", without control
// characters (a newline would split a log line); leading whitespace is kept. A DAG naming a
// pool it may use is told to create it, and the API and CLI then create it; every pool is reached
// by GET/PATCH/DELETE with its name percent-encoded as one path segment.
import { MAX_POOL_LENGTH } from "../../core/dagLimits.ts";
import { runBaton } from "../helpers/cli.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const enc = encodeURIComponent;

// Names the API refused with `body.name must match pattern "^[A-Za-z0-9_.-]+$"`.
// The last is 256 characters (code points, as VARCHAR(256) counts them) of 4 bytes each in UTF-8.
const ODD_NAMES = ["etl pool 2", "team:gpu", "team/gpu 2", "100% cpu", "a?b#c&d=e", "Zürich ✓", "..a", "😀".repeat(MAX_POOL_LENGTH)];

const USES_ODD_POOLS = dagSource(`
export default dag({ id: "odd_pools" }, (t) => {
  t.task("a", { pool: "etl pool" }, async () => 1);
  t.task("b", { pool: "team/gpu" }, async () => 2);
});
`);

const DOTS = dagSource(`export default dag({ id: "dot_pool" }, (t) => { t.task("a", { pool: ".." }, async () => 1); });`);
const TRAILING = dagSource(`export default dag({ id: "trailing_pool" }, (t) => { t.task("a", { pool: "gpu " }, async () => 1); });`);
const CONTROL = dagSource(`export default dag({ id: "control_pool" }, (t) => { t.task("a", { pool: "gpu\\nnext" }, async () => 1); });`);

describe("pool names", () => {
  const h = new Harness({ worker: false });
  beforeAll(async () => {
    await h.start({ "odd.ts": USES_ODD_POOLS, "dots.ts": DOTS, "trailing.ts": TRAILING, "control.ts": CONTROL });
    await h.processor.scan();
  });
  afterAll(() => h.stop());

  const importError = async (file: string) => {
    const res = await h.app.inject({ method: "GET", url: "/api/v1/importErrors" });
    return (res.json().import_errors as { filename: string; code: string; message: string }[]).find((e) => e.filename.endsWith(file));
  };

  it("a DAG told to create a pool with an odd name can have it created through the API, and then imports", async () => {
    expect(await importError("odd.ts")).toMatchObject({ code: "BATON_POOL_NOT_FOUND" });
    for (const name of ["etl pool", "team/gpu"]) {
      const res = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name, slots: 2 } });
      expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status: 200, body: { name, slots: 2 } });
    }
    await h.processor.scan();
    expect(await importError("odd.ts")).toBeUndefined();
    expect((await h.app.inject({ method: "GET", url: "/api/v1/dags/odd_pools" })).statusCode).toBe(200);
  });

  it.each(ODD_NAMES.map((n) => [n.length > 40 ? `${n.slice(0, 2)}… (${[...n].length} characters)` : n, n]))(
    "%s: created, read, changed and deleted with the name percent-encoded in the path",
    async (_label, name) => {
      const created = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name, slots: 1 } });
      expect({ status: created.statusCode, body: created.json() }).toMatchObject({ status: 200, body: { name } });
      const stored = created.json().name as string;
      const url = `/api/v1/pools/${enc(stored)}`;
      expect((await h.app.inject({ method: "GET", url })).json()).toMatchObject({ name: stored, slots: 1 });
      const patched = await h.app.inject({ method: "PATCH", url, payload: { slots: 4 } });
      expect({ status: patched.statusCode, body: patched.json() }).toMatchObject({ status: 200, body: { name: stored, slots: 4 } });
      const listed = await h.app.inject({ method: "GET", url: "/api/v1/pools?limit=1000" });
      expect(listed.json().pools.map((p: { name: string }) => p.name)).toContain(stored);
      expect((await h.app.inject({ method: "DELETE", url })).statusCode).toBe(204);
      expect((await h.app.inject({ method: "GET", url })).statusCode).toBe(404);
    },
  );

  it.each([
    ["ending with a space", "gpu ", "must not end with whitespace"],
    ["ending with a tab", "gpu\t", "must not end with whitespace"],
    ["with a newline inside", "gpu\nnext", "control characters"],
    ["with a tab inside", "x\ty", "control characters"],
    ["'.' (a path segment clients resolve away)", ".", '"." or ".."'],
    ["'..'", "..", '"." or ".."'],
    ["empty", "", "fewer than 1 characters"],
    ["257 characters", "p".repeat(MAX_POOL_LENGTH + 1), "more than 256 characters"],
  ])("refuses a name %s in the API body, saying the rule", async (_label, name, rule) => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name, slots: 1 } });
    expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 400, code: "BATON_VALIDATION_FAILED" });
    expect(res.json().detail).toContain(rule);
  });

  it("DAGs naming such pools are import errors that say why (not BATON_POOL_NOT_FOUND)", async () => {
    expect(await importError("dots.ts")).toMatchObject({ code: "BATON_INVALID_DAG" });
    expect((await importError("dots.ts"))!.message).toContain('pool must not be "." or ".."');
    expect((await importError("trailing.ts"))!.message).toContain("pool must not end with whitespace");
    expect((await importError("control.ts"))!.message).toContain("pool must not contain control characters");
  });

  it("refuses such names in the path too (a name ending with a space would find the one without)", async () => {
    await h.app.inject({ method: "POST", url: "/api/v1/pools", payload: { name: "pad", slots: 1 } });
    const res = await h.app.inject({ method: "DELETE", url: `/api/v1/pools/${enc("pad ")}` });
    expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 400, code: "BATON_VALIDATION_FAILED" });
    expect((await h.app.inject({ method: "GET", url: "/api/v1/pools/pad" })).statusCode).toBe(200);
  });

  it("the CLI creates, shows and deletes a pool named as the API allows, and refuses the others before any request", async () => {
    const env = { BATON_DATABASE_URL: h.db.url };
    const set = await runBaton(["pools", "set", "team:gpu", "2"], env);
    expect({ code: set.code, stderr: set.stderr, stdout: set.stdout }).toEqual({ code: 0, stderr: "", stdout: "pool team:gpu: 2 slot(s)\n" });
    const shown = await runBaton(["--output", "json", "pools", "show", "team:gpu"], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: "team:gpu", slots: 2 });
    expect((await runBaton(["pools", "delete", "team:gpu"], env)).code).toBe(0);
    const refused = await runBaton(["pools", "set", "..", "2"], { BATON_DATABASE_URL: "mysql://root@127.0.0.1:1/baton" });
    expect({ code: refused.code, stderr: refused.stderr.trim() }).toEqual({
      code: 1,
      stderr: 'baton: BATON_VALIDATION_FAILED: <name> "..": must not be "." or ".." (a path segment HTTP clients resolve away)',
    });
  });
});
