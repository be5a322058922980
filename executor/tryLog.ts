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
//
// A try's log is capped (maxBytes, BATON_TASK_LOG_MAX_BYTES), in memory and in its file alike: a
// task printing in a loop filled the logs folder's disk, or task_log. Past the cap one line says
// the log was cut, the rest of the output is dropped and counted, and the task goes on. The lines
// Baton writes to end the try (writeClosing: its outcome, its error) are kept, and the log ends
// with how many bytes were dropped. A run's DAG callbacks log (dag_callbacks.log) is written the
// same way, under the same cap (kind "dagCallback").
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { truncateUtf8 } from "../core/json.ts";

export const SPILL_BYTES = 64 * 1024;
export const SPILL_AFTER_MS = 1000;
/**
 * The most a closing line keeps past the cap (a failed try's error and stack are the task's text:
 * an error of a gigabyte must not get through because Baton writes it).
 */
export const CLOSING_LINE_MAX_BYTES = 64 * 1024;

const LIMIT_NAME = "BATON_TASK_LOG_MAX_BYTES";

/** The longest start of `text` that is at most `maxBytes` of UTF-8, never cutting a character. */
function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return "";
  // A character is at least one byte: no need to encode more of a huge chunk than this.
  return new StringDecoder("utf8").write(Buffer.from(text.slice(0, maxBytes)).subarray(0, maxBytes));
}

export class TryLog {
  private chunks: string[] = [];
  private bytes = 0;
  /** The file's descriptor once the log moved there. */
  private fd?: number;
  private timer?: NodeJS.Timeout;
  private ended = false;
  private readonly spillBytes: number;
  /** The cap on what the try's output keeps (0: none). */
  private readonly maxBytes: number;
  /** Bytes of output kept, counted against maxBytes. */
  private kept = 0;
  /** The cap was reached: further output is dropped and counted here. */
  private cut = false;
  private dropped = 0;
  private droppedTold = false;
  /** The last text written ended its line (the marker starts a line of its own). */
  private atLineStart = true;
  /** Whose output the cut marker names, and what goes on regardless. */
  private readonly owner: { output: string; goesOn: string };

  constructor(
    private readonly file: string,
    options: {
      spillBytes?: number;
      spillAfterMs?: number;
      toFile?: boolean;
      evenIfFileExists?: boolean;
      maxBytes?: number;
      /** "dagCallback": a run's dag_callbacks.log (its DAG's onSuccess / onFailure), not a try's log. */
      kind?: "try" | "dagCallback";
    } = {},
  ) {
    this.spillBytes = options.spillBytes ?? SPILL_BYTES;
    this.maxBytes = options.maxBytes ?? 0;
    this.owner =
      options.kind === "dagCallback"
        ? { output: "the DAG callback's output", goesOn: "the callback goes on" }
        : { output: "this try's output", goesOn: "the task goes on" };
    // A try that already has a file (a try handed back at shutdown) keeps appending to it, so
    // its log is never split out of order. `toFile`: a rescheduled sensor's later pokes, which
    // would otherwise grow one stored row poke after poke. `evenIfFileExists`: lines stored
    // after the file whatever it holds (a reaped try's callback, executor/tryCallbacks.ts).
    if (options.toFile || (!options.evenIfFileExists && existsSync(file))) {
      // What the file holds counts against the cap: the same try run again (handed back), a
      // sensor's earlier pokes. A file already past it (cut before) drops from the start.
      if (this.maxBytes > 0) {
        try {
          this.kept = statSync(file).size;
          this.cut = this.kept >= this.maxBytes;
        } catch {
          // No file yet.
        }
      }
      this.spill();
    } else {
      this.timer = setTimeout(() => this.spill(), options.spillAfterMs ?? SPILL_AFTER_MS);
      this.timer.unref();
    }
  }

  /** The try's output (and Baton's lines while it runs): kept up to maxBytes, then dropped and counted. */
  write(text: string): void {
    if (this.ended) return;
    let size: number | undefined;
    if (this.maxBytes > 0) {
      size = Buffer.byteLength(text);
      if (this.cut) {
        this.dropped += size;
        return;
      }
      if (this.kept + size > this.maxBytes) {
        const head = utf8Prefix(text, this.maxBytes - this.kept);
        const headBytes = Buffer.byteLength(head);
        this.kept += headBytes;
        this.dropped += size - headBytes;
        this.cut = true;
        if (head) this.put(head);
        this.put(
          `${this.atLineStart ? "" : "\n"}[${new Date().toISOString()}] WARNING - Log cut at ${this.maxBytes} bytes (${LIMIT_NAME}): the rest of ${this.owner.output} is dropped (counted); ${this.owner.goesOn}\n`,
        );
        return;
      }
      this.kept += size;
    }
    this.put(text, size);
  }

  /**
   * A line Baton writes to end the try (its outcome, its error): never dropped by the cap, so a
   * cut log still says how the try ended; at most CLOSING_LINE_MAX_BYTES of it once capped.
   */
  writeClosing(text: string): void {
    if (this.ended) return;
    if (this.maxBytes > 0 && text.length > CLOSING_LINE_MAX_BYTES / 3) {
      const line = truncateUtf8(text, CLOSING_LINE_MAX_BYTES - 1);
      this.put(line.endsWith("\n") ? line : `${line}\n`);
    } else this.put(text);
  }

  /** The last line of a cut log: how much was dropped in all (once). */
  private tellDropped(): void {
    if (!this.cut || this.droppedTold || this.ended) return;
    this.droppedTold = true;
    if (this.dropped === 0) return;
    this.put(`${this.atLineStart ? "" : "\n"}[${new Date().toISOString()}] WARNING - ${this.dropped} bytes of output dropped after the log was cut at ${this.maxBytes} bytes (${LIMIT_NAME})\n`);
  }

  /** Appends to the file, or to memory (`size`: its UTF-8 bytes, when known). */
  private put(text: string, size?: number): void {
    if (text.length === 0) return;
    this.atLineStart = text.endsWith("\n");
    if (this.fd !== undefined) {
      this.append(text);
      return;
    }
    this.chunks.push(text);
    this.bytes += size ?? Buffer.byteLength(text);
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
    this.tellDropped();
    this.ended = true;
    if (this.fd === undefined) return this.chunks.join("");
    if (this.fd >= 0) closeSync(this.fd);
    return undefined;
  }

  /** The process is exiting mid-try (process.exit in a task): keep what was written, synchronously. */
  flushSync(): void {
    this.tellDropped();
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
