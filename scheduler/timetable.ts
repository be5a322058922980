/**
 * Timetables: when scheduled runs happen and which data interval each covers, as in Airflow.
 * Pure functions — time is passed in, nothing here reads the clock or touches the database.
 *
 * A scheduled run covers the data interval [start, end); it is created once `end` has passed
 * (`runAfter = end`) and its logical date is `start`. `@once` runs a single time, at startDate,
 * with the empty interval [startDate, startDate].
 *
 * - cron (5 fields or a preset) is evaluated in the DAG's IANA time zone by croner. Across DST:
 *   a local time that does not exist (02:30 on a spring-forward day) fires at the first valid
 *   instant after the gap (03:00); a repeated local time fires once, at its first occurrence,
 *   for a fixed-time schedule (`30 1 * * *`), while a schedule with a wildcard hour
 *   (`0 * * * *`) fires in both repeated hours. Intervals are between consecutive fires, so a
 *   daily interval lasts 23 or 25 hours on DST days.
 * - a schedule changed since the last run: the next run starts at the new schedule's last fire
 *   at or before the last run's end, as in Airflow, unless that fire is not after the last run's
 *   logical date; then at the last run's end, so no interval is lost to a logical date in use.
 * - intervals ("30m", "1h30m", "2d") are exact durations on a grid anchored at startDate.
 * - catchup true: one run per interval since startDate, oldest first; false: only the latest
 *   complete interval (Airflow's `_skip_to_latest`). Unlike Airflow, a fixed interval with
 *   catchup false stays on its grid (Airflow uses [now - delta, now), whose logical dates
 *   drift with the scheduler's tick).
 * - endDate: no run whose interval starts after it (Airflow: `start > restriction.latest`). With
 *   catchup false, a due run whose latest complete interval starts after it is the last interval
 *   that starts by it (dueDagRunInfo), so an outage across endDate does not cancel the last run.
 */
import { Cron } from "croner";
import { parseDuration } from "../core/durations.ts";

export type Timetable =
  | { readonly kind: "manual" }
  | { readonly kind: "once" }
  | { readonly kind: "cron"; readonly expression: string; readonly timezone: string }
  | { readonly kind: "interval"; readonly everyMs: number };

export interface DataInterval {
  start: Date;
  end: Date;
}

export interface DagRunInfo {
  logicalDate: Date;
  dataIntervalStart: Date;
  dataIntervalEnd: Date;
  /** The earliest instant the run may be created: the end of its data interval. */
  runAfter: Date;
}

export interface ScheduleBounds {
  /** Required for every schedule but `null`; without it nothing is scheduled. */
  startDate: Date | null;
  endDate: Date | null;
  catchup: boolean;
}

export interface NextRunQuery extends ScheduleBounds {
  /** The data interval of the latest scheduled run, or null before the first one. */
  lastDataInterval: DataInterval | null;
  now: Date;
}

/** Raised for an invalid schedule, time zone or date; `field` and `value` name the culprit. */
export class TimetableError extends Error {
  constructor(
    readonly field: "schedule" | "timezone" | "startDate" | "endDate",
    readonly value: unknown,
    message: string,
  ) {
    super(message);
    this.name = "TimetableError";
  }
}

export const SCHEDULE_PRESETS: Readonly<Record<string, string>> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
};

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** Throws a TimetableError naming the value unless `timezone` is a known IANA time zone. */
export function assertTimezone(timezone: string): void {
  if (typeof timezone !== "string" || timezone.trim() === "") {
    throw new TimetableError("timezone", timezone, `timezone ${JSON.stringify(timezone)} is not a known IANA time zone`);
  }
  try {
    formatterFor(timezone);
  } catch {
    throw new TimetableError("timezone", timezone, `timezone "${timezone}" is not a known IANA time zone (e.g. "UTC", "Europe/Berlin")`);
  }
}

/**
 * Reads a DAG's `schedule` and `timezone`. Throws a TimetableError naming the field and the
 * value for an unknown preset, a cron expression that is not 5 valid fields or never fires,
 * an interval that is not a positive duration with a unit, or an unknown time zone.
 */
export function parseTimetable(schedule: string | null | undefined, timezone = "UTC"): Timetable {
  assertTimezone(timezone);
  if (schedule === null || schedule === undefined) return { kind: "manual" };
  if (typeof schedule !== "string") throw new TimetableError("schedule", schedule, "schedule must be a string or null");
  const text = schedule.trim();
  if (text === "@once") return { kind: "once" };
  if (text.startsWith("@")) {
    const expression = SCHEDULE_PRESETS[text];
    if (!expression) {
      throw new TimetableError(
        "schedule",
        schedule,
        `schedule "${schedule}" is not a known preset; use one of @once, ${Object.keys(SCHEDULE_PRESETS).join(", ")}`,
      );
    }
    return { kind: "cron", expression, timezone };
  }
  // An interval starts with a number and has a unit ("30m", "1h30m"); a bare number is
  // neither an interval nor a cron expression.
  if (/^\d/.test(text) && /[a-z]/i.test(text)) {
    let everyMs: number | undefined;
    try {
      everyMs = parseDuration(text, "schedule");
    } catch {
      everyMs = undefined; // not a duration: maybe a cron expression with names ("0 0 * * MON")
    }
    if (everyMs !== undefined) {
      if (everyMs <= 0) throw new TimetableError("schedule", schedule, `schedule "${schedule}" is an interval of zero; use a positive duration`);
      return { kind: "interval", everyMs };
    }
  }
  // Checked before croner, whose message ("exactly five, six, or seven space separated parts are
  // required") names forms Baton refuses: its cron has no seconds or year field.
  const fields = text === "" ? 0 : text.split(/\s+/).length;
  const fiveFields = '"minute hour day-of-month month day-of-week", e.g. "0 2 * * *"';
  if (fields === 6 || fields === 7) {
    throw new TimetableError("schedule", schedule, `schedule "${schedule}" has ${fields} fields: Baton's cron has 5 (${fiveFields}), no seconds or year field`);
  }
  if (fields !== 5) {
    throw new TimetableError(
      "schedule",
      schedule,
      `schedule "${schedule}" is not a 5-field cron expression (${fiveFields}), a preset (@once, ${Object.keys(SCHEDULE_PRESETS).join(", ")}) ` +
        `or an interval (e.g. "30m")`,
    );
  }
  let cron: Cron;
  try {
    cron = cronFor(text, timezone);
  } catch (err) {
    throw new TimetableError(
      "schedule",
      schedule,
      `schedule "${schedule}" is not a valid cron expression (${(err as Error).message.replace(/^CronPattern: /, "")})`,
    );
  }
  if (!cron.nextRun(new Date(Date.UTC(2000, 0, 1)))) {
    throw new TimetableError("schedule", schedule, `schedule "${schedule}" never fires (no date matches it)`);
  }
  return { kind: "cron", expression: text, timezone };
}

const crons = new Map<string, Cron>();

function cronFor(expression: string, timezone: string): Cron {
  const key = `${timezone}\u0000${expression}`;
  let cron = crons.get(key);
  if (!cron) {
    cron = new Cron(expression, { paused: true, timezone, mode: "5-part" });
    if (crons.size > 10_000) crons.clear();
    crons.set(key, cron);
  }
  return cron;
}

const later = (a: Date, b: Date): Date => (a.getTime() >= b.getTime() ? a : b);

/** The cron arithmetic Airflow's CronDataIntervalTimetable needs, on croner. */
class CronGrid {
  private readonly cron: Cron;
  constructor(tt: { expression: string; timezone: string }) {
    this.cron = cronFor(tt.expression, tt.timezone);
  }
  /** The first fire strictly after t. */
  next(t: Date): Date | null {
    return this.cron.nextRun(t);
  }
  /** The last fire strictly before t. */
  prev(t: Date): Date | null {
    return this.cron.previousRuns(1, t)[0] ?? null;
  }
  /** t if it is a fire, else the first fire after it. */
  alignToNext(t: Date): Date | null {
    return this.next(new Date(t.getTime() - 1));
  }
  /** t if it is a fire, else the last fire before it. */
  alignToPrev(t: Date): Date | null {
    return this.prev(new Date(t.getTime() + 1));
  }
  /** Start of the latest interval that has ended by `now`. */
  latestCompleteStart(now: Date): Date | null {
    const lastFire = this.alignToPrev(now);
    return lastFire ? this.prev(lastFire) : null;
  }
}

function interval(start: Date, end: Date): DagRunInfo {
  return { logicalDate: start, dataIntervalStart: start, dataIntervalEnd: end, runAfter: end };
}

/**
 * The data interval of a manual run at `runAfter` (its logical date), as Airflow's
 * infer_manual_data_interval: the latest complete interval of the schedule — on a cron grid
 * [the fire before the last fire, the last fire] up to runAfter (a run at 10:30 of a daily DAG
 * covers yesterday), on a fixed interval [runAfter − every, runAfter] — and zero-width for DAGs
 * without a recurring schedule.
 */
export function manualDataInterval(tt: Timetable, runAfter: Date): DataInterval {
  if (tt.kind === "cron") {
    const grid = new CronGrid(tt);
    const end = grid.alignToPrev(runAfter);
    const start = end && grid.prev(end);
    if (end && start) return { start, end };
  } else if (tt.kind === "interval") {
    return { start: new Date(runAfter.getTime() - tt.everyMs), end: runAfter };
  }
  return { start: runAfter, end: runAfter };
}

/**
 * The run after `lastDataInterval` (or the first run), following Airflow's
 * `next_dagrun_info(last_automated_data_interval, restriction)`; null when there is none
 * (manual schedule, @once already run, past endDate, no startDate).
 */
export function nextDagRunInfo(tt: Timetable, q: NextRunQuery): DagRunInfo | null {
  const { lastDataInterval: last, startDate } = q;
  if (tt.kind === "manual" || !startDate) return null;
  if (tt.kind === "once") {
    if (last) return null;
    return { logicalDate: startDate, dataIntervalStart: startDate, dataIntervalEnd: startDate, runAfter: startDate };
  }
  return runFrom(tt, last && startAfter(tt, last), q);
}

/** Where the run after `last` starts, before startDate, catchup and endDate have their say. */
function startAfter(tt: Timetable & { kind: "cron" | "interval" }, last: DataInterval): Date {
  if (tt.kind === "interval") return last.end;
  // Aligned, in case the schedule changed since the last run (Airflow's _align_to_prev) — unless
  // the fire falls on or before the logical date of a last run that covered data (a switch to a
  // coarser schedule, hourly → daily): that date is taken by it or a run before it,
  // ux_dag_run_scheduled would drop the run as a duplicate, and no run would cover the data up to
  // the next fire. The run after such a switch covers [last end, next fire) instead, off the grid
  // once. A @once run's interval is empty: nothing to go on from, so daily after it re-aligns.
  const aligned = new CronGrid(tt).alignToPrev(last.end);
  const covered = last.end.getTime() > last.start.getTime();
  return aligned && (aligned.getTime() > last.start.getTime() || !covered) ? aligned : last.end;
}

/**
 * The run starting at `from` (null: the first run), moved to startDate if before it and, without
 * catchup, to the latest complete interval; null past endDate.
 */
function runFrom(tt: Timetable & { kind: "cron" | "interval" }, from: Date | null, q: ScheduleBounds & { now: Date }): DagRunInfo | null {
  const { now, catchup, startDate, endDate } = q;
  if (!startDate) return null;
  let start: Date;
  let end: Date;
  if (tt.kind === "cron") {
    const grid = new CronGrid(tt);
    let earliest = grid.alignToNext(startDate);
    if (!earliest) return null;
    if (!catchup) {
      const latest = grid.latestCompleteStart(now);
      if (latest) earliest = later(latest, earliest);
    }
    start = from ? later(from, earliest) : earliest;
    const next = grid.next(start);
    if (!next) return null;
    end = next;
  } else {
    const every = tt.everyMs;
    start = from ? later(from, startDate) : startDate;
    if (!catchup) {
      // Skip whole missed intervals, staying on the grid of `start`.
      const skip = Math.floor((now.getTime() - start.getTime()) / every) - 1;
      if (skip > 0) start = new Date(start.getTime() + skip * every);
    }
    end = new Date(start.getTime() + every);
  }
  if (endDate && start.getTime() > endDate.getTime()) return null;
  return interval(start, end);
}

/**
 * Which run to create for a DAG whose stored next run is due. With catchup the stored
 * interval itself (every missed interval in turn); without, the latest complete interval
 * not before it — so a DAG unpaused after a week, or a scheduler back from an outage, runs
 * once for the latest interval, as Airflow does; the latest that starts by endDate when that one
 * starts after it. Null when the bounds now exclude the stored interval itself.
 */
export function dueDagRunInfo(tt: Timetable, stored: DataInterval, q: ScheduleBounds & { now: Date }): DagRunInfo | null {
  const storedInfo = interval(stored.start, stored.end);
  if (tt.kind === "manual") return null;
  if (tt.kind === "once") return { ...storedInfo, runAfter: stored.start };
  if (q.catchup) {
    if (q.endDate && stored.start.getTime() > q.endDate.getTime()) return null;
    return storedInfo;
  }
  // From the stored interval's start (on the grid, or where a schedule switch put it), on to the latest.
  const latest = runFrom(tt, stored.start, q) ?? lastIntervalStartingBy(tt, stored, q);
  if (!latest) return null;
  return latest.runAfter.getTime() <= q.now.getTime() ? latest : storedInfo;
}

/**
 * When skipping to the latest complete interval passed endDate (the scheduler was down, or the DAG
 * paused, across it): the last interval that starts by endDate, not before the stored one. Without
 * it a DAG whose stored interval was due and within its bounds would never run again: catchup false
 * skips stale intervals, not the last one the bounds allow. Null when the stored interval itself
 * starts after endDate.
 */
function lastIntervalStartingBy(tt: Timetable, stored: DataInterval, q: ScheduleBounds): DagRunInfo | null {
  const { endDate } = q;
  if (!endDate || !q.startDate || stored.start.getTime() > endDate.getTime()) return null;
  if (tt.kind === "interval") {
    const start = stored.start.getTime() + Math.floor((endDate.getTime() - stored.start.getTime()) / tt.everyMs) * tt.everyMs;
    return interval(new Date(start), new Date(start + tt.everyMs));
  }
  if (tt.kind !== "cron") return null;
  const grid = new CronGrid(tt);
  const start = later(grid.alignToPrev(endDate) ?? stored.start, stored.start);
  const end = grid.next(start);
  return end ? interval(start, end) : null;
}

/**
 * The runs whose logical date lies in [from, to], both inclusive, and whose data interval has
 * ended by `endedBy` (runAfter <= endedBy, the scheduler's own rule for creating a run), oldest
 * first, at most `limit` of them (Airflow's `iter_dagrun_infos_between` filtered as its
 * backfill's `_get_info_list` does: a run of an interval still open would take the date from
 * the scheduled run that is due when it ends). Ignores startDate, endDate and catchup, except
 * that an interval schedule stays on the grid anchored at `anchor` (the DAG's startDate). Walks
 * with `next` only: croner's previousRuns, which nextDagRunInfo needs to re-align, costs about
 * 1 ms a call — 3 s for ten years of a daily schedule. Ends grow with logical dates, so the
 * walk stops at the first interval still open.
 */
export function dagRunInfosBetween(tt: Timetable, from: Date, to: Date, anchor: Date | null, limit: number, endedBy: Date): DagRunInfo[] {
  const out: DagRunInfo[] = [];
  if (from.getTime() > to.getTime()) return out;
  if (tt.kind === "manual") return out;
  const ended = (info: DagRunInfo) => info.runAfter.getTime() <= endedBy.getTime();
  if (tt.kind === "once") {
    if (anchor && anchor.getTime() >= from.getTime() && anchor.getTime() <= to.getTime()) {
      const info = { logicalDate: anchor, dataIntervalStart: anchor, dataIntervalEnd: anchor, runAfter: anchor };
      if (ended(info)) out.push(info);
    }
    return out;
  }
  if (tt.kind === "interval") {
    const base = (anchor ?? from).getTime();
    let start = base + Math.ceil((from.getTime() - base) / tt.everyMs) * tt.everyMs;
    for (; start <= to.getTime() && out.length < limit; start += tt.everyMs) {
      const info = interval(new Date(start), new Date(start + tt.everyMs));
      if (!ended(info)) break;
      out.push(info);
    }
    return out;
  }
  const grid = new CronGrid(tt);
  let start = grid.alignToNext(from);
  while (start && start.getTime() <= to.getTime() && out.length < limit) {
    const end = grid.next(start);
    if (!end) break;
    const info = interval(start, end);
    if (!ended(info)) break;
    out.push(info);
    start = end;
  }
  return out;
}

/** Milliseconds to add to UTC to get the wall-clock time in `timezone` at instant `t`. */
export function zoneOffsetMs(t: number, timezone: string): number {
  const parts = formatterFor(timezone).formatToParts(new Date(Math.floor(t / 1000) * 1000));
  const n = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const wall = Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second"));
  return wall - Math.floor(t / 1000) * 1000;
}

/**
 * The instant of a wall-clock time in `timezone`. A time repeated by a DST fall-back is its
 * first occurrence; a time skipped by a spring-forward is the first valid instant after the
 * gap (the rule croner applies to cron fires).
 */
export function wallTimeToInstant(wallMs: number, timezone: string): Date {
  const DAY = 86_400_000;
  const candidates = [zoneOffsetMs(wallMs - DAY, timezone), zoneOffsetMs(wallMs + DAY, timezone)]
    .map((offset) => wallMs - offset)
    .filter((t) => t + zoneOffsetMs(t, timezone) === wallMs)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return new Date(candidates[0]!);
  // In a gap: find the transition, the first instant whose wall clock is past `wallMs`.
  let lo = wallMs - zoneOffsetMs(wallMs - DAY, timezone) - DAY;
  let hi = wallMs - zoneOffsetMs(wallMs + DAY, timezone) + DAY;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (mid + zoneOffsetMs(mid, timezone) >= wallMs) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?$/;
const WITH_OFFSET = /(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Reads a DAG's startDate/endDate. A Date, or an ISO 8601 string with an offset, is an
 * instant; a date or date-time without an offset ("2026-01-01", "2026-01-01T02:30") is a
 * wall-clock time in the DAG's time zone, as a naive start_date is in Airflow.
 */
export function parseDagDate(value: unknown, timezone: string, field: "startDate" | "endDate"): Date {
  if (Object.prototype.toString.call(value) === "[object Date]") {
    const d = value as Date;
    if (Number.isNaN(d.getTime())) throw new TimetableError(field, value, `${field} is an invalid Date`);
    return new Date(d.getTime());
  }
  if (typeof value !== "string") {
    throw new TimetableError(field, value, `${field} must be a Date or an ISO 8601 string like "2026-01-01", got ${JSON.stringify(value)}`);
  }
  const text = value.trim();
  const local = LOCAL_DATE.exec(text);
  if (local) {
    const [, y, mo, d, h = "0", mi = "0", s = "0", ms = "0"] = local;
    const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, "0")));
    const check = new Date(wall);
    if (
      Number.isNaN(wall) ||
      check.getUTCFullYear() !== Number(y) ||
      check.getUTCMonth() !== Number(mo) - 1 ||
      check.getUTCDate() !== Number(d) ||
      Number(h) > 23 ||
      Number(mi) > 59 ||
      Number(s) > 59
    ) {
      throw new TimetableError(field, value, `${field} "${value}" is not a valid date`);
    }
    assertTimezone(timezone);
    return wallTimeToInstant(wall, timezone);
  }
  const parsed = WITH_OFFSET.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(parsed.getTime())) {
    throw new TimetableError(field, value, `${field} "${value}" is not a valid ISO 8601 date (e.g. "2026-01-01", "2026-01-01T00:00:00Z")`);
  }
  return parsed;
}
