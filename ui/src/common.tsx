// Small shared pieces: data loading hook, state badges, error boxes, dialogs, switches.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, getToken, reportError } from "./api.ts";
import { whoami } from "./data.ts";
import { stateLabel, stateOf } from "./states.ts";
import { toast, useAppState } from "./store.ts";
import type { Whoami } from "./types.ts";

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Loads again, keeping the current data on screen meanwhile. */
  reload: () => void;
  setData: (update: (old: T | undefined) => T | undefined) => void;
}

/** Loads on mount and whenever deps change (and when the token or the connection comes back). */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const { epoch } = useAppState();
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const keyRef = useRef<string>("");
  useEffect(() => {
    const controller = new AbortController();
    // New deps (another DAG or run): drop the old data rather than show it under the new title.
    const key = JSON.stringify(deps);
    if (key !== keyRef.current) {
      keyRef.current = key;
      setDataState(undefined);
    }
    setLoading(true);
    loadRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setDataState(() => value);
        setError(null);
        setLoading(false);
      },
      (err) => {
        if (controller.signal.aborted) return;
        setError(err);
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [...deps, epoch, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const setData = useCallback((update: (old: T | undefined) => T | undefined) => setDataState((old) => update(old)), []);
  return { data, error, loading, reload, setData };
}

/** GET /whoami's answers by token ("" for none): a token keeps its role, so a tab asks once per token. */
const roles = new Map<string, Whoami | null>();
const asking = new Map<string, Promise<void>>();

/**
 * The token's own role (GET /whoami), shared by every page and action: undefined until it is
 * known (and after a failed ask, retried when the token or the connection changes), null from a
 * server that cannot say. Pages ask browse.ts may(who, action) what to offer.
 */
export function useWhoami(): Whoami | null | undefined {
  const { epoch } = useAppState();
  const token = getToken() ?? "";
  const [, answered] = useState(0);
  useEffect(() => {
    if (roles.has(token)) return;
    let mounted = true;
    let ask = asking.get(token);
    if (!ask) {
      ask = whoami()
        .then((who) => void roles.set(token, who), () => undefined)
        .finally(() => asking.delete(token));
      asking.set(token, ask);
    }
    void ask.then(() => mounted && answered((n) => n + 1));
    return () => {
      mounted = false;
    };
  }, [token, epoch]);
  return roles.get(token);
}

export function StateBadge({ state }: { state: string | null | undefined }) {
  const s = stateOf(state);
  return (
    <span class={`badge s-${s}`} data-state={s}>
      <span class="dot" aria-hidden="true" />
      {stateLabel(state)}
    </span>
  );
}

export function ErrorBox({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const e = error as Error;
  return (
    <div class="error-box" role="alert">
      {what && <strong>{what}: </strong>}
      {error instanceof ApiError ? (
        <>
          <code class="code">{error.code}</code> {error.detail}
        </>
      ) : (
        e.message ?? String(error)
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted loading" aria-busy="true">
      Loading {what}…
    </p>
  );
}

export function Switch({ checked, label, onChange, disabled }: { checked: boolean; label: string; onChange: (v: boolean) => void; disabled?: boolean }) {
  return (
    <button
      type="button"
      role="switch"
      class="switch"
      aria-checked={checked}
      aria-label={label}
      title={label}
      disabled={disabled}
      onClick={() => onChange(!checked)}
    >
      <span class="knob" />
    </button>
  );
}

/**
 * A DAG's paused switch. Not `allowed` (no role to pause, or the role not known yet) it still shows
 * the state, disabled, and its label says the state rather than offer the change.
 */
export function PauseSwitch({ dagId, paused, allowed, onChange }: { dagId: string; paused: boolean; allowed: boolean; onChange: (active: boolean) => void }) {
  const label = allowed ? `${paused ? "Unpause" : "Pause"} ${dagId}` : `${dagId} is ${paused ? "paused" : "active"}`;
  return <Switch checked={!paused} label={label} disabled={!allowed} onChange={onChange} />;
}

/** A modal <dialog>: focus stays inside, Escape closes it, and the focus returns to its opener. */
export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  // Closed, the focus goes back to what opened it (a removed <dialog> would leave it on the page's body).
  useEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    return () => {
      if (opener?.isConnected) opener.focus();
    };
  }, []);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const cancel = (e: Event) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener("cancel", cancel);
    return () => d.removeEventListener("cancel", cancel);
  }, [onClose]);
  return (
    <dialog ref={ref} class={wide ? "wide" : ""} aria-label={title}>
      <header class="dialog-head">
        <h2>{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

export function ProgressBar({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.min(100, Math.round((value / max) * 100)) : 0;
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value}>
      <div class="progress-fill" style={{ width: `${pct}%` }} />
      <span class="progress-text">
        {value} / {max} ({pct}%)
      </span>
    </div>
  );
}

export function JsonView({ value }: { value: unknown }) {
  return <pre class="json">{value === undefined ? "—" : JSON.stringify(value, null, 2)}</pre>;
}

/** Runs an action, disabling its button meanwhile; errors become toasts (via the caller's onError). */
export function useAction(): [boolean, (fn: () => Promise<void>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
    } finally {
      setBusy(false);
    }
  }, []);
  return [busy, run];
}

/**
 * useAction for a page's buttons: on success a toast (`what`, or made from the API's answer, e.g.
 * what a clear cleared) and `onDone` (refetch); an error is reported.
 */
export function useToastedAction(onDone: () => void): [boolean, <T>(what: string | ((answer: T) => string), fn: () => Promise<T>) => Promise<void>] {
  const [busy, run] = useAction();
  const act = <T,>(what: string | ((answer: T) => string), fn: () => Promise<T>) =>
    run(async () => {
      try {
        const answer = await fn();
        toast("info", typeof what === "string" ? what : what(answer));
        onDone();
      } catch (err) {
        reportError(err);
      }
    });
  return [busy, act];
}
