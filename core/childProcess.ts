import { fork, type ChildProcess, type StdioOptions } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { compiledEntry } from "./compiledEntry.js";

const require = createRequire(import.meta.url);
/** Children run our TypeScript entry points through tsx, like bin/baton.js does. */
const TSX_LOADER = pathToFileURL(require.resolve("tsx")).href;

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Where the child's own stdout/stderr go when not captured: inherited by default; "stderr" sends
   * both to this process's stderr, for children running user code (DAG files, tasks) whose stray
   * prints must not land in a CLI's stdout document (`-o json`) — service logs are on stderr too.
   */
  stdio?: "inherit" | "stderr" | "pipe" | "ignore";
  execArgv?: string[];
  /**
   * How messages are encoded (default "advanced": structured clone). "json" is cheaper per
   * message (about 0.07 ms less per round trip here) for channels that only carry JSON data.
   */
  serialization?: "json" | "advanced";
  /** Run the script as a compiled entry (compiledEntry) instead of through tsx, where it compiles. */
  precompiled?: boolean;
  /**
   * Start the child as the leader of a process group of its own (POSIX; ignored on Windows), so
   * kill() ends the processes it started too, and signals sent to the parent's group (Ctrl-C in a
   * terminal) do not reach it: the parent alone decides when it ends. Its side calls
   * serveRequests with the same option.
   */
  processGroup?: boolean;
}

const STDIO: Record<NonNullable<ChildOptions["stdio"]>, StdioOptions> = {
  inherit: "inherit",
  stderr: ["inherit", 2, 2, "ipc"],
  pipe: ["ignore", "pipe", "pipe", "ipc"],
  ignore: ["ignore", "ignore", "ignore", "ipc"],
};

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One child process speaking request/reply over IPC. A child that exits fails every
 * pending request with ChildExitedError; pools replace it with a fresh one rather than
 * reusing it (a broken child must never take the next job).
 */
export class ChildExitedError extends Error {
  constructor(
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    super(`child process exited (${signal ? `signal ${signal}` : `code ${exitCode}`})`);
    this.name = "ChildExitedError";
  }
}

/**
 * Children still running, killed (with their process groups) when this process exits without
 * having stopped them: a second SIGTERM, a shutdown that outlasted its grace, a crash. A child
 * exits by itself when its parent goes (serveRequests), but only once its event loop turns: one
 * blocked by a task's CPU loop ran on as an orphan, repeating the work of the retry that follows.
 */
const live = new Set<Child>();
let killOnExit = false;

export class Child {
  readonly process: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited = false;
  private readonly group: boolean;
  readonly exitedPromise: Promise<void>;
  /** Messages the child sends on its own (not replies), e.g. requests back to the parent. */
  onMessage?: (message: Record<string, unknown>) => void;

  constructor(script: string, options: ChildOptions = {}) {
    const entry = options.precompiled ? compiledEntry(script) : null;
    this.group = options.processGroup === true && process.platform !== "win32";
    this.process = fork(entry ?? script, [], {
      detached: this.group,
      execArgv: [...(entry ? [] : ["--import", TSX_LOADER]), "--enable-source-maps", ...(options.execArgv ?? [])],
      env: options.env ?? process.env,
      stdio: STDIO[options.stdio ?? "inherit"],
      serialization: options.serialization ?? "advanced",
    });
    live.add(this);
    if (!killOnExit) {
      killOnExit = true;
      process.on("exit", () => {
        for (const child of live) child.killNow();
      });
    }
    this.process.on("message", (raw) => {
      const message = raw as { replyTo?: number; ok?: boolean; value?: unknown; error?: string };
      if (typeof message.replyTo === "number") {
        const waiter = this.pending.get(message.replyTo);
        this.pending.delete(message.replyTo);
        if (!waiter) return;
        if (message.ok) waiter.resolve(message.value);
        else waiter.reject(new Error(message.error ?? "child request failed"));
      } else {
        this.onMessage?.(raw as Record<string, unknown>);
      }
    });
    this.exitedPromise = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        this.exited = true;
        live.delete(this);
        // What it started and left running (a task that crashed, or was killed): nothing outlives it.
        this.signalGroup("SIGKILL");
        const err = new ChildExitedError(code, signal);
        for (const waiter of this.pending.values()) waiter.reject(err);
        this.pending.clear();
        resolve();
      });
    });
    this.process.on("error", () => undefined);
  }

  get alive(): boolean {
    return !this.exited;
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  request<T>(message: Record<string, unknown>): Promise<T> {
    if (this.exited) return Promise.reject(new ChildExitedError(this.process.exitCode, null));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ ...message, requestId: id }, (err) => {
        if (err && this.pending.delete(id)) reject(err);
      });
    });
  }

  send(message: Record<string, unknown>): void {
    if (!this.exited) this.process.send(message, () => undefined);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.killNow(signal);
    await this.exitedPromise;
  }

  /** kill() without waiting for the exit: for a process that is exiting itself. */
  killNow(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.exited && !this.signalGroup(signal)) this.process.kill(signal);
  }

  /** Signals the child's process group (processGroup), the child and what it started; false when it has none left. */
  private signalGroup(signal: NodeJS.Signals): boolean {
    if (!this.group || this.process.pid === undefined) return false;
    try {
      process.kill(-this.process.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Asks the child to exit on its own, killing it if it has not after graceMs. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    this.send({ type: "exit" });
    const timer = setTimeout(() => void this.kill(), graceMs);
    await this.exitedPromise;
    clearTimeout(timer);
  }
}

/**
 * The child side: answer requests by type; uncaught handler errors become failed replies. With
 * processGroup (the parent started it with that option), the child leaves its ending to the
 * parent: SIGINT and SIGTERM, which reach it when sent to every process of a terminal's job or of
 * a systemd unit, are ignored, and when the parent is gone it ends its whole group.
 */
export function serveRequests(handlers: Record<string, (message: Record<string, unknown>) => Promise<unknown>>, options: { processGroup?: boolean } = {}): void {
  const group = options.processGroup === true && process.platform !== "win32";
  // The parent is gone: exit, and with processGroup end what this process started too, last
  // (after the other exit handlers, e.g. a log's flush; the signal ends this process as well).
  const orphaned = () => {
    if (group) {
      process.once("exit", () => {
        try {
          process.kill(-process.pid, "SIGKILL");
        } catch {
          // not a group leader after all
        }
      });
    }
    process.exit(0);
  };
  if (group) {
    process.on("SIGINT", () => undefined);
    process.on("SIGTERM", () => undefined);
  }
  process.on("message", async (raw) => {
    const message = raw as Record<string, unknown> & { type: string; requestId?: number };
    if (message.type === "exit") {
      process.disconnect?.();
      process.exit(0);
    }
    const handler = handlers[message.type];
    if (!handler) return;
    // A reply that cannot be sent means the parent is gone (killed with -9): exit quietly, as on
    // disconnect, instead of dying of an unhandled EPIPE with a stack trace in the parent's output.
    const reply = (answer: Record<string, unknown>) => process.send?.(answer, (err: Error | null) => err && orphaned());
    try {
      const value = await handler(message);
      if (message.requestId !== undefined) reply({ replyTo: message.requestId, ok: true, value });
    } catch (err) {
      if (message.requestId !== undefined) reply({ replyTo: message.requestId, ok: false, error: (err as Error)?.message ?? String(err) });
    }
  });
  // The parent going away must not leave orphans behind.
  process.on("disconnect", orphaned);
}
