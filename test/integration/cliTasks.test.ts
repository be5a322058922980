// `baton tasks list | logs | state` as a user runs them: a real process on the test database
// (the in-process API), against runs executed by the harness's worker.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

const spawned = new Set<ChildProcess>();

describe("baton tasks", () => {
  const h = new Harness({ workers: 2 });
  let scratch = "";
  let goFile = "";
  let seq = 0;

  function baton(args: string[]) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
    env.BATON_DATABASE_URL = h.db.url;
    env.BATON_LOGS_FOLDER = h.logsFolder;
    const child = spawn(process.execPath, [path.join(ROOT, "bin/baton.js"), ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    spawned.add(child);
    const out = { stdout: "", stderr: "" };
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const exited = new Promise<Finished>((resolve) =>
      child.once("close", (code) => {
        clearTimeout(timer);
        spawned.delete(child);
        resolve({ code, ...out });
      }),
    );
    return { out, exited };
  }

  async function trigger(dagId: string): Promise<string> {
    const runId = `${dagId}_${++seq}`;
    const res = await h.app.inject({ method: "POST", url: `/api/v1/dags/${dagId}/dagRuns`, payload: { dag_run_id: runId } });
    expect(res.statusCode).toBe(200);
    return runId;
  }
  async function runState(runId: string): Promise<string> {
    const [[r]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ?", [runId]);
    return r!.state;
  }
  const finished = (runId: string) =>
    waitFor(`run ${runId} to finish`, async () => {
      const state = await runState(runId);
      return ["success", "failed"].includes(state) ? state : null;
    }, 20_000);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-cli-tasks-"));
    goFile = path.join(scratch, "go");
    await h.start({
      "tasks.ts": dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "cli_tasks" }, (t) => {
  const hello = t.task("hello", async () => { console.log("hello from the task"); return 1; });
  t.task("waiter", { upstream: [hello] }, async () => {
    console.log("waiting for the go file");
    while (!existsSync(${JSON.stringify(goFile)})) await new Promise((r) => setTimeout(r, 50));
    console.log("got the go file, done");
    return 2;
  });
});
export const failing = dag({ id: "cli_fail" }, (t) => {
  const boom = t.task("boom", async () => { throw new FailError("boom on purpose"); });
  t.task("after", { upstream: [boom] }, async () => "after ran");
});
`),
    });
    await h.run();
  });
  afterAll(async () => {
    for (const child of spawned) child.kill("SIGKILL");
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("logs --follow waits for the try, prints as the task writes and exits when it ends; list shows the run", async () => {
    const runId = await trigger("cli_tasks");
    const follow = baton(["tasks", "logs", "cli_tasks", runId, "waiter", "--follow"]);
    await waitFor("the follower to print the task's first line", async () => follow.out.stdout.includes("waiting for the go file"), 25_000);
    expect(follow.out.stdout).not.toContain("got the go file");
    await writeFile(goFile, "go");
    const done = await follow.exited;
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: "" });
    expect(done.stdout).toMatch(/waiting for the go file[\s\S]*got the go file, done/);
    expect(await finished(runId)).toBe("success");

    const list = await baton(["tasks", "list", "cli_tasks", runId, "--state", "success"]).exited;
    expect({ code: list.code, stderr: list.stderr }).toEqual({ code: 0, stderr: "" });
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^task_id\s+state\s+try_number/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ["hello", "success", "1"],
      ["waiter", "success", "1"],
    ]);

    const logs = await baton(["tasks", "logs", "cli_tasks", runId, "hello", "--try", "1"]).exited;
    expect({ code: logs.code, stderr: logs.stderr }).toEqual({ code: 0, stderr: "" });
    expect(logs.stdout).toContain("hello from the task");
  });

  it("state marks a failed task success: its downstream runs and the run succeeds; a bad state is refused", async () => {
    const runId = await trigger("cli_fail");
    expect(await finished(runId)).toBe("failed");

    const bad = await baton(["tasks", "state", "cli_fail", runId, "boom", "running"]).exited;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("BATON_VALIDATION_FAILED");
    expect(bad.stderr).not.toContain("    at ");

    const marked = await baton(["tasks", "state", "cli_fail", runId, "boom", "success"]).exited;
    expect({ code: marked.code, stderr: marked.stderr }).toEqual({ code: 0, stderr: "" });
    expect(marked.stdout).toContain("marked boom of cli_fail/" + runId + ": failed → success; the run is running");
    expect(await finished(runId)).toBe("success");
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    expect(rows.map((r) => [r.task_id, r.state])).toEqual([
      ["after", "success"],
      ["boom", "success"],
    ]);
  });
});
