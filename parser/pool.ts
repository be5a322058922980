import path from "node:path";
import { Child } from "../core/childProcess.ts";
import { formatDuration } from "../core/durations.ts";
import type { ParseOutcome } from "./child.ts";
import { INSTALL_ROOT } from "../core/installation.ts";

const CHILD_SCRIPT = path.join(INSTALL_ROOT, "parser", "child.ts");

export interface ParserPoolOptions {
  size: number;
  timeoutMs: number;
  /** Files a child parses before it is replaced (imports accumulate in its module cache). */
  recycleAfter: number;
  /**
   * Age (ms) past which a child is replaced before its next parse, whatever its count: each parse
   * imports its file again, so the timers and sockets a file's top-level code leaves running add
   * up in the child (a file re-parsed every BATON_DAG_REPARSE_INTERVAL never reaches recycleAfter
   * alone in a small folder). Absent: no age limit.
   */
  maxAgeMs?: number;
  /** The clock of maxAgeMs, in ms (Date.now by default; tests pass their own). */
  now?: () => number;
  scratchFolder: string;
  /** A reused loader died under `file` (no answer), which gets one more try in another loader: said, not hidden. */
  onLoaderDied?: (file: string, message: string) => void;
}

interface Slot {
  child: Child;
  parsed: number;
  /** When it was started (options.now). */
  startedAt: number;
}

/**
 * A few long-lived children parse files in turn: a fresh `node` per file would cost
 * 40–80 ms each. A child that times out or dies is killed and replaced.
 */
export class ParserPool {
  private readonly idle: Slot[] = [];
  private readonly children = new Set<Child>();
  private readonly waiting: ((slot: Slot) => void)[] = [];
  private live = 0;
  private closed = false;

  constructor(private readonly options: ParserPoolOptions) {}

  async parse(file: string): Promise<ParseOutcome> {
    for (let attempt = 1; ; attempt++) {
      const { outcome, retry } = await this.parseOnce(file);
      if (!retry || attempt > 1) return outcome;
    }
  }

  /**
   * One parse of `file` in a loader. A loader that had parsed other files and dies during this one
   * (no answer) asks for one more attempt in another loader: its death may not be this file's. An
   * earlier file's timer or unawaited promise can end it just as it is handed this one, before
   * its exit is seen (acquire() checks only what has been seen). A file that kills a fresh loader
   * too is reported BATON_DAG_LOADER_DIED.
   */
  private async parseOnce(file: string): Promise<{ outcome: ParseOutcome; retry: boolean }> {
    const slot = await this.acquire();
    const reused = slot.parsed > 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<ParseOutcome>((resolve) => {
        timer = setTimeout(() => {
          resolve({
            ok: false,
            code: "BATON_DAG_PARSE_TIMEOUT",
            message: `loading the file took longer than ${formatDuration(this.options.timeoutMs)} (BATON_DAG_PARSE_TIMEOUT); the loader was killed`,
            line: null,
            stack: null,
          });
        }, this.options.timeoutMs);
      });
      const outcome = await Promise.race([slot.child.request<ParseOutcome>({ type: "parse", file }), timeout]);
      slot.parsed++;
      if (!outcome.ok && outcome.code === "BATON_DAG_PARSE_TIMEOUT") await this.discard(slot);
      else this.release(slot);
      return { outcome, retry: false };
    } catch (err) {
      await this.discard(slot);
      const message = `the loader process died: ${(err as Error).message}`;
      if (reused) this.options.onLoaderDied?.(file, message);
      return { outcome: { ok: false, code: "BATON_DAG_LOADER_DIED", message, line: null, stack: null }, retry: reused };
    } finally {
      clearTimeout(timer);
    }
  }

  private spawn(): Slot {
    this.live++;
    const child = new Child(CHILD_SCRIPT, { env: { ...process.env, BATON_PARSE_SCRATCH: this.options.scratchFolder }, precompiled: true, stdio: "stderr" });
    this.children.add(child);
    void child.exitedPromise.then(() => this.children.delete(child));
    return { child, parsed: 0, startedAt: this.now() };
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private tooOld(slot: Slot): boolean {
    return this.options.maxAgeMs !== undefined && this.now() - slot.startedAt >= this.options.maxAgeMs;
  }

  private acquire(): Promise<Slot> {
    if (this.closed) return Promise.reject(new Error("parser pool is closed"));
    let slot: Slot | undefined;
    // An idle child may have died since its last file (that file's timer or unawaited promise ended
    // it): the next file gets a live one, not a BATON_DAG_LOADER_DIED it did nothing to earn. One
    // past its age limit is stopped (it is idle: nothing to kill) and replaced.
    while ((slot = this.idle.pop())) {
      if (slot.child.alive && !this.tooOld(slot)) return Promise.resolve(slot);
      this.live--;
      if (slot.child.alive) void slot.child.stop(1000);
    }
    if (this.live < this.options.size) return Promise.resolve(this.spawn());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: Slot): void {
    if (slot.parsed >= this.options.recycleAfter || this.tooOld(slot) || !slot.child.alive || this.closed) {
      void this.discard(slot);
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(slot);
    else this.idle.push(slot);
  }

  private async discard(slot: Slot): Promise<void> {
    this.live--;
    const stopping = slot.child.alive ? slot.child.kill() : Promise.resolve();
    const waiter = this.waiting.shift();
    if (waiter && !this.closed) waiter(this.spawn());
    await stopping;
  }

  /** Stops idle children and kills busy ones (their files are parsed again next start). */
  async close(): Promise<void> {
    this.closed = true;
    const idle = new Set(this.idle.splice(0).map((s) => s.child));
    await Promise.all([...this.children].map((child) => (idle.has(child) ? child.stop(1000) : child.kill())));
  }
}
