// Pure helpers for the pages: what the token's role may do (every page's actions); for the Dead
// letters and Event log pages, row selection, a re-drive's outcome in words, the event log's
// filters and its load-more walk (by cursor).
// No DOM and no fetch: unit-tested in test/ui/uiLogic.test.ts.
import type { AnyEventLog, RedriveAnswer, Whoami } from "./types.ts";

export type Role = Whoami["role"];

/** core/roles.ts's order (a unit test holds them together): a role may do what a lower one may. */
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/**
 * Whether to offer what needs the role `needs`. Undefined: not known yet, so nothing is offered
 * before the answer (no button that appears and then goes). Null: a server without GET /whoami,
 * which cannot say: offered, as every action was before (the API still answers 403). A role this
 * UI does not know gets nothing.
 */
export function mayAct(who: Whoami | null | undefined, needs: Role): boolean {
  if (who === undefined) return false;
  if (who === null) return true;
  const has = RANK[who.role];
  return has !== undefined && has >= RANK[needs];
}

/**
 * What the pages let a token change, each with the routes it calls (api/routes) and the role they
 * need: POST/PATCH/DELETE default to operator (core/roles.ts), and a route may ask for admin.
 * test/ui/server.test.ts sends each route with each role's token to hold this table to the API.
 */
export const ACTIONS = {
  pause: { role: "operator", routes: ["PATCH /dags/{dag_id}"] },
  trigger: { role: "operator", routes: ["POST /dags/{dag_id}/dagRuns"] },
  failRun: { role: "operator", routes: ["PATCH /dags/{dag_id}/dagRuns/{dag_run_id}"] },
  clear: { role: "operator", routes: ["POST /dags/{dag_id}/clearTaskInstances"] },
  markTask: { role: "operator", routes: ["PATCH /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", "POST /dags/{dag_id}/updateTaskInstancesState"] },
  signal: { role: "operator", routes: ["POST /dags/{dag_id}/dagRuns/{dag_run_id}/signals/{name}"] },
  // Its dry run too: the API has one route for both.
  createBackfill: { role: "operator", routes: ["POST /backfills"] },
  controlBackfill: { role: "operator", routes: ["POST /backfills/{backfill_id}/pause", "POST /backfills/{backfill_id}/unpause", "POST /backfills/{backfill_id}/cancel"] },
  redrive: { role: "operator", routes: ["POST /deadLetters/redrive"] },
} as const satisfies Record<string, { role: Role; routes: readonly string[] }>;
export type Action = keyof typeof ACTIONS;

/** Whether to offer `action` to the token (see mayAct for an unknown role). */
export function may(who: Whoami | null | undefined, action: Action): boolean {
  return mayAct(who, ACTIONS[action].role);
}

/** A whole number from the page's URL, within bounds; the default when absent or not a number. */
export function intParam(text: string | null, fallback: number, min: number, max: number): number {
  if (text === null || !/^\d+$/.test(text.trim())) return fallback;
  return Math.min(max, Math.max(min, Number(text)));
}

/** "1–50 of 120" for a page of `shown` rows starting at `offset`. */
export function rangeText(offset: number, shown: number, total: number): string {
  if (shown === 0) return `0 of ${total}`;
  return `${offset + 1}–${offset + shown} of ${total}`;
}

/** The selection with `ids` checked (on) or unchecked. */
export function toggled(selected: ReadonlySet<number>, ids: readonly number[], on: boolean): Set<number> {
  const next = new Set(selected);
  for (const id of ids) {
    if (on) next.add(id);
    else next.delete(id);
  }
  return next;
}

/** The selection without what is no longer listed (re-driven, or gone after a refresh). */
export function keepListed(selected: ReadonlySet<number>, listed: readonly number[]): Set<number> {
  const shown = new Set(listed);
  return new Set([...selected].filter((id) => shown.has(id)));
}

/** How many of `ids` are selected: the "select all" box is checked, mixed or clear. */
export function selectionOf(selected: ReadonlySet<number>, ids: readonly number[]): "all" | "some" | "none" {
  const n = ids.filter((id) => selected.has(id)).length;
  return n === 0 ? "none" : n === ids.length ? "all" : "some";
}

/** dag / run / task[index], as the pages name a task instance. */
export function letterLabel(l: { dag_id: string | null; dag_run_id: string | null; task_id: string | null; map_index?: number | null; task_instance_id: number }): string {
  if (!l.dag_id || !l.dag_run_id || !l.task_id) return `task instance ${l.task_instance_id}`;
  const index = l.map_index !== undefined && l.map_index !== null && l.map_index >= 0 ? `[${l.map_index}]` : "";
  return `${l.dag_id} / ${l.dag_run_id} / ${l.task_id}${index}`;
}

/** Why a task instance named in a re-drive was no dead letter (README: POST /deadLetters/redrive). */
const NOT_DEAD_LETTER: Record<string, (state: string | null) => string> = {
  not_found: () => "no task instance has this id (its run was deleted?)",
  other_dag: () => "it is of another DAG",
  not_failed: (state) => `it is no longer failed${state ? ` (it is ${state.replace(/_/g, " ")})` : ""}: re-driven or cleared meanwhile`,
  failed_by_operator: () => "an operator failed it (a run cancel or a mark): clear it to run it again",
  compensating: () => "its run's saga handles its failure",
  replaced: () => "a backfill replaced its run",
  changed: () => "it failed again after the re-drive read it: re-drive it again",
};

/** Why a re-drive left a dead letter it chose (decided under its run's lock). */
const SKIPPED: Record<string, string> = {
  replaced: "a backfill replaced its run meanwhile",
  compensating: "its run's saga started meanwhile",
  changed: "it was no longer failed (cleared or marked meanwhile)",
};

export interface RedriveOutcome {
  headline: string;
  redriven: { id: number; dagId: string; runId: string; taskId: string; label: string }[];
  refused: { id: number; label: string; why: string }[];
}

/** A re-drive's answer as the page shows it: what runs again, and each refusal with its reason. */
export function redriveOutcome(answer: RedriveAnswer): RedriveOutcome {
  const redriven = answer.dead_letters
    .filter((l) => l.skipped === null)
    .map((l) => ({ id: l.task_instance_id, dagId: l.dag_id, runId: l.dag_run_id, taskId: l.task_id, label: letterLabel(l) }));
  const refused = [
    ...answer.dead_letters.filter((l) => l.skipped !== null).map((l) => ({ id: l.task_instance_id, label: letterLabel(l), why: SKIPPED[l.skipped!] ?? l.skipped! })),
    ...answer.not_dead_letters.map((n) => ({ id: n.task_instance_id, label: letterLabel(n), why: NOT_DEAD_LETTER[n.reason]?.(n.state) ?? n.reason })),
  ];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const headline =
    redriven.length === 0
      ? `Nothing re-driven${refused.length ? `: ${plural(refused.length, "task instance")} refused` : ""}.`
      : `Re-driven: ${plural(redriven.length, "dead letter")}, cleared to run again${refused.length ? `; ${refused.length} refused` : ""}.`;
  return { headline, redriven, refused };
}

/** The event log's kinds and the states each records (`<kind>:<to_state>` events). */
export const EVENT_KINDS = ["run", "task", "auth"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
/**
 * The API filters events by their full names only (`event`, `included_events`), so "every task
 * event" is sent as every task state's event. These are core/states.ts's run and task states and
 * the refusals of api/auth.ts; a unit test holds them to core's lists.
 */
export const EVENT_STATES: Record<EventKind, readonly string[]> = {
  run: ["queued", "running", "success", "failed"],
  task: ["none", "scheduled", "queued", "running", "deferred", "up_for_reschedule", "up_for_retry", "success", "failed", "upstream_failed", "skipped", "removed"],
  auth: ["unauthenticated", "forbidden"],
};

export interface EventFilters {
  dagId: string;
  runId: string;
  taskId: string;
  kind: EventKind | "";
  /** The state changed to ("" any). */
  state: string;
  newestFirst: boolean;
}

/** The event log page's filters from its URL (/event-log?dag_id=…&run_id=…&kind=…&state=…&order=oldest). */
export function eventFiltersFrom(query: URLSearchParams): EventFilters {
  const kind = query.get("kind") ?? "";
  return {
    dagId: query.get("dag_id")?.trim() ?? "",
    runId: query.get("run_id")?.trim() ?? "",
    taskId: query.get("task_id")?.trim() ?? "",
    kind: (EVENT_KINDS as readonly string[]).includes(kind) ? (kind as EventKind) : "",
    state: query.get("state")?.trim() ?? "",
    newestFirst: query.get("order") !== "oldest",
  };
}

/** The page's path for these filters (only those set). */
export function eventLogPath(f: EventFilters): string {
  const params = new URLSearchParams();
  if (f.dagId) params.set("dag_id", f.dagId);
  if (f.runId) params.set("run_id", f.runId);
  if (f.taskId) params.set("task_id", f.taskId);
  if (f.kind) params.set("kind", f.kind);
  if (f.state) params.set("state", f.state);
  if (!f.newestFirst) params.set("order", "oldest");
  const s = params.toString();
  return `/event-log${s ? `?${s}` : ""}`;
}

/** GET /eventLogs' query for the filters (no paging). */
export function eventLogQuery(f: EventFilters): Record<string, string> {
  const q: Record<string, string> = {};
  if (f.dagId) q.dag_id = f.dagId;
  if (f.runId) q.run_id = f.runId;
  if (f.taskId) q.task_id = f.taskId;
  if (f.kind && f.state) q.event = `${f.kind}:${f.state}`;
  else if (f.kind) q.included_events = EVENT_STATES[f.kind].map((s) => `${f.kind}:${s}`).join(",");
  else if (f.state) {
    // A state some kind never takes would be an event that cannot exist: left out; with none left, the query matches nothing.
    const kinds = EVENT_KINDS.filter((k) => EVENT_STATES[k].includes(f.state));
    q.included_events = kinds.length ? kinds.map((k) => `${k}:${f.state}`).join(",") : `run:${f.state}`;
  }
  q.order_by = f.newestFirst ? "-event_log_id" : "event_log_id";
  return q;
}

/** Whether an event (one from the live stream) is one the filters list. */
export function matchesEventFilters(e: Pick<AnyEventLog, "dag_id" | "dag_run_id" | "task_id" | "kind" | "to_state">, f: EventFilters): boolean {
  return (
    (!f.dagId || e.dag_id === f.dagId) &&
    (!f.runId || e.dag_run_id === f.runId) &&
    (!f.taskId || e.task_id === f.taskId) &&
    (!f.kind || e.kind === f.kind) &&
    (!f.state || e.to_state === f.state)
  );
}

/**
 * The rows loaded so far by "load more", following the API's next_cursor: a page starts right
 * after the last row of the one before, so no row repeats and none is skipped however many events
 * are recorded meanwhile (newest first they are above the first page; oldest first they come
 * after the last). `next` is the last page's next_cursor, null when it was the end. `last` is
 * where that page began: the cursor it was read with (null: the first page) and the rows before
 * it. Oldest first, events recorded after the end was read are reached by reading that page again
 * from the same cursor: the same rows, then the new ones (continueAt).
 */
export interface Walk<T> {
  rows: T[];
  total: number;
  next: string | null;
  last: { cursor: string | null; kept: number };
  done: boolean;
}

export function startWalk<T>(page: readonly T[], total: number, next: string | null): Walk<T> {
  return { rows: [...page], total, next, last: { cursor: null, kept: 0 }, done: next === null };
}

/**
 * Where "load more" reads: after the last page (its next_cursor), or, once the end was read, that
 * last page again (events recorded since follow its rows). `keep`: the rows that stay before it.
 */
export function continueAt<T>(walk: Walk<T>): { cursor: string | null; keep: number } {
  return walk.next !== null ? { cursor: walk.next, keep: walk.rows.length } : { cursor: walk.last.cursor, keep: walk.last.kept };
}

/**
 * The walk with the page read at `from` (continueAt) in place of what followed `from.keep`;
 * `added` is how many rows it has more. Total: the walk's (the first page's total_entries, plus
 * the events the view counted live since) or the page's (a cursor page carries the first page's,
 * the first page read again counts anew), whichever is larger, and never below the rows shown.
 */
export function continueWalk<T>(walk: Walk<T>, from: { cursor: string | null; keep: number }, page: readonly T[], total: number, next: string | null): { walk: Walk<T>; added: number } {
  const rows = [...walk.rows.slice(0, from.keep), ...page];
  return {
    walk: { rows, total: Math.max(walk.total, total, rows.length), next, last: { cursor: from.cursor, kept: from.keep }, done: next === null },
    added: rows.length - walk.rows.length,
  };
}

/**
 * Whether the DAG page must list its runs again for the graph's `?run=` run: one named but neither
 * listed nor known missing, or an extra run listed for a name no longer given (back on the grid).
 * Not for the name whose reload just failed (a 5xx, the API down): asked again at once, it failed
 * again at once, in a loop; live events and a new name ask again.
 */
export function runsToReload(
  listed: { runs: readonly { dag_run_id: string }[]; extra: string | null; missing: { runId: string } | null },
  pinned: string | null,
  error: unknown,
  lastAskedFor: string | null | undefined,
): boolean {
  if (error && lastAskedFor === pinned) return false;
  const known = !pinned || listed.runs.some((r) => r.dag_run_id === pinned) || listed.missing?.runId === pinned;
  return !known || (listed.extra !== null && !pinned);
}
