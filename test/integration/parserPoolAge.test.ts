// A parser child imports a DAG file again at each parse (parser/child.ts: `?load=N`), so what a
// file's top-level code leaves running (a timer, a socket) accumulates in it: besides the parse
// count, a child is replaced once it is older than the pool's age limit, on the pool's own clock.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ParserPool } from "../../parser/pool.ts";
import { dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { running } from "../helpers/processes.ts";

describe("parser pool: children's age limit", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "baton-pool-age-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));


  it("replaces a child older than maxAgeMs before its next parse, and keeps a younger one", async () => {
    let now = 1_000_000;
    const pool = new ParserPool({ size: 1, timeoutMs: 30_000, recycleAfter: 100, maxAgeMs: 60_000, now: () => now, scratchFolder: path.join(root, ".scratch") });
    // The loader's pid, as the DAG's description; and a timer its import leaves running, as a DAG file may.
    const file = path.join(root, "pid.ts");
    await writeFile(file, dagSource(`setInterval(() => undefined, 60_000);\nexport default dag({ id: "pid", description: String(process.pid) }, (t) => { t.task("x", async () => 1); });`));
    const pid = async () => {
      const outcome = await pool.parse(file);
      if (!outcome.ok) throw new Error(outcome.message);
      return Number(outcome.dags[0]!.description);
    };
    try {
      const first = await pid();
      expect(await pid()).toBe(first);
      now += 59_999;
      expect(await pid()).toBe(first);

      now += 1;
      const second = await pid();
      expect(second).not.toBe(first);
      await waitFor("the old loader's exit", async () => !running(first), 10_000);
      // The age counts from the new child's start.
      now += 59_999;
      expect(await pid()).toBe(second);
    } finally {
      await pool.close();
    }
  });
});
