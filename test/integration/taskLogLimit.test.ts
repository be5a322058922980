// BATON_TASK_LOG_MAX_BYTES: a task that prints without end must not fill the logs folder or
// task_log. Past the limit its output is dropped and counted; the task goes on, and the lines
// Baton writes to end the try (its outcome, its error) are kept, with how much was dropped.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dagCallbackLogPath, taskLogPath } from "../../core/logPaths.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { waitFor } from "../helpers/db.ts";
import { Harness, dagSource } from "../helpers/harness.ts";

const LIMIT = 4096;
const LINES = 3000;
/** Each flood line: 6 digits, a space, 60 x's and a newline. */
const LINE_BYTES = 68;
const CTX_LINE_BYTES = `[${new Date().toISOString()}] INFO - `.length + LINE_BYTES;

const FLOOD = dagSource(`
const flood = (print) => { for (let i = 0; i < ${LINES}; i++) print(String(i).padStart(6, "0") + " " + "x".repeat(60)); };
export default dag({ id: "flood" }, (t) => {
  // Ends at once: its log stays in memory and is stored in task_log.
  t.task("in_memory", async () => { flood(console.log); return "done"; });
  // Past a second its log is in its file.
  t.task("in_file", async (ctx) => {
    await new Promise((r) => setTimeout(r, 1200));
    flood((s) => ctx.log.info(s));
    return "done";
  });
  t.task("fails", async () => { flood(console.log); throw new Error("boom after the flood"); }, { retries: 0 });
});
// The DAG's own callback logs to the run's dag_callbacks.log: capped by the same limit.
export const floodCallback = dag({
  id: "flood_callback",
  onSuccess: (ctx) => { flood((s) => ctx.log.info(s)); throw new Error("boom after the callback's flood"); },
}, (t) => {
  t.task("quick", async () => 1);
});
`);

const MARKER = new RegExp(`^\\[[^\\]\\n]+\\] WARNING - Log cut at ${LIMIT} bytes \\(BATON_TASK_LOG_MAX_BYTES\\): the rest of this try's output is dropped \\(counted\\); the task goes on\\n`, "m");
const SUMMARY = /^\[[^\]\n]+\] WARNING - (\d+) bytes of output dropped after the log was cut at (\d+) bytes \(BATON_TASK_LOG_MAX_BYTES\)\n$/;

describe("a try's log limit", () => {
  const h = new Harness({ maxLogBytes: LIMIT, heartbeatMs: 100 });
  let runId: string;

  const state = async (taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state FROM task_instance WHERE run_id = ? AND task_id = ?", [runId, taskId]);
    return rows[0]?.state as string | undefined;
  };
  const stored = async (taskId: string) => {
    const [rows] = await h.db.pool.query<RowDataPacket[]>(
      "SELECT l.content FROM task_log l JOIN task_instance ti ON ti.id = l.task_instance_id WHERE ti.run_id = ? AND ti.task_id = ?",
      [runId, taskId],
    );
    return rows[0]?.content as string | undefined;
  };

  /** The served log in its parts: what was kept, the marker line, and the lines after it. */
  const parts = async (taskId: string, printedBytes: number) => {
    const log = (await h.taskLog("flood", runId, taskId, 1))!;
    const marker = MARKER.exec(log);
    expect(marker).not.toBeNull();
    const head = log.slice(0, marker!.index);
    const after = log.slice(marker!.index + marker![0].length).split(/(?<=\n)(?=\[)/);
    const starting = log.slice(0, log.indexOf("\n") + 1);
    expect(starting).toMatch(/INFO - Starting try 1 of /);
    // ASCII output: the cut keeps exactly the limit, and a newline when the marker would start mid-line.
    expect([LIMIT, LIMIT + 1]).toContain(Buffer.byteLength(head));
    const summary = SUMMARY.exec(after.at(-1)!);
    expect(summary).not.toBeNull();
    expect(summary!.slice(1)).toEqual([String(Buffer.byteLength(starting) + printedBytes - LIMIT), String(LIMIT)]);
    // At most the limit, the marker and Baton's closing lines.
    const closing = after.slice(0, -1).join("");
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(LIMIT + 1 + marker![0].length + Buffer.byteLength(closing) + summary![0].length);
    return { log, head, closing };
  };

  beforeAll(async () => {
    await h.start({ "flood.ts": FLOOD });
    await h.run();
    runId = await h.trigger("flood");
    await h.runEnded("flood", runId, 40_000);
  });
  afterAll(() => h.stop());

  it("cuts a short try's log kept in memory and stored in task_log, and the task succeeds", async () => {
    expect(await state("in_memory")).toBe("success");
    const { log, head, closing } = await parts("in_memory", LINES * LINE_BYTES);
    expect(head).toContain("000000 xxx");
    expect(head).not.toContain(String(LINES - 1).padStart(6, "0"));
    expect(closing).toMatch(/^\[[^\]\n]+\] INFO - Task succeeded\n$/);
    expect(await stored("in_memory")).toBe(log);
    expect(existsSync(taskLogPath(h.logsFolder, { dagId: "flood", runId, taskId: "in_memory", tryNumber: 1 }))).toBe(false);
  });

  it("cuts a long try's log in its file the same way", async () => {
    expect(await state("in_file")).toBe("success");
    const { closing } = await parts("in_file", LINES * CTX_LINE_BYTES);
    expect(closing).toMatch(/^\[[^\]\n]+\] INFO - Task succeeded\n$/);
    expect(await stored("in_file")).toBeUndefined();
    expect(existsSync(taskLogPath(h.logsFolder, { dagId: "flood", runId, taskId: "in_file", tryNumber: 1 }))).toBe(true);
  });

  // dag_callbacks.log had no limit: a DAG callback printing in a loop filled the logs folder's disk.
  it("cuts a DAG callback's log the same way, keeping its error", async () => {
    const cbRun = await h.trigger("flood_callback");
    await h.runEnded("flood_callback", cbRun, 20_000);
    await waitFor("the DAG callback to have run", async () => {
      const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT callback_due FROM dag_run WHERE dag_id = 'flood_callback' AND run_id = ?", [cbRun]);
      return Number(rows[0]?.callback_due) === 0;
    }, 20_000);
    const log = await readFile(dagCallbackLogPath(h.logsFolder, { dagId: "flood_callback", runId: cbRun }), "utf8");
    const marker = /^\[[^\]\n]+\] WARNING - Log cut at 4096 bytes \(BATON_TASK_LOG_MAX_BYTES\): the rest of the DAG callback's output is dropped \(counted\); the callback goes on\n/m.exec(log);
    expect(marker).not.toBeNull();
    const head = log.slice(0, marker!.index);
    expect(head).toMatch(/INFO - Run .* ended success: running the DAG's onSuccess callback\n/);
    expect(head).toContain("000000 xxx");
    expect(head).not.toContain(String(LINES - 1).padStart(6, "0"));
    // The opening line is Baton's and kept whatever the cap: the callback's own lines fill the rest of it.
    expect([LIMIT, LIMIT + 1]).toContain(Buffer.byteLength(head.slice(head.indexOf("\n") + 1)));
    const after = log.slice(marker!.index + marker![0].length).split(/(?<=\n)(?=\[)/);
    expect(after[0]).toMatch(/^\[[^\]\n]+\] ERROR - onSuccess callback failed \(the run's state is unchanged\): Error: boom after the callback's flood\n/);
    const summary = SUMMARY.exec(after.at(-1)!);
    expect(summary).not.toBeNull();
    expect(summary!.slice(1)).toEqual([String(LINES * CTX_LINE_BYTES - LIMIT), String(LIMIT)]);
  });

  it("keeps a failed try's error at the end of its cut log", async () => {
    await waitFor("fails to fail", async () => ((await state("fails")) === "failed" ? true : null), 10_000);
    const { closing } = await parts("fails", LINES * LINE_BYTES);
    expect(closing).toMatch(/^\[[^\]\n]+\] ERROR - Task failed: Error: boom after the flood\n\s+at /);
  });
});
