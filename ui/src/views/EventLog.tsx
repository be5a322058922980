// The event log (GET /eventLogs): every state change of runs and task instances and every refused
// request, newest or oldest first, filtered by DAG, run, task, kind and state (all in the URL, so
// a filtered view can be linked), a page at a time with "load more", which follows the API's
// next_cursor (no row twice, none skipped). Events recorded while the page is open are counted from
// the live stream: newest first they wait behind a "show" button (the rows read so far stay put),
// oldest first they are the next "load more".
import { useEffect, useState } from "preact/hooks";
import { reportError } from "../api.ts";
import { continueAt, continueWalk, EVENT_KINDS, EVENT_STATES, eventFiltersFrom, eventLogPath, eventLogQuery, intParam, matchesEventFilters, startWalk, type EventFilters } from "../browse.ts";
import { ErrorBox, Loading, StateBadge, useAsync } from "../common.tsx";
import { listDags, listEventLogs } from "../data.ts";
import { formatDateTime } from "../format.ts";
import { useLiveEvents } from "../live.ts";
import { dagPath, navigate, runPath, taskPath } from "../router.ts";
import { stateLabel } from "../states.ts";
import type { AnyEventLog } from "../types.ts";

const PAGE = 100;
const ALL_STATES = [...new Set(EVENT_KINDS.flatMap((k) => EVENT_STATES[k]))];

export function EventLogPage({ query }: { query: URLSearchParams }) {
  const filters = eventFiltersFrom(query);
  const limit = intParam(query.get("limit"), PAGE, 1, 1000);
  const apiQuery = eventLogQuery(filters);
  const dags = useAsync(() => listDags(), []);
  const walk = useAsync(
    async (signal) => {
      const page = await listEventLogs(apiQuery, limit, null, signal);
      return startWalk(page.event_logs, page.total_entries, page.next_cursor);
    },
    [JSON.stringify(apiQuery), limit],
  );
  const [loadingMore, setLoadingMore] = useState(false);
  /** Events recorded since the rows were read, newest first: shown on demand. */
  const [arrived, setArrived] = useState(0);
  useEffect(() => setArrived(0), [JSON.stringify(apiQuery)]);

  useLiveEvents((e) => {
    if (!walk.data || !matchesEventFilters(e, filters)) return;
    // A stream opened after the page (another filter's, resuming where it was) can send again an
    // event the rows already hold.
    if (walk.data.rows.some((r) => r.event_log_id === e.event_log_id)) return;
    if (filters.newestFirst) setArrived((n) => n + 1);
    // Oldest first the walk reaches it: counted now, and "load more" is offered again at the end.
    else walk.setData((w) => w && { ...w, done: false, total: w.total + 1 });
  });

  const loadMore = async () => {
    if (!walk.data) return;
    setLoadingMore(true);
    try {
      let w = walk.data;
      // Twice at most: the last page read again (oldest first, at the end) may bring no new row
      // yet a next_cursor, when it was full.
      for (let i = 0; i < 2 && !w.done; i++) {
        const from = continueAt(w);
        const page = await listEventLogs(apiQuery, limit, from.cursor);
        const next = continueWalk(w, from, page.event_logs, page.total_entries, page.next_cursor);
        w = next.walk;
        if (next.added > 0) break;
      }
      walk.setData(() => w);
    } catch (err) {
      reportError(err);
    } finally {
      setLoadingMore(false);
    }
  };

  const w = walk.data;
  return (
    <section aria-labelledby="event-log-title">
      <div class="page-head">
        <h1 id="event-log-title">Event log</h1>
        <span class="muted event-count">{w ? `${w.rows.length} of ${w.total} event${w.total === 1 ? "" : "s"}` : ""}</span>
      </div>
      <FilterForm filters={filters} dags={dags.data?.map((d) => d.dag_id) ?? []} />
      {arrived > 0 && (
        <div class="banner warn new-events" role="status">
          {arrived} new event{arrived === 1 ? "" : "s"} since the page was loaded.{" "}
          <button
            type="button"
            class="linkish"
            onClick={() => {
              setArrived(0);
              walk.reload();
            }}
          >
            Show
          </button>
        </div>
      )}
      <ErrorBox error={walk.error} what="Could not load the event log" />
      {!w && !walk.error && <Loading what="the event log" />}
      {w && w.rows.length === 0 && <p class="muted empty">No events match these filters.</p>}
      {w && w.rows.length > 0 && (
        <div class="table-wrap">
          <table class="table small event-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col">DAG / run / task</th>
                <th scope="col">Change</th>
                <th scope="col">By</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {w.rows.map((e) => (
                <EventRow key={e.event_log_id} e={e} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {w && !w.done && (
        <div class="actions left">
          <button type="button" class="load-more" disabled={loadingMore} onClick={loadMore}>
            {loadingMore ? "Loading…" : `Load ${limit} more`}
          </button>
        </div>
      )}
    </section>
  );
}

function EventRow({ e }: { e: AnyEventLog }) {
  const index = e.map_index !== undefined && e.map_index !== null && e.map_index >= 0 ? `[${e.map_index}]` : "";
  return (
    <tr data-event-id={e.event_log_id} data-event={e.event}>
      <td class="nowrap" title={e.when ?? ""}>
        {formatDateTime(e.when)}
      </td>
      <td>{e.kind}</td>
      <td class="subject">
        {e.dag_id === null ? (
          <span class="muted">—</span>
        ) : (
          <>
            <a href={dagPath(e.dag_id)}>{e.dag_id}</a>
            {e.dag_run_id !== null && (
              <>
                {" / "}
                <a class="run-link" href={runPath(e.dag_id, e.dag_run_id)}>
                  {e.dag_run_id}
                </a>
              </>
            )}
            {e.dag_run_id !== null && e.task_id && (
              <>
                {" / "}
                <a class="task-link" href={taskPath(e.dag_id, e.dag_run_id, e.task_id, e.try_number ?? undefined)}>
                  {e.task_id}
                  {index}
                </a>
                {e.try_number ? <span class="muted"> · try {e.try_number}</span> : null}
              </>
            )}
          </>
        )}
      </td>
      <td class="change">
        {e.kind === "auth" ? (
          <span class="warn-text">refused: {e.to_state}</span>
        ) : (
          <>
            {e.from_state ? <span class="from">{stateLabel(e.from_state)}</span> : <span class="muted">created</span>} →{" "}
            <StateBadge state={e.to_state === "none" ? null : e.to_state} />
          </>
        )}
      </td>
      <td class="muted">
        {e.owner ?? ""}
        {e.hostname && <div class="small">{e.hostname}</div>}
      </td>
      <td class="detail">{e.extra ?? ""}</td>
    </tr>
  );
}

/** The filters: the selects apply at once, the ids on Enter or Apply. */
function FilterForm({ filters, dags }: { filters: EventFilters; dags: string[] }) {
  const [draft, setDraft] = useState(filters);
  const key = eventLogPath(filters);
  useEffect(() => setDraft(filters), [key]);
  const apply = (f: EventFilters) => navigate(eventLogPath(f));
  const text = (field: "runId" | "taskId") => (e: Event) => setDraft({ ...draft, [field]: (e.target as HTMLInputElement).value });
  const states = draft.kind ? EVENT_STATES[draft.kind] : ALL_STATES;
  return (
    <form
      class="toolbar event-filters"
      aria-label="Filter the event log"
      onSubmit={(e) => {
        e.preventDefault();
        apply(draft);
      }}
    >
      <select aria-label="DAG" value={draft.dagId} onChange={(e) => apply({ ...draft, dagId: (e.target as HTMLSelectElement).value })}>
        <option value="">All DAGs</option>
        {draft.dagId && !dags.includes(draft.dagId) && <option value={draft.dagId}>{draft.dagId}</option>}
        {dags.map((d) => (
          <option key={d} value={d}>
            {d}
          </option>
        ))}
      </select>
      <input type="search" aria-label="Run id" placeholder="Run id" value={draft.runId} onInput={text("runId")} />
      <input type="search" aria-label="Task id" placeholder="Task id" value={draft.taskId} onInput={text("taskId")} />
      <select aria-label="Kind" value={draft.kind} onChange={(e) => apply({ ...draft, kind: (e.target as HTMLSelectElement).value as EventFilters["kind"], state: "" })}>
        <option value="">Every kind</option>
        <option value="run">Runs</option>
        <option value="task">Task instances</option>
        <option value="auth">Refused requests</option>
      </select>
      <select aria-label="To state" value={draft.state} onChange={(e) => apply({ ...draft, state: (e.target as HTMLSelectElement).value })}>
        <option value="">Any new state</option>
        {draft.state && !states.includes(draft.state) && <option value={draft.state}>{draft.state}</option>}
        {states.map((s) => (
          <option key={s} value={s}>
            {stateLabel(s)}
          </option>
        ))}
      </select>
      <select aria-label="Order" value={draft.newestFirst ? "newest" : "oldest"} onChange={(e) => apply({ ...draft, newestFirst: (e.target as HTMLSelectElement).value === "newest" })}>
        <option value="newest">Newest first</option>
        <option value="oldest">Oldest first</option>
      </select>
      <button type="submit">Apply</button>
      {key !== "/event-log" && (
        <a class="small" href="/event-log">
          Clear filters
        </a>
      )}
    </form>
  );
}
