import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { waitFor } from "../helpers/db.ts";
import { TryLog } from "../../executor/tryLog.ts";

const folder = mkdtempSync(path.join(os.tmpdir(), "baton-trylog-"));
let n = 0;
const fresh = () => path.join(folder, `run_${++n}`, "task_id=t", "attempt=1.log");

describe("TryLog", () => {
  it("keeps a short log in memory and creates no file", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillAfterMs: 60_000 });
    log.write("one\n");
    log.write("two\n");
    expect(await log.end()).toBe("one\ntwo\n");
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.dirname(file))).toBe(false);
  });

  it("moves to its file past the size cap, with everything written before, in order", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillBytes: 10, spillAfterMs: 60_000 });
    log.write("12345\n");
    expect(existsSync(file)).toBe(false);
    log.write("67890\n");
    log.write("after\n");
    expect(await log.end()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe("12345\n67890\nafter\n");
  });

  it("moves to its file once the try has run for spillAfterMs, so a long try can be followed", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillAfterMs: 20 });
    log.write("started\n");
    await waitFor("the log file", async () => existsSync(file) && readFileSync(file, "utf8") === "started\n", 5000);
    log.write("later\n");
    expect(await log.end()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe("started\nlater\n");
  });

  it("has a line in its file when write() returns, once in its file, as Node's stdout to a file", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillBytes: 10, spillAfterMs: 60_000 });
    log.write("held in memory\n");
    // Was: queued on a stream, so a task printing in a loop that never yields held all it printed
    // in memory, and a process that exited or was killed lost the lines not yet written.
    expect(readFileSync(file, "utf8")).toBe("held in memory\n");
    log.write("straight to the file\n");
    expect(readFileSync(file, "utf8")).toBe("held in memory\nstraight to the file\n");
    expect(await log.end()).toBeUndefined();
  });

  it("appends to an existing file (a rescheduled sensor's next poke) instead of splitting the log", async () => {
    const file = fresh();
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, "poke 1\n");
    const log = new TryLog(file, { spillAfterMs: 60_000 });
    log.write("poke 2\n");
    expect(await log.end()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe("poke 1\npoke 2\n");
  });

  it("writes what it holds to the file synchronously when the process exits mid-try, and nothing after end", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillAfterMs: 60_000 });
    log.write("last words\n");
    log.flushSync();
    expect(readFileSync(file, "utf8")).toBe("last words\n");
    log.write("ignored\n");
    expect(await log.end()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe("last words\n");
  });
});

describe("TryLog with a size limit (BATON_TASK_LOG_MAX_BYTES)", () => {
  const MARKER = /^\[[^\]\n]+\] WARNING - Log cut at (\d+) bytes \(BATON_TASK_LOG_MAX_BYTES\): the rest of this try's output is dropped \(counted\); the task goes on\n/m;
  const SUMMARY = /^\[[^\]\n]+\] WARNING - (\d+) bytes of output dropped after the log was cut at (\d+) bytes \(BATON_TASK_LOG_MAX_BYTES\)\n$/m;

  it("keeps the first maxBytes in memory, then one marker line, drops and counts the rest, and keeps closing lines", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillAfterMs: 60_000, maxBytes: 100 });
    for (let i = 0; i < 1000; i++) log.write(`line ${String(i).padStart(4, "0")} ${"x".repeat(20)}\n`); // 31 bytes each
    log.writeClosing("[t] INFO - Task succeeded\n");
    const text = (await log.end())!;
    expect(existsSync(file)).toBe(false);
    const [head, marker, closing, summary, rest] = text.split(/(?<=\n)(?=\[)/);
    // 100 bytes: three whole lines and 7 bytes of the fourth, then a newline before the marker.
    expect(head).toBe("line 0000 xxxxxxxxxxxxxxxxxxxx\nline 0001 xxxxxxxxxxxxxxxxxxxx\nline 0002 xxxxxxxxxxxxxxxxxxxx\nline 00\n");
    expect(marker).toMatch(MARKER);
    expect(marker!.match(MARKER)![1]).toBe("100");
    expect(closing).toBe("[t] INFO - Task succeeded\n");
    expect(summary).toMatch(SUMMARY);
    expect(summary!.match(SUMMARY)!.slice(1)).toEqual([String(31 * 1000 - 100), "100"]);
    expect(rest).toBeUndefined();
  });

  it("never cuts inside a character", async () => {
    const log = new TryLog(fresh(), { spillAfterMs: 60_000, maxBytes: 4 });
    log.write("ab✓✓\n"); // ✓ is 3 bytes: "ab" fits, the first ✓ does not
    const text = (await log.end())!;
    expect(text.startsWith("ab\n[")).toBe(true);
    expect(text.match(SUMMARY)![1]).toBe(String(Buffer.byteLength("ab✓✓\n") - 2));
  });

  it("applies the same limit once the log is in its file", async () => {
    const file = fresh();
    const log = new TryLog(file, { spillBytes: 10, spillAfterMs: 60_000, maxBytes: 50 });
    for (let i = 0; i < 100; i++) log.write("0123456789\n");
    log.writeClosing("[t] ERROR - Task failed: boom\n");
    expect(await log.end()).toBeUndefined();
    const text = readFileSync(file, "utf8");
    expect(text.startsWith("0123456789\n".repeat(4) + "012345\n")).toBe(true);
    expect(text).toMatch(MARKER);
    expect(text).toMatch(/\n\[t\] ERROR - Task failed: boom\n\[[^\]\n]+\] WARNING - 1050 bytes of output dropped after the log was cut at 50 bytes/);
  });

  it("counts what an existing file holds (a try handed back and run again appends to it)", async () => {
    const file = fresh();
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, "x".repeat(40) + "\n");
    const log = new TryLog(file, { spillAfterMs: 60_000, maxBytes: 50 });
    log.write("0123456789\n");
    expect(await log.end()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toMatch(new RegExp(`^x{40}\\n012345678\\n\\[[^\\]\\n]+\\] WARNING - Log cut at 50 bytes`));
  });

  it("writes the count when the process exits mid-try", () => {
    const file = fresh();
    const log = new TryLog(file, { spillAfterMs: 60_000, maxBytes: 5 });
    log.write("0123456789\n");
    log.flushSync();
    expect(readFileSync(file, "utf8")).toMatch(/^01234\n\[[^\]\n]+\] WARNING - Log cut at 5 bytes[^\n]*\n\[[^\]\n]+\] WARNING - 6 bytes of output dropped/);
  });

  it("has no limit with maxBytes 0", async () => {
    const log = new TryLog(fresh(), { spillAfterMs: 60_000, maxBytes: 0 });
    log.write("x".repeat(1000));
    expect(await log.end()).toBe("x".repeat(1000));
  });
});
