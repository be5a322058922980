/**
 * Node's setTimeout takes delays up to 2^31−1 ms (≈ 24.8 days): a longer one fires after
 * 1 ms (with a TimeoutOverflowWarning). DAG authors' durations (executionTimeout, a sensor's
 * pokeInterval, …) may legitimately be longer, so every such duration that reaches a timer
 * goes through setLongTimeout, which chains timers of at most that length.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimeout {
  /** Cancels the timer; safe to call more than once, and after it fired. */
  clear(): void;
}

/**
 * Calls `fn` once `ms` milliseconds have passed (any finite length), unless cleared first.
 * `maxChunkMs` is the longest single timer (tests lower it).
 */
export function setLongTimeout(fn: () => void, ms: number, maxChunkMs = MAX_TIMER_MS): LongTimeout {
  // NaN or negative: at once, as setTimeout does. Infinity never fires.
  let left = Number.isNaN(ms) ? 0 : Math.max(0, ms);
  let timer: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = () => {
    if (left === Infinity) return;
    const chunk = Math.min(left, maxChunkMs);
    left -= chunk;
    timer = setTimeout(() => {
      timer = undefined;
      if (cleared) return;
      if (left > 0) arm();
      else fn();
    }, chunk);
  };
  arm();
  return {
    clear() {
      cleared = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** Resolves after `ms` (any length), or at once when `signal` aborts (never rejects). */
export function abortableSleep(ms: number, signal: AbortSignal, maxChunkMs = MAX_TIMER_MS): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setLongTimeout(done, ms, maxChunkMs);
    function done() {
      timer.clear();
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * AbortSignal.timeout(ms) for any length (it overflows as setTimeout does): aborts with a
 * "TimeoutError" DOMException after `ms`. clear() when the work is done, or the timer lives on.
 */
export function timeoutSignal(ms: number, maxChunkMs = MAX_TIMER_MS): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setLongTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms, maxChunkMs);
  return { signal: controller.signal, clear: () => timer.clear() };
}
