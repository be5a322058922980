// The log of one try, as the task process writes it. Most tries are short and print little:
// their log stays in memory and travels back with the outcome, and the worker stores it in
// MySQL (task_log) in the transaction that records the try. Creating a directory and a file
// for every try cost about 1 ms before the task could start (and as much again to close it)
// on a disk shared with MySQL's fsyncs. A try that runs longer than SPILL_AFTER_MS or writes
// more than SPILL_BYTES moves to its file (logs/dag_id=…/…/attempt=N.log), so a long task's
// log can be followed while it runs. The API reads the stored text, then the file.
//
// The file is written synchronously, as Node writes its stdout to a file: a line is in it when
// write() returns. On a stream, what a task printed in a loop that never yields piled up in
// memory (300 MB printed grew the process by 450 MB), and the lines still queued were lost when
// the process exited (process.exit, a crash) or was killed after its grace.
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";

export const SPILL_BYTES = 64 * 1024;
export const SPILL_AFTER_MS = 1000;

export class TryLog {
  private chunks: string[] = [];
  private bytes = 0;
  /** The file's descriptor once the log moved there. */
  private fd?: number;
  private timer?: NodeJS.Timeout;
  private ended = false;
  private readonly spillBytes: number;

  constructor(
    private readonly file: string,
    options: { spillBytes?: number; spillAfterMs?: number; toFile?: boolean; evenIfFileExists?: boolean } = {},
  ) {
    this.spillBytes = options.spillBytes ?? SPILL_BYTES;
    // A try that already has a file (a try handed back at shutdown) keeps appending to it, so
    // its log is never split out of order. `toFile`: a rescheduled sensor's later pokes, which
    // would otherwise grow one stored row poke after poke. `evenIfFileExists`: lines stored
    // after the file whatever it holds (a reaped try's callback, executor/tryCallbacks.ts).
    if (options.toFile || (!options.evenIfFileExists && existsSync(file))) this.spill();
    else {
      this.timer = setTimeout(() => this.spill(), options.spillAfterMs ?? SPILL_AFTER_MS);
      this.timer.unref();
    }
  }

  write(text: string): void {
    if (this.ended) return;
    if (this.fd !== undefined) {
      this.append(text);
      return;
    }
    this.chunks.push(text);
    this.bytes += Buffer.byteLength(text);
    if (this.bytes > this.spillBytes) this.spill();
  }

  /** Moves the log to its file; later writes go there (also before the process may be killed). */
  spill(): void {
    clearTimeout(this.timer);
    if (this.fd !== undefined || this.ended) return;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, "a");
    } catch {
      // Nowhere to write (a full or read-only disk): the lines are dropped, the task goes on.
      this.fd = -1;
    }
    if (this.chunks.length > 0) this.append(this.chunks.join(""));
    this.chunks = [];
    this.bytes = 0;
  }

  private append(text: string): void {
    if (this.fd === undefined || this.fd < 0) return;
    try {
      writeSync(this.fd, text);
    } catch {
      // As above: a log that cannot be written never fails the task.
    }
  }

  /**
   * Ends the log. Returns its text when it stayed in memory (the worker stores it), or
   * undefined once everything is on disk in the file.
   */
  async end(): Promise<string | undefined> {
    clearTimeout(this.timer);
    if (this.ended) return undefined;
    this.ended = true;
    if (this.fd === undefined) return this.chunks.join("");
    if (this.fd >= 0) closeSync(this.fd);
    return undefined;
  }

  /** The process is exiting mid-try (process.exit in a task): keep what was written, synchronously. */
  flushSync(): void {
    if (this.ended || this.fd !== undefined || this.chunks.length === 0) return;
    this.ended = true;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const fd = openSync(this.file, "a");
      writeSync(fd, this.chunks.join(""));
      closeSync(fd);
    } catch {
      // Nowhere to write: the try's outcome says the process died.
    }
  }
}
