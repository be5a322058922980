// Backfills of one DAG: create one (with a dry run that counts the dates), follow each with a
// progress bar that moves with the live run events (one created elsewhere shows up), pause,
// unpause, cancel (creating and controlling only for a token whose role may).
import { useState } from "preact/hooks";
import { ApiError, call, reportError } from "../api.ts";
import { may } from "../browse.ts";
import { ErrorBox, Loading, ProgressBar, StateBadge, useAsync, useWhoami } from "../common.tsx";
import { controlBackfill, getBackfill, listBackfills, mapLimit } from "../data.ts";
import { formatDateTime, parseConf } from "../format.ts";
import { useLiveEvents, useThrottled } from "../live.ts";
import { toast } from "../store.ts";
import type { Backfill, Dag } from "../types.ts";

const ACTIVE = new Set(["running", "paused", "cancelling"]);

export function Backfills({ dag }: { dag: Dag }) {
  const who = useWhoami();
  const mayControl = may(who, "controlBackfill");
  const list = useAsync(async () => {
    const all = await listBackfills(dag.dag_id);
    // Details (progress counts) for the newest 20.
    const newest = all.slice(-20).reverse();
    return mapLimit(newest, 4, (b) => getBackfill(b.id));
  }, [dag.dag_id]);
  const refresh = useThrottled(() => list.reload(), 500);
  // A listed backfill's progress moves with its runs' states; a new run of the DAG may be the first of a
  // backfill created elsewhere (CLI, API, another tab), listed once it is there.
  useLiveEvents((e) => {
    if (e.dag_id !== dag.dag_id || e.kind !== "run") return;
    if (e.from_state === null || list.data?.some((b) => ACTIVE.has(b.state))) refresh();
  });
  const act = async (b: Backfill, action: "pause" | "unpause" | "cancel") => {
    try {
      const next = await controlBackfill(b.id, action);
      list.setData((old) => old?.map((x) => (x.id === b.id ? next : x)));
    } catch (err) {
      reportError(err);
    }
  };
  return (
    <div class="backfills">
      {may(who, "createBackfill") && <BackfillForm dag={dag} onCreated={() => list.reload()} />}
      <h2>Backfills</h2>
      <ErrorBox error={list.error} what="Could not load the backfills" />
      {!list.data && !list.error && <Loading what="backfills" />}
      {list.data && list.data.length === 0 && <p class="muted">No backfills for this DAG yet.</p>}
      {list.data && list.data.length > 0 && (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Dates</th>
                <th scope="col">State</th>
                <th scope="col">Progress</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((b) => (
                <tr key={b.id} data-backfill-id={b.id}>
                  <td>{b.id}</td>
                  <td class="small">
                    {formatDateTime(b.from_date)} → {formatDateTime(b.to_date)}
                    <div class="muted">
                      reprocess: {b.reprocess_behavior} · max {b.max_active_runs} active
                    </div>
                  </td>
                  <td>
                    <StateBadge state={b.state === "completed" ? "success" : b.state === "cancelled" ? "removed" : b.state === "paused" ? "scheduled" : "running"} />
                    <div class="muted small">{b.state}</div>
                    {b.waiting_message && (
                      <div class="small waiting-text" data-waiting-reason={b.waiting_reason ?? ""} title={b.waiting_message}>
                        waiting: {b.waiting_message}
                      </div>
                    )}
                  </td>
                  <td class="wide-cell">
                    <ProgressBar value={b.done ?? 0} max={b.total_dates} label={`backfill ${b.id} progress`} />
                    {b.counts && (
                      <div class="muted small">
                        {Object.entries(b.counts)
                          .filter(([, n]) => n > 0)
                          .map(([k, n]) => `${k} ${n}`)
                          .join(" · ")}
                      </div>
                    )}
                  </td>
                  <td class="actions-cell">
                    {mayControl && b.state === "running" && (
                      <button type="button" onClick={() => act(b, "pause")}>
                        Pause
                      </button>
                    )}
                    {mayControl && b.state === "paused" && (
                      <button type="button" onClick={() => act(b, "unpause")}>
                        Unpause
                      </button>
                    )}
                    {mayControl && (b.state === "running" || b.state === "paused") && (
                      <button type="button" class="danger" onClick={() => act(b, "cancel")}>
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function BackfillForm({ dag, onCreated }: { dag: Dag; onCreated: () => void }) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [reprocess, setReprocess] = useState("none");
  const [maxActive, setMaxActive] = useState("10");
  const [conf, setConf] = useState("{}");
  const [error, setError] = useState<unknown>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const body = (dryRun: boolean) => {
    const parsed = parseConf(conf);
    if (!parsed.ok) throw new Error(parsed.error);
    if (!from || !to) throw new Error("choose the first and the last date");
    const n = Number(maxActive);
    if (!Number.isInteger(n) || n < 1) throw new Error("max active runs must be a whole number of at least 1");
    return { dag_id: dag.dag_id, from_date: new Date(from).toISOString(), to_date: new Date(to).toISOString(), reprocess_behavior: reprocess, max_active_runs: n, dag_run_conf: parsed.value, dry_run: dryRun };
  };

  const submit = async (dryRun: boolean) => {
    setError(null);
    setPreview(null);
    let payload;
    try {
      payload = body(dryRun);
    } catch (err) {
      setError(err);
      return;
    }
    setBusy(true);
    try {
      const res = await call<{ total_dates: number; dates?: { action: string }[]; id?: number }>("POST", "/backfills", { body: payload });
      if (dryRun) {
        const runs = res.dates?.filter((d) => d.action !== "skip").length ?? res.total_dates;
        setPreview(`${res.total_dates} date${res.total_dates === 1 ? "" : "s"} in range; ${runs} would get a run.`);
      } else {
        toast("info", `Backfill ${res.id} created: ${res.total_dates} dates`);
        onCreated();
      }
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setError(err);
      else reportError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="form card"
      aria-label="New backfill"
      onSubmit={(e) => {
        e.preventDefault();
        void submit(false);
      }}
    >
      <h2>New backfill</h2>
      {!dag.schedule_interval && <p class="muted small">This DAG has no schedule: a backfill needs one to know its dates.</p>}
      <div class="row3">
        <div>
          <label for="bf-from">From</label>
          <input id="bf-from" type="datetime-local" value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="bf-to">To</label>
          <input id="bf-to" type="datetime-local" value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="bf-reprocess">Reprocess</label>
          <select id="bf-reprocess" value={reprocess} onChange={(e) => setReprocess((e.target as HTMLSelectElement).value)}>
            <option value="none">none (only missing dates)</option>
            <option value="failed">failed runs too</option>
            <option value="completed">completed runs too</option>
          </select>
        </div>
        <div>
          <label for="bf-max">Max active runs</label>
          <input id="bf-max" type="number" min={1} value={maxActive} onInput={(e) => setMaxActive((e.target as HTMLInputElement).value)} />
        </div>
      </div>
      <label for="bf-conf">Run configuration (JSON object)</label>
      <textarea id="bf-conf" rows={3} spellcheck={false} value={conf} onInput={(e) => setConf((e.target as HTMLTextAreaElement).value)} />
      <ErrorBox error={error} />
      {preview && (
        <p class="muted" role="status">
          {preview}
        </p>
      )}
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => submit(true)}>
          Dry run
        </button>
        <button type="submit" class="primary" disabled={busy}>
          Create backfill
        </button>
      </div>
    </form>
  );
}
