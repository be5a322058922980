import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * Baton's Prometheus metrics: one registry per process, holding the metric objects the
 * scheduler, the worker and the API update. No I/O here: gauges that come from the database
 * are set by the API at scrape time (api/metrics.ts), the others where things happen.
 *
 * Counters and histograms count what *this process* did (its worker's tries, its scheduler's
 * ticks); Prometheus sums them across processes. Gauges read from MySQL are the same on every
 * API process.
 */
export interface BatonMetrics {
  readonly registry: Registry;
  /** Dag runs in an active state (queued, running), counted at scrape time. */
  readonly dagRuns: Gauge<"state">;
  /** Task instances in an active (non-terminal) state, counted at scrape time. */
  readonly taskInstances: Gauge<"state">;
  /** Task instances waiting in state queued, by queue. */
  readonly queueDepth: Gauge<"queue">;
  /** The API process's MySQL pool: connections used, free, and callers waiting for one. */
  readonly dbPoolConnections: Gauge<"state">;
  /** 1 when the last scrape could read the database, else 0 (the database gauges are then absent). */
  readonly metadatabaseUp: Gauge;
  /** Run time of each recorded try, from claim to result, by DAG and the state it was recorded in. */
  readonly taskDuration: Histogram<"dag_id" | "state">;
  /** Recorded tries by the state they were recorded in (success, failed, up_for_retry, skipped, …). */
  readonly taskFinished: Counter<"state">;
  readonly schedulerLoopDuration: Histogram;
  /** From queued_at to a worker's claim, for tasks claimed from the queue. */
  readonly claimLatency: Histogram;
  /**
   * The worker's database calls, one at a time in its loop: `finish` records tries (and claims
   * their ready downstream tasks), `claim` takes queued ones. Their summed duration over wall
   * time is how busy that loop is; near 1, the worker's throughput is bound by these calls.
   */
  readonly workerDbCallDuration: Histogram<"call">;
  /** Tries recorded (finish; fenced results left out) or claimed (claim) by those calls: divided by their count, the batch size. */
  readonly workerDbCallTries: Counter<"call">;
  /** Ready downstream tries taken inside finish calls: with call=claim's tries, every try the worker started. */
  readonly workerHandoffs: Counter;
}

export const METRIC_PREFIX = "baton_";

/** Active states: the only ones the scrape counts, so a scrape never scans finished history. */
export const ACTIVE_RUN_STATES = ["queued", "running"] as const;
export const ACTIVE_TASK_STATES = ["none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule", "deferred"] as const;

/** The states the worker records a try in (baton_task_finished_total{state}); executor/worker.ts observeRecorded. */
export const RECORDED_TRY_STATES = ["success", "failed", "up_for_retry", "skipped", "up_for_reschedule", "deferred"] as const;
export type RecordedTryState = (typeof RECORDED_TRY_STATES)[number];
export const WORKER_DB_CALLS = ["finish", "claim"] as const;
export type WorkerDbCall = (typeof WORKER_DB_CALLS)[number];

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC), prefixed `baton_` (default true). */
  defaultMetrics?: boolean;
}

/** A fresh registry with every Baton metric; tests make their own, processes use processMetrics(). */
export function createMetrics(options: MetricsOptions = {}): BatonMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const metrics: BatonMetrics = {
    registry,
    dagRuns: new Gauge({ name: "baton_dag_runs", help: "DAG runs in an active state (queued, running).", labelNames: ["state"], registers }),
    taskInstances: new Gauge({
      name: "baton_task_instances",
      help: "Task instances in a non-terminal state (none, scheduled, queued, running, up_for_retry, up_for_reschedule, deferred).",
      labelNames: ["state"],
      registers,
    }),
    queueDepth: new Gauge({ name: "baton_queue_depth", help: "Task instances waiting in state queued, by queue.", labelNames: ["queue"], registers }),
    dbPoolConnections: new Gauge({
      name: "baton_db_pool_connections",
      help: "MySQL pool of this process: connections in use, idle, and requests waiting for a connection.",
      labelNames: ["state"],
      registers,
    }),
    metadatabaseUp: new Gauge({ name: "baton_metadatabase_up", help: "1 when the last scrape could query MySQL, 0 when it could not.", registers }),
    taskDuration: new Histogram({
      name: "baton_task_duration_seconds",
      help: "Run time of each try this process's worker recorded, from claim to result.",
      labelNames: ["dag_id", "state"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600],
      registers,
    }),
    taskFinished: new Counter({
      name: "baton_task_finished_total",
      help: "Tries this process's worker recorded, by the state they were recorded in.",
      labelNames: ["state"],
      registers,
    }),
    schedulerLoopDuration: new Histogram({
      name: "baton_scheduler_loop_duration_seconds",
      help: "Duration of each scheduler tick in this process, failed ticks included.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    claimLatency: new Histogram({
      name: "baton_claim_latency_seconds",
      help: "Time a task instance waited in state queued before this process's worker claimed it (fast-path hand-offs never wait and are not counted).",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    workerDbCallDuration: new Histogram({
      name: "baton_worker_db_call_duration_seconds",
      help: "Database calls of this process's worker loop (one at a time): call=finish records tries, call=claim takes queued ones.",
      labelNames: ["call"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    workerDbCallTries: new Counter({
      name: "baton_worker_db_call_tries_total",
      help: "Tries recorded (call=finish; fenced results not counted) or claimed (call=claim) by this process's worker loop.",
      labelNames: ["call"],
      registers,
    }),
    workerHandoffs: new Counter({
      name: "baton_worker_handoffs_total",
      help: "Ready downstream tries this process's worker took inside its finish calls (the fast path: no claim call, no wait in queued).",
      registers,
    }),
  };
  zeroSeries(metrics);
  return metrics;
}

/**
 * Exports the bounded label sets of the counters at 0 before anything happened: a series that
 * first appears at 1 (the first failure after a restart) is invisible to increase() and rate().
 * Not the duration histogram: its dag_id labels are not known in advance.
 */
function zeroSeries(metrics: BatonMetrics): void {
  for (const state of RECORDED_TRY_STATES) metrics.taskFinished.inc({ state }, 0);
  for (const call of WORKER_DB_CALLS) {
    metrics.workerDbCallTries.inc({ call }, 0);
    metrics.workerDbCallDuration.zero({ call });
  }
}

let current: BatonMetrics | undefined;

/** This process's metrics, created (with the Node process metrics) on first use. */
export function processMetrics(): BatonMetrics {
  return (current ??= createMetrics());
}

/** Zeroes every metric of this process's registry (tests). */
export function resetProcessMetrics(): void {
  if (!current) return;
  current.registry.resetMetrics();
  zeroSeries(current);
}

/**
 * Sets a labelled gauge to exactly these counts: every label in `always` (zero when absent)
 * and every label counted; labels of earlier scrapes that are gone now are removed.
 */
export function setGaugeCounts<L extends string>(gauge: Gauge<L>, label: L, counts: ReadonlyMap<string, number>, always: readonly string[] = []): void {
  const labels = (value: string) => ({ [label]: value }) as Partial<Record<L, string>>;
  gauge.reset();
  for (const value of always) gauge.set(labels(value), counts.get(value) ?? 0);
  for (const [value, n] of counts) gauge.set(labels(value), n);
}
