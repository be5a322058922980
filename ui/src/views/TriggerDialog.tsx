// Trigger a run: conf JSON validated in the form (nothing is sent while it is invalid), optional
// run id, logical date and note. Prefilled with the DAG's params.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, reportError } from "../api.ts";
import { Dialog, ErrorBox } from "../common.tsx";
import { structureOf, triggerRun } from "../data.ts";
import { parseConf } from "../format.ts";
import { dagPath, navigate } from "../router.ts";
import { toast } from "../store.ts";
import type { Dag } from "../types.ts";

export function TriggerDialog({ dag, onClose }: { dag: Dag; onClose: () => void }) {
  const [conf, setConf] = useState("{}");
  const [runId, setRunId] = useState("");
  const [logicalDate, setLogicalDate] = useState("");
  const [note, setNote] = useState("");
  const [confError, setConfError] = useState<string | null>(null);
  const [apiError, setApiError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const touched = useRef(false);
  const confRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    confRef.current?.focus();
    if (!dag.latest_version) return;
    structureOf(dag.dag_id, dag.latest_version).then(
      (s) => {
        if (!touched.current && Object.keys(s.params).length > 0) setConf(JSON.stringify(s.params, null, 2));
      },
      () => undefined,
    );
  }, [dag.dag_id, dag.latest_version]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseConf(conf);
    if (!parsed.ok) {
      setConfError(parsed.error);
      confRef.current?.focus();
      return;
    }
    setConfError(null);
    setApiError(null);
    let date: string | undefined;
    if (logicalDate) {
      const d = new Date(logicalDate);
      if (Number.isNaN(d.getTime())) {
        setApiError(new Error("the logical date is not a valid date"));
        return;
      }
      date = d.toISOString();
    }
    setBusy(true);
    try {
      const run = await triggerRun(dag.dag_id, { conf: parsed.value, dag_run_id: runId.trim() || undefined, logical_date: date, note: note.trim() || undefined });
      toast("info", `Triggered ${dag.dag_id}: ${run.dag_run_id}`);
      onClose();
      navigate(dagPath(dag.dag_id));
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setApiError(err);
      else reportError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Trigger ${dag.dag_id}`} onClose={onClose}>
      <form class="form" onSubmit={submit} noValidate>
        <label for="trigger-conf">Configuration (JSON object)</label>
        <textarea
          id="trigger-conf"
          ref={confRef}
          rows={8}
          spellcheck={false}
          value={conf}
          aria-invalid={confError ? "true" : "false"}
          aria-describedby={confError ? "trigger-conf-error" : undefined}
          onInput={(e) => {
            touched.current = true;
            setConf((e.target as HTMLTextAreaElement).value);
            if (confError) setConfError(null);
          }}
          onBlur={() => {
            const parsed = parseConf(conf);
            setConfError(parsed.ok ? null : parsed.error);
          }}
        />
        {confError && (
          <p id="trigger-conf-error" class="field-error" role="alert">
            {confError}
          </p>
        )}
        <div class="row2">
          <div>
            <label for="trigger-run-id">Run id (optional)</label>
            <input id="trigger-run-id" value={runId} placeholder="manual__…" onInput={(e) => setRunId((e.target as HTMLInputElement).value)} />
          </div>
          <div>
            <label for="trigger-date">Logical date (optional)</label>
            <input id="trigger-date" type="datetime-local" step={1} value={logicalDate} onInput={(e) => setLogicalDate((e.target as HTMLInputElement).value)} />
          </div>
        </div>
        <label for="trigger-note">Note (optional)</label>
        <input id="trigger-note" value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
        <ErrorBox error={apiError} />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Triggering…" : "Trigger"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
