// The DAG-level onSuccess / onFailure of ended runs, for a worker: claims due callbacks
// (store/transitions/runCallbacks.ts) every pollMs and whenever the worker saw a run end, runs
// each in one of the worker's child processes, and clears it (the lifecycle: leasedCallbacks.ts).
import type { Clock } from "../core/clock.ts";
import { dagCallbackLogPath } from "../core/logPaths.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";
import { claimRunCallbacks, completeRunCallback, releaseRunCallbacks, type DueRunCallback } from "../store/transitions/runCallbacks.ts";
import type { VersionCache } from "../store/versions.ts";
import type { BundleCache } from "./bundleCache.ts";
import { LeasedCallbacks } from "./leasedCallbacks.ts";
import type { DagCallbackMessage } from "./protocol.ts";

export interface RunCallbackOptions {
  logsFolder: string;
  /** The cap on a run's dag_callbacks.log, as on a try's log (BATON_TASK_LOG_MAX_BYTES; 0: none). */
  maxLogBytes: number;
  /** How often to look for callbacks that other processes' run ends made due (default 1,000 ms). */
  pollMs?: number;
  /** How long a callback may run before it is left behind in a retired process (default CALLBACK_TIMEOUT_MS; tests). */
  callbackTimeoutMs?: number;
  /** A claimed callback not cleared within this is taken over by another worker (default 150 s: callbacks are bounded to 60 s). */
  leaseMs?: number;
  /** Callbacks claimed at once (default 4). */
  batch?: number;
}

/** Runs one callback in a child process; resolves once it ran (its own errors are logged in its log, not raised). */
export type RunCallbackInChild = (message: DagCallbackMessage) => Promise<void>;

export class RunCallbacks extends LeasedCallbacks<DueRunCallback> {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    logger: Logger,
    private readonly versions: VersionCache,
    private readonly bundles: BundleCache,
    private readonly runInChild: RunCallbackInChild,
    private readonly options: RunCallbackOptions,
  ) {
    super(logger, { pollMs: options.pollMs, batch: options.batch, what: "DAG callbacks" });
  }

  protected claim(limit: number): Promise<DueRunCallback[]> {
    return claimRunCallbacks(this.db, this.clock.now(), limit, this.options.leaseMs ?? 150_000);
  }

  protected giveBack(claims: DueRunCallback[]): Promise<void> {
    return releaseRunCallbacks(this.db, claims);
  }

  protected key(c: DueRunCallback): string {
    return String(c.dagRunId);
  }

  protected async run(c: DueRunCallback): Promise<void> {
    try {
      const shape = await this.versions.shape(c.versionHash);
      if (c.state === "success" ? shape.dag.callbacks?.onSuccess : shape.dag.callbacks?.onFailure) {
        const bundlePath = await this.bundles.path(c.versionHash);
        // The worker killed its children: given back by release().
        if (this.released) throw new Error(`DAG callback for run ${c.runId} of ${c.dagId} given back: the worker is stopping`);
        await this.runInChild({
          dagId: c.dagId,
          runId: c.runId,
          state: c.state,
          logicalDate: c.logicalDate ? new Date(c.logicalDate).toISOString() : null,
          conf: c.conf,
          bundlePath,
          logPath: dagCallbackLogPath(this.options.logsFolder, c),
          maxLogBytes: this.options.maxLogBytes,
          timeoutMs: this.options.callbackTimeoutMs,
        });
      }
      await completeRunCallback(this.db, c);
    } catch (err) {
      throw new Error(`DAG callback for run ${c.runId} of ${c.dagId} failed: ${(err as Error).message}`);
    }
  }
}
