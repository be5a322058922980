// releaseScheduled — tasks whose trigger rule holds but that wait on the previous run
// (dependsOnPast / waitForDownstream) sit in `scheduled`; the scheduler queues them once
// dependsOnPastStatus passes (store/queries/previousRun.ts: which run is the previous one).
// So do a saga's compensations while a try of their run winds down (abandonedTries.ts): queued
// once their run lists no abandoned try.
// locks: scheduled task_instance rows via ix_ti_pool_queue (state prefix), SKIP LOCKED so several
//   schedulers split them; reads of the previous run are plain (READ COMMITTED) reads.
// pages: by id after `afterId`; the scheduler moves on from page to page across ticks, so tries
//   that wait long (their previous run failed) never hide the ones behind them.
// unusable: a try of a run whose version cannot be read (isUnusableVersion) stays scheduled, its
//   run returned in `unusable` for the caller to fail (failUnusableRuns); the others are released.
import type { DagShape } from "../../core/dagStructure.ts";
import { inList, type Db, type RowDataPacket } from "../db.ts";
import type { PageEnd, PageOptions } from "../paging.ts";
import { dependsOnPastStatus } from "../queries/previousRun.ts";
import { isUnusableVersion, unusableVersionNote } from "../versions.ts";
import { runsWithAbandonedTries } from "./abandonedTries.ts";
import type { UnusableRun } from "./failUnusableRuns.ts";

/** Scheduled tries a page looks at (each costs a look at its previous run). */
export const RELEASE_SCHEDULED_PAGE = 500;

/** A page of scheduled tries (PageEnd), and how many of them were queued. */
export interface ReleasedScheduled extends PageEnd {
  released: number;
  /** Runs of tries left scheduled because their version cannot be read. */
  unusable: UnusableRun[];
}

export async function releaseScheduled(
  db: Db,
  now: Date,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  options: PageOptions = {},
): Promise<ReleasedScheduled> {
  const afterId = options.afterId ?? 0;
  return db.tx(async (tx) => {
    // Lock the task rows alone (MariaDB has no FOR UPDATE OF), then read their runs.
    const [locked] = await tx.query<RowDataPacket[]>(
      `SELECT id FROM task_instance WHERE state = 'scheduled' AND id > ? ORDER BY id LIMIT ${Math.floor(options.limit ?? RELEASE_SCHEDULED_PAGE)} FOR UPDATE SKIP LOCKED`,
      [afterId],
    );
    if (locked.length === 0) return { released: 0, unusable: [], scanned: 0, lastId: afterId };
    const ids = locked.map((r) => Number(r.id));
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT ti.id, ti.dag_id, ti.task_id, ti.dag_run_id, r.logical_date, r.version_hash
         FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.id IN (${inList(ids)})`,
      ids,
    );
    // Compensations held while a try of their run winds down (abandonedTries.ts): read once per
    // page, at its first compensation (a page of dependsOnPast tasks alone reads nothing more).
    let waiting: Set<number> | undefined;
    const release: number[] = [];
    const unusable: UnusableRun[] = [];
    /** Versions that could not be read, with the reason: each read once per page. */
    const unreadable = new Map<string, string>();
    for (const row of rows) {
      let note = unreadable.get(row.version_hash);
      let shape: DagShape | undefined;
      if (note === undefined) {
        try {
          shape = await shapeOf(row.version_hash);
        } catch (err) {
          if (!isUnusableVersion(err)) throw err;
          note = unusableVersionNote(err);
          unreadable.set(row.version_hash, note);
        }
      }
      if (!shape) {
        unusable.push({ id: Number(row.dag_run_id), versionHash: row.version_hash, reason: `this run was failed: its task "${row.task_id}" could not be released to run; ${note}` });
        continue;
      }
      const spec = shape.byId.get(row.task_id);
      if (spec?.kind === "compensate") {
        waiting ??= await runsWithAbandonedTries(tx, [...new Set(rows.map((r) => Number(r.dag_run_id)))]);
        if (waiting.has(Number(row.dag_run_id))) continue;
        // Held only for the gate: it does not wait on its previous run.
        if (!spec.dependsOnPast) {
          release.push(Number(row.id));
          continue;
        }
      }
      const status = await dependsOnPastStatus(tx, { dagId: row.dag_id, logicalDate: row.logical_date }, row.task_id, shape);
      if (status.passed) release.push(Number(row.id));
    }
    if (release.length > 0) {
      await tx.query(`UPDATE task_instance SET state = 'queued', queued_at = ? WHERE id IN (${inList(release)})`, [now, ...release]);
    }
    return { released: release.length, unusable, scanned: locked.length, lastId: Number(locked[locked.length - 1]!.id) };
  });
}
