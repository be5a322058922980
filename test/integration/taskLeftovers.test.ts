// What a task's code does outside the await chain of its function: an exception thrown in a
// timer or a promise rejection nobody handles, during its try or after it returned, and output it
// keeps printing after its try ended. A warm task process runs other tries afterwards: they must
// not pay for it. Real MariaDB, real worker child processes.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Harness, dagSource } from "../helpers/harness.ts";
import type { RowDataPacket } from "../../store/db.ts";

const DAGS = dagSource(`
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";

const waitForFile = async (file) => { while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10)); };

export const thrown = dag({ id: "lo_thrown" }, (t) => {
  t.task("t", async () => {
    setTimeout(() => { throw new Error("boom in a timer"); }, 10);
    await new Promise(() => {});
  });
});

export const rejected = dag({ id: "lo_rejected" }, (t) => {
  t.task("t", async () => {
    Promise.reject(new TypeError("rejected and forgotten"));
    await new Promise(() => {});
  });
});

// Handles what goes uncaught itself, as Node lets a process do.
export const ownHandler = dag({ id: "lo_own_handler" }, (t) => {
  t.task("t", async () => {
    let seen;
    const handler = (err) => { seen = err.message; };
    process.on("uncaughtException", handler);
    setTimeout(() => { throw new Error("handled by the task"); }, 10);
    while (!seen) await new Promise((r) => setTimeout(r, 5));
    process.off("uncaughtException", handler);
    return seen;
  });
});

export const inCallback = dag({ id: "lo_in_callback" }, (t) => {
  t.task("t", {
    onSuccess: async () => {
      setTimeout(() => { throw new Error("boom in onSuccess"); }, 10);
      await new Promise(() => {});
    },
  }, async () => "fine");
});

// Returns at once, and leaves a timer that throws once the file conf.go exists (written by the
// next task, so it throws while that task runs in this process), after writing conf.thrown.
export const lateThrow = dag({ id: "lo_late_throw" }, (t) => {
  t.task("t", async (ctx) => {
    const timer = setInterval(() => {
      if (!existsSync(ctx.conf.go)) return;
      clearInterval(timer);
      writeFileSync(ctx.conf.thrown, "");
      throw new Error("thrown after its task returned");
    }, 5);
    return process.pid;
  });
});

// Returns at once, and leaves an interval printing until conf.stop exists.
export const chatty = dag({ id: "lo_chatty" }, (t) => {
  t.task("t", async (ctx) => {
    const timer = setInterval(() => {
      if (existsSync(ctx.conf.stop)) return clearInterval(timer);
      console.log("LEFTOVER LINE");
      appendFileSync(ctx.conf.ticks, "t\\n");
    }, 5);
    return process.pid;
  });
});

// Returns at once, leaving a step to be recorded once conf.go exists (the forEach(async …)
// mistake: the task does not wait for it), then writes how it went to conf.stepped.
export const floatingStep = dag({ id: "lo_floating_step" }, (t) => {
  t.task("t", async (ctx) => {
    [1].forEach(async () => {
      await waitForFile(ctx.conf.go);
      const how = await ctx.step("shared", () => "from the task that returned").then((v) => "recorded: " + v, (err) => "refused: " + err.message);
      writeFileSync(ctx.conf.stepped, how);
    });
    return process.pid;
  });
});

// Runs while another task's leftovers act in its process: writes conf.go, then waits for
// conf.stepped (and records a step), or for conf.thrown, or for conf.ticks to grow by 3 lines.
export const bystander = dag({ id: "lo_bystander" }, (t) => {
  t.task("t", async (ctx) => {
    ctx.log.info("bystander starts");
    if (ctx.conf.stepped) {
      writeFileSync(ctx.conf.go, "");
      await waitForFile(ctx.conf.stepped);
      return await ctx.step("shared", () => "its own");
    }
    if (ctx.conf.go) {
      writeFileSync(ctx.conf.go, "");
      await waitForFile(ctx.conf.thrown);
    }
    if (ctx.conf.ticks) {
      const lines = () => (existsSync(ctx.conf.ticks) ? readFileSync(ctx.conf.ticks, "utf8").split("\\n").length : 0);
      const from = lines();
      while (lines() < from + 3) await new Promise((r) => setTimeout(r, 5));
      writeFileSync(ctx.conf.stop, "");
    }
    return process.pid;
  });
});
`);

describe("a task's code outside its function's await chain", () => {
  // One slot: consecutive tries run in the same warm process.
  const h = new Harness({ workers: 1, runIds: "numbered" });
  let dir: string;

  beforeAll(async () => {
    await h.start({ "leftovers.ts": DAGS });
    await h.run();
    dir = await mkdtemp(path.join(os.tmpdir(), "baton-leftovers-"));
  });
  afterAll(async () => {
    // A leftover interval still waiting for its file would print on: let it stop.
    await writeFile(path.join(dir, "stop"), "").catch(() => undefined);
    await h.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function taskInstance(dagId: string, runId: string) {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT state, try_number, error FROM task_instance WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
    const row = rows[0]!;
    return { state: row.state as string, tryNumber: Number(row.try_number), error: row.error ? JSON.parse(String(row.error)) : null };
  }

  async function output(dagId: string, runId: string): Promise<unknown> {
    const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE r.dag_id = ? AND r.run_id = ?", [dagId, runId]);
    return JSON.parse(String(rows[0]!.value));
  }

  it.each([
    ["lo_thrown", "Error", "boom in a timer"],
    ["lo_rejected", "TypeError", "rejected and forgotten"],
  ])("fails a try of %s with the error its code left uncaught, in its error and its log", async (dagId, name, message) => {
    const runId = await h.trigger(dagId);
    expect(await h.runEnded(dagId, runId)).toBe("failed");
    const ti = await taskInstance(dagId, runId);
    // Was: BATON_WORKER_CHILD_EXITED, "child process exited (code 1)", the error only on the worker's stderr.
    expect(ti.error).toMatchObject({ name, message });
    expect(ti.error.stack).toContain(message);
    const log = (await h.taskLog(dagId, runId, "t", 1)) ?? "";
    expect(log).toContain(`${name}: ${message}`);
    expect(log).toMatch(/uncaught|unhandled/);
  });

  it("leaves an error to the task's own uncaughtException handler", async () => {
    const runId = await h.trigger("lo_own_handler");
    expect(await h.runEnded("lo_own_handler", runId)).toBe("success");
    expect(await output("lo_own_handler", runId)).toBe("handled by the task");
  });

  it("fails only the callback when the error goes uncaught in a callback: the try keeps its outcome", async () => {
    const runId = await h.trigger("lo_in_callback");
    // Was: failed, BATON_WORKER_CHILD_EXITED: the process died before it reported the success.
    expect(await h.runEnded("lo_in_callback", runId)).toBe("success");
    expect(await taskInstance("lo_in_callback", runId)).toMatchObject({ state: "success", tryNumber: 1, error: null });
    expect(await h.taskLog("lo_in_callback", runId, "t", 1)).toContain("onSuccess callback failed (an uncaught exception in its process)");
  });

  it("does not fail another try running in the process when a try's code throws after its try ended, and retires the process", async () => {
    const conf = { go: path.join(dir, "go"), thrown: path.join(dir, "thrown") };
    const first = await h.trigger("lo_late_throw", { conf });
    expect(await h.runEnded("lo_late_throw", first)).toBe("success");
    const next = await h.trigger("lo_bystander", { conf });
    // Was: failed, BATON_WORKER_CHILD_EXITED (the earlier try's timer killed its process).
    expect(await h.runEnded("lo_bystander", next)).toBe("success");
    expect(existsSync(conf.thrown)).toBe(true);
    expect(await taskInstance("lo_bystander", next)).toMatchObject({ state: "success", tryNumber: 1, error: null });
    const pid = await output("lo_late_throw", first);
    expect(await output("lo_bystander", next)).toBe(pid);
    // A process where an exception went uncaught runs no other try.
    const after = await h.trigger("lo_bystander");
    expect(await h.runEnded("lo_bystander", after)).toBe("success");
    expect(await output("lo_bystander", after)).not.toBe(pid);
  });

  it("keeps what a try's code prints after its try ended out of the next try's log", async () => {
    const conf = { ticks: path.join(dir, "ticks"), stop: path.join(dir, "stop") };
    const first = await h.trigger("lo_chatty", { conf });
    expect(await h.runEnded("lo_chatty", first)).toBe("success");
    const next = await h.trigger("lo_bystander", { conf });
    expect(await h.runEnded("lo_bystander", next)).toBe("success");
    expect(await output("lo_bystander", next)).toBe(await output("lo_chatty", first));
    const log = (await h.taskLog("lo_bystander", next, "t", 1)) ?? "";
    expect(log).toContain("bystander starts");
    // Was: the other task's lines, printed while this one ran, in this one's log.
    expect(log).not.toContain("LEFTOVER LINE");
  });

  it("refuses a step a try's code records after its try ended: it was recorded as the next try's, another task's", async () => {
    const conf = { go: path.join(dir, "go-step"), stepped: path.join(dir, "stepped") };
    const first = await h.trigger("lo_floating_step", { conf });
    expect(await h.runEnded("lo_floating_step", first)).toBe("success");
    const next = await h.trigger("lo_bystander", { conf });
    expect(await h.runEnded("lo_bystander", next)).toBe("success");
    // Was: "from the task that returned", the other task's step, recorded for this task instance.
    expect(await output("lo_bystander", next)).toBe("its own");
    expect(readFileSync(conf.stepped, "utf8")).toMatch(/^refused: ctx\.step\("shared"\): try 1 of lo_floating_step\.t .* has ended/);
  });
});
