// The worker owns its task processes' lifetime: each runs in a process group of its own, so
// killing it (executionTimeout, shutdown) kills what the task started too, and signals meant for
// the worker's group (Ctrl-C in a terminal, systemd's stop of the whole unit) leave the try to the
// worker, which finishes it or hands it back, instead of failing it as a dead process.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";
import { running } from "../helpers/processes.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";

export const spawner = dag({ id: "pg_spawner" }, (t) => {
  t.task("stuck", { executionTimeout: 300 }, async (ctx) => {
    const sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    appendFileSync(String(ctx.conf.marks), "sleeper " + sleeper.pid + "\\n");
    // Ignores ctx.signal: the worker has to kill its process.
    await new Promise((r) => setTimeout(r, 60_000));
  });
});

export const signalled = dag({ id: "pg_signalled" }, (t) => {
  t.task("nap", async (ctx) => {
    appendFileSync(String(ctx.conf.marks), "task " + process.pid + "\\n");
    while (!readFileSync(String(ctx.conf.marks), "utf8").includes("go")) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return "finished";
  });
});
`);

/** The pid a task wrote after `label ` in the marks file, once it has. */
async function markedPid(marks: string, label: string): Promise<number> {
  return waitFor(`the task to write its ${label} pid`, async () => {
    const match = new RegExp(`^${label} (\\d+)$`, "m").exec(existsSync(marks) ? await readFile(marks, "utf8") : "");
    return match ? Number(match[1]) : null;
  });
}


function processGroupOf(pid: number): number {
  return Number(execFileSync("ps", ["-o", "pgid=", "-p", String(pid)], { encoding: "utf8" }).trim());
}

describe("task processes run in a process group of their own", () => {
  let h: Harness;
  let dir: string;
  const leftovers: number[] = [];

  beforeAll(async () => {
    h = await new Harness({ killGraceMs: 200 }).start({ "pg.ts": DAGS });
    await h.run();
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-pg-"));
  });

  afterAll(async () => {
    for (const pid of leftovers) if (running(pid)) process.kill(pid, "SIGKILL");
    await h.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("kills the processes a timed-out task started along with the task's own", async () => {
    const marks = path.join(dir, "spawner.txt");
    const runId = await h.trigger("pg_spawner", { conf: { marks } });
    const sleeper = await markedPid(marks, "sleeper");
    leftovers.push(sleeper);
    expect(await h.runEnded("pg_spawner", runId)).toBe("failed");
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT error FROM task_instance WHERE dag_id = 'pg_spawner' AND run_id = ?", [runId]);
    expect(JSON.parse(String(rows[0]!.error)).code).toBe("BATON_TASK_TIMEOUT");
    // Was: the task's process was killed and `sleep 300` ran on, an orphan of init.
    await waitFor(`the task's child process ${sleeper} to be killed`, async () => !running(sleeper));
  });

  it("leaves a try to the worker when a signal meant for its whole process group reaches the task's process", async () => {
    const marks = path.join(dir, "signalled.txt");
    const runId = await h.trigger("pg_signalled", { conf: { marks } });
    const task = await markedPid(marks, "task");
    // Ctrl-C in a terminal signals the foreground group; the task's process is not in the worker's.
    expect(processGroupOf(task)).not.toBe(processGroupOf(process.pid));
    // systemd stops a unit by signalling every process in it, task processes included.
    process.kill(task, "SIGINT");
    process.kill(task, "SIGTERM");
    await appendFile(marks, "go\n");
    // Was: the try failed at once with BATON_WORKER_CHILD_EXITED (signal SIGINT).
    expect(await h.runEnded("pg_signalled", runId)).toBe("success");
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT try_number FROM task_instance WHERE dag_id = 'pg_signalled' AND run_id = ?", [runId]);
    expect(Number(rows[0]!.try_number)).toBe(1);
  });
});
