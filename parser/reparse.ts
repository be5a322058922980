// When an unchanged DAG file is parsed again anyway. Pure: the DAG processor supplies the times.

/**
 * Import errors that are not a property of the file's content (a busy machine, a slow network
 * call at import, a loader that was killed): the same file may load next time. Every other
 * error (a syntax error, a throw at import, an invalid DAG) comes back until something changes.
 */
const TRANSIENT_IMPORT_ERRORS: ReadonlySet<string> = new Set(["BATON_DAG_PARSE_TIMEOUT", "BATON_DAG_LOADER_DIED"]);

/**
 * How long a transient error stands before the file is loaded again: at least one rescan, and
 * ten parse timeouts, so a file that always hangs holds a parser child a tenth of the time at most.
 */
export function transientRetryDelayMs(options: { rescanIntervalMs: number; parseTimeoutMs: number }): number {
  return Math.max(options.rescanIntervalMs, 10 * options.parseTimeoutMs);
}

/**
 * Whether an unchanged file whose last parse ended in `errorCode` at `parsedAt` is due for another
 * one: a transient error is retried once `delayMs` passed, and by a DAG processor started since.
 */
export function transientRetryDue(last: { errorCode: string | null; parsedAt: Date }, now: Date, processorStartedAt: Date, delayMs: number): boolean {
  if (last.errorCode === null || !TRANSIENT_IMPORT_ERRORS.has(last.errorCode)) return false;
  return last.parsedAt.getTime() < processorStartedAt.getTime() || now.getTime() - last.parsedAt.getTime() >= delayMs;
}

/**
 * The unchanged files to parse again in a scan because `intervalMs` (BATON_DAG_REPARSE_INTERVAL,
 * Airflow's min_file_process_interval) passed since their last parse: a DAG may read a file, a
 * variable or the date at import, which no content hash sees. Oldest parse first, and at most as
 * many as the folder's share of the time since the last scan (`since`), rounded up: files that
 * fall due together (all parsed by one cold start) are spread over the interval, one rescan
 * taking its share, rather than all re-parsed in one burst (1,000 files cost 6-10 s of both
 * cores). Each then stays at its own point of the interval, so the cost stays even.
 */
export function periodicReparses(
  files: readonly { file: string; parsedAt: Date }[],
  folderSize: number,
  now: Date,
  since: Date,
  intervalMs: number,
): string[] {
  const budget = Math.min(files.length, Math.ceil((folderSize * Math.max(0, now.getTime() - since.getTime())) / intervalMs));
  if (budget === 0) return [];
  return files
    .filter((f) => now.getTime() - f.parsedAt.getTime() >= intervalMs)
    .sort((a, b) => a.parsedAt.getTime() - b.parsedAt.getTime())
    .slice(0, budget)
    .map((f) => f.file);
}

/** What a file's last successful parse gave: its content hash (the file and its local imports) and each DAG's version hash. */
export interface ParsedVersions {
  contentHash: string;
  versions: ReadonlyMap<string, string>;
}

/**
 * The DAG ids whose version differs from the file's previous successful parse although its content
 * hash does not: something the DAG reads at import varies (the time, a random value, the
 * environment, a file or a service), so each re-parse (BATON_DAG_REPARSE_INTERVAL) stores a new
 * version, the trap Airflow's docs warn of with a dynamic start_date. A DAG id new to the file, or
 * an edited file, is not such a change.
 */
export function versionsChangedUnedited(previous: ParsedVersions | undefined, current: ParsedVersions): string[] {
  if (!previous || previous.contentHash !== current.contentHash) return [];
  return [...current.versions].filter(([dagId, hash]) => previous.versions.has(dagId) && previous.versions.get(dagId) !== hash).map(([dagId]) => dagId);
}
