// The DAG-level onSuccess / onFailure of ended runs, for a worker: claims due callbacks
// (store/transitions/runCallbacks.ts) every pollMs and whenever the worker saw a run end, runs
// each in one of the worker's child processes, and clears it. Callbacks are at least once: a
// worker that stops gives back what it did not run; one that dies leaves its lease to expire.
import type { Clock } from "../core/clock.ts";
import { settledWithin } from "../core/concurrency.ts";
import { dagCallbackLogPath } from "../core/logPaths.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";
import { claimRunCallbacks, completeRunCallback, releaseRunCallbacks, type DueRunCallback } from "../store/transitions/runCallbacks.ts";
import type { VersionCache } from "../store/versions.ts";
import type { BundleCache } from "./bundleCache.ts";
import type { DagCallbackMessage } from "./protocol.ts";

export interface RunCallbackOptions {
  logsFolder: string;
  /** How often to look for callbacks that other processes' run ends made due (default 1,000 ms). */
  pollMs?: number;
  /** A claimed callback not cleared within this is taken over by another worker (default 150 s: callbacks are bounded to 60 s). */
  leaseMs?: number;
  /** Callbacks claimed at once (default 4). */
  batch?: number;
}

/** Runs one callback in a child process; resolves once it ran (its own errors are logged in its log, not raised). */
export type RunCallbackInChild = (message: DagCallbackMessage) => Promise<void>;

export class RunCallbacks {
  private timer?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private again = false;
  private stopping = false;
  /** The worker killed its children: nothing more starts, what is left goes back. */
  private released = false;
  private readonly inFlight = new Map<number, DueRunCallback>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly versions: VersionCache,
    private readonly bundles: BundleCache,
    private readonly runInChild: RunCallbackInChild,
    private readonly options: RunCallbackOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.wake(), this.options.pollMs ?? 1000);
    this.timer.unref();
    this.wake();
  }

  /** A run may have ended: look for due callbacks now. */
  wake(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err) => this.logger.warn(`could not run DAG callbacks: ${(err as Error).message}`))
      .finally(() => {
        this.draining = undefined;
      });
  }

  /** Claims no more; lets the callbacks claimed run until the deadline (release() gives back the rest). */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.drainingWithin(deadline - Date.now());
  }

  /** The worker is about to kill its children: start no callback from now on. */
  halt(): void {
    this.released = true;
  }

  /** After the worker killed its children: callbacks claimed and not cleared go back to other workers. */
  async release(): Promise<void> {
    this.halt();
    // A claim or a callback still in flight ends soon (its child is dead): what it claimed is known
    // then. Bounded: a database that does not answer leaves its claims to their lease.
    await this.drainingWithin(5000);
    const left = [...this.inFlight.values()];
    this.inFlight.clear();
    if (left.length > 0) await releaseRunCallbacks(this.db, left).catch((err) => this.logger.warn(`could not give back DAG callbacks: ${(err as Error).message}`));
  }

  /** Waits for the claims and callbacks in flight, at most `ms`. */
  private drainingWithin(ms: number): Promise<void> {
    return settledWithin(this.draining, Math.max(0, ms));
  }

  private async drain(): Promise<void> {
    const batch = this.options.batch ?? 4;
    for (;;) {
      if (this.stopping) return;
      this.again = false;
      const due = await claimRunCallbacks(this.db, this.clock.now(), batch, this.options.leaseMs ?? 150_000);
      for (const c of due) this.inFlight.set(c.dagRunId, c);
      await Promise.all(due.map((c) => this.runOne(c)));
      if (this.stopping || (!this.again && due.length < batch)) return;
    }
  }

  private async runOne(c: DueRunCallback): Promise<void> {
    try {
      const shape = await this.versions.shape(c.versionHash);
      if (c.state === "success" ? shape.dag.callbacks?.onSuccess : shape.dag.callbacks?.onFailure) {
        const bundlePath = await this.bundles.path(c.versionHash);
        // The worker killed its children: given back by release().
        if (this.released) return;
        await this.runInChild({
          dagId: c.dagId,
          runId: c.runId,
          state: c.state,
          logicalDate: c.logicalDate ? new Date(c.logicalDate).toISOString() : null,
          conf: c.conf,
          bundlePath,
          logPath: dagCallbackLogPath(this.options.logsFolder, c),
        });
      }
      await completeRunCallback(this.db, c);
      this.inFlight.delete(c.dagRunId);
    } catch (err) {
      // Left claimed: given back when the worker stops, else run again once its lease expires.
      this.logger.warn(`DAG callback for run ${c.runId} of ${c.dagId} failed: ${(err as Error).message}`);
    }
  }
}
