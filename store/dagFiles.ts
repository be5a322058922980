// What the DAG processor writes: DAGs, their immutable versions and code, import errors.
// Each parsed file is recorded in one transaction, so the API never sees half a file.
import { truncateUtf8 } from "../core/json.ts";
import type { SerializedDag } from "../core/dagStructure.ts";
import { recomputeNextDagRun, type DagTimetableInputs } from "./dagSchedule.ts";
import { inList, type Db, type RowDataPacket, type Tx } from "./db.ts";
import { missingPools } from "./pools.ts";
import { parseJsonText } from "./rows.ts";

export interface ParsedDag {
  structure: SerializedDag;
  versionHash: string;
}

export interface ParsedFile {
  fileloc: string;
  /** The DAG folder the file was found in: a DAG id is only contested between files of one folder. */
  dagsFolder: string;
  contentHash: string;
  deps: string[];
  codeHash: string;
  code: string;
  /** The SDK module the code imports (core/sdkModule.ts), stored with it unless already stored. */
  sdk?: { hash: string; code: string };
  dags: ParsedDag[];
}

export interface ImportFailure {
  fileloc: string;
  contentHash: string;
  deps?: string[];
  code: string;
  message: string;
  line: number | null;
  stack: string | null;
}

export interface KnownFile {
  /** Hash of the file and of the local modules it imported when last parsed. */
  hash: string;
  deps: string[];
  parsedAt: Date;
  /** The code of the file's import error, if its last parse failed (a transient one is retried). */
  errorCode: string | null;
}

export async function fileHashes(db: Db): Promise<Map<string, KnownFile>> {
  const [rows] = await db.pool.query<RowDataPacket[]>(
    "SELECT f.fileloc, f.content_hash, f.deps, f.parsed_at, e.code FROM dag_file f LEFT JOIN import_error e ON e.fileloc = f.fileloc",
  );
  return new Map(
    rows.map((r) => [
      r.fileloc as string,
      { hash: r.content_hash as string, deps: parseJsonText<string[]>(r.deps, []), parsedAt: r.parsed_at as Date, errorCode: (r.code as string | null) ?? null },
    ]),
  );
}

/**
 * A DAG defined by a file of another folder (an old BATON_DAGS_FOLDER, another checkout) is
 * taken over, as Airflow's last parse wins; within one folder two definitions conflict.
 */
function folderPrefix(dagsFolder: string): string {
  return dagsFolder.endsWith("/") ? dagsFolder : `${dagsFolder}/`;
}

/** Files whose import error waits on another file (a DAG id defined elsewhere): parse them again. */
async function reconsiderConflicts(tx: Tx): Promise<void> {
  await tx.query("DELETE FROM dag_file WHERE fileloc IN (SELECT fileloc FROM import_error WHERE code = 'BATON_DAG_ID_CONFLICT')");
}

/**
 * Locks the dag row of each id, inserting a placeholder where there is none. Under READ
 * COMMITTED a locking read of a missing row locks nothing, so two files defining one new DAG
 * id, recorded at once, both saw no owner and both took it; a row being inserted is locked
 * before it commits, so the second waits for the first and then sees its owner. In id order, so
 * files sharing several ids cannot deadlock. A placeholder is inactive and has no
 * latest_version_hash (every recorded DAG has one); only its is_paused lasts, the upsert keeps it.
 */
async function lockDagRows(tx: Tx, now: Date, file: ParsedFile, pausedAtCreation: boolean): Promise<void> {
  const paused = new Map(file.dags.map((d) => [d.structure.dagId, d.structure.isPausedUponCreation ?? pausedAtCreation]));
  const ids = [...paused.keys()].sort();
  await tx.query(
    `INSERT INTO dag (dag_id, is_paused, is_active, fileloc, last_parsed_at, created_at) VALUES ${ids.map(() => "(?, ?, 0, ?, ?, ?)").join(", ")}
     ON DUPLICATE KEY UPDATE dag_id = dag_id`,
    ids.flatMap((id) => [id, paused.get(id) ? 1 : 0, file.fileloc, now, now]),
  );
}

/**
 * Returns the ids of DAGs defined by another active file (which makes this file an import error).
 * locks: the file's dag rows (PK, in id order: lockDagRows), then its dag_version rows, then its
 * dag_file row and those of files waiting on a DAG id — the order deleteDag locks them in. No
 * task or run row is locked, so the run transitions (task and run rows before the dag row)
 * cannot wait in a cycle with it.
 */
export async function recordParsedFile(db: Db, now: Date, file: ParsedFile, pausedAtCreation: boolean): Promise<{ conflicts: string[] }> {
  return db.tx(async (tx) => {
    const ids = file.dags.map((d) => d.structure.dagId);
    if (ids.length > 0) await lockDagRows(tx, now, file, pausedAtCreation);
    // A file that ends as an import error leaves no placeholder behind.
    const dropPlaceholders = () => tx.query(`DELETE FROM dag WHERE dag_id IN (${inList(ids)}) AND latest_version_hash IS NULL`, ids);
    if (ids.length > 0) {
      const [taken] = await tx.query<RowDataPacket[]>(
        `SELECT dag_id, fileloc FROM dag WHERE dag_id IN (${inList(ids)}) AND is_active = 1 AND fileloc <> ?
            AND LEFT(fileloc, CHAR_LENGTH(?)) = ? FOR UPDATE`,
        [...ids, file.fileloc, folderPrefix(file.dagsFolder), folderPrefix(file.dagsFolder)],
      );
      if (taken.length > 0) {
        const conflicts = taken.map((r) => `DAG id "${r.dag_id}" is already defined in ${r.fileloc}`);
        await dropPlaceholders();
        await upsertImportError(tx, now, {
          fileloc: file.fileloc,
          contentHash: file.contentHash,
          deps: file.deps,
          code: "BATON_DAG_ID_CONFLICT",
          message: conflicts.join("; "),
          line: null,
          stack: null,
        });
        return { conflicts };
      }
    }
    const pools = await missingPools(tx, file.dags.flatMap((d) => d.structure.tasks.map((t) => t.pool)));
    if (pools.length > 0) {
      const uses = file.dags.flatMap((d) => d.structure.tasks.filter((t) => pools.includes(t.pool)).map((t) => `task "${d.structure.dagId}.${t.taskId}" uses pool "${t.pool}"`));
      const message = `pool does not exist: ${uses.slice(0, 5).join("; ")}${uses.length > 5 ? "; …" : ""} (create it with POST /api/v1/pools or \`baton pools set\`)`;
      await dropPlaceholders();
      await upsertImportError(tx, now, { fileloc: file.fileloc, contentHash: file.contentHash, deps: file.deps, code: "BATON_POOL_NOT_FOUND", message, line: null, stack: null });
      return { conflicts: [message] };
    }
    // Only a version names a bundle: a file defining no DAG (a helper module) stores none, as dag_code is never pruned.
    if (ids.length > 0) {
      await tx.query("INSERT IGNORE INTO dag_code (code_hash, code, created_at) VALUES (?, ?, ?)", [file.codeHash, file.code, now]);
      // Content-addressed like the bundles: workers fetch the SDK module by the hash the bundle imports.
      if (file.sdk) await tx.query("INSERT IGNORE INTO dag_code (code_hash, code, created_at) VALUES (?, ?, ?)", [file.sdk.hash, file.sdk.code, now]);
    }
    // What each DAG was scheduled from, to recompute next_dagrun* only for new or rescheduled DAGs
    // (rows locked by lockDagRows; a placeholder is a new DAG).
    const [before] =
      ids.length > 0
        ? await tx.query<RowDataPacket[]>(
            `SELECT dag_id, schedule, timezone, start_date, end_date, catchup FROM dag WHERE dag_id IN (${inList(ids)}) AND latest_version_hash IS NOT NULL`,
            ids,
          )
        : [[] as RowDataPacket[]];
    const scheduledFrom = new Map(before.map((r) => [r.dag_id as string, r]));
    for (const { structure: s, versionHash } of file.dags) {
      await tx.query(
        "INSERT IGNORE INTO dag_version (dag_id, version_hash, code_hash, structure, created_at, on_success, on_failure) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [s.dagId, versionHash, file.codeHash, JSON.stringify(s), now, s.callbacks?.onSuccess ? 1 : 0, s.callbacks?.onFailure ? 1 : 0],
      );
      const paused = s.isPausedUponCreation ?? pausedAtCreation;
      const timetable: DagTimetableInputs = {
        dagId: s.dagId,
        schedule: s.schedule,
        timezone: s.timezone,
        startDate: s.startDate ? new Date(s.startDate) : null,
        endDate: s.endDate ? new Date(s.endDate) : null,
        catchup: s.catchup,
      };
      await tx.query(
        `INSERT INTO dag (dag_id, is_paused, is_active, fileloc, latest_version_hash, description, schedule, timezone,
                          start_date, end_date, catchup, tags, owners, max_active_runs, max_active_tasks, last_parsed_at, created_at)
         VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE is_active = 1, fileloc = VALUES(fileloc), latest_version_hash = VALUES(latest_version_hash),
           description = VALUES(description), schedule = VALUES(schedule), timezone = VALUES(timezone),
           start_date = VALUES(start_date), end_date = VALUES(end_date), catchup = VALUES(catchup), tags = VALUES(tags),
           owners = VALUES(owners), max_active_runs = VALUES(max_active_runs), max_active_tasks = VALUES(max_active_tasks),
           last_parsed_at = VALUES(last_parsed_at)`,
        [
          s.dagId,
          paused ? 1 : 0,
          file.fileloc,
          versionHash,
          s.description,
          s.schedule,
          s.timezone,
          timetable.startDate,
          timetable.endDate,
          timetable.catchup ? 1 : 0,
          JSON.stringify(s.tags),
          s.owner,
          s.maxActiveRuns,
          s.maxActiveTasks,
          now,
          now,
        ],
      );
      if (timetableChanged(scheduledFrom.get(s.dagId), timetable)) await recomputeNextDagRun(tx, now, timetable);
    }
    // DAGs this file used to define and no longer does.
    const [previous] = await tx.query<RowDataPacket[]>("SELECT dag_ids FROM dag_file WHERE fileloc = ? FOR UPDATE", [file.fileloc]);
    const gone = parseJsonText<string[]>(previous[0]?.dag_ids, []).filter((id) => !ids.includes(id));
    if (gone.length > 0) {
      await tx.query(`UPDATE dag SET is_active = 0 WHERE fileloc = ? AND dag_id IN (${inList(gone)})`, [file.fileloc, ...gone]);
      await reconsiderConflicts(tx);
    }
    await tx.query("DELETE FROM import_error WHERE fileloc = ?", [file.fileloc]);
    await tx.query(
      `INSERT INTO dag_file (fileloc, content_hash, dag_ids, deps, parsed_at) VALUES (?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE content_hash = VALUES(content_hash), dag_ids = VALUES(dag_ids), deps = VALUES(deps), parsed_at = VALUES(parsed_at)`,
      [file.fileloc, file.contentHash, JSON.stringify(ids), JSON.stringify(file.deps), now],
    );
    return { conflicts: [] };
  });
}

/**
 * A re-parse of an unchanged file (BATON_DAG_REPARSE_INTERVAL) whose outcome is what is stored:
 * each DAG's latest version is the one parsed, from this file, active; the file's row names the
 * same hash, DAG ids and modules; it has no import error; its pools exist (recordParsedFile would
 * refuse it otherwise). Then only the parse times are written, dag.last_parsed_at (Airflow's
 * last_parsed_time: the last parse, whatever its result) and dag_file.parsed_at (from which the
 * next re-parse counts), instead of recordParsedFile's upserts. Returns false, having written
 * nothing, when anything differs: recordParsedFile records it then.
 * locks: the file's dag rows (PK, in id order), then its dag_file row, as recordParsedFile does.
 */
export async function recordUnchangedParse(db: Db, now: Date, file: ParsedFile): Promise<boolean> {
  return db.tx(async (tx) => {
    const ids = file.dags.map((d) => d.structure.dagId);
    if (ids.length > 0) {
      const [rows] = await tx.query<RowDataPacket[]>(
        `SELECT dag_id, fileloc, is_active, latest_version_hash FROM dag WHERE dag_id IN (${inList(ids)}) ORDER BY dag_id FOR UPDATE`,
        ids,
      );
      const byId = new Map(rows.map((r) => [r.dag_id as string, r]));
      const same = file.dags.every(({ structure, versionHash }) => {
        const row = byId.get(structure.dagId);
        return row !== undefined && row.fileloc === file.fileloc && !!row.is_active && row.latest_version_hash === versionHash;
      });
      if (!same) return false;
    }
    const [files] = await tx.query<RowDataPacket[]>("SELECT content_hash, dag_ids, deps FROM dag_file WHERE fileloc = ? FOR UPDATE", [file.fileloc]);
    const row = files[0];
    if (
      !row ||
      row.content_hash !== file.contentHash ||
      JSON.stringify(parseJsonText<string[]>(row.dag_ids, [])) !== JSON.stringify(ids) ||
      JSON.stringify(parseJsonText<string[]>(row.deps, [])) !== JSON.stringify(file.deps)
    ) {
      return false;
    }
    const [errors] = await tx.query<RowDataPacket[]>("SELECT 1 FROM import_error WHERE fileloc = ?", [file.fileloc]);
    if (errors.length > 0) return false;
    if ((await missingPools(tx, file.dags.flatMap((d) => d.structure.tasks.map((t) => t.pool)))).length > 0) return false;
    if (ids.length > 0) await tx.query(`UPDATE dag SET last_parsed_at = ? WHERE dag_id IN (${inList(ids)})`, [now, ...ids]);
    await tx.query("UPDATE dag_file SET parsed_at = ? WHERE fileloc = ?", [now, file.fileloc]);
    return true;
  });
}

/** Whether a DAG is new or its schedule inputs differ from its dag row's. */
function timetableChanged(row: RowDataPacket | undefined, t: DagTimetableInputs): boolean {
  if (!row) return true;
  const time = (d: Date | null) => (d ? d.getTime() : null);
  return (
    row.schedule !== t.schedule ||
    row.timezone !== t.timezone ||
    time(row.start_date) !== time(t.startDate) ||
    time(row.end_date) !== time(t.endDate) ||
    !!row.catchup !== t.catchup
  );
}

/** What import_error's message and stack_trace (TEXT) keep of a failure's: what is stored, and compared with. */
const IMPORT_ERROR_TEXT_MAX_BYTES = 60_000;

function storedTexts(failure: { message: string; stack?: string | null }): { message: string; stack: string | null } {
  return {
    message: truncateUtf8(failure.message, IMPORT_ERROR_TEXT_MAX_BYTES),
    stack: failure.stack == null ? null : truncateUtf8(failure.stack, IMPORT_ERROR_TEXT_MAX_BYTES),
  };
}

async function upsertImportError(tx: Tx, now: Date, failure: ImportFailure): Promise<void> {
  const { message, stack } = storedTexts(failure);
  await tx.query(
    `INSERT INTO import_error (fileloc, code, message, line, stack_trace, created_at) VALUES (?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE code = VALUES(code), message = VALUES(message), line = VALUES(line),
       stack_trace = VALUES(stack_trace), created_at = VALUES(created_at)`,
    [failure.fileloc, failure.code, message, failure.line, stack, now],
  );
  // The content hash is remembered so an unchanged broken file is not parsed again; the DAGs
  // it defined keep their last good version, as in Airflow.
  await tx.query(
    `INSERT INTO dag_file (fileloc, content_hash, dag_ids, deps, parsed_at) VALUES (?, ?, '[]', ?, ?)
     ON DUPLICATE KEY UPDATE content_hash = VALUES(content_hash), deps = VALUES(deps), parsed_at = VALUES(parsed_at)`,
    [failure.fileloc, failure.contentHash, JSON.stringify(failure.deps ?? []), now],
  );
}

/**
 * A re-parse of an unchanged file that fails as its last parse did: the same hash and modules in
 * its dag_file row, the same code, message, line and stack in its import_error row. Only the
 * parse times are written: dag_file.parsed_at (the next re-parse counts from it) and the import
 * error's `timestamp` (created_at), the last parse that saw the error, as Airflow's
 * update_import_errors sets it at every parse; the error keeps its row (its id) and the rest.
 * Returns false, having written nothing, when anything differs: recordImportError records it then.
 * locks: the file's import_error row, then its dag_file row (the order recordImportError's upsert
 *   writes them in: two DAG processors on one folder would otherwise deadlock on a broken file).
 */
export async function recordUnchangedImportError(db: Db, now: Date, failure: ImportFailure): Promise<boolean> {
  return db.tx(async (tx) => {
    const [errors] = await tx.query<RowDataPacket[]>("SELECT id, code, message, line, stack_trace FROM import_error WHERE fileloc = ? FOR UPDATE", [failure.fileloc]);
    const error = errors[0];
    const [files] = await tx.query<RowDataPacket[]>("SELECT content_hash, deps FROM dag_file WHERE fileloc = ? FOR UPDATE", [failure.fileloc]);
    const file = files[0];
    if (!file || file.content_hash !== failure.contentHash || JSON.stringify(parseJsonText<string[]>(file.deps, [])) !== JSON.stringify(failure.deps ?? [])) return false;
    const stored = storedTexts(failure);
    if (
      !error ||
      error.code !== failure.code ||
      error.message !== stored.message ||
      (error.line ?? null) !== failure.line ||
      (error.stack_trace ?? null) !== stored.stack
    ) {
      return false;
    }
    await tx.query("UPDATE dag_file SET parsed_at = ? WHERE fileloc = ?", [now, failure.fileloc]);
    await tx.query("UPDATE import_error SET created_at = ? WHERE id = ?", [now, error.id]);
    return true;
  });
}

export async function recordImportError(db: Db, now: Date, failure: ImportFailure): Promise<void> {
  await db.tx((tx) => upsertImportError(tx, now, failure));
}

/** A deleted file: its DAGs stop being active (their runs and history stay). */
export async function forgetFile(db: Db, fileloc: string): Promise<void> {
  await db.tx(async (tx) => {
    await tx.query("UPDATE dag SET is_active = 0 WHERE fileloc = ?", [fileloc]);
    await tx.query("DELETE FROM import_error WHERE fileloc = ?", [fileloc]);
    await tx.query("DELETE FROM dag_file WHERE fileloc = ?", [fileloc]);
    await reconsiderConflicts(tx);
  });
}

/** The width of every fileloc column, in characters (migrations/0001_init.sql: VARCHAR(700), indexed, so it cannot grow). */
export const FILELOC_MAX_CHARS = 700;

/** Whether a path fits the fileloc columns (MySQL counts characters, i.e. code points, not UTF-16 units). */
export function filelocFits(fileloc: string): boolean {
  if (fileloc.length <= FILELOC_MAX_CHARS) return true;
  let chars = 0;
  for (const _ of fileloc) if (++chars > FILELOC_MAX_CHARS) return false;
  return true;
}

/** A content hash no file has: a dag_file row holding it is parsed again at the next scan, even unchanged (REPEAT('0', 64) in SQL). */
export const FORGOTTEN_CONTENT_HASH = "0".repeat(64);

/** Import errors of the DAG folder rather than of a file (a folder that cannot be read, paths too long to store). */
export const FOLDER_PROBLEM_CODES = ["BATON_DAGS_FOLDER_UNREADABLE", "BATON_DAG_FILELOC_TOO_LONG"] as const;

export interface FolderProblem {
  /** The folder, link or file the problem is about (fits the column: filelocFits). */
  fileloc: string;
  code: (typeof FOLDER_PROBLEM_CODES)[number];
  message: string;
}

/**
 * Makes the folder problems recorded for dagsFolder (as import errors, listed by GET /importErrors
 * beside the files') exactly `problems`: the ones gone (a folder readable again) are removed.
 * A problem already recorded as it is now keeps its row (its id, code and message) but for its `timestamp`
 * (created_at), which becomes this scan's: the last scan that saw it, as a file's import error is stamped
 * at each parse (recordUnchangedImportError; Airflow's update_import_errors); one that changed is rewritten.
 * No dag_file row is written: a folder is not a file to parse, so the scans never forget it as deleted.
 * A problem recorded under a DAG file's own path (a dangling link to it) took the place of the file's
 * import error, if it had one (one row per fileloc): when it clears, the file's stored hash is
 * forgotten (its dag_file row kept) so that it is parsed again, even unchanged. Returns the paths whose problem cleared.
 * locks: the import_error rows of the folder's problems (a scan of import_error, a small table), the
 * dag_file rows of the paths cleared, then the import_error rows of `problems`' paths.
 */
export async function recordFolderProblems(db: Db, now: Date, dagsFolder: string, problems: FolderProblem[]): Promise<string[]> {
  const prefix = folderPrefix(dagsFolder);
  const keep = problems.map((p) => p.fileloc);
  return db.tx(async (tx) => {
    const [gone] = await tx.query<RowDataPacket[]>(
      `SELECT fileloc FROM import_error WHERE code IN (${inList(FOLDER_PROBLEM_CODES)})
          AND (fileloc = ? OR LEFT(fileloc, CHAR_LENGTH(?)) = ?)${keep.length > 0 ? ` AND fileloc NOT IN (${inList(keep)})` : ""} FOR UPDATE`,
      [...FOLDER_PROBLEM_CODES, dagsFolder.replace(/\/$/, ""), prefix, prefix, ...keep],
    );
    const cleared = gone.map((r) => r.fileloc as string);
    if (cleared.length > 0) {
      await tx.query(`DELETE FROM import_error WHERE code IN (${inList(FOLDER_PROBLEM_CODES)}) AND fileloc IN (${inList(cleared)})`, [...FOLDER_PROBLEM_CODES, ...cleared]);
      // The row stays (a file gone meanwhile is still forgotten as deleted); no content hashes to zeros.
      await tx.query(`UPDATE dag_file SET content_hash = REPEAT('0', 64) WHERE fileloc IN (${inList(cleared)})`, cleared);
    }
    // The same problem again keeps its row (its id; code and message rewritten as they were) and gets
    // this scan's timestamp; another one, or a file's own import error, is replaced.
    for (const p of problems) {
      await tx.query(
        `INSERT INTO import_error (fileloc, code, message, line, stack_trace, created_at) VALUES (?, ?, ?, NULL, NULL, ?)
         ON DUPLICATE KEY UPDATE code = VALUES(code), message = VALUES(message), line = NULL, stack_trace = NULL, created_at = VALUES(created_at)`,
        [p.fileloc, p.code, storedTexts(p).message, now],
      );
    }
    return cleared;
  });
}
