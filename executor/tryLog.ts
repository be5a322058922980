// The log of one try, as the task process writes it. Most tries are short and print little:
// their log stays in memory and travels back with the outcome, and the worker stores it in
// MySQL (task_log) in the transaction that records the try. Creating a directory and a file
// for every try cost about 1 ms before the task could start (and as much again to close it)
// on a disk shared with MySQL's fsyncs. A try that runs longer than SPILL_AFTER_MS or writes
// more than SPILL_BYTES moves to its file (logs/dag_id=…/…/attempt=N.log), so a long task's
// log can be followed while it runs. The API reads the stored text, then the file.
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, writeSync, type WriteStream } from "node:fs";
import path from "node:path";

export const SPILL_BYTES = 64 * 1024;
export const SPILL_AFTER_MS = 1000;

export class TryLog {
  private chunks: string[] = [];
  private bytes = 0;
  private stream?: WriteStream;
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
    if (this.stream) {
      this.stream.write(text);
      return;
    }
    this.chunks.push(text);
    this.bytes += Buffer.byteLength(text);
    if (this.bytes > this.spillBytes) this.spill();
  }

  /** Moves the log to its file; later writes go there (also before the process may be killed). */
  spill(): void {
    clearTimeout(this.timer);
    if (this.stream || this.ended) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    this.stream = createWriteStream(this.file, { flags: "a" });
    this.stream.on("error", () => undefined);
    if (this.chunks.length > 0) this.stream.write(this.chunks.join(""));
    this.chunks = [];
    this.bytes = 0;
  }

  /**
   * Ends the log. Returns its text when it stayed in memory (the worker stores it), or
   * undefined once everything is on disk in the file.
   */
  async end(): Promise<string | undefined> {
    clearTimeout(this.timer);
    if (this.ended) return undefined;
    this.ended = true;
    if (!this.stream) return this.chunks.join("");
    const stream = this.stream;
    await new Promise<void>((resolve) => stream.end(resolve));
    return undefined;
  }

  /** The process is exiting mid-try (process.exit in a task): keep what was written, synchronously. */
  flushSync(): void {
    if (this.ended || this.stream || this.chunks.length === 0) return;
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
