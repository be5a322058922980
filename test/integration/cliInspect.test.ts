// The CLI's read commands for what an operator inspects on a run beyond its task states: the
// signals it received (`runs signals`, and `runs show`), why a task waits (`tasks deps`), a task's
// durable steps (`tasks steps`), a sensor's pokes (`tasks reschedules`), a DAG's versions
// (`dags versions`), and what `dead-letters redrive --ids` says of an id that is no dead letter.
// Real processes on the test database (the in-process API), against runs the harness executes.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import { runBaton, type CliResult } from "../helpers/cli.ts";
import { waitFor } from "../helpers/db.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { existsSync } from "node:fs";
export default dag({ id: "cli_inspect" }, (t) => {
  t.task("stepped", async (ctx) => {
    const quote = await ctx.step("quote", () => ({ amount: 42 }));
    await ctx.step("big", () => "x".repeat(70 * 1024));
    return quote.amount;
  });
  const poked = t.sensor("poked", { poke: (ctx) => existsSync(String(ctx.conf.go)), pokeInterval: 50, mode: "reschedule", timeout: "1h" });
  t.waitForSignal("wait_signed", { signal: "signed", timeout: "5d" });
  // Never reached while the sensor pokes: a "later" signal is kept, delivered to no task.
  t.waitForSignal("wait_later", { signal: "later", upstream: [poked] });
});
`);

describe("baton runs signals / tasks deps|steps|reschedules / dags versions", () => {
  const h = new Harness({ workers: 2 });
  let env: Record<string, string>;
  let scratch = "";
  const runId = "inspect_1";
  const baton = (...args: string[]) => runBaton(args, env, 60_000);
  const ok = (r: CliResult) => expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  const lines = (r: CliResult) => r.stdout.trimEnd().split("\n");
  const tiState = async (taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'cli_inspect' AND run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | null | undefined;
  };
  const pokes = async () => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_reschedule tr JOIN task_instance ti ON ti.id = tr.task_instance_id WHERE ti.run_id = ? AND ti.task_id = 'poked'", [runId]);
    return Number(row!.n);
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "baton-cli-inspect-"));
    await h.start({ "inspect.ts": DAGS });
    await h.run();
    env = { BATON_DATABASE_URL: h.db.url, BATON_LOGS_FOLDER: h.logsFolder, BATON_LOG_LEVEL: "warn" };
    await h.trigger("cli_inspect", { runId, conf: { go: path.join(scratch, "go") } });
    await waitFor(
      "stepped to succeed, the sensor to poke twice and the signal wait to defer",
      async () => (await tiState("stepped")) === "success" && (await pokes()) >= 2 && (await tiState("wait_signed")) === "deferred",
      25_000,
    );
  }, 60_000);
  afterAll(async () => {
    await h.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("tasks deps says why a waiting task is not running, and that nothing holds a finished one", async () => {
    const [waiting, done, json] = await Promise.all([
      baton("tasks", "deps", "cli_inspect", runId, "wait_signed"),
      baton("tasks", "failed-deps", "cli_inspect", runId, "stepped"),
      baton("--output", "json", "tasks", "deps", "cli_inspect", runId, "wait_signed"),
    ]);
    ok(waiting);
    expect(lines(waiting)[0]).toMatch(/^name\s+reason$/);
    expect(lines(waiting).slice(1)).toEqual([expect.stringMatching(/^signal\s+.*"signed"/)]);
    ok(done);
    expect(done.stdout).toBe(`no unmet dependency known for stepped of cli_inspect/${runId}\n`);
    ok(json);
    expect(JSON.parse(json.stdout)).toEqual([{ name: "signal", reason: expect.stringContaining('"signed"') }]);
  });

  it("tasks steps lists the recorded steps in order, a result too big for the list said so", async () => {
    const [table, json] = await Promise.all([baton("tasks", "steps", "cli_inspect", runId, "stepped"), baton("-o", "json", "tasks", "steps", "cli_inspect", runId, "stepped")]);
    ok(table);
    expect(lines(table)[0]).toMatch(/^name\s+try_number\s+recorded_at\s+result_bytes\s+result$/);
    expect(lines(table).slice(1)).toEqual([
      expect.stringMatching(/^quote\s+1\s+\S+\s+13\s+\{"amount":42\}$/),
      expect.stringMatching(new RegExp(`^big\\s+1\\s+\\S+\\s+${70 * 1024 + 2}\\s+\\(left out: ${70 * 1024 + 2} bytes\\)$`)),
    ]);
    ok(json);
    expect(JSON.parse(json.stdout).map((s: { name: string; result: unknown; result_omitted: boolean }) => [s.name, s.result, s.result_omitted])).toEqual([
      ["quote", { amount: 42 }, false],
      ["big", null, true],
    ]);
  });

  it("tasks reschedules lists a sensor's pokes that did not succeed", async () => {
    const r = await baton("tasks", "reschedules", "cli_inspect", runId, "poked");
    ok(r);
    expect(lines(r)[0]).toMatch(/^try_number\s+start_date\s+end_date\s+reschedule_date$/);
    expect(lines(r).length - 1).toBeGreaterThanOrEqual(2);
    for (const row of lines(r).slice(1)) expect(row).toMatch(/^1\s+\d{4}-\S+Z\s+\d{4}-\S+Z\s+\d{4}-\S+Z$/);
    const unknown = await baton("tasks", "reschedules", "cli_inspect", runId, "nope");
    expect({ code: unknown.code, stderr: unknown.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^baton: BATON_TASK_NOT_FOUND: .*\n$/) });
  });

  it("runs signals lists what the run received and whom it was delivered to; runs show has them too", async () => {
    const before = await baton("runs", "show", "cli_inspect", runId);
    ok(before);
    expect(before.stdout).not.toContain("signals:");

    ok(await baton("signal", "cli_inspect", runId, "signed", "--payload", '{"by": "ana"}', "--signal-id", "s-1"));
    await waitFor("the signal wait to end", async () => (await tiState("wait_signed")) === "success", 20_000);
    ok(await baton("signal", "cli_inspect", runId, "later"));

    const [table, named, json, show, showJson, unknownRun] = await Promise.all([
      baton("runs", "signals", "cli_inspect", runId),
      baton("runs", "signals", "cli_inspect", runId, "--name", "later"),
      baton("--output", "json", "runs", "signals", "cli_inspect", runId),
      baton("runs", "show", "cli_inspect", runId),
      baton("-o", "json", "runs", "show", "cli_inspect", runId),
      baton("runs", "signals", "cli_inspect", "no_such_run"),
    ]);
    ok(table);
    expect(lines(table)[0]).toMatch(/^name\s+signal_id\s+received_at\s+delivered_to\s+delivered_at\s+payload$/);
    expect(lines(table).slice(1)).toEqual([
      expect.stringMatching(/^signed\s+s-1\s+\S+Z\s+wait_signed\s+\S+Z\s+\{"by":"ana"\}$/),
      expect.stringMatching(/^later\s+\S+Z$/),
    ]);
    ok(named);
    expect(lines(named).slice(1)).toEqual([expect.stringMatching(/^later\s/)]);
    ok(json);
    expect(JSON.parse(json.stdout)).toEqual([
      { dag_id: "cli_inspect", dag_run_id: runId, name: "signed", signal_id: "s-1", payload: { by: "ana" }, received_at: expect.any(String), delivered_to: "wait_signed", delivered_at: expect.any(String) },
      { dag_id: "cli_inspect", dag_run_id: runId, name: "later", signal_id: null, payload: null, received_at: expect.any(String), delivered_to: null, delivered_at: null },
    ]);
    ok(show);
    const shown = show.stdout.split("\nsignals:\n");
    expect(shown).toHaveLength(2);
    expect(shown[1]!.trimEnd().split("\n").slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["signed", "later"]);
    ok(showJson);
    expect(JSON.parse(showJson.stdout).signals.map((s: { name: string }) => s.name)).toEqual(["signed", "later"]);
    expect({ code: unknownRun.code, stderr: unknownRun.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^baton: BATON_DAG_RUN_NOT_FOUND: .*no_such_run.*\n$/) });
  });

  it("dags versions lists the stored versions and shows one with its structure", async () => {
    const list = await baton("-o", "json", "dags", "versions", "cli_inspect");
    ok(list);
    const versions = JSON.parse(list.stdout) as { dag_version: string; is_latest: boolean }[];
    expect(versions).toEqual([{ dag_version: expect.stringMatching(/^[0-9a-f]{64}$/), created_at: expect.any(String), code_hash: expect.any(String), is_latest: true }]);
    const hash = versions[0]!.dag_version;
    const [table, one, missing] = await Promise.all([
      baton("dags", "versions", "cli_inspect"),
      baton("dags", "versions", "cli_inspect", hash),
      baton("dags", "versions", "cli_inspect", "0".repeat(64)),
    ]);
    ok(table);
    expect(lines(table)[0]).toMatch(/^dag_version\s+created_at\s+is_latest\s+code_hash$/);
    // The whole version, as the command that takes one needs it: a table cut at 60 characters showed 60 of its 64.
    expect(lines(table).slice(1)).toEqual([expect.stringMatching(new RegExp(`^${hash}\\s+\\S+Z\\s+true\\s+`))]);
    ok(one);
    expect(one.stdout).toMatch(new RegExp(`^dag_version\\s+${hash}\\n`));
    const structure = JSON.parse(one.stdout.split("\nstructure:\n")[1]!) as Record<string, unknown>;
    expect(JSON.stringify(structure)).toContain("wait_signed");
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^baton: BATON_VERSION_NOT_FOUND: .*\n$/) });
  });

  it("dead-letters redrive --ids says why an id is no dead letter, and exits 1 naming the ids it did not re-drive", async () => {
    const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'cli_inspect' AND run_id = ? AND task_id = 'stepped'", [runId]);
    const id = Number(row!.id);
    const r = await baton("dead-letters", "redrive", "--ids", `${id},987654321`, "--dry-run");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: `baton: 2 of the 2 --ids would not be re-driven: ${id}, 987654321\n` });
    expect(lines(r)).toEqual([
      "would re-drive 0 task instance(s)",
      `not a dead letter: task instance ${id} ("stepped" of run "${runId}" of DAG "cli_inspect"): not_failed (its state is success)`,
      "not a dead letter: task instance 987654321: not_found (no task instance has this id)",
    ]);
    // The same under --output json: the API's answer on stdout, the exit code and line as above.
    const json = await baton("dead-letters", "redrive", "--ids", "987654321", "--output", "json");
    expect({ code: json.code, stderr: json.stderr }).toEqual({ code: 1, stderr: "baton: 1 of the 1 --ids were not re-driven: 987654321\n" });
    expect(JSON.parse(json.stdout)).toMatchObject({ redriven: 0, not_dead_letters: [{ task_instance_id: 987654321, reason: "not_found" }] });
  });
});
