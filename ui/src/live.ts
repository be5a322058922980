// Live updates: GET /api/v1/events (server-sent events) read with fetch, so the bearer token can
// be sent. Every stream opened after the first (a reconnect, a new token, another DAG's filter)
// resumes from the last position the server gave (Last-Event-ID), so an event committed between a
// page's fetch and its stream's opening still comes.
import { useEffect, useRef } from "preact/hooks";
import { API, authHeaders, noteUnauthorized, queryString } from "./api.ts";
import { SseParser } from "./sse.ts";
import { getState, reloadAll, setState } from "./store.ts";
import type { AnyEventLog, EventLog } from "./types.ts";

type Listener = (e: EventLog) => void;

class LiveStream {
  private listeners = new Set<Listener>();
  private dagId: string | undefined;
  private controller: AbortController | null = null;
  private lastEventId: string | null = null;
  private running = false;
  private wasLost = false;

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }

  /** Streams only one DAG's events (on a DAG's pages), or every event (undefined). */
  setDag(dagId: string | undefined): void {
    if (this.running && dagId === this.dagId) return;
    this.dagId = dagId;
    // The new filter resumes where the last stream was: the server moves that position past the
    // events it filtered out too, so it is at most a poll old, and what the new page fetched
    // meanwhile may come again (views refetch; the event log skips rows it holds), never go missing.
    this.controller?.abort();
    if (!this.running) void this.loop();
  }

  /** Reconnects now (after a new token was entered). */
  restart(): void {
    this.controller?.abort();
  }

  private async loop(): Promise<void> {
    this.running = true;
    let delay = 500;
    for (;;) {
      const controller = new AbortController();
      this.controller = controller;
      let opened = false;
      try {
        const headers: Record<string, string> = { accept: "text/event-stream", ...authHeaders() };
        if (this.lastEventId) headers["last-event-id"] = this.lastEventId;
        const res = await fetch(`${API}/events${queryString({ dag_id: this.dagId, poll_ms: 200 })}`, { headers, signal: controller.signal, cache: "no-store" });
        if (res.status === 401) {
          noteUnauthorized("the event stream needs a token");
          await waitFor(() => !getState().needToken, controller.signal);
          continue;
        }
        if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
        opened = true;
        delay = 500;
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          const messages = parser.push(value);
          if (parser.lastEventId !== null) this.lastEventId = parser.lastEventId;
          // Open once the server said where the stream starts (its first chunk).
          if (getState().stream !== "open") {
            setState({ stream: "open" });
            if (this.wasLost) {
              this.wasLost = false;
              reloadAll(); // whatever changed while the stream was down is fetched again
            }
          }
          for (const m of messages) {
            let event: AnyEventLog;
            try {
              event = JSON.parse(m.data) as AnyEventLog;
            } catch {
              continue;
            }
            // Entries about no run (refused requests) change nothing the UI shows.
            if (event.dag_id === null || event.dag_run_id === null) continue;
            for (const l of this.listeners) l(event as EventLog);
          }
        }
      } catch {
        // aborted (a new filter or token) or the connection broke: handled below
      }
      if (controller.signal.aborted) continue; // deliberate restart: no banner
      this.wasLost = true;
      setState({ stream: "lost" });
      await sleep(opened ? 300 : delay);
      delay = Math.min(delay * 2, 4000);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, signal: AbortSignal): Promise<void> {
  while (!cond() && !signal.aborted) await sleep(250);
}

export const live = new LiveStream();

/** Calls handler for each live event (the latest handler, without resubscribing). */
export function useLiveEvents(handler: Listener): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => live.subscribe((e) => ref.current(e)), []);
}

/**
 * Calls fn at most once per `ms` while events keep coming (first call after `ms`): batches a
 * burst of state changes into one refetch.
 */
export function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  return useRef(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      fnRef.current();
    }, ms);
  }).current;
}
