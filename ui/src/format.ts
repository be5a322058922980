// Pure helpers for the views: dates, durations, schedules, conf validation, task order, tries.
// No DOM and no fetch: unit-tested in test/ui/uiLogic.test.ts.

export function parseDate(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** "2026-05-01 14:03:22" in the viewer's time zone (or the one given). */
export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  const d = parseDate(iso);
  if (!d) return "—";
  if (!timeZone) return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  try {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
        .formatToParts(d)
        .map((p) => [p.type, p.value]),
    );
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  } catch {
    return formatDateTime(iso);
  }
}

/** The viewer's time zone (or the one given) with its offset at `at`: "Asia/Tokyo (UTC+09:00)", "UTC". */
export function zoneLabel(at: Date = new Date(), timeZone?: string): string {
  const zone = timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
  let offset = "";
  try {
    const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" }).formatToParts(at).find((p) => p.type === "timeZoneName")?.value ?? "";
    offset = name.replace(/^GMT/, "UTC").replace(/^UTC[+-]00:00$/, "UTC");
  } catch {
    return zone;
  }
  return offset === "UTC" && (zone === "UTC" || zone === "Etc/UTC") ? "UTC" : `${zone} (${offset})`;
}

/** A duration in seconds as "850 ms", "12.3 s", "4 m 05 s", "2 h 07 m", "3 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** Seconds between two ISO dates (end defaults to now). */
export function secondsBetween(start: string | null | undefined, end: string | null | undefined, now: Date = new Date()): number | null {
  const a = parseDate(start);
  if (!a) return null;
  const b = parseDate(end) ?? now;
  return Math.max(0, (b.getTime() - a.getTime()) / 1000);
}

/** "in 3 h", "in 12 m", "5 m ago", "just now". */
export function relativeTime(iso: string | null | undefined, now: Date = new Date()): string {
  const d = parseDate(iso);
  if (!d) return "";
  const diff = (d.getTime() - now.getTime()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return diff >= 0 ? "in a moment" : "just now";
  const [n, unit] = abs < 3600 ? [Math.round(abs / 60), "m"] : abs < 86_400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86_400), "d"];
  return diff >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

/** A scheduled DAG's next run: "2026-03-02 02:00 Europe/Paris · in 3 h" ("due" once the time has passed). */
export function nextRunText(dag: { next_dagrun_create_after: string | null; timezone: string; is_paused: boolean }, now: Date = new Date()): string | null {
  const at = parseDate(dag.next_dagrun_create_after);
  if (!at) return null;
  const when = `${formatDateTime(dag.next_dagrun_create_after, dag.timezone)} ${dag.timezone}`;
  if (at.getTime() > now.getTime()) return `${when} · ${relativeTime(dag.next_dagrun_create_after, now)}`;
  return `${when} · ${dag.is_paused ? "due once unpaused" : "due now"}`;
}

const PRESETS: Record<string, string> = {
  "@once": "once",
  "@hourly": "every hour",
  "@daily": "every day at 00:00",
  "@midnight": "every day at 00:00",
  "@weekly": "every Sunday at 00:00",
  "@monthly": "on the 1st of every month at 00:00",
  "@yearly": "every 1 January at 00:00",
  "@annually": "every 1 January at 00:00",
};
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const UNITS: Record<string, string> = { ms: "millisecond", s: "second", m: "minute", h: "hour", d: "day", w: "week" };

/** A schedule in words where it is a common shape; the expression itself otherwise. */
export function describeSchedule(expr: string | null | undefined): string {
  if (!expr) return "manual only";
  const e = expr.trim();
  if (PRESETS[e]) return PRESETS[e];
  const interval = /^(\d+)\s*(ms|s|m|h|d|w)$/.exec(e);
  if (interval) {
    const n = Number(interval[1]);
    const unit = UNITS[interval[2]!]!;
    return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
  }
  const f = e.split(/\s+/);
  if (f.length !== 5) return e;
  const [min, hour, dom, mon, dow] = f as [string, string, string, string, string];
  const num = (v: string) => /^\d+$/.test(v);
  if (num(min) && hour === "*" && dom === "*" && mon === "*" && dow === "*") return `every hour at :${pad(Number(min))}`;
  const step = /^\*\/(\d+)$/.exec(min);
  if (step && hour === "*" && dom === "*" && mon === "*" && dow === "*") return `every ${step[1]} minutes`;
  if (!num(min) || !num(hour) || mon !== "*") return e;
  const at = `${pad(Number(hour))}:${pad(Number(min))}`;
  if (dom === "*" && dow === "*") return `every day at ${at}`;
  if (dom === "*" && dow === "1-5") return `weekdays at ${at}`;
  if (dom === "*" && /^[0-7]$/.test(dow)) return `every ${DAYS[Number(dow) % 7]} at ${at}`;
  if (num(dom) && dow === "*") return `on day ${dom} of every month at ${at}`;
  return e;
}

export type ConfResult = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** The trigger form's conf: empty means {}; anything else must be a JSON object. */
export function parseConf(text: string): ConfResult {
  if (text.trim() === "") return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `conf is not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, error: `conf must be a JSON object like {"key": "value"}, not ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** Any JSON value (a signal payload); empty means none. */
export function parseJsonValue(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === "") return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${(err as Error).message}` };
  }
}

/** Task ids in topological order (upstream first), ties kept in the given order; cycles appended. */
export function topoOrder(tasks: { task_id: string; downstream_task_ids: string[] }[]): string[] {
  const indeg = new Map<string, number>(tasks.map((t) => [t.task_id, 0]));
  for (const t of tasks) for (const d of t.downstream_task_ids) if (indeg.has(d)) indeg.set(d, indeg.get(d)! + 1);
  const byId = new Map(tasks.map((t) => [t.task_id, t]));
  const position = new Map(tasks.map((t, i) => [t.task_id, i]));
  // A small binary heap on the original position keeps the order stable and the sort O(n log n).
  const heap: string[] = [];
  const less = (a: string, b: string) => position.get(a)! < position.get(b)!;
  const push = (id: string) => {
    heap.push(id);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const pop = (): string => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };
  for (const t of tasks) if (indeg.get(t.task_id) === 0) push(t.task_id);
  const out: string[] = [];
  while (heap.length > 0) {
    const id = pop();
    out.push(id);
    for (const d of byId.get(id)!.downstream_task_ids) {
      if (!indeg.has(d)) continue;
      const n = indeg.get(d)! - 1;
      indeg.set(d, n);
      if (n === 0) push(d);
    }
  }
  if (out.length < tasks.length) {
    const seen = new Set(out);
    for (const t of tasks) if (!seen.has(t.task_id)) out.push(t.task_id);
  }
  return out;
}

export interface TryRow {
  try_number: number;
  state: string;
  start: string | null;
  end: string | null;
  hostname: string | null;
}

const TRY_ENDS = new Set(["success", "failed", "skipped", "upstream_failed", "up_for_retry", "up_for_reschedule", "removed"]);

/**
 * The try a task instance is on: its try number, except for a reschedule-mode sensor, which
 * gives its try number back between pokes (as Airflow does; also once it is marked while it
 * waits): then the try its pokes ran as, the highest one the event log saw running.
 */
export function currentTry(tryNumber: number, events: { try_number: number | null; to_state: string }[]): number {
  let ran = 0;
  for (const e of events) if (e.to_state === "running" && e.try_number && e.try_number > ran) ran = e.try_number;
  return Math.max(tryNumber, ran);
}

/**
 * Each try of a task from its event log (transitions with try numbers): when it started
 * running, when it ended and how. The current try's row comes from the task instance itself,
 * which is fresher than the events.
 */
export function triesFromEvents(
  events: { when: string | null; try_number: number | null; to_state: string; hostname: string | null }[],
  current: { try_number: number; state: string | null; start_date: string | null; end_date: string | null; hostname: string } | null,
): TryRow[] {
  const tries = new Map<number, TryRow>();
  for (const e of events) {
    const n = e.try_number;
    if (!n || n < 1) continue;
    let row = tries.get(n);
    if (!row) tries.set(n, (row = { try_number: n, state: e.to_state, start: null, end: null, hostname: e.hostname }));
    if (e.to_state === "running" && !row.start) row.start = e.when;
    if (e.to_state === "running" || e.to_state === "deferred" || TRY_ENDS.has(e.to_state)) row.state = e.to_state;
    if (TRY_ENDS.has(e.to_state)) row.end = e.when;
    if (e.hostname) row.hostname = e.hostname;
  }
  const n = current ? currentTry(current.try_number, events) : 0;
  if (current && n > 0) {
    const row = tries.get(n) ?? { try_number: n, state: "none", start: null, end: null, hostname: null };
    row.state = current.state ?? "none";
    row.start = current.start_date ?? row.start;
    row.end = current.end_date ?? (TRY_ENDS.has(row.state) ? row.end : null);
    row.hostname = current.hostname || row.hostname;
    tries.set(n, row);
  }
  return [...tries.values()].sort((a, b) => a.try_number - b.try_number);
}

/** A label cut to the longest prefix that fits `max` pixels with an ellipsis (as `measure` measures text), and its width. */
export function fitLabel(text: string, max: number, measure: (s: string) => number): { text: string; width: number } {
  const width = measure(text);
  if (width <= max) return { text, width };
  let lo = 0;
  let hi = text.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measure(`${text.slice(0, mid)}…`) <= max) lo = mid;
    else hi = mid - 1;
  }
  const cut = `${text.slice(0, lo)}…`;
  return { text: cut, width: measure(cut) };
}

/** A short form of a content hash. */
export const shortHash = (h: string | null | undefined) => (h ? h.slice(0, 10) : "—");

/** The import errors of one DAG's file: GET /importErrors' `filename` is the DAG's `fileloc`. */
export function importErrorsOf<E extends { filename: string }>(fileloc: string | null | undefined, errors: readonly E[] | null | undefined): E[] {
  if (!fileloc || !errors) return [];
  return errors.filter((e) => e.filename === fileloc);
}

/**
 * Why the signal form of a task page is closed: the API refuses a signal to a run that is not
 * queued or running (409 BATON_DAG_RUN_FINISHED). Null while it takes one, and while the run is
 * not loaded yet.
 */
export function signalClosedNote(runState: string | null | undefined): string | null {
  if (!runState || runState === "queued" || runState === "running") return null;
  return "The run has finished: it takes no more signals.";
}

/**
 * What the confirmation of a run's "Clear failed tasks" / "Clear all tasks" says. A run whose saga
 * ended (compensation "compensated" or "compensation_failed") is not simply re-run where it
 * failed: the clear starts a new attempt (store/transitions/clearTasks.ts, README "Sagas").
 */
export function clearRunMessage(run: { state: string; compensation?: string | null }, onlyFailed: boolean): { text: string; saga: string | null } {
  const text = onlyFailed ? "Clear the run's failed and upstream-failed tasks? They run again as their next try." : "Clear every task of the run? They all run again as their next try.";
  const compensation = run.compensation;
  if (compensation !== "compensated" && compensation !== "compensation_failed") return { text, saga: null };
  return {
    text,
    saga:
      `This run is a saga whose compensation ran (${compensation.replace(/_/g, " ")}): clearing starts a new attempt. ` +
      "Its compensation task instances are deleted (the event log keeps their history) and every task whose compensation " +
      "succeeded is cleared too and runs again: what was undone is done again.",
  };
}

/**
 * What a clear did, from POST /clearTaskInstances' answer: the task instances it cleared, or that
 * there were none (`what`: "failed tasks", "tasks"), so a clear that changed nothing never reads as done.
 */
export function clearedText(answer: { task_instances: { task_id: string }[] }, what: string): string {
  const ids = answer.task_instances.map((t) => t.task_id);
  if (ids.length === 0) return `No ${what} to clear: nothing changed.`;
  const named = ids.length > 10 ? `${ids.slice(0, 10).join(", ")} and ${ids.length - 10} more` : ids.join(", ");
  return `Cleared ${ids.length} task instance${ids.length === 1 ? "" : "s"}: ${named}.`;
}
