// Dead letters across DAGs (GET /deadLetters): task instances that failed with no try left, newest
// first, a page at a time, of one DAG or all. An operator re-drives one or the selected ones
// (POST /deadLetters/redrive by id) once confirmed; the answer says which run again and which were
// refused and why. A viewer's token sees the list only: GET /whoami says the role.
import { useEffect, useRef, useState } from "preact/hooks";
import { reportError } from "../api.ts";
import { keepListed, letterLabel, may, rangeText, redriveOutcome, selectionOf, toggled, intParam, type RedriveOutcome } from "../browse.ts";
import { Dialog, ErrorBox, Loading, useAsync, useWhoami } from "../common.tsx";
import { listDags, listDeadLetters, redriveDeadLetters } from "../data.ts";
import { formatDateTime, relativeTime } from "../format.ts";
import { useLiveEvents, useThrottled } from "../live.ts";
import { dagPath, navigate, runPath, taskPath } from "../router.ts";
import type { DeadLetter } from "../types.ts";

const PAGE = 50;

function pagePath(dagId: string, offset: number, limit: number): string {
  const params = new URLSearchParams();
  if (dagId) params.set("dag_id", dagId);
  if (offset > 0) params.set("offset", String(offset));
  if (limit !== PAGE) params.set("limit", String(limit));
  const s = params.toString();
  return `/dead-letters${s ? `?${s}` : ""}`;
}

export function DeadLetters({ query }: { query: URLSearchParams }) {
  const dagId = query.get("dag_id")?.trim() ?? "";
  const limit = intParam(query.get("limit"), PAGE, 1, 500);
  const offset = intParam(query.get("offset"), 0, 0, Number.MAX_SAFE_INTEGER);
  const canRedrive = may(useWhoami(), "redrive");
  const dags = useAsync(() => listDags(), []);
  const list = useAsync((signal) => listDeadLetters({ dagId, limit, offset }, signal), [dagId, limit, offset]);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  /** The dead letters waiting for the confirmation of their re-drive. */
  const [confirm, setConfirm] = useState<DeadLetter[] | null>(null);
  const [outcome, setOutcome] = useState<RedriveOutcome | null>(null);
  const [busy, setBusy] = useState(false);

  const letters = list.data?.dead_letters ?? [];
  const ids = letters.map((l) => l.task_instance_id);
  useEffect(() => setSelected((old) => keepListed(old, ids)), [list.data]);

  // A task failing for good, or a dead letter cleared elsewhere, changes the list.
  const refresh = useThrottled(() => list.reload(), 500);
  useLiveEvents((e) => {
    if (e.kind === "task" && (e.to_state === "failed" || e.from_state === "failed") && (!dagId || e.dag_id === dagId)) refresh();
  });

  const redrive = async (chosen: DeadLetter[]) => {
    setConfirm(null);
    setBusy(true);
    try {
      setOutcome(redriveOutcome(await redriveDeadLetters(chosen.map((l) => l.task_instance_id))));
    } catch (err) {
      reportError(err);
    } finally {
      setBusy(false);
      list.reload();
    }
  };

  const total = list.data?.total_entries ?? 0;
  const all = selectionOf(selected, ids);
  return (
    <section aria-labelledby="dead-letters-title">
      <div class="page-head">
        <h1 id="dead-letters-title">Dead letters</h1>
        <span class="muted dead-letter-count">{list.data ? `${total} task instance${total === 1 ? "" : "s"} failed with no try left` : ""}</span>
        <button type="button" class="linkish small" onClick={() => list.reload()}>
          Reload
        </button>
      </div>
      <div class="toolbar">
        <select aria-label="DAG" value={dagId} onChange={(e) => navigate(pagePath((e.target as HTMLSelectElement).value, 0, limit))}>
          <option value="">All DAGs</option>
          {/* A DAG named in the URL stays selectable while the list loads (or when it is gone). */}
          {dagId && !dags.data?.some((d) => d.dag_id === dagId) && <option value={dagId}>{dagId}</option>}
          {dags.data?.map((d) => (
            <option key={d.dag_id} value={d.dag_id}>
              {d.dag_id}
            </option>
          ))}
        </select>
        {canRedrive && (
          <button type="button" class="primary redrive-selected" disabled={busy || selected.size === 0} onClick={() => setConfirm(letters.filter((l) => selected.has(l.task_instance_id)))}>
            Re-drive selected ({selected.size})
          </button>
        )}
      </div>
      {outcome && <OutcomeCard outcome={outcome} onClose={() => setOutcome(null)} />}
      <ErrorBox error={list.error} what="Could not load the dead letters" />
      {!list.data && !list.error && <Loading what="dead letters" />}
      {list.data && total === 0 && <p class="muted empty">No dead letters{dagId ? ` of ${dagId}` : ""}: every failed task instance has a try left or was handled.</p>}
      {list.data && total > 0 && letters.length === 0 && (
        <p class="muted">
          No dead letters on this page any more. <a href={pagePath(dagId, 0, limit)}>First page</a>
        </p>
      )}
      {letters.length > 0 && (
        <div class="table-wrap">
          <table class="table dead-letter-table">
            <thead>
              <tr>
                {canRedrive && (
                  <th scope="col" class="narrow">
                    <Checkbox
                      label="Select every dead letter on this page"
                      checked={all === "all"}
                      mixed={all === "some"}
                      onChange={(on) => setSelected((old) => toggled(old, ids, on))}
                    />
                  </th>
                )}
                <th scope="col">DAG</th>
                <th scope="col">Run</th>
                <th scope="col">Task</th>
                <th scope="col">Tries</th>
                <th scope="col">Error</th>
                <th scope="col">Failed</th>
                {canRedrive && (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {letters.map((l) => (
                <tr key={l.task_instance_id} data-ti-id={l.task_instance_id} data-task-id={l.task_id} class={selected.has(l.task_instance_id) ? "selected" : ""}>
                  {canRedrive && (
                    <td>
                      <Checkbox
                        label={`Select ${letterLabel(l)}`}
                        checked={selected.has(l.task_instance_id)}
                        onChange={(on) => setSelected((old) => toggled(old, [l.task_instance_id], on))}
                      />
                    </td>
                  )}
                  <td>
                    <a class="wrap" href={dagPath(l.dag_id)}>
                      {l.dag_id}
                    </a>
                  </td>
                  <td>
                    <a class="wrap run-link" href={runPath(l.dag_id, l.dag_run_id)}>
                      {l.dag_run_id}
                    </a>
                  </td>
                  <td>
                    <a class="wrap task-link" href={taskPath(l.dag_id, l.dag_run_id, l.task_id, l.try_number)}>
                      {l.task_id}
                      {l.map_index >= 0 ? `[${l.map_index}]` : ""}
                    </a>
                  </td>
                  <td class="nowrap">
                    {l.try_number} of {l.max_tries + 1}
                  </td>
                  <td class="wide-cell">
                    {(l.error_class || l.error_code) && (
                      <div>
                        {l.error_class && <span class="muted small">{l.error_class} </span>}
                        {l.error_code && <span class="code">{l.error_code}</span>}
                      </div>
                    )}
                    {l.error_message && <pre class="error-text">{l.error_message}</pre>}
                  </td>
                  <td class="small nowrap">
                    {formatDateTime(l.failed_at)}
                    <div class="muted">{relativeTime(l.failed_at)}</div>
                  </td>
                  {canRedrive && (
                    <td class="actions-cell">
                      <button type="button" class="redrive-one" disabled={busy} onClick={() => setConfirm([l])}>
                        Re-drive
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.data && total > 0 && (
        <nav class="pager" aria-label="Pages">
          <span class="muted small">{rangeText(offset, letters.length, total)}</span>
          <button type="button" disabled={offset === 0} onClick={() => navigate(pagePath(dagId, Math.max(0, offset - limit), limit))}>
            ← Newer
          </button>
          <button type="button" disabled={offset + letters.length >= total} onClick={() => navigate(pagePath(dagId, offset + limit, limit))}>
            Older →
          </button>
        </nav>
      )}
      {confirm && <ConfirmRedrive letters={confirm} onClose={() => setConfirm(null)} onConfirm={() => redrive(confirm)} />}
    </section>
  );
}

/** A checkbox that can show "some selected" (the DOM's indeterminate, which has no attribute). */
function Checkbox({ label, checked, mixed, onChange }: { label: string; checked: boolean; mixed?: boolean; onChange: (on: boolean) => void }) {
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (ref.current) ref.current.indeterminate = !!mixed;
  }, [mixed]);
  return <input ref={ref} type="checkbox" aria-label={label} checked={checked} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />;
}

const SHOWN_IN_CONFIRM = 10;

function ConfirmRedrive({ letters, onClose, onConfirm }: { letters: DeadLetter[]; onClose: () => void; onConfirm: () => void }) {
  const n = letters.length;
  const title = n === 1 ? "Re-drive a dead letter" : `Re-drive ${n} dead letters`;
  return (
    <Dialog title={title} onClose={onClose}>
      <div class="form redrive-confirm">
        <p>
          {n === 1 ? "Clear this task instance and run it again" : `Clear these ${n} task instances and run them again`} as the next try, with its run's DAG
          version. One that is no dead letter by then (re-driven or cleared meanwhile) is refused, not run.
        </p>
        <ul class="letter-list small">
          {letters.slice(0, SHOWN_IN_CONFIRM).map((l) => (
            <li key={l.task_instance_id}>{letterLabel(l)}</li>
          ))}
          {n > SHOWN_IN_CONFIRM && <li class="muted">and {n - SHOWN_IN_CONFIRM} more</li>}
        </ul>
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" class="primary confirm-redrive" onClick={onConfirm}>
            Re-drive {n === 1 ? "it" : n}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function OutcomeCard({ outcome, onClose }: { outcome: RedriveOutcome; onClose: () => void }) {
  return (
    <div class={`card redrive-outcome ${outcome.refused.length ? "has-refused" : ""}`} role="status">
      <div class="outcome-head">
        <strong>{outcome.headline}</strong>
        <button type="button" class="icon" aria-label="Dismiss" onClick={onClose}>
          ×
        </button>
      </div>
      {outcome.redriven.length > 0 && (
        <ul class="redriven small">
          {outcome.redriven.map((r) => (
            <li key={r.id} data-ti-id={r.id}>
              <a href={taskPath(r.dagId, r.runId, r.taskId)}>{r.label}</a>
            </li>
          ))}
        </ul>
      )}
      {outcome.refused.length > 0 && (
        <>
          <div class="small">Refused:</div>
          <ul class="refused small">
            {outcome.refused.map((r) => (
              <li key={r.id} data-ti-id={r.id}>
                {r.label}: <span class="muted">{r.why}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
