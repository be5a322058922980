// A DAG's onSuccess that outlives its deadline is logged as such, and the warm task process it
// still runs in is replaced: left there, it ran on beside the tries that process took next.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { dagCallbackLogPath } from "../../core/logPaths.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { running } from "../helpers/processes.ts";

describe("a DAG callback past its deadline", () => {
  const h = new Harness({ dagCallbackTimeoutMs: 300 });
  const pidFile = () => path.join(h.logsFolder, "callback.pid");

  beforeAll(async () => {
    await h.start({
      "stuck.ts": dagSource(`
import { writeFileSync } from "node:fs";
export default dag({
  id: "cb_stuck",
  onSuccess: async () => {
    writeFileSync(process.env.BATON_TEST_PID_FILE ?? "", String(process.pid));
    await new Promise(() => undefined); // never settles
  },
}, (t) => { t.task("only", async () => 1); });
`),
    });
  }, 60_000);
  afterAll(async () => {
    delete process.env.BATON_TEST_PID_FILE;
    await h.stop();
  });

  it("logs that it did not finish and retires the process it runs in", async () => {
    // Task processes inherit the worker's environment: where the callback says which process it is.
    process.env.BATON_TEST_PID_FILE = pidFile();
    await h.run();
    const runId = await h.trigger("cb_stuck");
    const logFile = dagCallbackLogPath(h.logsFolder, { dagId: "cb_stuck", runId });
    await waitFor("the callback's deadline in its log", async () => (await readFile(logFile, "utf8").catch(() => "")).includes("did not finish within 0.3 s"), 20_000);
    const pid = Number(await readFile(pidFile(), "utf8"));
    expect(pid).toBeGreaterThan(0);
    await waitFor(`task process ${pid} to be retired`, async () => !running(pid), 10_000);
  });
});
