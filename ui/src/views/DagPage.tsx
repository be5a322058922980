// One DAG: header (schedule, paused switch, trigger) and its grid, graph and backfills tabs.
// Grid and graph share the runs and task instances, which follow the live event stream: a
// state change is applied from the event at once, then the run's task instances are refetched
// (batched) for times and try numbers.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, reportError } from "../api.ts";
import { may, runsToReload } from "../browse.ts";
import { ErrorBox, Loading, PauseSwitch, StateBadge, useAsync, useWhoami } from "../common.tsx";
import { allImportErrors, getDag, getRun, loadTasks, recentRuns, runTaskInstances, setPaused, structureOf, taskInstancesOf } from "../data.ts";
import { describeSchedule, formatDateTime, importErrorsOf, nextRunText } from "../format.ts";
import { useLiveEvents, useThrottled } from "../live.ts";
import { dagPath, navigate, runPath } from "../router.ts";
import { LEGEND, stateLabel } from "../states.ts";
import type { Dag, DagRun, TaskInstance } from "../types.ts";
import { Backfills } from "./Backfills.tsx";
import { Graph } from "./Graph.tsx";
import { Grid, tiKey } from "./Grid.tsx";
import { TriggerDialog } from "./TriggerDialog.tsx";

export type DagTab = "grid" | "graph" | "backfills";

export function DagHeader({ dag, tab, onChange }: { dag: Dag; tab?: DagTab; onChange?: (d: Dag) => void }) {
  const [trigger, setTrigger] = useState(false);
  const who = useWhoami();
  const schedule = dag.schedule_interval?.value ?? null;
  // The DAG's file fails to import now: its pages show the latest version that parsed, and say so.
  const errors = useAsync(async () => (dag.has_import_errors ? allImportErrors() : []), [dag.dag_id, dag.fileloc, dag.has_import_errors]);
  const fileErrors = importErrorsOf(dag.fileloc, errors.data);
  const toggle = async (active: boolean) => {
    onChange?.({ ...dag, is_paused: !active });
    try {
      onChange?.(await setPaused(dag.dag_id, !active));
    } catch (err) {
      onChange?.(dag);
      reportError(err);
    }
  };
  return (
    <header class="dag-head">
      <div class="dag-title">
        <PauseSwitch dagId={dag.dag_id} paused={dag.is_paused} allowed={may(who, "pause")} onChange={toggle} />
        <h1>
          <a href={dagPath(dag.dag_id)}>{dag.dag_id}</a>
        </h1>
        {dag.is_paused && <span class="muted small">paused</span>}
        {may(who, "trigger") && (
          <button type="button" class="primary trigger" onClick={() => setTrigger(true)}>
            ▶ Trigger
          </button>
        )}
      </div>
      <div class="dag-meta muted small">
        {dag.description && <span>{dag.description}</span>}
        <span>
          Schedule: {describeSchedule(schedule)}
          {schedule && nextRunText(dag) && ` · next ${nextRunText(dag)}`}
        </span>
        {dag.tags.length > 0 && <span>Tags: {dag.tags.map((t) => t.name).join(", ")}</span>}
        <span title={dag.fileloc}>File: {dag.fileloc.split("/").pop()}</span>
      </div>
      {fileErrors.map((e) => (
        <div key={e.import_error_id} class="banner warn dag-import-error" role="alert">
          <strong>This DAG's file could not be imported</strong>
          <span class="muted small"> ({formatDateTime(e.timestamp)}): these pages show the last version that parsed.</span>
          <div>
            <code>
              {e.filename}
              {e.line ? `:${e.line}` : ""}
            </code>{" "}
            <span class="code">{e.code}</span>
          </div>
          <pre>{e.message}</pre>
        </div>
      ))}
      {(
        <nav class="tabs" aria-label="DAG views">
          {(["grid", "graph", "backfills"] as const).map((t) => (
            <a key={t} href={dagPath(dag.dag_id, t === "grid" ? "" : `/${t}`)} class={tab === t ? "tab on" : "tab"} aria-current={tab === t ? "page" : undefined}>
              {t[0]!.toUpperCase() + t.slice(1)}
            </a>
          ))}
        </nav>
      )}
      {trigger && <TriggerDialog dag={dag} onClose={() => setTrigger(false)} />}
    </header>
  );
}

interface RunsData {
  runs: DagRun[];
  tis: Map<string, TaskInstance>;
  version: number;
  /** The graph's run (its URL's ?run=), listed first because it is older than the newest runs. */
  extra: string | null;
  /** The graph's run that the API does not have, with its 404. */
  missing: { runId: string; error: ApiError } | null;
}

export function DagPage({ dagId, tab, query }: { dagId: string; tab: DagTab; query: URLSearchParams }) {
  const dag = useAsync(() => getDag(dagId), [dagId]);
  const runCount = Math.max(1, Math.min(100, Number(query.get("runs")) || 25));
  const tasks = useAsync(async () => (dag.data ? loadTasks(dag.data) : null), [dagId, dag.data?.latest_version]);
  // The run the graph's URL names: loaded with the newest runs when it is not among them (an older
  // run, e.g. from its task's "Graph of this run"), so the graph never shows another run in its place.
  const pinned = tab === "graph" ? query.get("run") : null;
  const pinnedRef = useRef(pinned);
  pinnedRef.current = pinned;
  const data = useAsync<RunsData>(async () => {
    const { runs } = await recentRuns(dagId, runCount);
    const wanted = pinnedRef.current;
    let extra: string | null = null;
    let missing: RunsData["missing"] = null;
    if (wanted && !runs.some((r) => r.dag_run_id === wanted)) {
      try {
        runs.unshift(await getRun(dagId, wanted));
        extra = wanted;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
        missing = { runId: wanted, error: err };
      }
    }
    const list = await taskInstancesOf(
      dagId,
      runs.map((r) => r.dag_run_id),
    );
    return { runs, tis: new Map(list.map((ti) => [tiKey(ti.dag_run_id, ti.task_id), ti])), version: 0, extra, missing };
  }, [dagId, runCount]);
  // Another run named (not listed, not known missing), or back on the grid with an extra run: list again (the view stays meanwhile).
  const reloadAskedFor = useRef<string | null | undefined>(undefined);
  useEffect(() => {
    const d = data.data;
    if (!d || data.loading || !runsToReload(d, pinned, data.error, reloadAskedFor.current)) return;
    reloadAskedFor.current = pinned;
    data.reload();
  }, [pinned, data.data, data.loading, data.error]);

  // Live: apply each state change at once, then refetch the changed runs (run + task instances,
  // batched) for times and try numbers. Events that arrive while the whole list is loading are
  // refetched after it, so an older snapshot never hides a newer state.
  const dirtyRuns = useRef(new Set<string>());
  const duringLoad = useRef(new Set<string>());
  const seq = useRef(new Map<string, number>());
  const refreshRuns = useThrottled(() => {
    const shown = new Set(data.data?.runs.map((r) => r.dag_run_id));
    const ids = [...dirtyRuns.current].filter((id) => shown.has(id));
    dirtyRuns.current.clear();
    for (const runId of ids) {
      const n = (seq.current.get(runId) ?? 0) + 1;
      seq.current.set(runId, n);
      Promise.all([getRun(dagId, runId), runTaskInstances(dagId, runId)]).then(([run, list]) => {
        if (seq.current.get(runId) !== n) return;
        data.setData((old) => {
          if (!old) return old;
          for (const ti of list) old.tis.set(tiKey(ti.dag_run_id, ti.task_id), ti);
          return { ...old, runs: old.runs.map((r) => (r.dag_run_id === runId ? run : r)), version: old.version + 1 };
        });
      }, () => undefined);
    }
  }, 600);
  const reloadRuns = useThrottled(() => data.reload(), 400);
  useEffect(() => {
    if (data.loading || duringLoad.current.size === 0) return;
    for (const id of duringLoad.current) dirtyRuns.current.add(id);
    duringLoad.current.clear();
    refreshRuns();
  }, [data.loading]);
  useLiveEvents((e) => {
    if (e.dag_id !== dagId || (e.kind !== "run" && e.kind !== "task")) return;
    if (data.loading || !data.data) duringLoad.current.add(e.dag_run_id);
    if (!data.data) return;
    if (!data.data.runs.some((r) => r.dag_run_id === e.dag_run_id)) {
      // A new run: list the runs again. Other events of runs not shown (older ones) change nothing here.
      if (e.kind === "run" && e.from_state === null) {
        duringLoad.current.add(e.dag_run_id);
        reloadRuns();
      }
      return;
    }
    data.setData((old) => {
      if (!old) return old;
      if (e.kind === "run") {
        return { ...old, runs: old.runs.map((r) => (r.dag_run_id === e.dag_run_id ? { ...r, state: e.to_state } : r)), version: old.version + 1 };
      }
      if (!e.task_id) return old;
      const key = tiKey(e.dag_run_id, e.task_id);
      const prev = old.tis.get(key);
      old.tis.set(key, {
        ...(prev ?? { task_id: e.task_id, dag_id: e.dag_id, dag_run_id: e.dag_run_id, map_index: -1, max_tries: 0, start_date: null, end_date: null, duration: null, hostname: "", pool: "", queue: "" }),
        state: e.to_state === "none" ? null : e.to_state,
        try_number: e.try_number ?? prev?.try_number ?? 0,
      });
      return { ...old, version: old.version + 1 };
    });
    dirtyRuns.current.add(e.dag_run_id);
    refreshRuns();
  });

  if (dag.error) return <ErrorBox error={dag.error} what={`Could not load DAG ${dagId}`} />;
  if (!dag.data) return <Loading what={dagId} />;
  return (
    <section>
      <DagHeader dag={dag.data} tab={tab} onChange={(d) => dag.setData(() => d)} />
      {tab === "backfills" ? (
        <Backfills dag={dag.data} />
      ) : (
        <>
          <ErrorBox error={tasks.error ?? data.error} what="Could not load the runs" />
          {(!tasks.data || !data.data) && !tasks.error && !data.error && <Loading what="runs" />}
          {tasks.data && data.data && tab === "grid" && (
            <>
              <div class="toolbar">
                <label class="small">
                  Runs shown{" "}
                  <select value={String(runCount)} onChange={(e) => navigate(dagPath(dagId, `?runs=${(e.target as HTMLSelectElement).value}`), { replace: true })}>
                    {[10, 25, 50, 100].map((n) => (
                      <option key={n} value={String(n)}>
                        {n}
                      </option>
                    ))}
                  </select>
                </label>
                <Legend />
              </div>
              <Grid dagId={dagId} tasks={tasks.data} runs={data.data.runs} tis={data.data.tis} version={data.data.version} />
            </>
          )}
          {tasks.data && data.data && tab === "graph" && <GraphTab dag={dag.data} runs={data.data.runs} tis={data.data.tis} version={data.data.version} missing={data.data.missing} query={query} />}
        </>
      )}
    </section>
  );
}

function GraphTab({ dag, runs, tis, version, missing, query }: { dag: Dag; runs: DagRun[]; tis: Map<string, TaskInstance>; version: number; missing: RunsData["missing"]; query: URLSearchParams }) {
  const wanted = query.get("run");
  // A run the URL names is drawn or said missing, never replaced by the newest (it may be loading still).
  const run = wanted ? (runs.find((r) => r.dag_run_id === wanted) ?? null) : (runs[runs.length - 1] ?? null);
  const gone = wanted && !run && missing?.runId === wanted ? missing.error : null;
  const versionHash = run?.dag_version ?? dag.latest_version;
  const structure = useAsync(async () => (versionHash ? structureOf(dag.dag_id, versionHash) : null), [dag.dag_id, versionHash]);
  const states = useMemo(() => {
    const m = new Map<string, TaskInstance>();
    if (run) for (const ti of tis.values()) if (ti.dag_run_id === run.dag_run_id) m.set(ti.task_id, ti);
    return m;
  }, [tis, version, run?.dag_run_id]);
  return (
    <>
      <div class="toolbar">
        <label class="small">
          Run{" "}
          <select
            value={run?.dag_run_id ?? ""}
            onChange={(e) => navigate(dagPath(dag.dag_id, `/graph?run=${encodeURIComponent((e.target as HTMLSelectElement).value)}`), { replace: true })}
          >
            {runs.length === 0 && !wanted && <option value="">no runs yet</option>}
            {wanted && !run && <option value="">{`${wanted}${gone ? " (not found)" : ""}`}</option>}
            {[...runs].reverse().map((r) => (
              <option key={r.dag_run_id} value={r.dag_run_id}>
                {r.dag_run_id} ({stateLabel(r.state)})
              </option>
            ))}
          </select>
        </label>
        {run && (
          <>
            <StateBadge state={run.state} />
            <a href={runPath(dag.dag_id, run.dag_run_id)} class="small">
              run details
            </a>
          </>
        )}
        <Legend />
      </div>
      <ErrorBox error={gone} what={`Could not load run ${wanted}`} />
      {!gone && <ErrorBox error={structure.error} what="Could not load the DAG structure" />}
      {!gone && (!wanted || run) && structure.data && <Graph dagId={dag.dag_id} tasks={structure.data.tasks} runId={run?.dag_run_id ?? null} states={states} />}
      {!gone && (!structure.data || (wanted && !run)) && !structure.error && <Loading what="the graph" />}
    </>
  );
}

export function Legend() {
  return (
    <ul class="legend" aria-label="State colours">
      {LEGEND.map((s) => (
        <li key={s}>
          <span class={`swatch s-${s}`} aria-hidden="true" />
          {stateLabel(s === "none" ? null : s)}
        </li>
      ))}
    </ul>
  );
}

/** Redirects /dags/:id/grid to /dags/:id. */
export function useRedirect(to: string | null) {
  useEffect(() => {
    if (to) navigate(to, { replace: true });
  }, [to]);
}
