// Where a try's log lives: short tries in task_log (stored with the outcome, no file), long or
// large ones in their file; the API serves the stored text followed by the file.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { dagLogFolder, runLogFolder, taskLogPath } from "../../core/logPaths.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const LOGS = dagSource(`
import { appendFileSync, readFileSync } from "node:fs";
export default dag({ id: "logs" }, (t) => {
  t.task("short", async (ctx) => { ctx.log.info("short and sweet"); console.log("from console"); return 1; });
  t.task("long", async (ctx) => {
    ctx.log.info("before the pause");
    await new Promise((r) => setTimeout(r, 1500));
    ctx.log.info("after the pause");
  });
  t.task("big", async () => { for (let i = 0; i < 2000; i++) console.log(String(i).padStart(6, "0") + " " + "x".repeat(60)); });
  t.task("crash", async (ctx) => { ctx.log.info("about to exit"); process.exit(3); });
  // Past a second its log is in its file: the lines it writes just before it exits must land there too.
  t.task("long_crash", async (ctx) => {
    ctx.log.info("before the pause");
    await new Promise((r) => setTimeout(r, 1200));
    for (let i = 0; i < 200; i++) console.log("last words " + i);
    process.exit(3);
  });
  // A check mark (e2 9c 93) split across two writes, as a piped subprocess may deliver it.
  t.task("split", async () => { process.stdout.write(Buffer.from([0x6f, 0x6b, 0x20, 0xe2, 0x9c])); process.stdout.write(Buffer.from([0x93, 0x0a])); });
});

export const clearme = dag({ id: "clearme" }, (t) => {
  t.task("busy", async (ctx) => {
    ctx.log.info("before the clear");
    const until = Date.now() + 20_000;
    while (!ctx.signal.aborted && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    ctx.log.info("after the abort: " + ctx.signal.aborted);
  });
});

export const poker = dag({ id: "poker" }, (t) => {
  t.sensor("third_time", {
    mode: "reschedule",
    pokeInterval: 50,
    timeout: "1m",
    poke: async (ctx) => {
      const n = ctx.conf.pokes ? (appendFileSync(String(ctx.conf.pokes), "x"), readFileSync(String(ctx.conf.pokes), "utf8").length) : 3;
      console.log("poke number " + n);
      return n >= 3;
    },
  });
});

// Never holds: it waits up_for_reschedule, its try number given back (0) until the next poke.
export const waiter = dag({ id: "waiter" }, (t) => {
  t.sensor("never", { mode: "reschedule", pokeInterval: "1h", timeout: "2h", poke: async () => { console.log("not yet"); return false; } });
});
`);

describe("task logs", () => {
  const h = new Harness({ heartbeatMs: 100 });
  let runId: string;
  const logFile = (taskId: string, tryNumber = 1) => taskLogPath(h.logsFolder, { dagId: "logs", runId, taskId, tryNumber });
  const stored = async (taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT l.content FROM task_log l JOIN task_instance ti ON ti.id = l.task_instance_id WHERE ti.run_id = ? AND ti.task_id = ?",
      [runId, taskId],
    );
    return rows[0]?.content as string | undefined;
  };
  const get = (url: string) => h.app.inject({ method: "GET", url, headers: { accept: "application/json" } });
  const logUrl = (taskId: string) => `/api/v1/dags/logs/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/logs/1`;

  beforeAll(async () => {
    await h.start({ "logs.ts": LOGS });
    await h.run();
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/logs/dagRuns", payload: {} });
    expect(res.statusCode).toBe(200);
    runId = res.json().dag_run_id;
    await waitFor("the run to end", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ?", [runId]);
      return row!.state !== "running" && row!.state !== "queued";
    }, 30_000);
  });
  afterAll(() => h.stop());

  it("stores a short try's log in MySQL with its outcome and creates no file", async () => {
    expect(await stored("short")).toMatch(/Starting try 1 of 1[^]*short and sweet[^]*from console[^]*Task succeeded/);
    expect(existsSync(logFile("short"))).toBe(false);
    const log = await h.taskLog("logs", runId, "short", 1);
    expect(log).toBe(await stored("short"));
  });

  it("answers 404 for the try after a task's last, even with a file there, unless the task is a sensor between pokes", async () => {
    // A stray file (e.g. left by a run deleted and created again under the same id on this host).
    mkdirSync(path.dirname(logFile("short", 2)), { recursive: true });
    writeFileSync(logFile("short", 2), "not this task's try\n");
    try {
      const res = await get(`/api/v1/dags/logs/dagRuns/${encodeURIComponent(runId)}/taskInstances/short/logs/2`);
      expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 404, code: "BATON_LOG_NOT_FOUND" });
    } finally {
      rmSync(logFile("short", 2), { force: true });
    }
  });

  it("writes a try that runs past a second to its file, complete once the try ended", async () => {
    expect(await stored("long")).toBeUndefined();
    expect(existsSync(logFile("long"))).toBe(true);
    expect(await h.taskLog("logs", runId, "long", 1)).toMatch(/before the pause[^]*after the pause[^]*Task succeeded/);
  });

  it("moves a large log to its file and pages through it with continuation tokens", async () => {
    expect(await stored("big")).toBeUndefined();
    const whole = (await h.taskLog("logs", runId, "big", 1))!;
    expect(whole).toContain("001999 ");
    let token: string | null = null;
    let paged = "";
    for (let pages = 0; pages < 10; pages++) {
      const res = await get(`${logUrl("big")}${token ? `?token=${token}` : ""}`);
      expect(res.statusCode).toBe(200);
      paged += res.json().content;
      token = res.json().continuation_token;
      if (!token) break;
    }
    expect(token).toBeNull();
    expect(paged).toBe(whole);
  });

  it("keeps the log of a task that ends its own process", async () => {
    const log = (await h.taskLog("logs", runId, "crash", 1))!;
    expect(log).toContain("about to exit");
    // The worker adds why the try ended: the task could not.
    expect(log).toMatch(/about to exit[^]*ERROR - the task's process died: .*\(BATON_WORKER_CHILD_EXITED\)\n$/);
  });

  it("keeps the last lines of a long try (its log in its file) that ends its own process", async () => {
    const log = (await h.taskLog("logs", runId, "long_crash", 1))!;
    // Was: the lines still queued for the file when the process exited were lost.
    expect(log).toMatch(/before the pause[^]*last words 0\n[^]*last words 199\n[^]*ERROR - the task's process died: .*\(BATON_WORKER_CHILD_EXITED\)\n$/);
  });

  it("serves the stored text, then the file, across chunk boundaries", async () => {
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE run_id = ? AND task_id = 'big'", [runId]);
    await h.db.pool.query("INSERT INTO task_log (task_instance_id, try_number, content, updated_at) VALUES (?, 1, ?, NOW(6))", [ti!.id, "HEAD ✓\n"]);
    const whole = await h.taskLog("logs", runId, "big", 1);
    expect(whole!.startsWith("HEAD ✓\n[")).toBe(true);
    expect(whole!.length).toBeGreaterThan(128 * 1024);
    let token: string | null = null;
    let paged = "";
    for (let pages = 0; pages < 10; pages++) {
      const res = await get(`${logUrl("big")}${token ? `?token=${token}` : ""}`);
      paged += res.json().content;
      token = res.json().continuation_token;
      if (!token) break;
    }
    expect(paged).toBe(whole);
    await h.db.pool.query("DELETE FROM task_log WHERE task_instance_id = ?", [ti!.id]);
  });

  it("an ended try's log: the stored text beside an empty file, the empty file alone, and 404 with neither", async () => {
    await mkdir(path.dirname(logFile("short", 1)), { recursive: true });
    await writeFile(logFile("short", 1), "");
    // A stored log and an empty file: the stored text alone.
    expect(await h.taskLog("logs", runId, "short", 1)).toBe(await stored("short"));
    const [[ti]] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE run_id = ? AND task_id = 'short'", [runId]);
    await h.db.pool.query("DELETE FROM task_log WHERE task_instance_id = ?", [ti!.id]);
    expect(await h.taskLog("logs", runId, "short", 1)).toBe("");
    await import("node:fs/promises").then((fs) => fs.rm(logFile("short", 1)));
    const res = await get(logUrl("short"));
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe("BATON_LOG_NOT_FOUND");
  });

  it("joins a multi-byte character split across two writes", async () => {
    expect(await h.taskLog("logs", runId, "split", 1)).toContain("ok ✓\n");
  });

  it("stores a rescheduled sensor's first poke and appends its later pokes to the file, in order", async () => {
    const pokes = path.join(h.logsFolder, "..", `pokes-${Date.now()}`);
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/poker/dagRuns", payload: { conf: { pokes } } });
    expect(res.statusCode).toBe(200);
    const pokerRun = res.json().dag_run_id as string;
    await waitFor("the sensor to succeed", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM dag_run WHERE run_id = ? AND dag_id = 'poker'", [pokerRun]);
      return row!.state === "success";
    }, 30_000);
    const log = (await h.taskLog("poker", pokerRun, "third_time", 1))!;
    const order = ["poke number 1", "poke number 2", "poke number 3"].map((line) => log.indexOf(line));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const [[stored]] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT l.content FROM task_log l JOIN task_instance ti ON ti.id = l.task_instance_id WHERE ti.run_id = ? AND ti.dag_id = 'poker'",
      [pokerRun],
    );
    expect(stored!.content).toContain("poke number 1");
    expect(stored!.content).not.toContain("poke number 2");
  });

  it("serves a rescheduled sensor's pokes while it waits, and once it is marked, under the try they ran as", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/waiter/dagRuns", payload: {} });
    const run = res.json().dag_run_id as string;
    const ti = `/api/v1/dags/waiter/dagRuns/${encodeURIComponent(run)}/taskInstances/never`;
    await waitFor("the sensor to wait for its next poke", async () => (await get(ti)).json().state === "up_for_reschedule", 30_000);
    expect((await get(ti)).json().try_number).toBe(0);
    const waiting = await get(`${ti}/logs/1`);
    expect(waiting.statusCode).toBe(200);
    expect(waiting.json().content).toMatch(/Starting try 1 of 1[^]*not yet[^]*pokes again/);
    expect(waiting.json().continuation_token).not.toBeNull(); // the next poke writes on
    expect((await get(`${ti}/logs/2`)).statusCode).toBe(404);
    const marked = await h.app.inject({ method: "PATCH", url: ti, payload: { new_state: "success" } });
    expect(marked.statusCode).toBe(200);
    const done = await get(`${ti}/logs/1`);
    expect(done.statusCode).toBe(200);
    expect(done.json().content).toContain("not yet");
    expect(done.json().continuation_token).toBeNull();
  });

  it("keeps the log of a try cleared while it runs (its result is discarded)", async () => {
    const res = await h.app.inject({ method: "POST", url: "/api/v1/dags/clearme/dagRuns", payload: {} });
    const run = res.json().dag_run_id as string;
    await waitFor("the task to run", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'clearme' AND run_id = ?", [run]);
      return row?.state === "running";
    });
    const cleared = await h.app.inject({ method: "POST", url: "/api/v1/dags/clearme/clearTaskInstances", payload: { dag_run_id: run, task_ids: ["busy"], only_failed: false, dry_run: false } });
    expect(cleared.statusCode).toBe(200);
    const log = await waitFor("try 1's log to end", async () => {
      const text = await h.taskLog("clearme", run, "busy", 1);
      return text?.includes("after the abort: true") ? text : undefined;
    }, 20_000);
    expect(log).toMatch(/Starting try 1[^]*before the clear[^]*after the abort: true/);
  });

  it("deleting the run deletes its stored logs", async () => {
    const [ids] = await h.db.pool.query<RowDataPacket[]>("SELECT id FROM task_instance WHERE dag_id = 'logs' AND run_id = ?", [runId]);
    const list = ids.map((r) => Number(r.id));
    const count = async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM task_log WHERE task_instance_id IN (${list.map(() => "?").join(", ")})`, list);
      return Number(row!.n);
    };
    expect(await count()).toBeGreaterThan(0);
    expect(existsSync(logFile("long"))).toBe(true);
    const res = await h.app.inject({ method: "DELETE", url: `/api/v1/dags/logs/dagRuns/${encodeURIComponent(runId)}` });
    expect(res.statusCode).toBe(204);
    expect(await count()).toBe(0);
    // Its log files go with it: a run created again under the same run_id starts with none of them.
    expect(existsSync(runLogFolder(h.logsFolder, { dagId: "logs", runId }))).toBe(false);
    const again = await h.app.inject({ method: "POST", url: "/api/v1/dags/logs/dagRuns", payload: { dag_run_id: runId } });
    expect(again.statusCode).toBe(200);
    await waitFor("the new long try to end", async () => {
      const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE dag_id = 'logs' AND run_id = ? AND task_id = 'long'", [runId]);
      return row?.state === "success";
    }, 30_000);
    const log = (await h.taskLog("logs", runId, "long", 1))!;
    expect(log.match(/before the pause/g)).toHaveLength(1);
    expect(log.match(/Starting try 1/g)).toHaveLength(1);
  });

  it("deleting a DAG deletes its log folder", async () => {
    const folder = dagLogFolder(h.logsFolder, "poker");
    expect(existsSync(folder)).toBe(true);
    const res = await h.app.inject({ method: "DELETE", url: "/api/v1/dags/poker" });
    expect(res.statusCode).toBe(204);
    expect(existsSync(folder)).toBe(false);
  });
});
