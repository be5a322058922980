import { randomBytes } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { Db } from "../store/db.ts";
import { reconcilePools } from "../store/pools.ts";
import { beatProcess, removeProcess } from "../store/transitions/heartbeat.ts";
import { queueRetries } from "../store/transitions/queueRetries.ts";
import { startRuns } from "../store/transitions/startRuns.ts";
import { VersionCache } from "../store/versions.ts";

export interface SchedulerOptions {
  intervalMs: number;
  /** Called when a tick queued task instances, so in-process workers claim at once. */
  onTasksQueued?: () => void;
}

export interface TickReport {
  runsStarted: number;
  tasksQueued: number;
  retriesQueued: number;
  durationMs: number;
}

/**
 * The scheduling loop. It only orchestrates: every decision lives in a pure function and
 * every state change in a store transition. It never imports user code. Readiness after a
 * task finishes is decided by the worker's own transaction (the fast path); this loop
 * starts runs, re-queues retries, and heartbeats.
 */
export class Scheduler {
  readonly id = randomBytes(16).toString("hex");
  private readonly versions: VersionCache;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<TickReport>;
  private again = false;
  private stopped = false;
  private readonly startedAt: Date;
  private lastBeat = 0;
  private lastReconcile = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions,
  ) {
    this.versions = new VersionCache(db.pool);
    this.startedAt = clock.now();
  }

  async tick(): Promise<TickReport> {
    const started = performance.now();
    const now = this.clock.now();
    let runsStarted = 0;
    let tasksQueued = 0;
    for (;;) {
      const batch = await startRuns(this.db, now, (h) => this.versions.shape(h));
      runsStarted += batch.started;
      tasksQueued += batch.queued;
      if (batch.started === 0) break;
    }
    const retriesQueued = await queueRetries(this.db, now);
    if (tasksQueued + retriesQueued > 0) this.options.onTasksQueued?.();
    if (Date.now() - this.lastReconcile > 30_000) {
      this.lastReconcile = Date.now();
      const fixed = await reconcilePools(this.db);
      if (fixed > 0) this.logger.warn(`corrected the occupied slots of ${fixed} pool(s) from the running tasks`);
    }
    if (Date.now() - this.lastBeat > 5000) {
      this.lastBeat = Date.now();
      await beatProcess(this.db, now, { id: this.id, kind: "scheduler", startedAt: this.startedAt });
    }
    return { runsStarted, tasksQueued, retriesQueued, durationMs: performance.now() - started };
  }

  /** Runs a tick now (or right after the current one). */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.ticking = this.tick()
      .catch((err) => {
        this.logger.error(`scheduler tick failed: ${(err as Error).message}`);
        return { runsStarted: 0, tasksQueued: 0, retriesQueued: 0, durationMs: 0 };
      })
      .finally(() => {
        this.ticking = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.wake();
        } else {
          this.timer = setTimeout(() => this.wake(), this.options.intervalMs);
        }
      });
  }

  start(): void {
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await removeProcess(this.db, this.id).catch(() => undefined);
  }
}
