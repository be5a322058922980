// One run: state, conf, version, a Gantt chart of its task tries, its event log, and actions
// (mark failed, clear failed tasks, clear all: for a token whose role may). Follows the live stream.
import { useMemo, useState } from "preact/hooks";
import { eventLogPath, may } from "../browse.ts";
import { Dialog, ErrorBox, JsonView, Loading, StateBadge, useAsync, useToastedAction, useWhoami } from "../common.tsx";
import { clearTasks, failRun, getDag, getRun, recentEvents, runTaskInstances, structureOf } from "../data.ts";
import { clearedText, clearRunMessage, formatDateTime, formatDuration, parseDate, secondsBetween, shortHash, topoOrder } from "../format.ts";
import { useLiveEvents, useThrottled } from "../live.ts";
import { dagPath, taskPath } from "../router.ts";
import { isActiveRun, stateLabel, stateOf } from "../states.ts";
import type { TaskInstance } from "../types.ts";
import { DagHeader } from "./DagPage.tsx";

export function RunView({ dagId, runId }: { dagId: string; runId: string }) {
  const dag = useAsync(() => getDag(dagId), [dagId]);
  const run = useAsync(() => getRun(dagId, runId), [dagId, runId]);
  const tis = useAsync(() => runTaskInstances(dagId, runId), [dagId, runId]);
  const events = useAsync(() => recentEvents({ dag_id: dagId, dag_run_id: runId }, 300), [dagId, runId]);
  const structure = useAsync(async () => (run.data ? structureOf(dagId, run.data.dag_version) : null), [dagId, run.data?.dag_version]);
  const who = useWhoami();
  const [busy, act] = useToastedAction(() => refresh());
  /** The clear waiting for its confirmation: only the failed tasks, or all. */
  const [confirmClear, setConfirmClear] = useState<{ onlyFailed: boolean } | null>(null);

  const refresh = useThrottled(() => {
    run.reload();
    tis.reload();
    events.reload();
  }, 300);
  useLiveEvents((e) => {
    if (e.dag_id === dagId && e.dag_run_id === runId) refresh();
  });

  const order = useMemo(() => {
    if (!tis.data) return [];
    const pos = new Map(structure.data ? topoOrder(structure.data.tasks).map((id, i) => [id, i]) : []);
    return [...tis.data].sort((a, b) => {
      const sa = parseDate(a.start_date)?.getTime() ?? Infinity;
      const sb = parseDate(b.start_date)?.getTime() ?? Infinity;
      return sa - sb || (pos.get(a.task_id) ?? 1e9) - (pos.get(b.task_id) ?? 1e9) || a.task_id.localeCompare(b.task_id);
    });
  }, [tis.data, structure.data]);


  if (run.error) return <ErrorBox error={run.error} what={`Could not load run ${runId}`} />;
  const r = run.data;
  return (
    <section>
      {dag.data && <DagHeader dag={dag.data} onChange={(d) => dag.setData(() => d)} />}
      <nav class="crumbs" aria-label="Breadcrumbs">
        <a href={dagPath(dagId)}>{dagId}</a> / <span>run</span>
      </nav>
      {!r && <Loading what="the run" />}
      {r && (
        <>
          <div class="page-head">
            <h2 class="run-title">{r.dag_run_id}</h2>
            <StateBadge state={r.state} />
            {r.compensation && <span class="muted small">compensation: {r.compensation}</span>}
          </div>
          {(may(who, "failRun") || may(who, "clear")) && (
            <div class="actions left run-actions">
              {may(who, "failRun") && (
                <button type="button" class="danger" disabled={busy || !isActiveRun(r.state)} onClick={() => act("Run marked failed", () => failRun(dagId, runId))}>
                  Mark failed
                </button>
              )}
              {may(who, "clear") && (
                <>
                  <button type="button" disabled={busy || isActiveRun(r.state)} onClick={() => setConfirmClear({ onlyFailed: true })}>
                    Clear failed tasks
                  </button>
                  <button type="button" disabled={busy || !tis.data?.length} onClick={() => setConfirmClear({ onlyFailed: false })}>
                    Clear all tasks
                  </button>
                </>
              )}
            </div>
          )}
          {confirmClear && (
            <ClearDialog
              message={clearRunMessage(r, confirmClear.onlyFailed)}
              onlyFailed={confirmClear.onlyFailed}
              onClose={() => setConfirmClear(null)}
              onConfirm={() => {
                const { onlyFailed } = confirmClear;
                setConfirmClear(null);
                if (onlyFailed) act((answer) => clearedText(answer, "failed tasks"), () => clearTasks(dagId, runId, undefined, { onlyFailed: true }));
                else act((answer) => clearedText(answer, "tasks"), () => clearTasks(dagId, runId, (tis.data ?? []).map((t) => t.task_id), { onlyFailed: false }));
              }}
            />
          )}
          <div class="cards">
            <dl class="card facts">
              <dt>Type</dt>
              <dd>{r.run_type}</dd>
              <dt>Logical date</dt>
              <dd>{formatDateTime(r.logical_date)}</dd>
              <dt>Data interval</dt>
              <dd>
                {formatDateTime(r.data_interval_start)} → {formatDateTime(r.data_interval_end)}
              </dd>
              <dt>Queued</dt>
              <dd>{formatDateTime(r.queued_at)}</dd>
              <dt>Started</dt>
              <dd>{formatDateTime(r.start_date)}</dd>
              <dt>Ended</dt>
              <dd>{formatDateTime(r.end_date)}</dd>
              <dt>Duration</dt>
              <dd>{formatDuration(secondsBetween(r.start_date, r.end_date))}</dd>
              <dt>Version</dt>
              <dd>
                <code title={r.dag_version}>{shortHash(r.dag_version)}</code>
              </dd>
              {r.note && (
                <>
                  <dt>Note</dt>
                  <dd>{r.note}</dd>
                </>
              )}
            </dl>
            <div class="card">
              <h3>Conf</h3>
              <JsonView value={r.conf} />
            </div>
          </div>
          <h3>Timeline</h3>
          <ErrorBox error={tis.error} what="Could not load the task instances" />
          {tis.data && <Gantt dagId={dagId} runId={runId} tis={order} runStart={r.start_date} runEnd={r.end_date} />}
          <h3>
            Event log{" "}
            <a class="small run-events-link" href={eventLogPath({ dagId, runId, taskId: "", kind: "", state: "", newestFirst: false })}>
              open in the event log
            </a>
          </h3>
          <ErrorBox error={events.error} what="Could not load the event log" />
          {events.data && (
            <div class="table-wrap">
              <table class="table small event-log">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Task</th>
                    <th scope="col">Try</th>
                    <th scope="col">From</th>
                    <th scope="col">To</th>
                    <th scope="col">By</th>
                  </tr>
                </thead>
                <tbody>
                  {[...events.data].reverse().map((e) => (
                    <tr key={e.event_log_id}>
                      <td>{formatDateTime(e.when)}</td>
                      <td>{e.task_id ? <a href={taskPath(dagId, runId, e.task_id)}>{e.task_id}</a> : <em>run</em>}</td>
                      <td>{e.try_number ?? ""}</td>
                      <td>{e.from_state ? stateLabel(e.from_state) : ""}</td>
                      <td>
                        <StateBadge state={e.to_state === "none" ? null : e.to_state} />
                      </td>
                      <td class="muted">{e.owner ?? e.hostname ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

/** Asks before a run's clear; a saga whose compensation ran is warned that the clear starts a new attempt. */
function ClearDialog({ message, onlyFailed, onClose, onConfirm }: { message: { text: string; saga: string | null }; onlyFailed: boolean; onClose: () => void; onConfirm: () => void }) {
  const title = onlyFailed ? "Clear failed tasks" : "Clear all tasks";
  return (
    <Dialog title={title} onClose={onClose}>
      <div class="form clear-confirm">
        <p>{message.text}</p>
        {message.saga && (
          <p class="banner warn saga-warning" role="alert">
            {message.saga}
          </p>
        )}
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" class="primary confirm-clear" onClick={onConfirm}>
            {message.saga ? "Start a new attempt" : title}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

/** Bars from each task's start to its end (or now), on one time axis for the run. */
function Gantt({ dagId, runId, tis, runStart, runEnd }: { dagId: string; runId: string; tis: TaskInstance[]; runStart: string | null; runEnd: string | null }) {
  const now = Date.now();
  const starts = tis.map((t) => parseDate(t.start_date)?.getTime()).filter((v): v is number => v !== undefined);
  const t0 = Math.min(parseDate(runStart)?.getTime() ?? Infinity, ...starts);
  const ends = tis.map((t) => parseDate(t.end_date)?.getTime() ?? (t.start_date ? now : undefined)).filter((v): v is number => v !== undefined);
  const t1 = Math.max(parseDate(runEnd)?.getTime() ?? 0, ...ends, t0 + 1000);
  if (!Number.isFinite(t0)) return <p class="muted">No task has started yet.</p>;
  const span = t1 - t0;
  return (
    <div class="gantt" role="list" aria-label="Task timeline">
      <div class="gantt-axis muted small" aria-hidden="true">
        <span>{formatDateTime(new Date(t0).toISOString())}</span>
        <span>{formatDuration(span / 1000)}</span>
      </div>
      {tis.map((ti) => {
        const s = parseDate(ti.start_date)?.getTime();
        const e = parseDate(ti.end_date)?.getTime() ?? now;
        const left = s === undefined ? 0 : ((s - t0) / span) * 100;
        const width = s === undefined ? 0 : Math.max(0.4, ((e - s) / span) * 100);
        return (
          <div class="gantt-row" role="listitem" key={ti.task_id}>
            <a class="gantt-name" href={taskPath(dagId, runId, ti.task_id)} title={ti.task_id}>
              {ti.task_id}
            </a>
            <div class="gantt-track">
              {s !== undefined && (
                <span
                  class={`gantt-bar s-${stateOf(ti.state)}`}
                  style={{ left: `${left}%`, width: `${width}%` }}
                  title={`${ti.task_id}: ${stateLabel(ti.state)}, ${formatDuration(ti.duration ?? (e - s) / 1000)}`}
                />
              )}
            </div>
            <span class="gantt-dur muted small">{s !== undefined ? formatDuration(ti.duration ?? (e - s) / 1000) : stateLabel(ti.state)}</span>
          </div>
        );
      })}
    </div>
  );
}
