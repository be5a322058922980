// advanceBackfills — the scheduler's backfill step: creates the next runs of running backfills
// (queued, run_type `backfill`; startRuns starts them even when the DAG is paused; none while the
// DAG is inactive: its dates wait), and marks
// backfills completed (every date handled, no run active) or cancelled (cancelling, no run
// active).
// locks: backfill rows via ix_backfill_state (state, id): equality on state, a range on id,
//   ORDER BY id, LIMIT, FOR UPDATE SKIP LOCKED — two schedulers split the active backfills, and
//   a backfill's runs are only ever created under its row lock, so the count of its active runs
//   (ix_dag_run_backfill (backfill_id, state), no lock: runs only leave queued/running
//   meanwhile) cannot go stale upward. Then: the runs it replaces (PK, re-checked finished), the
//   new dag_run rows, its backfill_date rows (PK).
// decides: decideBackfillDate / backfillRoom (scheduler/backfillPlan.ts).
// dates: each was planned with its data interval already ended (createBackfill), and time only
//   moves on, so no run created here covers an interval still open (and takes its date's key
//   from the scheduled run due when it ends).
// guards: ux_dag_run_automated (dag_id, automated_logical_date), shared with scheduled runs: a
//   date the scheduler (or another backfill) took meanwhile is a duplicate key, skipped as
//   `exists`, never a second run. A run being replaced is re-checked finished under its lock.
// batches: at most maxPerBackfill runs and scanPerBackfill dates per backfill per call, so one
//   10-year backfill cannot hold a transaction (or the tick) for long.
// outcomes: runs created, dates skipped, backfills completed or cancelled, and the last id seen
//   (the caller pages on with afterId).
import { RunState, RunType } from "../../core/states.ts";
import { backfillRoom, backfillRunId, decideBackfillDate, type ReprocessBehavior, type SkipReason } from "../../scheduler/backfillPlan.ts";
import { inList, type Db, type ResultSetHeader, type RowDataPacket, type Tx } from "../db.ts";
import type { PageEnd, PageOptions } from "../paging.ts";
import { isDuplicateKey } from "../rows.ts";

/** PageOptions' limit: backfills locked per transaction. */
export interface AdvanceBackfillsOptions extends PageOptions {
  /** Runs created per backfill per call. */
  maxPerBackfill?: number;
  /** Dates looked at per backfill per call (skipped dates cost no room). */
  scanPerBackfill?: number;
}

/** A page of running backfills (PageEnd) and what was done for them. */
export interface AdvancedBackfills extends PageEnd {
  created: { id: number; backfillId: number; dagId: string; runId: string }[];
  skipped: number;
  completed: number[];
}

/** Dates read at least per window (see advanceBackfills). */
const DATE_WINDOW_MIN = 16;

async function activeRuns(tx: Tx, backfillId: number): Promise<number> {
  const [[row]] = await tx.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM dag_run WHERE backfill_id = ? AND state IN ('queued', 'running')",
    [backfillId],
  );
  return Number(row!.n);
}

export async function advanceBackfills(db: Db, now: Date, options: AdvanceBackfillsOptions = {}): Promise<AdvancedBackfills> {
  const limit = Math.max(1, Math.floor(options.limit ?? 20));
  const maxPerBackfill = Math.max(1, Math.floor(options.maxPerBackfill ?? 100));
  const scanPerBackfill = Math.max(1, Math.floor(options.scanPerBackfill ?? 500));
  const afterId = options.afterId ?? 0;
  return db.tx(async (tx) => {
    const result: AdvancedBackfills = { scanned: 0, lastId: afterId, created: [], skipped: 0, completed: [] };
    const [backfills] = await tx.query<RowDataPacket[]>(
      `SELECT id, dag_id, reprocess_behavior, max_active_runs, dag_run_conf, total_dates, next_ordinal FROM backfill
        WHERE state = 'running' AND id > ? ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
      [afterId],
    );
    result.scanned = backfills.length;
    if (backfills.length === 0) return result;
    result.lastId = Number(backfills[backfills.length - 1]!.id);

    for (const b of backfills) {
      const id = Number(b.id);
      const total = Number(b.total_dates);
      let cursor = Number(b.next_ordinal);
      const active = await activeRuns(tx, id);
      if (cursor >= total) {
        if (active === 0) {
          await tx.query("UPDATE backfill SET state = 'completed', completed_at = ?, updated_at = ? WHERE id = ?", [now, now, id]);
          result.completed.push(id);
        }
        continue;
      }
      let room = backfillRoom(Number(b.max_active_runs), active, maxPerBackfill);
      if (room === 0) continue;
      const [[dag]] = await tx.query<RowDataPacket[]>("SELECT latest_version_hash, is_active FROM dag WHERE dag_id = ?", [b.dag_id]);
      // The DAG is gone, or inactive (its file removed or no longer defining it: creating a backfill
      // of it is refused, and Airflow schedules no run of an inactive DAG): its dates stay pending,
      // and it goes on once the DAG is active again (cancel the backfill to stop it).
      if (!dag?.latest_version_hash || !dag.is_active) continue;

      const skipped = new Map<SkipReason, number[]>();
      const skip = (reason: SkipReason, ordinal: number) => skipped.set(reason, [...(skipped.get(reason) ?? []), ordinal]);
      const created: { ordinal: number; runId: number }[] = [];
      // Dates in windows of about twice the room left: each call creates at most `room` runs,
      // and reading 500 dates (and their runs) per call for a room of a few took ≈ 19 % of
      // MariaDB's time in the backfill benchmark. Windows go on while dates are skipped.
      let scanned = 0;
      for (;;) {
        const window = Math.min(scanPerBackfill - scanned, Math.max(2 * room, DATE_WINDOW_MIN));
        const [dates] = await tx.query<RowDataPacket[]>(
          `SELECT sort_ordinal, logical_date, data_interval_start, data_interval_end FROM backfill_date
            WHERE backfill_id = ? AND sort_ordinal >= ? ORDER BY sort_ordinal LIMIT ${window}`,
          [id, cursor],
        );
        if (dates.length === 0) {
          // No dates left (the rows end before total_dates): the final UPDATE moves the cursor to the end.
          if (scanned === 0) cursor = total;
          break;
        }
        scanned += dates.length;
        // ix_dag_run_dag_logical (dag_id, logical_date), forced: past 200 values in the IN list
        // MariaDB estimated from statistics and read every run of the DAG instead (1,688 rows a
        // call). A plain read: what changes meanwhile is caught by the key on insert and by the
        // re-check of replaced runs under their lock.
        const [existing] = await tx.query<RowDataPacket[]>(
          `SELECT id, state, logical_date, replaced_by_backfill_id FROM dag_run FORCE INDEX (ix_dag_run_dag_logical)
            WHERE dag_id = ? AND logical_date IN (${inList(dates)})`,
          [b.dag_id, ...dates.map((d) => d.logical_date)],
        );
        const runsOn = new Map<number, RowDataPacket[]>();
        for (const r of existing) {
          const key = (r.logical_date as Date).getTime();
          runsOn.set(key, [...(runsOn.get(key) ?? []), r]);
        }
        for (const date of dates) {
          if (room === 0) break;
          const ordinal = Number(date.sort_ordinal);
          cursor = ordinal + 1;
          const runs = (runsOn.get((date.logical_date as Date).getTime()) ?? []).map((r) => ({
            id: Number(r.id),
            state: r.state as string,
            replaced: r.replaced_by_backfill_id !== null,
          }));
          const decision = decideBackfillDate(b.reprocess_behavior as ReprocessBehavior, runs);
          if (decision.action === "skip") {
            skip(decision.reason, ordinal);
            continue;
          }
          if (decision.action === "reprocess") {
            const [res] = await tx.query<ResultSetHeader>(
              `UPDATE dag_run SET replaced_by_backfill_id = ?
                WHERE id IN (${inList(decision.replace)}) AND state IN ('success', 'failed') AND replaced_by_backfill_id IS NULL`,
              [id, ...decision.replace],
            );
            if (res.affectedRows < decision.replace.length) {
              // A run of the date was cleared (or replaced) meanwhile: leave it be.
              await tx.query(`UPDATE dag_run SET replaced_by_backfill_id = NULL WHERE id IN (${inList(decision.replace)}) AND replaced_by_backfill_id = ?`, [
                ...decision.replace,
                id,
              ]);
              skip("in_flight", ordinal);
              continue;
            }
          }
          const runId = backfillRunId(id, date.logical_date as Date);
          try {
            const [res] = await tx.query<ResultSetHeader>(
              `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end,
                                    conf, external_trigger, queued_at, backfill_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
              [
                b.dag_id,
                runId,
                dag.latest_version_hash,
                RunType.Backfill,
                RunState.Queued,
                date.logical_date,
                date.data_interval_start,
                date.data_interval_end,
                b.dag_run_conf ?? "{}",
                now,
                id,
              ],
            );
            created.push({ ordinal, runId: res.insertId });
            result.created.push({ id: res.insertId, backfillId: id, dagId: b.dag_id, runId });
            room--;
          } catch (err) {
            // InnoDB undoes only the failed statement: the scheduler (or a run) took the date.
            if (!isDuplicateKey(err)) throw err;
            skip("exists", ordinal);
          }
        }
        if (room === 0 || dates.length < window || scanned >= scanPerBackfill) break;
      }
      for (const c of created) {
        await tx.query("UPDATE backfill_date SET state = 'created', dag_run_id = ? WHERE backfill_id = ? AND sort_ordinal = ?", [c.runId, id, c.ordinal]);
      }
      for (const [reason, ordinals] of skipped) {
        await tx.query(`UPDATE backfill_date SET state = 'skipped', reason = ? WHERE backfill_id = ? AND sort_ordinal IN (${inList(ordinals)})`, [
          reason,
          id,
          ...ordinals,
        ]);
        result.skipped += ordinals.length;
      }
      await tx.query("UPDATE backfill SET next_ordinal = ?, updated_at = ? WHERE id = ?", [cursor, now, id]);
    }
    return result;
  });
}

/** Cancelling backfills whose runs have all ended become cancelled. */
export async function finishCancelledBackfills(db: Db, now: Date, limit = 100): Promise<number[]> {
  return db.tx(async (tx) => {
    const [rows] = await tx.query<RowDataPacket[]>(
      `SELECT id FROM backfill WHERE state = 'cancelling' ORDER BY id LIMIT ${Math.max(1, Math.floor(limit))} FOR UPDATE SKIP LOCKED`,
    );
    const done: number[] = [];
    for (const r of rows) {
      if ((await activeRuns(tx, Number(r.id))) > 0) continue;
      await tx.query("UPDATE backfill SET state = 'cancelled', completed_at = ?, updated_at = ? WHERE id = ?", [now, now, Number(r.id)]);
      done.push(Number(r.id));
    }
    return done;
  });
}
