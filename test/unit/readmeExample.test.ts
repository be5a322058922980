// The README's "A DAG in 20 lines" is headed `// dags/example_etl.ts`: a newcomer who runs the curls below it reads
// the log of the shipped file, so the file must be that snippet, byte for byte.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("README example", () => {
  it("dags/example_etl.ts is exactly the README's snippet headed with its name", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const block = /```ts\n(\/\/ dags\/example_etl\.ts\n[\s\S]*?)```/.exec(readme);
    expect(block).not.toBeNull();
    const snippet = block![1]!.replace(/^\/\/ dags\/example_etl\.ts\n/, "");
    expect(await readFile(path.join(ROOT, "dags/example_etl.ts"), "utf8")).toBe(snippet);
  });

  it("says what the load task's log shows for the curl's conf", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const file = await readFile(path.join(ROOT, "dags/example_etl.ts"), "utf8");
    // rows 10 → amounts 10..100 → total 550; the README names that line and the file prints it.
    expect(readme).toContain("`loading 550`");
    expect(file).toContain("console.log(`loading ${ctx.get(transform).total}`)");
  });
});

describe("README backfill examples", () => {
  it("name a DAG with a schedule: a shipped DAG with schedule null answers BATON_BACKFILL_NO_SCHEDULE", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const named = [...readme.matchAll(/baton backfill create (\w+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const dagId of new Set(named)) {
      const file = await readFile(path.join(ROOT, "dags", `${dagId}.ts`), "utf8").catch(() => null);
      if (file !== null) expect({ dagId, unscheduled: /schedule:\s*null/.test(file) }).toEqual({ dagId, unscheduled: false });
    }
  });
});
