// The DAGs: id, schedule and next run in the DAG's time zone, paused switch, last runs as dots,
// tag filter, search, import errors banner. Run dots follow the live event stream.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { reportError } from "../api.ts";
import { may } from "../browse.ts";
import { ErrorBox, Loading, PauseSwitch, useAsync, useWhoami } from "../common.tsx";
import { listDags, listImportErrors, mapLimit, recentRuns, setPaused } from "../data.ts";
import { describeSchedule, formatDateTime, nextRunText } from "../format.ts";
import { useLiveEvents } from "../live.ts";
import { dagPath, runPath } from "../router.ts";
import { stateLabel, stateOf } from "../states.ts";
import type { Dag, DagRun } from "../types.ts";
import { TriggerDialog } from "./TriggerDialog.tsx";

const DOTS = 10;

export function DagList() {
  const who = useWhoami();
  const dags = useAsync(() => listDags(), []);
  const errors = useAsync(() => listImportErrors(), []);
  const [runs, setRuns] = useState<Map<string, DagRun[]>>(new Map());
  const [search, setSearch] = useState("");
  const [tags, setTags] = useState<Set<string>>(new Set());
  const [paused, setPausedFilter] = useState<"all" | "active" | "paused">("all");
  const [trigger, setTrigger] = useState<Dag | null>(null);
  const [showErrors, setShowErrors] = useState(false);
  const pending = useRef(new Set<string>());
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const loadRuns = async (ids: string[]) => {
    const results = await mapLimit(ids, 4, async (id) => [id, (await recentRuns(id, DOTS)).runs] as const);
    setRuns((old) => {
      const next = new Map(old);
      for (const [id, r] of results) next.set(id, r);
      return next;
    });
  };

  // Dots are loaded for the rows that come into view (a few requests, however many DAGs).
  const seen = useRef(new Set<string>());
  const queued = useRef<string[]>([]);
  const flush = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onVisible = (dagId: string) => {
    if (seen.current.has(dagId)) return;
    seen.current.add(dagId);
    queued.current.push(dagId);
    if (!flush.current) {
      flush.current = setTimeout(() => {
        flush.current = null;
        const ids = queued.current.splice(0);
        loadRuns(ids).catch(() => undefined);
      }, 30);
    }
  };
  // A reload (new token, reconnect) refreshes the dots already shown.
  useEffect(() => {
    if (dags.data && seen.current.size > 0) loadRuns([...seen.current]).catch(() => undefined);
  }, [dags.data]);

  // A run changed state: refresh that DAG's dots (batched); an unknown DAG: reload the list.
  useLiveEvents((e) => {
    if (e.kind !== "run") return;
    if (dags.data && !dags.data.some((d) => d.dag_id === e.dag_id)) {
      dags.reload();
      return;
    }
    if (!seen.current.has(e.dag_id)) return; // not in view yet: loaded when it is
    pending.current.add(e.dag_id);
    if (!timer.current) {
      timer.current = setTimeout(() => {
        timer.current = null;
        const ids = [...pending.current];
        pending.current.clear();
        loadRuns(ids).catch(() => undefined);
      }, 150);
    }
  });
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
      if (flush.current) clearTimeout(flush.current);
    },
    [],
  );

  const allTags = useMemo(() => [...new Set((dags.data ?? []).flatMap((d) => d.tags.map((t) => t.name)))].sort(), [dags.data]);
  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (dags.data ?? []).filter(
      (d) =>
        (!q || d.dag_id.toLowerCase().includes(q) || (d.description ?? "").toLowerCase().includes(q)) &&
        [...tags].every((t) => d.tags.some((x) => x.name === t)) &&
        (paused === "all" || (paused === "paused") === d.is_paused),
    );
  }, [dags.data, search, tags, paused]);

  const togglePause = async (dag: Dag, value: boolean) => {
    dags.setData((old) => old?.map((d) => (d.dag_id === dag.dag_id ? { ...d, is_paused: value } : d)));
    try {
      await setPaused(dag.dag_id, value);
    } catch (err) {
      dags.setData((old) => old?.map((d) => (d.dag_id === dag.dag_id ? { ...d, is_paused: !value } : d)));
      reportError(err);
    }
  };

  const importErrors = errors.data?.import_errors ?? [];
  return (
    <section aria-labelledby="dags-title">
      <div class="page-head">
        <h1 id="dags-title">DAGs</h1>
        <span class="muted">{dags.data ? `${shown.length} of ${dags.data.length}` : ""}</span>
      </div>
      {importErrors.length > 0 && (
        <div class="banner warn" role="status">
          <button type="button" class="linkish" aria-expanded={showErrors} onClick={() => setShowErrors(!showErrors)}>
            {importErrors.length} DAG file{importErrors.length === 1 ? "" : "s"} could not be imported
          </button>{" "}
          <a class="small" href="/import-errors">
            all import errors
          </a>
          {showErrors && (
            <ul class="import-errors">
              {importErrors.map((e) => (
                <li key={e.import_error_id}>
                  <code>
                    {e.filename}
                    {e.line ? `:${e.line}` : ""}
                  </code>{" "}
                  <span class="code">{e.code}</span>
                  <pre>{e.stack_trace}</pre>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div class="toolbar">
        <input type="search" aria-label="Search DAGs" placeholder="Search DAGs" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <select aria-label="Paused filter" value={paused} onChange={(e) => setPausedFilter((e.target as HTMLSelectElement).value as typeof paused)}>
          <option value="all">All</option>
          <option value="active">Active</option>
          <option value="paused">Paused</option>
        </select>
        <div class="tags" role="group" aria-label="Filter by tag">
          {allTags.map((t) => (
            <button
              type="button"
              key={t}
              class={`tag ${tags.has(t) ? "on" : ""}`}
              aria-pressed={tags.has(t)}
              onClick={() => {
                const next = new Set(tags);
                if (next.has(t)) next.delete(t);
                else next.add(t);
                setTags(next);
              }}
            >
              {t}
            </button>
          ))}
        </div>
      </div>
      <ErrorBox error={dags.error} what="Could not load the DAGs" />
      {!dags.data && !dags.error && <Loading what="DAGs" />}
      {dags.data && (
        <div class="table-wrap">
          <table class="table dag-table">
            <thead>
              <tr>
                <th scope="col" class="narrow">
                  <span class="sr-only">Active</span>
                </th>
                <th scope="col">DAG</th>
                <th scope="col">Schedule</th>
                <th scope="col">Last runs</th>
                <th scope="col" class="narrow">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((d) => (
                <DagRow
                  key={d.dag_id}
                  dag={d}
                  runs={runs.get(d.dag_id)}
                  onVisible={onVisible}
                  onPause={(v) => togglePause(d, v)}
                  onTrigger={may(who, "trigger") ? () => setTrigger(d) : null}
                  mayPause={may(who, "pause")}
                />
              ))}
              {shown.length === 0 && (
                <tr>
                  <td colSpan={5} class="muted">
                    {dags.data.length === 0 ? "No DAGs yet: add a DAG file to the DAG folder." : "No DAG matches the filters."}
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {trigger && <TriggerDialog dag={trigger} onClose={() => setTrigger(null)} />}
    </section>
  );
}

interface RowProps {
  dag: Dag;
  runs: DagRun[] | undefined;
  onVisible: (dagId: string) => void;
  onPause: (paused: boolean) => void;
  /** Null: no trigger offered (the token's role may not, or is not known yet). */
  onTrigger: (() => void) | null;
  mayPause: boolean;
}

function DagRow({ dag, runs, onVisible, onPause, onTrigger, mayPause }: RowProps) {
  const schedule = dag.schedule_interval?.value ?? null;
  const ref = useRef<HTMLTableRowElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        onVisible(dag.dag_id);
        io.disconnect();
      }
    }, { rootMargin: "200px" });
    io.observe(el);
    return () => io.disconnect();
  }, [dag.dag_id]);
  return (
    <tr ref={ref} data-dag-id={dag.dag_id} class={dag.is_paused ? "paused" : ""}>
      <td class="narrow">
        <PauseSwitch dagId={dag.dag_id} paused={dag.is_paused} allowed={mayPause} onChange={(active) => onPause(!active)} />
      </td>
      <td>
        <a class="dag-link" href={dagPath(dag.dag_id)}>
          {dag.dag_id}
        </a>
        {dag.has_import_errors && (
          <span class="code warn-text" title="The latest parse of this DAG's file failed">
            {" "}
            import error
          </span>
        )}
        {dag.description && <div class="muted small">{dag.description}</div>}
        <div class="tag-list">
          {dag.tags.map((t) => (
            <span key={t.name} class="tag small">
              {t.name}
            </span>
          ))}
        </div>
      </td>
      <td>
        <div>{describeSchedule(schedule)}</div>
        {schedule && nextRunText(dag) && (
          <div class="muted small next-run" title={`the next run's data interval starts ${formatDateTime(dag.next_dagrun, dag.timezone)} ${dag.timezone}`}>
            next {nextRunText(dag)}
          </div>
        )}
      </td>
      <td>
        <div class="dots" aria-label={`last runs of ${dag.dag_id}`}>
          {(runs ?? []).map((r) => (
            <a
              key={r.dag_run_id}
              href={runPath(dag.dag_id, r.dag_run_id)}
              class={`run-dot s-${stateOf(r.state)}`}
              data-state={r.state}
              title={`${r.dag_run_id}: ${stateLabel(r.state)}`}
              aria-label={`run ${r.dag_run_id}: ${stateLabel(r.state)}`}
            />
          ))}
          {runs && runs.length === 0 && <span class="muted small">no runs</span>}
          {!runs && <span class="muted small" aria-hidden="true">…</span>}
        </div>
      </td>
      <td class="narrow">
        {onTrigger && (
          <button type="button" class="icon-text" aria-label={`Trigger ${dag.dag_id}`} title={`Trigger ${dag.dag_id}`} onClick={onTrigger}>
            ▶<span class="label"> Trigger</span>
          </button>
        )}
      </td>
    </tr>
  );
}
