// Baton's web UI: a single-page app on the public REST API (/api/v1) and its event stream.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { getToken, setToken } from "./api.ts";
import { zoneLabel } from "./format.ts";
import { live } from "./live.ts";
import { interceptLinks, match, useLocation } from "./router.ts";
import { dismissToast, useAppState } from "./store.ts";
import "./styles.css";
import { DagList } from "./views/DagList.tsx";
import { DagPage, useRedirect } from "./views/DagPage.tsx";
import { DeadLetters } from "./views/DeadLetters.tsx";
import { EventLogPage } from "./views/EventLog.tsx";
import { ImportErrors } from "./views/ImportErrors.tsx";
import { RunView } from "./views/RunView.tsx";
import { TaskView } from "./views/TaskView.tsx";

function Routes({ path, query }: { path: string; query: URLSearchParams }) {
  let m: Record<string, string> | null;
  const gridAlias = match("/dags/:dag_id/grid", path);
  useRedirect(gridAlias ? `/dags/${encodeURIComponent(gridAlias.dag_id!)}` : null);
  if (path === "/" || path === "/dags") return <DagList />;
  if (path === "/import-errors") return <ImportErrors />;
  if (path === "/dead-letters") return <DeadLetters query={query} />;
  if (path === "/event-log") return <EventLogPage query={query} />;
  if ((m = match("/dags/:dag_id", path)) || gridAlias) return <DagPage key={(m ?? gridAlias)!.dag_id} dagId={(m ?? gridAlias)!.dag_id!} tab="grid" query={query} />;
  if ((m = match("/dags/:dag_id/graph", path))) return <DagPage key={m.dag_id} dagId={m.dag_id!} tab="graph" query={query} />;
  if ((m = match("/dags/:dag_id/backfills", path))) return <DagPage key={m.dag_id} dagId={m.dag_id!} tab="backfills" query={query} />;
  if ((m = match("/dags/:dag_id/runs/:run_id", path))) return <RunView key={`${m.dag_id}/${m.run_id}`} dagId={m.dag_id!} runId={m.run_id!} />;
  if ((m = match("/dags/:dag_id/runs/:run_id/tasks/:task_id", path)))
    return <TaskView key={`${m.dag_id}/${m.run_id}/${m.task_id}`} dagId={m.dag_id!} runId={m.run_id!} taskId={m.task_id!} query={query} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <a href="/">Back to the DAGs</a>
      </p>
    </section>
  );
}

/** The time zone the pages' dates are in; below 720 px only its offset. */
function ZoneLabel() {
  const label = zoneLabel();
  const parts = /^(.*) \((UTC.*)\)$/.exec(label);
  return (
    <span class="tz muted small" title="Dates and times on these pages are in this browser's time zone (run ids and logs are in UTC)">
      {parts ? (
        <>
          <span class="tz-zone">{parts[1]} (</span>
          {parts[2]}
          <span class="tz-zone">)</span>
        </>
      ) : (
        label
      )}
    </span>
  );
}

function TokenForm({ message }: { message: string | null }) {
  const [value, setValue] = useState("");
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <section class="token-page" aria-labelledby="token-title">
      <form
        class="card form token-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) {
            setToken(value.trim());
            live.restart();
          }
        }}
      >
        <h1 id="token-title">Sign in to Baton</h1>
        <p class="muted small">This Baton requires an API token. It is kept in this browser tab's session storage only.</p>
        {message && (
          <p class="field-error" role="alert">
            {message}
          </p>
        )}
        <label for="token-input">API token</label>
        <input id="token-input" ref={ref} type="password" autocomplete="current-password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <div class="actions">
          <button type="submit" class="primary">
            Sign in
          </button>
        </div>
      </form>
    </section>
  );
}

function App() {
  const { path, query } = useLocation();
  const state = useAppState();
  const dagMatch = path.match(/^\/dags\/([^/]+)/);
  const dagId = dagMatch ? decodeURIComponent(dagMatch[1]!) : undefined;
  useEffect(() => live.setDag(dagId), [dagId]);
  const lost = state.stream === "lost" || state.apiDown;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/" aria-label="Baton home">
          <svg width="22" height="22" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#017cee" />
            <path d="M9 23 23 9" stroke="#fff" stroke-width="4" stroke-linecap="round" />
            <circle cx="23" cy="9" r="3.5" fill="#ffd166" />
          </svg>
          Baton
        </a>
        <nav aria-label="Main">
          <a href="/" aria-current={path === "/" ? "page" : undefined}>
            DAGs
          </a>
          <a href="/dead-letters" aria-current={path === "/dead-letters" ? "page" : undefined}>
            Dead letters
          </a>
          <a href="/event-log" aria-current={path === "/event-log" ? "page" : undefined}>
            Event log
          </a>
          <a href="/docs" target="_blank" rel="noopener">
            API docs
          </a>
        </nav>
        <ZoneLabel />
        <span class={`live-dot ${state.stream}`} role="status" aria-label={`live updates: ${state.stream}`} title={`live updates: ${state.stream}`} />
        {getToken() && (
          <button
            type="button"
            class="linkish small"
            onClick={() => {
              setToken(null);
              live.restart();
            }}
          >
            Sign out
          </button>
        )}
      </header>
      {lost && (
        <div class="banner error conn-lost" role="alert">
          Connection to Baton lost — reconnecting…
        </div>
      )}
      <main id="main">{state.needToken ? <TokenForm message={state.tokenMessage} /> : <Routes path={path} query={query} />}</main>
      <div class="toasts" aria-live="polite">
        {state.toasts.map((t) => (
          <div key={t.id} class={`toast ${t.kind}`} role={t.kind === "error" ? "alert" : "status"}>
            {t.code && <code class="code">{t.code}</code>} <span>{t.text}</span>
            <button type="button" class="icon" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </>
  );
}

interceptLinks();
render(<App />, document.getElementById("app")!);
