// `baton dags …` and `baton runs …` end to end: real processes talking to the API in-process on
// a fresh database, in table and JSON output. Each invocation is a process start, so they are few
// and the independent ones run side by side.
import { spawn } from "node:child_process";
import type { RowDataPacket } from "../../store/db.ts";
import { cancelRun } from "../../store/transitions/cancelRun.ts";
import { beatProcess } from "../../store/transitions/heartbeat.ts";
import { markRunSuccess } from "../../store/transitions/markRunSuccess.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { BIN, ROOT, heldApi } from "../helpers/cli.ts";
import { waitFor } from "../helpers/db.ts";


const DAGS = dagSource(`
export const a = dag({ id: "cli_dags_a", tags: ["etl"], description: "the A pipeline" }, (t) => {
  const extract = t.task("extract", async () => 1);
  t.task("load", { upstream: [extract], retries: 3 }, async () => 2);
});
export const b = dag({ id: "cli_dags_b", tags: ["ops"] }, (t) => { t.task("x", async () => 1); });
export const doomed = dag({ id: "cli_dags_doomed" }, (t) => { t.task("x", async () => 1); });
`);

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/baton.js ...args` with only the given BATON_* variables; kills it after the deadline. */
function baton(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BATON_") && k !== "NODE_OPTIONS") clean[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`baton ${args.join(" ")} did not exit within ${timeoutMs} ms\n${out.stdout}\n${out.stderr}`));
    }, timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out });
    });
  });
}

describe("baton dags / runs", () => {
  const h = new Harness({ worker: false });
  let env: Record<string, string>;
  const count = async (sql: string, params: unknown[]) => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>(sql, params);
    return Number(row!.n);
  };

  beforeAll(async () => {
    await h.start({ "cli.ts": DAGS });
    // Parsed, but no scheduler or worker: runs stay queued, so what the commands print is fixed.
    await h.processor.scan();
    env = { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder, BATON_CACHE_FOLDER: h.cacheFolder, BATON_LOG_LEVEL: "warn" };
  }, 60_000);
  afterAll(() => h.stop());

  it("lists and shows DAGs as tables and as JSON; an unknown DAG is one line with its code", async () => {
    const [table, json, show, unknown] = await Promise.all([
      baton(["dags", "list"], env),
      baton(["dags", "list", "--json", "--tags", "etl,nope"], env),
      baton(["dags", "show", "cli_dags_a"], env),
      baton(["dags", "show", "cli_nope"], env),
    ]);
    expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^dag_id\s+paused\s+schedule\s+next_dagrun\s+tags\s+fileloc$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["cli_dags_a", "cli_dags_b", "cli_dags_doomed"]);
    expect(lines[1]).toMatch(/^cli_dags_a\s+no\s+etl\s+/);

    expect(json.code).toBe(0);
    const dags = JSON.parse(json.stdout) as { dag_id: string; is_paused: boolean; tags: { name: string }[] }[];
    expect(dags.map((d) => [d.dag_id, d.is_paused, d.tags])).toEqual([["cli_dags_a", false, [{ name: "etl" }]]]);

    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^dag_id\s+cli_dags_a$/m);
    expect(show.stdout).toMatch(/^description\s+the A pipeline$/m);
    expect(show.stdout).toMatch(/^task_id\s+operator_name\s+trigger_rule\s+retries\s+pool\s+priority_weight\s+downstream$/m);
    expect(show.stdout).toMatch(/^extract\s+task\s+all_success\s+0\s+default_pool\s+\d+\s+load$/m);
    expect(show.stdout).toMatch(/^load\s+task\s+all_success\s+3\s+default_pool\s+\d+$/m);

    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^baton: BATON_DAG_NOT_FOUND: .*cli_nope/)]);
  }, 120_000);

  it("pauses, triggers, lists, shows and cancels runs; deletes a DAG only with --yes", async () => {
    const runsChain = async () => {
      const pause = await baton(["dags", "pause", "cli_dags_a"], env);
      expect({ code: pause.code, stdout: pause.stdout }).toEqual({ code: 0, stdout: "paused DAG cli_dags_a\n" });
      expect(await count("SELECT is_paused AS n FROM dag WHERE dag_id = 'cli_dags_a'", [])).toBe(1);

      const trigger = await baton(
        ["-o", "json", "dags", "trigger", "cli_dags_a", "--run-id", "r1", "--conf", '{"rows": 3}', "--logical-date", "2026-01-02T00:00:00+01:00"],
        env,
      );
      expect(trigger.code).toBe(0);
      expect(JSON.parse(trigger.stdout)).toMatchObject({ dag_id: "cli_dags_a", dag_run_id: "r1", state: "queued", conf: { rows: 3 }, logical_date: "2026-01-01T23:00:00.000Z" });

      const [list, badTrigger] = await Promise.all([
        baton(["runs", "list", "cli_dags_a"], env),
        baton(["dags", "trigger", "cli_dags_a", "--logical-date", "someday"], env),
      ]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^dag_run_id\s+state\s+run_type\s+logical_date\s+start_date\s+end_date$/m);
      expect(list.stdout).toMatch(/^r1\s+queued\s+manual\s+2026-01-01T23:00:00.000Z$/m);
      expect(badTrigger.code).toBe(1);
      expect(badTrigger.stderr).toMatch(/BATON_INVALID_DATE: --logical-date "someday"/);

      const cancel = await baton(["runs", "cancel", "cli_dags_a", "r1"], env);
      expect({ code: cancel.code, stdout: cancel.stdout }).toEqual({ code: 0, stdout: "cancelled run r1 of cli_dags_a: failed\n" });
      const show = await baton(["-o", "json", "runs", "show", "cli_dags_a", "r1"], env);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({ dag_run_id: "r1", state: "failed", task_instances: [] });
    };
    const deleteChain = async () => {
      await h.app.inject({ method: "POST", url: "/api/v1/dags/cli_dags_doomed/dagRuns", payload: { dag_run_id: "d1" } });
      const refused = await baton(["dags", "delete", "cli_dags_doomed"], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("pass --yes");
      expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'cli_dags_doomed'", [])).toBe(1);
      const deleted = await baton(["dags", "delete", "cli_dags_doomed", "--yes"], env);
      expect({ code: deleted.code, stdout: deleted.stdout, stderr: deleted.stderr }).toEqual({ code: 0, stdout: "deleted DAG cli_dags_doomed\n", stderr: "" });
      expect(await count("SELECT COUNT(*) AS n FROM dag WHERE dag_id = 'cli_dags_doomed'", [])).toBe(0);
      expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'cli_dags_doomed'", [])).toBe(0);
    };
    await Promise.all([runsChain(), deleteChain()]);
    expect(await count("SELECT COUNT(*) AS n FROM dag WHERE dag_id IN ('cli_dags_a', 'cli_dags_b')", [])).toBe(2);
  }, 180_000);

  it("pause-all / unpause-all by pattern print what changed; runs state and runs delete (only with --yes)", async () => {
    // After the test above: cli_dags_a is paused, cli_dags_b is not, cli_dags_doomed is gone.
    const [pauseAll, r2] = await Promise.all([
      baton(["dags", "pause-all", "CLI_DAGS_"], env),
      h.app.inject({ method: "POST", url: "/api/v1/dags/cli_dags_b/dagRuns", payload: { dag_run_id: "r2" } }),
    ]);
    expect(r2.statusCode).toBe(200);
    expect({ code: pauseAll.code, stderr: pauseAll.stderr }).toEqual({ code: 0, stderr: "" });
    const lines = pauseAll.stdout.trim().split("\n");
    expect(lines[0]).toBe('paused 1 DAG(s) matching "CLI_DAGS_" (1 already paused)');
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([["cli_dags_b", "yes"]]);
    expect(await count("SELECT SUM(is_paused) AS n FROM dag WHERE dag_id LIKE 'cli_dags_%'", [])).toBe(2);

    const [unpauseAll, marked, badState, refused] = await Promise.all([
      baton(["-o", "json", "dags", "unpause-all", "~"], env),
      baton(["runs", "state", "cli_dags_b", "r2", "success"], env),
      baton(["runs", "state", "cli_dags_b", "r2", "running"], env),
      baton(["runs", "delete", "cli_dags_b", "r1"], env),
    ]);
    expect(unpauseAll.code).toBe(0);
    expect((JSON.parse(unpauseAll.stdout) as { dag_id: string; is_paused: boolean }[]).map((d) => [d.dag_id, d.is_paused])).toEqual([
      ["cli_dags_a", false],
      ["cli_dags_b", false],
    ]);
    expect(await count("SELECT SUM(is_paused) AS n FROM dag WHERE dag_id LIKE 'cli_dags_%'", [])).toBe(0);
    // The API's POST wakes the harness's scheduler once, which may have started r2.
    expect({ code: marked.code, stdout: marked.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/^marked run r2 of cli_dags_b: (queued|running) → success\n$/) });
    expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE run_id = 'r2' AND state = 'success'", [])).toBe(1);
    expect(badState.code).toBe(1);
    expect(badState.stderr.trim()).toBe('baton: BATON_VALIDATION_FAILED: new_state must be one of success, failed, queued, not "running"');
    // r1 does not belong to cli_dags_b: not found, before any question.
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("BATON_DAG_RUN_NOT_FOUND");

    const [notAsked, deleted] = await Promise.all([baton(["runs", "delete", "cli_dags_a", "r1"], env), baton(["-o", "json", "runs", "delete", "cli_dags_b", "r2", "--yes"], env)]);
    expect(notAsked.code).toBe(1);
    expect(notAsked.stderr).toContain("pass --yes");
    expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'cli_dags_a' AND run_id = 'r1'", [])).toBe(1);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ dag_id: "cli_dags_b", dag_run_id: "r2", deleted: true });
    expect(await count("SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = 'cli_dags_b'", [])).toBe(0);
  }, 120_000);

  it("runs state prints the states its own PATCH found and left, not a read before it or after it", async () => {
    const runState = async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE dag_id = 'cli_dags_b' AND run_id = 'r3'");
      return row!.state as string;
    };
    const r3 = await h.app.inject({ method: "POST", url: "/api/v1/dags/cli_dags_b/dagRuns", payload: { dag_run_id: "r3" } });
    expect(r3.statusCode).toBe(200);
    // No worker: once started, r3 stays running with x queued.
    await waitFor("r3 running", async () => (await h.scheduler.tick(), (await runState()) === "running"));

    // Another actor cancels r3 between anything the CLI could read first and its PATCH: the mark
    // found it failed (a read before it said running).
    const cancelling = await heldApi(h.app, { before: (req) => (req.method === "PATCH" ? cancelRun(h.db, new Date(), "cli_dags_b", "r3") : undefined) });
    const marked = await baton(["runs", "state", "cli_dags_b", "r3", "success"], { ...env, BATON_API_URL: cancelling.url }).finally(cancelling.close);
    expect({ code: marked.code, stdout: marked.stdout, stderr: marked.stderr }).toEqual({ code: 0, stdout: "marked run r3 of cli_dags_b: failed → success\n", stderr: "" });

    // Re-queued, the run is running as the PATCH left it, though it finished (as a fast run would)
    // before the CLI got the answer; under --output json the answer, previous_state with it.
    const finishing = await heldApi(h.app, { hold: (req) => (req.method === "PATCH" ? markRunSuccess(h.db, new Date(), "cli_dags_b", "r3") : undefined) });
    const requeued = await baton(["-o", "json", "runs", "state", "cli_dags_b", "r3", "queued"], { ...env, BATON_API_URL: finishing.url }).finally(finishing.close);
    expect({ code: requeued.code, stderr: requeued.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(requeued.stdout)).toMatchObject({ dag_id: "cli_dags_b", dag_run_id: "r3", previous_state: "success", state: "running", end_date: null });
    expect(await runState()).toBe("success");
    const again = await baton(["runs", "state", "cli_dags_b", "r3", "queued"], env);
    expect({ code: again.code, stdout: again.stdout, stderr: again.stderr }).toEqual({ code: 0, stdout: "marked run r3 of cli_dags_b: success → running\n", stderr: "" });
  }, 120_000);

  it("runs note sets and removes a run's note; workers lists the workers that beat", async () => {
    await beatProcess(h.db, new Date(), {
      id: "w_cli_0001",
      kind: "worker",
      startedAt: new Date(),
      info: { queues: ["default", "gpu"], concurrency: 4, running: 1, hostname: "host-a" },
    });
    const [noted, neither, workers] = await Promise.all([
      baton(["runs", "note", "cli_dags_a", "r1", "late upstream data"], env),
      baton(["runs", "note", "cli_dags_a", "r1"], env),
      baton(["workers"], env),
    ]);
    expect({ code: noted.code, stdout: noted.stdout }).toEqual({ code: 0, stdout: "noted run r1 of cli_dags_a: late upstream data\n" });
    const note = async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT note FROM dag_run WHERE dag_id = 'cli_dags_a' AND run_id = 'r1'");
      return row!.note as string | null;
    };
    expect(await note()).toBe("late upstream data");
    expect(neither.code).toBe(1);
    expect(neither.stderr.trim()).toBe("baton: BATON_VALIDATION_FAILED: give the note, or --clear to remove it (not both)");
    expect(workers.code).toBe(0);
    const [header, ...rows] = workers.stdout.trim().split("\n");
    expect(header!.split(/\s+/)).toEqual(["worker_id", "hostname", "pid", "queues", "concurrency", "running", "last_heartbeat", "alive"]);
    expect(rows.map((r) => r.split(/\s+/)).find((r) => r[0] === "w_cli_0001")).toEqual(["w_cli_0001", expect.any(String), String(process.pid), "default,gpu", "4", "1", expect.any(String), "true"]);

    const cleared = await baton(["-o", "json", "runs", "note", "cli_dags_a", "r1", "--clear"], env);
    expect(cleared.code).toBe(0);
    expect(JSON.parse(cleared.stdout)).toMatchObject({ dag_id: "cli_dags_a", dag_run_id: "r1", note: null });
    expect(await note()).toBeNull();
  }, 120_000);
});
