// `baton tasks list | show | logs | state` and `baton backfill` as a user runs them: a real process
// on the test database (the in-process API) or at --api-url, against runs executed by the
// harness's scheduler and worker.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Harness, dagSource } from "../helpers/harness.ts";
import { heldApi } from "../helpers/cli.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

const spawned = new Set<ChildProcess>();

// Its own file: a test removes it (the DAG goes inactive) and writes it back. A run's task holds
// until the file its conf names exists.
const GONE = dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "cli_bf_gone", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("hold", async (ctx) => {
    while (!existsSync(String(ctx.conf.hold)) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 20));
    return 1;
  });
});
`);

describe("baton tasks", () => {
  const h = new Harness({ workers: 2, runIds: "numbered" });
  let scratch = "";
  let goFile = "";
  let holdFile = "";

  /** `baton …args` on the test database, or with `remote` only those variables (e.g. BATON_API_URL). */
  function baton(args: string[], remote?: Record<string, string>) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") env[k] = v;
    Object.assign(env, remote ?? { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder });
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


  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-cli-tasks-"));
    goFile = path.join(scratch, "go");
    holdFile = path.join(scratch, "never");
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
export const daily = dag({ id: "cli_bf", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("work", async (ctx) => ctx.logicalDate.toISOString());
});
export const held = dag({ id: "cli_bf_held", schedule: "@daily", startDate: "2026-01-01", isPausedUponCreation: true }, (t) => {
  t.task("hold", async (ctx) => {
    await new Promise((resolve, reject) => {
      const timer = setInterval(() => { if (existsSync(${JSON.stringify(holdFile)})) { clearInterval(timer); resolve(undefined); } }, 20);
      ctx.signal.addEventListener("abort", () => { clearInterval(timer); reject(new Error("aborted")); });
    });
  });
});
`),
    });
    await h.writeDag("gone.ts", GONE);
    await h.run();
  });
  afterAll(async () => {
    for (const child of spawned) child.kill("SIGKILL");
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("logs --follow waits for the try, prints as the task writes and exits when it ends; list shows the run", async () => {
    const runId = await h.trigger("cli_tasks");
    const follow = baton(["tasks", "logs", "cli_tasks", runId, "waiter", "--follow"]);
    await waitFor("the follower to print the task's first line", async () => follow.out.stdout.includes("waiting for the go file"), 25_000);
    expect(follow.out.stdout).not.toContain("got the go file");
    await writeFile(goFile, "go");
    const done = await follow.exited;
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: "" });
    expect(done.stdout).toMatch(/waiting for the go file[\s\S]*got the go file, done/);
    expect(await h.runEnded("cli_tasks", runId)).toBe("success");

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
    const runId = await h.trigger("cli_fail");
    expect(await h.runEnded("cli_fail", runId)).toBe("failed");

    const bad = await baton(["tasks", "state", "cli_fail", runId, "boom", "running"]).exited;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("BATON_VALIDATION_FAILED");
    expect(bad.stderr).not.toContain("    at ");

    // The run printed is the one the mark left (running: after is queued), even when `after` has
    // already finished it by the time the CLI gets the answer.
    const api = await heldApi(h.app, { hold: (req) => (req.method === "PATCH" ? h.runEnded("cli_fail", runId) : undefined) });
    const marked = await baton(["tasks", "state", "cli_fail", runId, "boom", "success"], { BATON_API_URL: api.url }).exited.finally(api.close);
    // The run had finished before the CLI got its answer (close() rejected if the wait did not end so).
    expect(api.outcomes.map((o) => [o.method, o.value])).toEqual([["PATCH", "success"]]);
    expect({ code: marked.code, stderr: marked.stderr }).toEqual({ code: 0, stderr: "" });
    expect(marked.stdout).toBe("marked boom of cli_fail/" + runId + ": failed → success; the run is running\n");
    expect(await h.runEnded("cli_fail", runId)).toBe("success");
    // Marked again: nothing changes; --output json prints the PATCH's answer.
    const [again, json] = await Promise.all([
      baton(["tasks", "state", "cli_fail", runId, "boom", "success"]).exited,
      baton(["-o", "json", "tasks", "state", "cli_fail", runId, "boom", "success"]).exited,
    ]);
    expect({ code: again.code, stdout: again.stdout, stderr: again.stderr }).toEqual({ code: 0, stdout: `boom of cli_fail/${runId} is already success; the run is success\n`, stderr: "" });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      task_id: "boom",
      dag_id: "cli_fail",
      dag_run_id: runId,
      execution_date: expect.any(String),
      state: "success",
      new_state: "success",
      dag_run_state: "success",
    });
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]);
    expect(rows.map((r) => [r.task_id, r.state])).toEqual([
      ["after", "success"],
      ["boom", "success"],
    ]);
  });

  it("show prints one task instance; state --downstream marks its relatives through updateTaskInstancesState, --dry-run only lists them", async () => {
    const runId = await h.trigger("cli_fail");
    expect(await h.runEnded("cli_fail", runId)).toBe("failed");

    const [show, dry] = await Promise.all([
      baton(["-o", "json", "tasks", "show", "cli_fail", runId, "boom"]).exited,
      baton(["tasks", "state", "cli_fail", runId, "boom", "skipped", "--downstream", "--dry-run"]).exited,
    ]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ dag_id: "cli_fail", dag_run_id: runId, task_id: "boom", state: "failed", try_number: 1 });
    expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: "" });
    expect(dry.stdout).toContain("would mark 2 task instance(s) of cli_fail skipped (dry run, nothing changed):");
    expect(dry.stdout).toMatch(new RegExp(`^${runId}\\s+after\\b`, "m"));
    expect(dry.stdout).toMatch(new RegExp(`^${runId}\\s+boom\\b`, "m"));
    const states = async () =>
      (await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state FROM task_instance WHERE run_id = ? ORDER BY task_id", [runId]))[0].map((r) => [r.task_id, r.state]);
    expect(await states()).toEqual([
      ["after", "upstream_failed"],
      ["boom", "failed"],
    ]);

    const marked = await baton(["-o", "json", "tasks", "state", "cli_fail", runId, "boom", "skipped", "--downstream"]).exited;
    expect(marked.code).toBe(0);
    const answer = JSON.parse(marked.stdout) as { task_instances: { task_id: string; dag_run_id: string }[] };
    expect(answer.task_instances.map((t) => [t.task_id, t.dag_run_id]).sort()).toEqual([
      ["after", runId],
      ["boom", runId],
    ]);
    expect(await states()).toEqual([
      ["after", "skipped"],
      ["boom", "skipped"],
    ]);
  });

  it("backfill at --api-url (no database): dry run, create and follow to the end, status; pause and cancel --force a live one", async () => {
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    // A database URL that cannot work: everything must go through the API.
    const remote = { BATON_API_URL: `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`, BATON_DATABASE_URL: "mysql://root@127.0.0.1:1/nowhere" };
    const range = ["--from", "2026-01-01", "--to", "2026-01-03"];
    const [dry, badId] = await Promise.all([
      baton(["-o", "json", "backfill", "create", "cli_bf", ...range, "--dry-run"], remote).exited,
      baton(["backfill", "pause", "999999"], remote).exited,
    ]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, total_dates: 3, dates: [{ action: "create" }, { action: "create" }, { action: "create" }] });
    expect(badId.code).toBe(1);
    expect(badId.stderr.trim()).toBe("baton: BATON_BACKFILL_NOT_FOUND: backfill 999999 not found");

    const followed = await baton(["backfill", "create", "cli_bf", ...range, "--max-active-runs", "2"], remote).exited;
    expect(followed.code).toBe(0);
    const id = Number(/^backfill (\d+) of cli_bf: 3 date\(s\) \(reprocess none, at most 2 active, oldest first\)$/m.exec(followed.stdout)?.[1]);
    expect(id).toBeGreaterThan(0);
    expect(followed.stdout).toContain(`backfill ${id} completed: 3 date(s): 3 succeeded, 0 failed, 0 active, 0 pending, skipped 0`);
    const status = await baton(["backfill", "status", String(id), "--json"], remote).exited;
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, dag_id: "cli_bf", state: "completed", done: 3, counts: { success: 3, failed: 0, pending: 0 } });

    const detached = await baton(["backfill", "create", "cli_bf_held", "--from", "2026-01-01", "--to", "2026-01-03", "--max-active-runs", "2", "--detach"], remote).exited;
    expect(detached.code).toBe(0);
    const held = Number(/backfill (\d+) of cli_bf_held/.exec(detached.stdout)?.[1]);
    expect(detached.stdout).toContain(`detached: follow it with \`baton backfill status ${held}\``);
    // Both runs active: one task running, the other's queued (a worker keeps a slot from backfills).
    await waitFor("a held backfill task to run, in one of two running runs", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>(
        `SELECT SUM(t.state = 'running') AS tasks, COUNT(DISTINCT IF(r.state = 'running', r.id, NULL)) AS runs
           FROM task_instance t JOIN dag_run r ON r.id = t.dag_run_id WHERE r.backfill_id = ?`,
        [held],
      );
      return Number(row!.tasks) === 1 && Number(row!.runs) === 2;
    }, 20_000);
    const paused = await baton(["-o", "json", "backfill", "pause", String(held)], remote).exited;
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({ id: held, state: "paused", is_paused: true, counts: { running: 2, pending: 1 } });
    // Right before the cancel, a user cancels one of the two runs: the CLI prints the one run the
    // cancel itself failed, not every run that failed since it looked.
    const [[first]] = await h.db.pool.query<RowDataPacket[]>("SELECT run_id FROM dag_run WHERE backfill_id = ? ORDER BY id LIMIT 1", [held]);
    const api = await heldApi(h.app, {
      before: async (req) => {
        if (req.method !== "POST" || !req.url.endsWith("/cancel")) return;
        const res = await h.app.inject({ method: "PATCH", url: `/api/v1/dags/cli_bf_held/dagRuns/${encodeURIComponent(first!.run_id)}`, payload: { state: "failed" } });
        expect(res.statusCode).toBe(200);
        return JSON.parse(res.body).state;
      },
    });
    const cancelled = await baton(["backfill", "cancel", String(held), "--force"], { ...remote, BATON_API_URL: api.url }).exited.finally(api.close);
    // The user's cancel came first (close() rejected if it failed).
    expect(api.outcomes.filter((o) => o.method === "POST").map((o) => o.value)).toEqual(["failed"]);
    expect({ code: cancelled.code, stdout: cancelled.stdout }).toEqual({ code: 0, stdout: `backfill ${held}: cancelled (1 active run(s) failed)\n` });
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM backfill WHERE id = ?", [held]);
    expect(row!.state).toBe("cancelled");
  }, 90_000);

  // The bar stalled silently while the backfill waited for its inactive DAG (GET /backfills/{id}
  // says why: waiting_message); `baton backfill status` said it, `create` did not.
  it("backfill create says once when its backfill waits for its inactive DAG, and once when it goes on; nothing extra under -o json", async () => {
    const follow = async (output: string[], from: string, to: string) => {
      const hold = path.join(scratch, `gone-hold-${from}`);
      let polls = 0;
      // One step per poll of GET /backfills/{id}, before the API answers it: the DAG goes inactive
      // for three polls, comes back, then its held task ends.
      const api = await heldApi(h.app, {
        before: async (req) => {
          if (req.method !== "GET" || !/\/backfills\/\d+$/.test(req.url)) return;
          polls++;
          if (polls === 2) {
            await rm(path.join(h.dagsFolder, "gone.ts"));
            await h.processor.scan();
            return "inactive";
          }
          if (polls === 5) {
            await h.writeDag("gone.ts", GONE);
            await h.processor.scan();
            return "active";
          }
          if (polls === 6) {
            await writeFile(hold, "go");
            return "released";
          }
        },
      });
      const remote = { BATON_API_URL: api.url, BATON_DATABASE_URL: "mysql://root@127.0.0.1:1/nowhere" };
      const args = [...output, "backfill", "create", "cli_bf_gone", "--from", from, "--to", to, "--max-active-runs", "1", "--conf", JSON.stringify({ hold })];
      const done = await baton(args, remote).exited.finally(api.close);
      expect(api.outcomes.map((o) => o.value).filter(Boolean)).toEqual(["inactive", "active", "released"]);
      return done;
    };

    const table = await follow([], "2026-01-01", "2026-01-02");
    expect(table.code).toBe(0);
    const id = Number(/^backfill (\d+) of cli_bf_gone: 2 date\(s\)/m.exec(table.stdout)?.[1]);
    expect(table.stdout).toContain(`backfill ${id} completed: 2 date(s): 2 succeeded`);
    const waits =
      `backfill ${id} waits: DAG "cli_bf_gone" is inactive (its file was removed or no longer defines it): ` +
      "the backfill creates and starts no run until a file defines the DAG again (running runs go on); cancel it to give up";
    const goesOn = `backfill ${id} goes on: DAG "cli_bf_gone" is active again`;
    const said = table.stderr.split("\n").filter((l) => l.startsWith(`backfill ${id} waits`) || l.startsWith(`backfill ${id} goes on`));
    expect(said).toEqual([waits, goesOn]);
    expect(table.stdout).not.toContain("inactive");

    const json = await follow(["-o", "json"], "2026-01-03", "2026-01-04");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ dag_id: "cli_bf_gone", state: "completed", done: 2, waiting_reason: null });
    expect(json.stderr).not.toMatch(/waits|goes on/);
  }, 90_000);
});
