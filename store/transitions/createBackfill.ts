// createBackfill — records a backfill request: one `backfill` row and one `backfill_date` row per
// logical date, in processing order (sort_ordinal). No dag run is created here: the scheduler
// creates them lazily (advanceBackfills), never more than max_active_runs active at once.
// Only dates whose data interval has ended by `now` are recorded (planBackfillDates), so the
// runs advanceBackfills creates later never cover an open interval. A dry run reads the DAG's
// existing runs in the range and returns what would happen to each date, writing nothing.
// locks: the new rows only (one transaction; dates inserted 1,000 per statement).
// decides: planBackfillDates / decideBackfillDate (scheduler/backfillPlan.ts).
// outcomes: the backfill's id, or the dry-run plan; BATON_DAG_NOT_FOUND, BATON_DAG_INACTIVE,
//   BATON_INVALID_DATE, BATON_BACKFILL_INVALID_RANGE, BATON_BACKFILL_NO_SCHEDULE,
//   BATON_BACKFILL_TOO_LARGE, BATON_BACKFILL_FUTURE_DATES, BATON_BACKFILL_INVALID_DIRECTION,
//   BATON_BACKFILL_INVALID_REPROCESS, BATON_BACKFILL_NO_DATES, BATON_BACKFILL_ALREADY_RUNNING.
// one per DAG: as Airflow (AlreadyRunningBackfill), a DAG has at most one unfinished backfill
//   (running, paused, cancelling). Two would share its dates: each skips as in_flight the dates
//   the other's runs hold, so a cancel (or failure) of one leaves them undone while the other
//   reports them done. A plain read refuses the common case before the transaction (nothing
//   written); the check that decides runs last in the create transaction, under the dag row's lock
//   (FOR UPDATE, held only from the check to the commit: claims lock that row too), so two
//   creates at once serialize on it and the second sees the first's committed backfill; the lock
//   also re-checks the DAG, so one deleted since the plan was read gets no orphan backfill.
import { BatonError } from "../../core/errors.ts";
import { BACKFILL_HARD_LIMIT, decideBackfillDate, planBackfillDates, type DateDecision, type ReprocessBehavior } from "../../scheduler/backfillPlan.ts";
import { parseDagDate, parseTimetable, type DagRunInfo, type Timetable } from "../../scheduler/timetable.ts";
import type { Db, Queryable, ResultSetHeader, RowDataPacket } from "../db.ts";
import { loadStructure } from "../versions.ts";

export interface NewBackfill {
  dagId: string;
  /** ISO 8601; a date without an offset is a wall-clock time in the DAG's time zone. */
  fromDate: string;
  toDate: string;
  reprocessBehavior: ReprocessBehavior;
  maxActiveRuns: number;
  runBackwards: boolean;
  dagRunConf: Record<string, unknown>;
  /** Allow more than maxRuns dates. */
  force: boolean;
}

export interface DryRunDate {
  logicalDate: Date;
  dataIntervalStart: Date;
  dataIntervalEnd: Date;
  decision: DateDecision;
  /** Runs that exist for the date (run ids, oldest first). */
  existingRuns: string[];
}

async function planFor(db: Db, now: Date, req: NewBackfill, maxRuns: number): Promise<{ dates: DagRunInfo[]; from: Date; to: Date; versionHash: string }> {
  const [dags] = await db.pool.query<RowDataPacket[]>(
    "SELECT dag_id, latest_version_hash, is_active, schedule, timezone, start_date FROM dag WHERE dag_id = ?",
    [req.dagId],
  );
  const dag = dags[0];
  if (!dag || !dag.latest_version_hash) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.dagId}" not found`);
  if (!dag.is_active) throw new BatonError("BATON_DAG_INACTIVE", `DAG "${req.dagId}" is not active: its file was removed or no longer defines it`);
  const parse = (value: string, field: "from_date" | "to_date") => {
    try {
      return parseDagDate(value, dag.timezone, field === "from_date" ? "startDate" : "endDate");
    } catch {
      throw new BatonError("BATON_INVALID_DATE", `${field} "${value}" is not a valid date; use ISO 8601 like "2026-01-01" or "2026-01-01T00:00:00Z"`);
    }
  };
  const from = parse(req.fromDate, "from_date");
  const to = parse(req.toDate, "to_date");
  if (from.getTime() > to.getTime()) {
    throw new BatonError(
      "BATON_BACKFILL_INVALID_RANGE",
      // Named in both forms, the API's field and the CLI's flag: a reversed range is refused with run_backwards too.
      `from_date ${from.toISOString()} is after to_date ${to.toISOString()}: the range is from_date <= to_date (--from <= --to) ` +
        "in either direction; to process newest first, keep it so and set run_backwards: true (--backwards)",
    );
  }
  let timetable: Timetable;
  try {
    timetable = parseTimetable(dag.schedule, dag.timezone);
  } catch (err) {
    throw new BatonError("BATON_BACKFILL_NO_SCHEDULE", `DAG "${req.dagId}" has a schedule that cannot be read: ${(err as Error).message}`);
  }
  if (timetable.kind === "manual") {
    throw new BatonError("BATON_BACKFILL_NO_SCHEDULE", `DAG "${req.dagId}" has no schedule (schedule: null), so it has no logical dates to backfill`);
  }
  // Airflow refuses a non-periodic timetable (DagNonPeriodicScheduleException): @once has one
  // date, which a manual run with that logical_date re-does.
  if (timetable.kind === "once") {
    throw new BatonError("BATON_BACKFILL_NO_SCHEDULE", `DAG "${req.dagId}" runs @once, not on a periodic schedule, so it has no dates to backfill`);
  }
  // dependsOnPast (waitForDownstream implies it in the stored structure) chains each date to the
  // one before it. Airflow refuses, as here: backwards, the newest date would run first, its
  // previous run not there yet ("no previous run" passes), so the chain would be ignored; and with
  // reprocess none a failed date stays failed, so every later date would wait on it for ever.
  // The check reads the latest version, the one advanceBackfills creates the runs with.
  const withPast = (await loadStructure(db.pool, dag.latest_version_hash)).tasks.filter((t) => t.dependsOnPast).map((t) => t.taskId);
  if (withPast.length > 0 && req.runBackwards) {
    throw new BatonError(
      "BATON_BACKFILL_INVALID_DIRECTION",
      `DAG "${req.dagId}" has tasks with dependsOnPast (${withPast.join(", ")}): a backfill of it cannot run backwards, each date waits on the one before it`,
    );
  }
  if (withPast.length > 0 && req.reprocessBehavior === "none") {
    throw new BatonError(
      "BATON_BACKFILL_INVALID_REPROCESS",
      `DAG "${req.dagId}" has tasks with dependsOnPast (${withPast.join(", ")}): reprocess_behavior must be failed or completed, ` +
        "or a failed date would stay failed and every later date wait on it",
    );
  }
  const planned = planBackfillDates(timetable, { from, to, dagStartDate: dag.start_date ?? null, now }, {
    limit: req.force ? Math.max(maxRuns, BACKFILL_HARD_LIMIT) : maxRuns,
    backwards: req.runBackwards,
  });
  if (planned.truncated && req.force) {
    throw new BatonError("BATON_BACKFILL_TOO_LARGE", `the range yields more than ${Math.max(maxRuns, BACKFILL_HARD_LIMIT)} runs, too many even with force; split it`);
  }
  if (planned.truncated) {
    throw new BatonError(
      "BATON_BACKFILL_TOO_LARGE",
      `the range yields more than ${maxRuns} runs (BATON_BACKFILL_MAX_RUNS); narrow it, split it, or send force: true`,
    );
  }
  // Airflow refuses a range wholly in the future ("Backfill cannot be executed for future dates");
  // so is one whose every date is still open: an empty backfill would look done and do nothing.
  if (planned.dates.length === 0 && (planned.firstOpen || from.getTime() >= now.getTime())) {
    const first = planned.firstOpen ? `; its first date ${planned.firstOpen.logicalDate.toISOString()} ends at ${planned.firstOpen.dataIntervalEnd.toISOString()}` : "";
    throw new BatonError(
      "BATON_BACKFILL_FUTURE_DATES",
      `no logical date from ${from.toISOString()} to ${to.toISOString()} has a data interval that has ended by now (${now.toISOString()})${first}. ` +
        "A backfill replays past intervals; the scheduler runs the others when they end",
    );
  }
  // Airflow refuses a range with no run to create ("No runs to create for Dag"): a past range
  // between two dates of the schedule (Tuesday to Thursday of a Monday DAG) would be recorded as
  // a backfill of nothing, reported running until a tick completed it.
  if (planned.dates.length === 0) {
    throw new BatonError(
      "BATON_BACKFILL_NO_DATES",
      `no logical date of "${dag.schedule}" from ${from.toISOString()} to ${to.toISOString()} (both inclusive, in ${dag.timezone}): nothing to backfill; widen the range`,
    );
  }
  return { dates: planned.dates, from, to, versionHash: dag.latest_version_hash };
}

/** What the backfill would do to each date now, writing nothing. */
export async function dryRunBackfill(db: Db, now: Date, req: NewBackfill, maxRuns: number): Promise<{ from: Date; to: Date; dates: DryRunDate[] }> {
  const { dates, from, to } = await planFor(db, now, req, maxRuns);
  // ix_dag_run_dag_logical (dag_id, logical_date): one range read, no locks.
  const [runs] = await db.pool.query<RowDataPacket[]>(
    `SELECT id, run_id, state, logical_date, replaced_by_backfill_id FROM dag_run
      WHERE dag_id = ? AND logical_date BETWEEN ? AND ? ORDER BY id`,
    [req.dagId, from, to],
  );
  const byDate = new Map<number, RowDataPacket[]>();
  for (const r of runs) {
    const key = (r.logical_date as Date).getTime();
    byDate.set(key, [...(byDate.get(key) ?? []), r]);
  }
  return {
    from,
    to,
    dates: dates.map((d) => {
      const existing = byDate.get(d.logicalDate.getTime()) ?? [];
      return {
        logicalDate: d.logicalDate,
        dataIntervalStart: d.dataIntervalStart,
        dataIntervalEnd: d.dataIntervalEnd,
        decision: decideBackfillDate(
          req.reprocessBehavior,
          existing.map((r) => ({ id: Number(r.id), state: r.state, replaced: r.replaced_by_backfill_id !== null })),
        ),
        existingRuns: existing.map((r) => r.run_id as string),
      };
    }),
  };
}

/** The DAG's unfinished backfill, if any (ix_backfill_dag (dag_id, …): the DAG's few backfills). */
async function unfinishedBackfill(q: Queryable, dagId: string, except: number): Promise<RowDataPacket | undefined> {
  const [others] = await q.query<RowDataPacket[]>(
    "SELECT id, state FROM backfill WHERE dag_id = ? AND id <> ? AND state IN ('running', 'paused', 'cancelling') ORDER BY id LIMIT 1",
    [dagId, except],
  );
  return others[0];
}

function alreadyRunning(dagId: string, other: RowDataPacket): BatonError {
  return new BatonError(
    "BATON_BACKFILL_ALREADY_RUNNING",
    `DAG "${dagId}" has an unfinished backfill ${other.id} (${other.state}); a DAG has one backfill at a time, as in Airflow: ` +
      `wait for it to complete, or cancel it (POST /api/v1/backfills/${other.id}/cancel), then create this one`,
  );
}

export async function createBackfill(db: Db, now: Date, req: NewBackfill, maxRuns: number): Promise<{ id: number; totalDates: number }> {
  const { dates, from, to } = await planFor(db, now, req, maxRuns);
  // The common refusal, read without a lock before anything is written: a refused create of
  // 100,000 dates would otherwise insert them all and roll them back. The locked check below
  // still decides for two creates at once.
  const unfinished = await unfinishedBackfill(db.pool, req.dagId, 0);
  if (unfinished) throw alreadyRunning(req.dagId, unfinished);
  return db.tx(async (tx) => {
    const [res] = await tx.query<ResultSetHeader>(
      `INSERT INTO backfill (dag_id, from_date, to_date, reprocess_behavior, max_active_runs, run_backwards, dag_run_conf, state,
                             total_dates, next_ordinal, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, 0, ?, ?)`,
      [req.dagId, from, to, req.reprocessBehavior, req.maxActiveRuns, req.runBackwards ? 1 : 0, JSON.stringify(req.dagRunConf), dates.length, now, now],
    );
    const id = res.insertId;
    for (let i = 0; i < dates.length; i += 1000) {
      const chunk = dates.slice(i, i + 1000);
      await tx.query(
        `INSERT INTO backfill_date (backfill_id, sort_ordinal, logical_date, data_interval_start, data_interval_end) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`,
        chunk.flatMap((d, j) => [id, i + j, d.logicalDate, d.dataIntervalStart, d.dataIntervalEnd]),
      );
    }
    // Last, so the dag row is locked only until the commit (see "one per DAG" above).
    const [[dag]] = await tx.query<RowDataPacket[]>("SELECT latest_version_hash FROM dag WHERE dag_id = ? FOR UPDATE", [req.dagId]);
    if (!dag?.latest_version_hash) throw new BatonError("BATON_DAG_NOT_FOUND", `DAG "${req.dagId}" not found`);
    const other = await unfinishedBackfill(tx, req.dagId, id);
    if (other) throw alreadyRunning(req.dagId, other);
    return { id, totalDates: dates.length };
  });
}
