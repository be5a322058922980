// App-wide state the views share: does the API want a token, is the connection up, toasts.
import { useEffect, useState } from "preact/hooks";

export interface Toast {
  id: number;
  kind: "error" | "info";
  text: string;
  code?: string;
}

export interface AppState {
  /** The API answered 401: the token form is shown until a working token is entered. */
  needToken: boolean;
  tokenMessage: string | null;
  /** A request could not reach the server. */
  apiDown: boolean;
  /** The live event stream: "open", "connecting" (first attempt) or "lost" (reconnecting). */
  stream: "connecting" | "open" | "lost";
  toasts: Toast[];
  /** Bumped when the token changes or the connection comes back: views reload. */
  epoch: number;
}

let state: AppState = { needToken: false, tokenMessage: null, apiDown: false, stream: "connecting", toasts: [], epoch: 0 };
const listeners = new Set<() => void>();

export function getState(): AppState {
  return state;
}

export function setState(patch: Partial<AppState>): void {
  const next = { ...state, ...patch };
  if ((Object.keys(patch) as (keyof AppState)[]).every((k) => next[k] === state[k])) return;
  state = next;
  for (const l of listeners) l();
}

export function useAppState(): AppState {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return state;
}

let toastId = 0;
export function toast(kind: Toast["kind"], text: string, code?: string): void {
  const id = ++toastId;
  setState({ toasts: [...state.toasts.slice(-4), { id, kind, text, code }] });
  setTimeout(() => dismissToast(id), kind === "error" ? 12_000 : 5_000);
}

export function dismissToast(id: number): void {
  setState({ toasts: state.toasts.filter((t) => t.id !== id) });
}

export function reloadAll(): void {
  setState({ epoch: state.epoch + 1 });
}
