import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Clock } from "../core/clock.ts";
import { forEachConcurrently } from "../core/concurrency.ts";
import type { Logger } from "../core/logger.ts";
import { sdkModuleFile } from "../core/sdkModule.ts";
import type { Db } from "../store/db.ts";
import {
  FILELOC_MAX_CHARS,
  fileHashes,
  filelocFits,
  FORGOTTEN_CONTENT_HASH,
  forgetFile,
  recordFolderProblems,
  recordImportError,
  recordParsedFile,
  recordUnchangedImportError,
  recordUnchangedParse,
  type FolderProblem,
  type KnownFile,
} from "../store/dagFiles.ts";
import { fileRecordFailure, oversizedFileFailure, textSizes } from "../store/recordFailures.ts";
import { discoverDagFolder, IGNORE_FILES, type DagFolderListing, type DiscoverFs, type UnreadablePath } from "./discover.ts";
import { FolderWatcher } from "./folderWatcher.ts";
import { dagFileInputs } from "./bundle.ts";
import { InputsHasher } from "./inputsHash.ts";
import { ParserPool } from "./pool.ts";
import { periodicReparses, transientRetryDelayMs, transientRetryDue, versionsChangedUnedited, type ParsedVersions } from "./reparse.ts";

export interface DagProcessorOptions {
  dagsFolder: string;
  parseTimeoutMs: number;
  rescanIntervalMs: number;
  /**
   * BATON_DAG_REPARSE_INTERVAL: an unchanged file is parsed again once this long passed since its
   * last parse (spread over the interval: parser/reparse.ts). Absent or 0: only when it changes.
   */
  reparseIntervalMs?: number;
  pausedAtCreation: boolean;
  scratchFolder: string;
  poolSize?: number;
  /** Tests only: file system calls of the folder walk and of reading DAG files, failing as root's cannot (EACCES). */
  discoverFs?: Partial<DiscoverFs>;
}

export interface ScanReport {
  files: number;
  parsed: number;
  dags: number;
  errors: number;
  removed: number;
  /**
   * What this scan could not read: folders, links and ignore files (their files keep their DAGs
   * as they were) and DAG files (listed, not readable). unreadableCover() says which one a file lies under.
   */
  unreadable: UnreadablePath[];
}

/**
 * A parser child is replaced once this old, besides after 500 files: each parse imports its file
 * again, and a small folder re-parsed every BATON_DAG_REPARSE_INTERVAL (5 minutes) took days to
 * reach 500 parses while the timers and sockets its files open at import piled up in the child.
 */
const PARSER_CHILD_MAX_AGE_MS = 10 * 60_000;

const EMPTY_REPORT: ScanReport = Object.freeze({ files: 0, parsed: 0, dags: 0, errors: 0, removed: 0, unreadable: [] });

/**
 * The unreadable path that keeps `file` as it was last parsed, if any: the file itself, a folder or
 * link it lies under, or an ignore file of such a folder (without its rules the folder is left as it was).
 */
export function unreadableCover(unreadable: readonly UnreadablePath[], file: string): UnreadablePath | undefined {
  return unreadable.find((u) => {
    const p = IGNORE_FILES.some((name) => path.basename(u.path) === name) ? path.dirname(u.path) : u.path;
    return file === p || file.startsWith(p + path.sep);
  });
}

function sha256(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Watches the DAG folder and keeps MySQL in step with it: changed files are parsed in child
 * processes and stored as immutable versions; broken ones become import errors; deleted
 * ones deactivate their DAGs. Unchanged files (same content hash) are not parsed again, unless
 * their last parse failed for a reason other than their content, or the re-parse interval passed
 * (parser/reparse.ts).
 */
export class DagProcessor {
  private readonly pool: ParserPool;
  private known = new Map<string, KnownFile>();
  /** SDK modules this processor has stored in dag_code (read from the scratch folder the children wrote them to). */
  private readonly storedSdk = new Set<string>();
  private watcher?: FolderWatcher;
  private timer?: NodeJS.Timeout;
  /** Scans running now: at most two, the second started while the first still parses its last files. */
  private readonly scans = new Set<Promise<ScanReport>>();
  /** A scan asked for while two run: it starts when one of them ends; its callers share it. */
  private queued?: { promise: Promise<ScanReport>; start: () => void };
  /** Files a scan is parsing and recording now: other scans leave them to it. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Files another scan found in flight: their scan checks them once more when done. */
  private readonly recheck = new Set<string>();
  private stopped = false;
  /** start(): a change waits this long for more before the scan, so a burst of writes is one scan. */
  private debounce?: NodeJS.Timeout;

  /** Files a scan handles at once: a few per parser child, so the children never wait. */
  private readonly scanConcurrency: number;
  /** A transient import error recorded before this processor started is retried by its first scan. */
  private readonly startedAt: Date;
  /** The folder problems last logged, by key: each is logged when it appears, not at every rescan. */
  private folderLog = new Map<string, string>();
  /** DAG files listed but not readable (logged once each until they can be read). */
  private readonly unreadableFiles = new Set<string>();
  /** When the last scan took its share of periodic re-parses (periodicReparses). */
  private reparsesCountedTo: Date;
  /**
   * The import error last logged for each file (its content hash and the error): a file broken
   * between edits is re-parsed every BATON_DAG_REPARSE_INTERVAL, and its error is logged when it
   * appears or changes, not at each of them.
   */
  private readonly loggedErrors = new Map<string, string>();
  /**
   * Each file's last successful parse, its content hash and DAG versions: a DAG whose version differs
   * at a re-parse although its file and imports did not is built from something that varies at import.
   */
  private readonly lastParses = new Map<string, ParsedVersions>();
  /** The DAG ids warned of as varying at import (versionsChangedUnedited): once each, not at every re-parse. */
  private readonly warnedVarying = new Set<string>();
  /** Whether the last scan recorded folder problems (or none has run): a healthy folder then costs no statement per scan. */
  private folderProblemsRecorded = true;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: DagProcessorOptions,
  ) {
    const size = options.poolSize ?? Math.max(1, Math.min(4, os.cpus().length));
    this.scanConcurrency = 4 * size;
    this.startedAt = clock.now();
    this.reparsesCountedTo = this.startedAt;
    this.pool = new ParserPool({
      size,
      timeoutMs: options.parseTimeoutMs,
      recycleAfter: 500,
      maxAgeMs: PARSER_CHILD_MAX_AGE_MS,
      scratchFolder: options.scratchFolder,
      onLoaderDied: (file, message) => this.logger.warn(`${file}: ${message} after loading other files; loading it again in another loader`),
    });
  }

  /**
   * Scans once, from now: a call during a scan starts another one at once, which handles every
   * file the first one is not parsing right now (those the first one checks again when done).
   * So a file that hangs its parser until the parse timeout (30 s by default) holds back only
   * its own scan, not an edit of another file. At most two scans run; a call while two run gets
   * the next one, which starts as soon as one of them ends (calls meanwhile share it).
   */
  scan(): Promise<ScanReport> {
    // After stop() the parser pool is closed: a late caller gets an empty report, not a failed scan.
    if (this.stopped) return Promise.resolve(EMPTY_REPORT);
    if (this.scans.size < 2) return this.startScan();
    if (!this.queued) {
      let start!: () => void;
      const promise = new Promise<void>((resolve) => (start = resolve)).then(() => {
        this.queued = undefined;
        return this.stopped ? EMPTY_REPORT : this.startScan();
      });
      this.queued = { promise, start };
    }
    return this.queued.promise;
  }

  private startScan(): Promise<ScanReport> {
    const scan = this.scanNow().finally(() => {
      this.scans.delete(scan);
      this.queued?.start();
    });
    this.scans.add(scan);
    return scan;
  }

  /**
   * Runs `work` for a file unless another scan is working on it: then that scan runs its own
   * work for the file once more when done (the file may have changed since it read it), and
   * this one moves on instead of waiting behind a parse that may hang until the timeout.
   */
  private async exclusively(file: string, work: () => Promise<void>): Promise<boolean> {
    if (this.inFlight.has(file)) {
      this.recheck.add(file);
      return false;
    }
    try {
      do {
        const running = work();
        this.inFlight.set(file, running);
        try {
          await running;
        } finally {
          this.inFlight.delete(file);
        }
      } while (this.recheck.delete(file) && !this.stopped);
    } finally {
      this.recheck.delete(file);
    }
    return true;
  }

  private async scanNow(): Promise<ScanReport> {
    // Read every scan: another process may have asked for a re-parse (e.g. creating a pool
    // that a file's import error was waiting for forgets that file's hash).
    this.known = await fileHashes(this.db);
    const root = path.resolve(this.options.dagsFolder);
    const listing = await discoverDagFolder(root, this.options.discoverFs);
    // A linked file is watched itself: its folder's watch does not see writes to the link's target.
    this.watcher?.watch([...listing.dirs, ...listing.linkedFiles]);
    // A path the fileloc columns cannot hold would fail every statement about the file: it is
    // skipped and reported, and the other files are recorded as usual.
    const tooLong = listing.files.filter((f) => !filelocFits(f));
    const files = tooLong.length > 0 ? listing.files.filter((f) => filelocFits(f)) : listing.files;
    const report: ScanReport = { files: listing.files.length, parsed: 0, dags: 0, errors: tooLong.length, removed: 0, unreadable: [...listing.unreadable] };
    await this.reportFolderProblems(root, listing, tooLong);
    const present = new Set(files);
    const hasher = new InputsHasher();
    const retryDelayMs = transientRetryDelayMs(this.options);
    // Files under a folder or link that could not be read are not gone: a missing DAG folder (an
    // unmounted volume, a typo, a folder briefly renamed) must not deactivate every DAG.
    const isShielded = (file: string) => unreadableCover(listing.unreadable, file) !== undefined;
    const periodic = this.duePeriodically(files);

    // Deleted files first: a file waiting on a DAG id they defined is parsed in this same scan.
    for (const file of [...this.known.keys()]) {
      if (present.has(file) || !file.startsWith(root + path.sep) || isShielded(file)) continue;
      // Not while an earlier scan still parses it: that scan reads it again when done, finds it
      // gone, and the next scan forgets it.
      if (!(await this.exclusively(file, () => forgetFile(this.db, file)))) continue;
      report.removed++;
      this.loggedErrors.delete(file);
      this.lastParses.delete(file);
      this.logger.info(`DAG file removed: ${file}`);
    }
    if (report.removed > 0) this.known = await fileHashes(this.db);

    // A few files per parser child at a time: parsing all of them at once let results wait for
    // MySQL by the hundred (a 1,000-file scan peaked at ≈ 240 MB of RSS once children got faster).
    await forEachConcurrently(
      files,
      this.scanConcurrency,
      async (file) => {
        await this.exclusively(file, async () => {
          if (this.stopped) return; // stop() waits only for the files already being parsed
          let content: Buffer;
          try {
            content = await (this.options.discoverFs?.readFile ?? readFile)(file);
            if (this.unreadableFiles.delete(file)) this.logger.info(`${file} is readable again`);
          } catch (err) {
            // Deleted between listing and reading: the next scan forgets it. Unreadable (EACCES, EIO):
            // not gone, so its DAGs stay active as they are; said once, not at every rescan.
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== "ENOENT") report.unreadable.push({ path: file, code: code ?? "EUNKNOWN", message: (err as Error).message });
            if (code !== "ENOENT" && !this.unreadableFiles.has(file)) {
              this.unreadableFiles.add(file);
              this.logger.warn(`cannot read DAG file ${file} (${(err as Error).message}); its DAGs stay active with their last version`);
            }
            return;
          }
          const known = this.known.get(file);
          // Taken once: a second pass of this work (recheck) parses it again only if it changed meanwhile.
          const due = periodic.delete(file);
          if (known && !due && known.hash === (await hasher.hash(content, known.deps)) && !transientRetryDue(known, this.clock.now(), this.startedAt, retryDelayMs)) return;
          const outcome = await this.pool.parse(file);
          if (this.stopped) return;
          // A loader killed on the timeout or dead said nothing of what the file imports: bundling
          // it again here (esbuild; no user code runs) does, so fixing an imported module re-parses it.
          const deps = outcome.deps ?? (await dagFileInputs(file));
          const contentHash = await hasher.hash(content, deps);
          report.parsed++;
          const now = this.clock.now();
          // The same content as last parsed (a periodic re-parse, a transient error's retry): an
          // outcome equal to what is stored writes only the parse times.
          const unchanged = known?.hash === contentHash;
          if (!outcome.ok) {
            report.errors++;
            this.importError(file, contentHash, `${outcome.code}:${outcome.line}:${outcome.message}`, `import error in ${file}${outcome.line ? `:${outcome.line}` : ""}: ${outcome.message}`);
            const failure = { fileloc: file, contentHash, deps, code: outcome.code, message: outcome.message, line: outcome.line, stack: outcome.stack };
            if (!(unchanged && known?.errorCode === outcome.code && (await recordUnchangedImportError(this.db, now, failure)))) await recordImportError(this.db, now, failure);
          } else {
            const codeHash = sha256(outcome.code);
            const texts = { code: outcome.code, structures: outcome.dags.map((structure) => JSON.stringify(structure)) };
            const dags = outcome.dags.map((structure, i) => ({ structure, versionHash: sha256(codeHash + texts.structures[i]) }));
            const sdk = this.storedSdk.has(outcome.sdkHash)
              ? undefined
              : { hash: outcome.sdkHash, code: await readFile(path.join(this.options.scratchFolder, sdkModuleFile(outcome.sdkHash)), "utf8") };
            // A file the database cannot hold (too big for a packet, a value too long) is that
            // file's import error, not a scan that fails on it forever; a database error is thrown
            // (the other files are still recorded, and the next scan tries this one again).
            const parsed = { fileloc: file, dagsFolder: root, contentHash, deps, codeHash, code: outcome.code, sdk, dags };
            let conflicts: string[] = [];
            // A version already stored was storable: no size check.
            const same = unchanged && known?.errorCode === null && (await recordUnchangedParse(this.db, now, parsed));
            let failure = same ? null : await oversizedFileFailure(this.db, texts);
            if (!same && !failure) {
              try {
                ({ conflicts } = await recordParsedFile(this.db, now, parsed, this.options.pausedAtCreation));
              } catch (err) {
                failure = await fileRecordFailure(this.db, err, textSizes(texts));
                if (!failure) throw err;
              }
            }
            if (failure) {
              await recordImportError(this.db, now, { fileloc: file, contentHash, deps, code: failure.code, message: failure.message, line: null, stack: null });
              conflicts = [failure.message];
            }
            // A file defining no DAG stores no code (recordParsedFile), the SDK module included.
            if (sdk && conflicts.length === 0 && dags.length > 0) this.storedSdk.add(sdk.hash);
            if (conflicts.length > 0) {
              report.errors++;
              this.importError(file, contentHash, conflicts.join("; "), `import error in ${file}: ${conflicts.join("; ")}`);
            } else {
              report.dags += dags.length;
              if (this.loggedErrors.delete(file)) this.logger.info(`${file} loads again: its import error is cleared`);
              this.warnIfVarying(file, { contentHash, versions: new Map(dags.map((d) => [d.structure.dagId, d.versionHash])) });
            }
          }
          this.known.set(file, { hash: contentHash, deps, parsedAt: now, errorCode: outcome.ok ? null : outcome.code });
        });
      },
    );

    return report;
  }

  /**
   * Warns, once per DAG id, of a DAG whose version changed although its file and imports did not
   * (a `startDate: new Date()`, `Date.now()` in an id): every re-parse stores a new version of it, as
   * Airflow does; only the log says why. Then remembers this parse as the file's last successful one.
   */
  private warnIfVarying(file: string, parse: ParsedVersions): void {
    for (const dagId of versionsChangedUnedited(this.lastParses.get(file), parse)) {
      if (this.warnedVarying.has(dagId)) continue;
      this.warnedVarying.add(dagId);
      this.logger.warn(
        `DAG "${dagId}" (${file}) changed although its file and imports did not: something it reads at import varies ` +
          `(the time, a random value, the environment, a file or a service); each change is stored as a new version and new runs use it`,
      );
    }
    this.lastParses.set(file, parse);
  }

  /** Logs a file's import error unless it is the one last logged for the same content. */
  private importError(file: string, contentHash: string, error: string, message: string): void {
    const key = `${contentHash}\0${error}`;
    if (this.loggedErrors.get(file) === key) return;
    this.loggedErrors.set(file, key);
    this.logger.warn(message);
  }

  /** The files this scan parses again, changed or not, because the re-parse interval passed (parser/reparse.ts). */
  private duePeriodically(files: readonly string[]): Set<string> {
    const intervalMs = this.options.reparseIntervalMs;
    if (!intervalMs) return new Set();
    const now = this.clock.now();
    const since = this.reparsesCountedTo;
    this.reparsesCountedTo = now;
    const parsed: { file: string; parsedAt: Date }[] = [];
    for (const file of files) {
      const known = this.known.get(file);
      if (known) parsed.push({ file, parsedAt: known.parsedAt });
    }
    const due = periodicReparses(parsed, files.length, now, since, intervalMs);
    if (due.length > 0) this.logger.debug(`parsing ${due.length} unchanged DAG file(s) again: BATON_DAG_REPARSE_INTERVAL (${intervalMs} ms) passed since their last parse`);
    return new Set(due);
  }

  /**
   * Logs the folder's problems as they appear (and an unreadable path once it can be read again),
   * and records the unreadable paths and the paths too long to store as import errors of the folder.
   */
  private async reportFolderProblems(root: string, listing: DagFolderListing, tooLong: string[]): Promise<void> {
    const problems: FolderProblem[] = [];
    const log = new Map<string, string>();
    for (const u of listing.unreadable) {
      const detail = u.message.startsWith(u.code) ? u.message : `${u.code}: ${u.message}`;
      const message = `${u.path === root ? "the DAG folder" : "a path in the DAG folder"} cannot be read (${detail}); the DAGs of the files under ${u.path} stay active, and it is scanned again every rescan`;
      log.set(`unreadable:${u.path}`, `${message}`);
      if (filelocFits(u.path)) problems.push({ fileloc: u.path, code: "BATON_DAGS_FOLDER_UNREADABLE", message });
    }
    if (tooLong.length > 0) {
      const listed = tooLong.slice(0, 20).map((f) => `${path.relative(root, f)} (${[...f].length} characters)`);
      const message =
        `${tooLong.length} DAG file(s) not parsed: their path is longer than the ${FILELOC_MAX_CHARS} characters Baton stores: ` +
        `${listed.join("; ")}${tooLong.length > listed.length ? "; …" : ""}`;
      log.set(`too-long:${tooLong.join("\0")}`, message);
      if (filelocFits(root)) problems.push({ fileloc: root, code: "BATON_DAG_FILELOC_TOO_LONG", message });
    }
    for (const s of listing.skippedLinks) {
      const why = s.reason === "inside" ? "inside the DAG folder (its files are scanned under their own path)" : "a folder already scanned through another link";
      log.set(`link:${s.path}`, `symbolic link ${s.path} leads to ${s.target}, ${why}: not followed`);
    }
    for (const p of listing.invalidPatterns) {
      log.set(`pattern:${p.file}:${p.pattern}`, `ignoring the invalid pattern ${JSON.stringify(p.pattern)} of ${p.file}: ${p.message}`);
    }
    for (const [key, message] of log) if (!this.folderLog.has(key)) this.logger.warn(message);
    for (const key of this.folderLog.keys()) {
      if (key.startsWith("unreadable:") && !log.has(key)) this.logger.info(`${key.slice("unreadable:".length)} is readable again: its files are scanned as before`);
    }
    this.folderLog = log;
    if (problems.length === 0 && !this.folderProblemsRecorded) return;
    // A path whose problem cleared is parsed again in this scan (its own import error may have been replaced).
    for (const fileloc of await recordFolderProblems(this.db, this.clock.now(), root, problems)) {
      const known = this.known.get(fileloc);
      if (known) this.known.set(fileloc, { ...known, hash: FORGOTTEN_CONTENT_HASH });
    }
    this.folderProblemsRecorded = problems.length > 0;
  }

  /**
   * A watcher (debounced) set from the first scan on, plus a periodic rescan as a safety net.
   * The first scan sets the watches as soon as it has listed the folder: a cold parse of a big
   * folder takes seconds, and a file written meanwhile gets a scan of its own right after it.
   * The first scan's report, or null when it failed (logged): as after any failed scan, the
   * rescans go on, so a database that was away while the processor started is caught up with
   * once it is back, as the scheduler and the workers do.
   */
  async start(): Promise<ScanReport | null> {
    const scanFailed = (err: unknown) => {
      this.logger.error(`DAG folder scan failed: ${(err as Error).message}`);
      return null;
    };
    const onChange = () => {
      if (this.stopped) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.scan().catch(scanFailed), 100);
    };
    this.watcher = new FolderWatcher(onChange, (dir, err) =>
      this.logger.warn(`cannot watch ${dir} (${err.message}); changes there are seen by rescans every ${this.options.rescanIntervalMs} ms`),
    );
    const report = await this.scan().catch(scanFailed);
    if (this.stopped) return report; // stop() ran during the first scan (and closed the watcher): start no timer that nothing would stop
    this.timer = setInterval(onChange, this.options.rescanIntervalMs);
    return report;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.timer);
    // A change seen just before stop must not start a scan on the closed parser pool and database.
    clearTimeout(this.debounce);
    this.queued?.start();
    await Promise.allSettled([...this.scans, ...(this.queued ? [this.queued.promise] : [])]);
    await this.pool.close();
  }
}
