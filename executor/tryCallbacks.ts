// onRetry / onFailure owed by tries no worker ended — a scheduler reaped them as zombies (their
// worker died or froze) or ended their signal wait at its timeout (no process was running them),
// so nobody ran them (scheduler/owedCallbacks.ts decides which) — for a worker serving the task's queue: claims owed callbacks
// (store/transitions/tryCallbacks.ts) every pollMs, runs each in one of the worker's children
// with the try's ctx and the zombie error, and completes it, storing what it logged after the
// reason the scheduler wrote at the end of the try's log (task_log.epilogue: the try's file, if
// any, is on the dead worker's host). The lifecycle, at least once: leasedCallbacks.ts.
import { offsetFromWallClock, type Clock } from "../core/clock.ts";
import { taskInputs } from "../core/dagStructure.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";
import { stepsOf } from "../store/transitions/recordStep.ts";
import { claimTryCallbacks, completeTryCallback, releaseTryCallbacks, type OwedTryCallback } from "../store/transitions/tryCallbacks.ts";
import type { VersionCache } from "../store/versions.ts";
import { upstreamOutputs } from "../store/xcom.ts";
import type { BundleCache } from "./bundleCache.ts";
import { LeasedCallbacks } from "./leasedCallbacks.ts";
import type { EndedTryCallbackMessage, EndedTryCallbackResult } from "./protocol.ts";
import { tryMessage } from "./tryMessage.ts";

export interface TryCallbackOptions {
  queues: readonly string[];
  logsFolder: string;
  maxValueBytes: number;
  /** BATON_TASK_LOG_MAX_BYTES: the cap on what a callback adds to the try's log (0: none). */
  maxLogBytes: number;
  /** How often to look for owed callbacks (default 1,000 ms). */
  pollMs?: number;
  /** A claimed callback not completed within this is taken over by another worker (default 150 s: callbacks are bounded to 60 s). */
  leaseMs?: number;
}

/** Runs one callback in a child (a fresh one when `dedicated`); rejects if the child died. */
export type TryCallbackInChild = (message: EndedTryCallbackMessage, dedicated: boolean) => Promise<EndedTryCallbackResult>;

export class TryCallbacks extends LeasedCallbacks<OwedTryCallback> {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    logger: Logger,
    private readonly versions: VersionCache,
    private readonly bundles: BundleCache,
    private readonly runInChild: TryCallbackInChild,
    private readonly options: TryCallbackOptions & { isolation?: "warm" | "process" },
  ) {
    super(logger, { pollMs: options.pollMs, what: "the callbacks of reaped tries" });
  }

  protected claim(limit: number): Promise<OwedTryCallback[]> {
    return claimTryCallbacks(this.db, this.clock.now(), this.options.queues, limit, this.options.leaseMs ?? 150_000);
  }

  protected giveBack(claims: OwedTryCallback[]): Promise<void> {
    return releaseTryCallbacks(this.db, claims);
  }

  protected key(c: OwedTryCallback): string {
    return `${c.taskInstanceId}#${c.tryNumber}`;
  }

  protected async run(c: OwedTryCallback): Promise<void> {
    const what = `${c.callback} of try ${c.tryNumber} of ${c.dagId}.${c.taskId} (run ${c.runId})`;
    const shape = await this.versions.shape(c.versionHash);
    const spec = shape.byId.get(c.taskId);
    if (!spec) {
      // Its version no longer knows the task: there is no code to call back.
      await completeTryCallback(this.db, this.clock.now(), c, `[${this.clock.now().toISOString()}] WARNING - ${c.callback} not run: the DAG version has no task ${c.taskId}\n`);
      return;
    }
    const [outputs, steps, bundlePath] = await Promise.all([
      upstreamOutputs(this.db.pool, [{ dagRunId: c.dagRunId, taskIds: taskInputs(spec), runTasks: shape.byId.size }]),
      stepsOf(this.db.pool, [c.taskInstanceId]),
      this.bundles.path(c.versionHash),
    ]);
    // The worker killed its children: given back by release().
    if (this.released) throw new Error(`${what} given back: the worker is stopping`);
    const task = { ...c, id: c.taskInstanceId };
    const message = tryMessage(task, shape, {
      upstreamOutputs: outputs.get(c.dagRunId) ?? {},
      steps: steps.get(c.taskInstanceId) ?? {},
      bundlePath,
      logsFolder: this.options.logsFolder,
      maxValueBytes: this.options.maxValueBytes,
      maxLogBytes: this.options.maxLogBytes,
      clockOffsetMs: offsetFromWallClock(this.clock),
    });
    let log: string | undefined;
    try {
      const result = await this.runInChild({ task: message, error: c.error, callback: c.callback, inlineLog: true }, this.options.isolation === "process" || spec.isolation === "process");
      log = result.log;
    } catch (err) {
      // The worker killed its children to stop: given back by release(), run by another worker.
      if (this.released) throw err;
      // Its process died or was killed (a callback that blocks its event loop): logged, not run again.
      log = `[${this.clock.now().toISOString()}] ERROR - the task's ${c.callback} callback did not complete: ${(err as Error).message}\n`;
      this.logger.warn(`${what} did not complete: ${(err as Error).message}`);
    }
    await completeTryCallback(this.db, this.clock.now(), c, log);
  }
}
