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
