// One task instance: its tries and durations, the log of each try (refreshing while it runs,
// ANSI colours rendered), XCom output, its durable steps, the signal it waits for (with a form
// to send it), the signals its run received, and actions: clear, mark success, mark failed (the
// form and the actions only for a token whose role may).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, call, enc, reportError } from "../api.ts";
import { parseAnsi } from "../ansi.ts";
import { may } from "../browse.ts";
import { ErrorBox, JsonView, Loading, StateBadge, useAsync, useToastedAction, useWhoami } from "../common.tsx";
import { clearTasks, getDag, getRun, recentEvents, sendSignal, setTaskState, signalsOf, stepsOf, structureOf, xcomsOf } from "../data.ts";
import { clearedText, currentTry, formatDateTime, formatDuration, parseJsonValue, secondsBetween, signalClosedNote, triesFromEvents } from "../format.ts";
import { useLiveEvents, useThrottled } from "../live.ts";
import { dagPath, navigate, runPath, taskPath } from "../router.ts";
import { isFinishedTask } from "../states.ts";
import type { RunSignal, TaskInstance, TaskNode, TaskStep } from "../types.ts";
import { DagHeader } from "./DagPage.tsx";

export function TaskView({ dagId, runId, taskId, query }: { dagId: string; runId: string; taskId: string; query: URLSearchParams }) {
  const base = `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}`;
  const dag = useAsync(() => getDag(dagId), [dagId]);
  const run = useAsync(() => getRun(dagId, runId), [dagId, runId]);
  const who = useWhoami();
  const ti = useAsync(() => call<TaskInstance>("GET", base), [base]);
  const events = useAsync(() => recentEvents({ dag_id: dagId, dag_run_id: runId, task_id: taskId }, 500), [base]);
  const xcom = useAsync(() => xcomsOf(dagId, runId, taskId), [base]);
  const steps = useAsync(() => stepsOf(dagId, runId, taskId), [base]);
  const signals = useAsync(() => signalsOf(dagId, runId), [dagId, runId]);
  const node = useAsync(async () => {
    if (!run.data) return null;
    const s = await structureOf(dagId, run.data.dag_version);
    return s.tasks.find((t) => t.task_id === taskId) ?? null;
  }, [dagId, taskId, run.data?.dag_version]);

  const refresh = useThrottled(() => {
    ti.reload();
    events.reload();
    xcom.reload();
    steps.reload();
    signals.reload();
  }, 250);
  // A signal delivered to another task of the run shows up as that task's event.
  const refreshSignals = useThrottled(() => signals.reload(), 250);
  // The run's state decides whether the signal form is open: reloaded when it changes.
  const refreshRun = useThrottled(() => run.reload(), 250);
  useLiveEvents((e) => {
    if (e.dag_id !== dagId || e.dag_run_id !== runId) return;
    if (e.kind === "run") refreshRun();
    if (e.task_id === taskId) refresh();
    else refreshSignals();
  });

  const t = ti.data;
  const tries = useMemo(() => triesFromEvents(events.data ?? [], t ?? null), [events.data, t]);
  const current = t ? currentTry(t.try_number, events.data ?? []) : 0;
  const wanted = Number(query.get("try"));
  const shownTry = wanted >= 1 && wanted <= current ? wanted : current;

  if (ti.error) return <ErrorBox error={ti.error} what={`Could not load task ${taskId}`} />;
  return (
    <section>
      {dag.data && <DagHeader dag={dag.data} onChange={(d) => dag.setData(() => d)} />}
      <nav class="crumbs" aria-label="Breadcrumbs">
        <a href={dagPath(dagId)}>{dagId}</a> / <a href={runPath(dagId, runId)}>{runId}</a> / <span>{taskId}</span>
      </nav>
      {!t && <Loading what="the task instance" />}
      {t && (
        <>
          <div class="page-head">
            <h2 class="task-title">{taskId}</h2>
            <StateBadge state={t.state} />
            <span class="muted small">
              try {current} of {t.max_tries + 1}
            </span>
          </div>
          <TaskActions dagId={dagId} runId={runId} taskId={taskId} ti={t} mayClear={may(who, "clear")} mayMark={may(who, "markTask")} onDone={refresh} />
          <div class="cards">
            <dl class="card facts">
              <dt>Started</dt>
              <dd>{formatDateTime(t.start_date)}</dd>
              <dt>Ended</dt>
              <dd>{formatDateTime(t.end_date)}</dd>
              <dt>Duration</dt>
              <dd>{formatDuration(t.duration ?? secondsBetween(t.start_date, t.end_date))}</dd>
              <dt>Host</dt>
              <dd>{t.hostname || "—"}</dd>
              <dt>Pool / queue</dt>
              <dd>
                {t.pool} / {t.queue}
              </dd>
              <dt>Trigger rule</dt>
              <dd>{node.data?.trigger_rule ?? t.trigger_rule ?? "—"}</dd>
              {node.data && node.data.kind !== "task" && (
                <>
                  <dt>Kind</dt>
                  <dd>{node.data.kind}</dd>
                </>
              )}
              {t.next_retry_at && (
                <>
                  <dt>{t.state === "up_for_reschedule" ? "Next poke" : "Next retry"}</dt>
                  <dd>{formatDateTime(t.next_retry_at)}</dd>
                </>
              )}
            </dl>
            {node.data?.signal && <SignalCard dagId={dagId} runId={runId} ti={t} node={node.data} closed={signalClosedNote(run.data?.state)} allowed={may(who, "signal")} onSent={refresh} />}
            {t.error && (
              <div class="card">
                <h3>Error</h3>
                {t.error.code && <code class="code">{t.error.code}</code>}
                <pre class="error-text">{t.error.message ?? JSON.stringify(t.error, null, 2)}</pre>
              </div>
            )}
          </div>
          <h3>Tries</h3>
          <div class="table-wrap">
            <table class="table small tries">
              <thead>
                <tr>
                  <th scope="col">Try</th>
                  <th scope="col">State</th>
                  <th scope="col">Started</th>
                  <th scope="col">Ended</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Host</th>
                </tr>
              </thead>
              <tbody>
                {tries.map((row) => (
                  <tr key={row.try_number} class={row.try_number === shownTry ? "selected" : ""}>
                    <td>
                      <a href={taskPath(dagId, runId, taskId, row.try_number)} aria-label={`log of try ${row.try_number}`}>
                        {row.try_number}
                      </a>
                    </td>
                    <td>
                      <StateBadge state={row.state === "none" ? null : row.state} />
                    </td>
                    <td>{formatDateTime(row.start)}</td>
                    <td>{formatDateTime(row.end)}</td>
                    <td>{formatDuration(secondsBetween(row.start, row.end))}</td>
                    <td class="muted">{row.hostname ?? ""}</td>
                  </tr>
                ))}
                {tries.length === 0 && (
                  <tr>
                    <td colSpan={6} class="muted">
                      Not tried yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <h3 id="log-title">Log</h3>
          {current > 0 && (
            <nav class="tabs small" aria-label="Tries">
              {Array.from({ length: current }, (_, i) => i + 1).map((n) => (
                <a key={n} href={taskPath(dagId, runId, taskId, n)} class={n === shownTry ? "tab on" : "tab"} aria-current={n === shownTry ? "page" : undefined}>
                  Try {n}
                </a>
              ))}
            </nav>
          )}
          {current > 0 ? (
            <LogViewer base={base} tryNumber={shownTry} live={shownTry === current && !isFinishedTask(t.state)} />
          ) : (
            <p class="muted">No log: the task has not run yet.</p>
          )}
          <h3>XCom</h3>
          <ErrorBox error={xcom.error} what="Could not load the XCom entries" />
          {xcom.data && xcom.data.length === 0 && <p class="muted">No output.</p>}
          {xcom.data && xcom.data.length > 0 && (
            <dl class="xcom">
              {xcom.data.map((x) => (
                <div key={x.key}>
                  <dt>
                    <code>{x.key}</code>
                  </dt>
                  <dd>
                    <JsonView value={x.value} />
                  </dd>
                </div>
              ))}
            </dl>
          )}
          <StepsSection steps={steps.data} error={steps.error} />
          <SignalsSection dagId={dagId} runId={runId} signals={signals.data} error={signals.error} />
        </>
      )}
    </section>
  );
}

/** JSON on one line, cut to `max` characters: the summary of a collapsed value. */
function preview(value: unknown, max = 80): string {
  const text = JSON.stringify(value) ?? "null";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** A JSON value collapsed to a one-line preview; open it for the whole value. */
function CollapsedJson({ value, label }: { value: unknown; label: string }) {
  return (
    <details class="collapsed-json">
      <summary aria-label={label}>
        <code>{preview(value)}</code>
      </summary>
      <JsonView value={value} />
    </details>
  );
}

type Listed<T> = { items: T[]; total: number } | null | undefined;

function MoreNote({ list, what }: { list: { items: unknown[]; total: number }; what: string }) {
  if (list.total <= list.items.length) return null;
  return (
    <p class="muted small">
      Showing the first {list.items.length} of {list.total} {what}.
    </p>
  );
}

/** The task's durable steps (ctx.step): recorded once, reused by later tries. */
function StepsSection({ steps, error }: { steps: Listed<TaskStep>; error: unknown }) {
  if (steps === null) return null; // a server without the route
  return (
    <>
      <h3 id="steps-title">Durable steps</h3>
      <ErrorBox error={error} what="Could not load the durable steps" />
      {steps && steps.items.length === 0 && <p class="muted">No durable steps (ctx.step) recorded.</p>}
      {steps && steps.items.length > 0 && (
        <div class="table-wrap">
          <table class="table small steps" aria-labelledby="steps-title">
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col">Try</th>
                <th scope="col">Recorded</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {steps.items.map((s) => (
                <tr key={s.name} data-step={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td>{s.try_number}</td>
                  <td>{formatDateTime(s.recorded_at)}</td>
                  <td>
                    {s.result_omitted ? (
                      <span class="muted">{formatBytes(s.result_bytes)}: too large to show here</span>
                    ) : (
                      <CollapsedJson value={s.result} label={`result of step ${s.name}`} />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {steps && <MoreNote list={steps} what="steps" />}
    </>
  );
}

/** The signals the run received, and the task each went to (or that none waits for it yet). */
function SignalsSection({ dagId, runId, signals, error }: { dagId: string; runId: string; signals: Listed<RunSignal>; error: unknown }) {
  if (signals === null) return null;
  return (
    <>
      <h3 id="signals-title">Signals of this run</h3>
      <ErrorBox error={error} what="Could not load the run's signals" />
      {signals && signals.items.length === 0 && <p class="muted">This run has received no signals.</p>}
      {signals && signals.items.length > 0 && (
        <div class="table-wrap">
          <table class="table small signals" aria-labelledby="signals-title">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Signal id</th>
                <th scope="col">Received</th>
                <th scope="col">Delivered to</th>
                <th scope="col">Payload</th>
              </tr>
            </thead>
            <tbody>
              {signals.items.map((s, i) => (
                <tr key={i} data-signal={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td>{s.signal_id ?? <span class="muted">—</span>}</td>
                  <td>{formatDateTime(s.received_at)}</td>
                  <td>
                    {s.delivered_to ? (
                      <>
                        <a href={taskPath(dagId, runId, s.delivered_to)}>{s.delivered_to}</a>
                        <span class="muted"> at {formatDateTime(s.delivered_at)}</span>
                      </>
                    ) : (
                      <span class="muted">kept: no task waits for it yet</span>
                    )}
                  </td>
                  <td>
                    <CollapsedJson value={s.payload} label={`payload of signal ${s.name}`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {signals && <MoreNote list={signals} what="signals" />}
    </>
  );
}

/** Clear and mark, each only for a token whose role may (and not before the role is known). */
function TaskActions({ dagId, runId, taskId, ti, mayClear, mayMark, onDone }: { dagId: string; runId: string; taskId: string; ti: TaskInstance; mayClear: boolean; mayMark: boolean; onDone: () => void }) {
  const [busy, act] = useToastedAction(onDone);
  const [downstream, setDownstream] = useState(false);
  return (
    <div class="actions left task-actions">
      {mayClear && (
        <>
          <button type="button" disabled={busy} onClick={() => act((answer) => clearedText(answer, "tasks"), () => clearTasks(dagId, runId, [taskId], { onlyFailed: false, downstream }))}>
            Clear
          </button>
          <label class="small inline">
            <input type="checkbox" checked={downstream} onChange={(e) => setDownstream((e.target as HTMLInputElement).checked)} /> with downstream
          </label>
        </>
      )}
      {mayMark && (
        <>
          <button type="button" disabled={busy || ti.state === "success"} onClick={() => act(`${taskId} marked success`, () => setTaskState(dagId, runId, taskId, "success"))}>
            Mark success
          </button>
          <button type="button" class="danger" disabled={busy || ti.state === "failed"} onClick={() => act(`${taskId} marked failed`, () => setTaskState(dagId, runId, taskId, "failed"))}>
            Mark failed
          </button>
        </>
      )}
      <button type="button" class="linkish" onClick={() => navigate(dagPath(dagId, `/graph?run=${encodeURIComponent(runId)}`))}>
        Graph of this run
      </button>
    </div>
  );
}

/**
 * The signal the task waits for and, for a token whose role may send it (`allowed`), a form to send
 * it; `closed` (why the run takes none) disables the form.
 */
function SignalCard({ dagId, runId, ti, node, closed, allowed, onSent }: { dagId: string; runId: string; ti: TaskInstance; node: TaskNode; closed: string | null; allowed: boolean; onSent: () => void }) {
  const signal = node.signal!;
  const [payload, setPayload] = useState("");
  const [signalId, setSignalId] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const waiting = ti.state === "deferred";
  const then = signal.onTimeout === "fail" ? "fails" : signal.onTimeout === "skip" ? "is skipped" : "succeeds";
  // While it waits, when this wait times out (signal_timeout_at: counted from when it started); else the DAG's timeout.
  const timing =
    waiting && ti.signal_timeout_at
      ? `, times out at ${formatDateTime(ti.signal_timeout_at)} (then ${then})`
      : signal.timeoutMs
        ? ` (times out after ${formatDuration(signal.timeoutMs / 1000)}, then ${then})`
        : "";
  const submit = async (e: Event) => {
    e.preventDefault();
    if (closed) return;
    const parsed = parseJsonValue(payload);
    if (!parsed.ok) {
      setFieldError(`The payload is ${parsed.error}`);
      return;
    }
    setFieldError(null);
    setError(null);
    setResult(null);
    setBusy(true);
    try {
      const res = await sendSignal(dagId, runId, signal.name, parsed.value, signalId.trim() || undefined);
      setResult(
        res.duplicate
          ? `Already received${res.signal_id ? ` (signal id ${res.signal_id})` : ""}: nothing changed.`
          : res.delivered_to
            ? `Signal sent and delivered to ${res.delivered_to}.`
            : "Signal sent: no task waits for it yet, it is kept for the first that does.",
      );
      onSent();
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) setError(err);
      else reportError(err);
    } finally {
      setBusy(false);
    }
  };
  const about = (
    <>
      <h3>Signal</h3>
      <p class="small">
        {waiting ? "Waiting for" : "Waits for"} the signal <code>{signal.name}</code>
        {timing}.
      </p>
      {closed && (
        <p class="muted small signal-closed" role="status">
          {closed}
        </p>
      )}
    </>
  );
  const cls = `card form signal-card${waiting ? " waiting" : ""}`;
  if (!allowed) return <div class={cls}>{about}</div>;
  return (
    <form class={cls} onSubmit={submit} aria-label="Send a signal">
      {about}
      <label for="signal-payload">Payload (JSON, optional)</label>
      <textarea
        id="signal-payload"
        disabled={!!closed}
        rows={3}
        spellcheck={false}
        value={payload}
        placeholder='{"signedBy": "ana@example.com"}'
        aria-invalid={fieldError ? "true" : "false"}
        onInput={(e) => setPayload((e.target as HTMLTextAreaElement).value)}
      />
      {fieldError && (
        <p class="field-error" role="alert">
          {fieldError}
        </p>
      )}
      <label for="signal-id">Signal id (optional: makes a resend harmless)</label>
      <input id="signal-id" disabled={!!closed} value={signalId} onInput={(e) => setSignalId((e.target as HTMLInputElement).value)} />
      <ErrorBox error={error} />
      {result && (
        <p class="muted small signal-result" role="status">
          {result}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy || !!closed}>
          Send “{signal.name}”
        </button>
      </div>
    </form>
  );
}

/**
 * A try's log, streamed: the API returns up to 64 KiB and a continuation token for the rest;
 * the token stays non-null while the try may still write, so it is polled every second until
 * the try has ended and everything was read.
 */
function LogViewer({ base, tryNumber, live }: { base: string; tryNumber: number; live: boolean }) {
  const [content, setContent] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let token: string | null = null;
    let text = "";
    const controller = new AbortController();
    setContent(null);
    setError(null);
    const load = async () => {
      let again: number | null = null;
      try {
        const res = await call<{ content: string; continuation_token: string | null } | string>("GET", `${base}/logs/${tryNumber}`, {
          query: token ? { token } : undefined,
          signal: controller.signal,
        });
        const body = typeof res === "string" ? { content: res, continuation_token: null } : res;
        text = token ? text + body.content : body.content;
        const more = body.continuation_token !== null && body.continuation_token !== token;
        // A full chunk means more is already there: read on at once; else wait for new lines.
        if (body.continuation_token) again = body.content.length >= 16 * 1024 && more ? 0 : 1000;
        token = body.continuation_token ?? null;
        if (!stopped) {
          setContent(text);
          setError(null);
        }
      } catch (err) {
        if (stopped || (err as Error).name === "AbortError") return;
        if (err instanceof ApiError && err.code === "BATON_LOG_NOT_FOUND") {
          setContent("");
          if (live) again = 1000;
        } else {
          setError(err);
          again = 3000;
        }
      }
      if (again !== null && !stopped) timer = setTimeout(load, again);
    };
    void load();
    return () => {
      stopped = true;
      controller.abort();
      clearTimeout(timer);
    };
  }, [base, tryNumber, live]);

  // Follow the end of a growing log unless the reader scrolled up.
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [content]);

  const segments = useMemo(() => (content ? parseAnsi(content) : []), [content]);
  if (error) return <ErrorBox error={error} what="Could not load the log" />;
  if (content === null) return <Loading what="the log" />;
  return (
    <pre
      class="log"
      ref={box}
      tabIndex={0}
      aria-labelledby="log-title"
      aria-live={live ? "polite" : "off"}
      data-try={tryNumber}
      onScroll={(e) => {
        const el = e.currentTarget as HTMLPreElement;
        stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
      }}
    >
      {content === "" ? (
        <span class="muted">{live ? "Waiting for output…" : "This try wrote no log here."}</span>
      ) : (
        segments.map((s, i) => {
          const cls = [
            s.fg?.startsWith("ansi-") ? `fg-${s.fg}` : "",
            s.bg?.startsWith("ansi-") ? `bg-${s.bg}` : "",
            s.bold ? "b" : "",
            s.dim ? "dim" : "",
            s.italic ? "i" : "",
            s.underline ? "u" : "",
          ]
            .filter(Boolean)
            .join(" ");
          const style = {
            ...(s.fg && !s.fg.startsWith("ansi-") ? { color: s.fg } : {}),
            ...(s.bg && !s.bg.startsWith("ansi-") ? { background: s.bg } : {}),
          };
          return cls || Object.keys(style).length ? (
            <span key={i} class={cls || undefined} style={style}>
              {s.text}
            </span>
          ) : (
            s.text
          );
        })
      )}
    </pre>
  );
}
