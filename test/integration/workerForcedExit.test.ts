// A worker that exits at once (a second SIGTERM/SIGINT, or its shutdown outlasting the grace)
// leaves no task process behind: one running on would repeat its work beside the retry that
// follows the zombie reaping, with no worker to heartbeat or record it. A real `baton worker`.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { running } from "../helpers/processes.ts";
import { BIN, cleanEnv, ROOT } from "../helpers/cli.ts";

const DAGS = dagSource(`
import { writeFileSync } from "node:fs";
export const spin = dag({ id: "fe_spin" }, (t) => {
  // Blocks its event loop: nothing in its process can end it, not even its worker's going away.
  t.task("t", async (ctx) => {
    writeFileSync(String(ctx.conf.pidFile), String(process.pid));
    const until = Date.now() + 120_000;
    while (Date.now() < until) {}
  });
});
`);


describe("a worker that exits at once", () => {
  // Parses, schedules and serves the API; the worker is the CLI's.
  const h = new Harness({ worker: false, runIds: "numbered" });
  let dir: string;
  let worker: ChildProcess | undefined;
  const leftovers: number[] = [];

  beforeAll(async () => {
    await h.start({ "spin.ts": DAGS });
    await h.run();
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-forced-exit-"));
  });
  afterAll(async () => {
    worker?.kill("SIGKILL");
    for (const pid of leftovers) if (running(pid)) process.kill(pid, "SIGKILL");
    await h.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("kills its task processes on a second SIGTERM, even one that blocks its event loop", async () => {
    worker = spawn(process.execPath, [BIN, "worker", "--concurrency", "1"], {
      cwd: ROOT,
      env: cleanEnv({ BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: path.join(dir, "logs"), BATON_LOG_LEVEL: "info" }),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    worker.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => worker!.once("exit", (code) => resolve(code)));
    const pidFile = path.join(dir, "pid");
    await h.trigger("fe_spin", { conf: { pidFile } });
    const pid = await waitFor("the task to start", async () => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : null), 20_000);
    leftovers.push(pid);
    worker.kill("SIGTERM");
    // A second signal within a second is taken for the same one (npm and a terminal both send it).
    await waitFor("the worker to take the first SIGTERM", async () => stderr.includes("SIGTERM received"));
    await new Promise((r) => setTimeout(r, 1100));
    worker.kill("SIGTERM");
    expect(await exited).toBe(130);
    // Was: the task process spun on, an orphan, until its loop ended.
    await waitFor(`task process ${pid} to be killed`, async () => !running(pid), 5000);
  }, 60_000);
});
