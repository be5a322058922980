// A small history router: paths like /dags/example_etl/graph?run=..., links intercepted so
// navigation never reloads the page (the server answers index.html for any of these paths).
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  for (const l of listeners) l();
  if (!opts.replace) window.scrollTo(0, 0);
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    window.addEventListener("popstate", l);
    return () => {
      listeners.delete(l);
      window.removeEventListener("popstate", l);
    };
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Same-origin <a href="/..."> clicks navigate in place (not with a modifier key or target). */
export function interceptLinks(): void {
  document.addEventListener("click", (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.("a");
    if (!a || (a.target && a.target !== "_self") || a.hasAttribute("download")) return;
    const href = a.getAttribute("href") ?? a.getAttribute("xlink:href");
    if (!href || !href.startsWith("/") || href.startsWith("//") || href.startsWith("/api/") || href.startsWith("/docs")) return;
    e.preventDefault();
    navigate(href);
  });
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** Matches "/dags/:dag_id/runs/:run_id" against a path; returns the decoded parameters. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/");
  const s = path.replace(/\/+$/, "").split("/");
  if (p.length !== s.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(":")) out[p[i]!.slice(1)] = decode(s[i]!);
    else if (p[i] !== s[i]) return null;
  }
  return out;
}

export const dagPath = (dagId: string, rest = "") => `/dags/${encodeURIComponent(dagId)}${rest}`;
export const runPath = (dagId: string, runId: string) => dagPath(dagId, `/runs/${encodeURIComponent(runId)}`);
export const taskPath = (dagId: string, runId: string, taskId: string, tryNumber?: number) =>
  `${runPath(dagId, runId)}/tasks/${encodeURIComponent(taskId)}${tryNumber ? `?try=${tryNumber}` : ""}`;
