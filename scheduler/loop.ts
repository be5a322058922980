import { randomBytes } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { processMetrics, type BatonMetrics } from "../core/metrics.ts";
import { PARKED_RETRY_MS, ParkedIds } from "../core/parked.ts";
import type { Db } from "../store/db.ts";
import type { PageEnd, PageOptions } from "../store/paging.ts";
import { missingPoolsOfQueued, queuedInPool, reconcilePools } from "../store/pools.ts";
import { WarnOnce } from "../core/warnOnce.ts";
import { poolSlotsDep } from "./deps/poolSlots.ts";
import { deleteStaleProcesses } from "../store/processes.ts";
import { releaseDeadWorkers } from "../store/transitions/abandonedTries.ts";
import { advanceBackfills, finishCancelledBackfills } from "../store/transitions/advanceBackfills.ts";
import { createScheduledRuns } from "../store/transitions/createScheduledRuns.ts";
import { failUnusableRuns, type UnusableRun } from "../store/transitions/failUnusableRuns.ts";
import { beatProcess, removeProcess } from "../store/transitions/heartbeat.ts";
import { QUEUE_RETRIES_BATCH, queueRetries } from "../store/transitions/queueRetries.ts";
import { ReapInterrupted, reapZombies, type ReapedZombies } from "../store/transitions/reapZombies.ts";
import { RELEASE_SCHEDULED_PAGE, releaseScheduled } from "../store/transitions/releaseScheduled.ts";
import { timeoutDeferred } from "../store/transitions/signals.ts";
import { startRuns } from "../store/transitions/startRuns.ts";
import { timeoutRuns } from "../store/transitions/timeoutRuns.ts";
import { VersionCache } from "../store/versions.ts";

/** Runs startRuns looks at per transaction. */
const START_RUNS_PAGE = 50;
/** Zombies reapZombies locks per transaction. */
const REAP_ZOMBIES_BATCH = 100;
/** Backfills advanceBackfills locks per transaction. */
const ADVANCE_BACKFILLS_PAGE = 20;
/** Due signal waits timeoutDeferred locks per transaction. */
const TIMEOUT_DEFERRED_PAGE = 500;

/**
 * Calls `page` from the first row on, each call after the last one's lastId, until a page comes
 * back shorter than `size` (asking again for an empty page cost a transaction a tick).
 */
async function throughPages(size: number, page: (options: PageOptions) => Promise<PageEnd>): Promise<void> {
  for (let afterId = 0; ; ) {
    const end = await page({ afterId, limit: size });
    if (end.scanned < size) return;
    afterId = end.lastId;
  }
}

export interface SchedulerOptions {
  intervalMs: number;
  /** Running tries whose heartbeat is older than this are zombies (default 30 s). */
  taskHeartbeatTimeoutMs?: number;
  /** Called when a tick queued task instances, so in-process workers claim at once. */
  onTasksQueued?: () => void;
  /** Where tick durations are observed (default: this process's metrics). */
  metrics?: BatonMetrics;
  /** Due signal waits timeoutDeferred locks per transaction (default TIMEOUT_DEFERRED_PAGE; tests make it small). */
  timeoutDeferredPage?: number;
}

export interface TickReport {
  /** Scheduled runs created (due intervals of unpaused DAGs). */
  runsCreated: number;
  /** Backfill runs created (never more than each backfill's max_active_runs active). */
  backfillRunsCreated: number;
  /** Running runs failed by their dagrunTimeout. */
  runsTimedOut: number;
  runsStarted: number;
  tasksQueued: number;
  retriesQueued: number;
  /** Running tries whose worker stopped heartbeating, handed to their retry policy. */
  zombiesReaped: number;
  durationMs: number;
}

/**
 * The scheduling loop. It only orchestrates: every decision lives in a pure function and
 * every state change in a store transition. It never imports user code. Readiness after a
 * task finishes is decided by the worker's own transaction (the fast path); this loop
 * times out runs, creates scheduled runs, starts runs, reaps zombie tries, re-queues retries,
 * and heartbeats.
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
  private firstBeat?: Promise<void>;
  /**
   * No zombie is reaped before this (ms, this scheduler's clock): after a tick failed, most likely
   * because the database was unreachable, the workers could not heartbeat either. Reaping the
   * moment it is back would fail tries that ran or even finished meanwhile; they get one zombie
   * timeout to heartbeat and record their results first.
   */
  private reapNotBefore = 0;
  /**
   * Zombies the database refused to reap even alone (reapZombies' `refused`), and those of runs
   * whose version cannot be read (`unusableTries`, their runs failed): left out of the reaper's
   * batches, so they cannot fail each one, and tried again after PARKED_RETRY_MS.
   */
  private readonly unreapable = new ParkedIds();
  private lastReconcile = 0;
  private readonly missingPoolWarned = new WarnOnce();
  private lastProcessCleanup = 0;
  /** Where the next tick's page of scheduled tries starts (releaseScheduled). */
  private releaseAfterId = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions,
  ) {
    this.versions = new VersionCache(db.pool);
    this.startedAt = clock.now();
  }

  private get zombieTimeoutMs(): number {
    return this.options.taskHeartbeatTimeoutMs ?? 30_000;
  }

  /** One pass of the loop; its duration (failed ticks included) goes to baton_scheduler_loop_duration_seconds. */
  async tick(): Promise<TickReport> {
    const end = (this.options.metrics ?? processMetrics()).schedulerLoopDuration.startTimer();
    try {
      return await this.tickOnce();
    } catch (err) {
      this.reapNotBefore = this.clock.now().getTime() + this.zombieTimeoutMs;
      throw err;
    } finally {
      end();
    }
  }

  private async tickOnce(): Promise<TickReport> {
    const started = performance.now();
    const now = this.clock.now();
    let runsStarted = 0;
    let tasksQueued = 0;
    // Time-outs first: a failed run frees its place under maxActiveRuns for the next one.
    const timedOut = await timeoutRuns(this.db, now, (h) => this.versions.shape(h));
    for (const run of timedOut.runs) {
      const what = run.compensating ? "was failed; its succeeded tasks are being undone (saga)" : "was failed";
      if (run.unusable) this.logger.error(`dag run ${run.dagId}/${run.runId} exceeded its dagrunTimeout and was failed; ${run.unusable}`);
      else this.logger.warn(`dag run ${run.dagId}/${run.runId} exceeded its dagrunTimeout and ${what}`);
    }
    // Zombies next, for the same reason, and before retries: a zombie with no retry delay is
    // queued again in this same tick.
    let zombiesReaped = 0;
    for (;;) {
      if (now.getTime() < this.reapNotBefore) break;
      const leaveOut = this.unreapable.current(now.getTime());
      let zombies: ReapedZombies;
      try {
        zombies = await reapZombies(this.db, now, this.zombieTimeoutMs, (h) => this.versions.shape(h), REAP_ZOMBIES_BATCH, leaveOut);
      } catch (err) {
        if (!(err instanceof ReapInterrupted)) throw err;
        // What was reaped and committed before the error is told all the same; the tick then fails on it.
        this.reported(now, err.partial);
        throw err.cause;
      }
      this.reported(now, zombies);
      // Zombies of runs whose version cannot be read: their runs are failed (which fails the tries
      // and frees their slots); set aside, so a run left alone cannot bring them back this tick.
      for (const id of zombies.unusableTries) this.unreapable.park(id, now.getTime());
      await this.failUnusable(now, zombies.unusable);
      zombiesReaped += zombies.reaped.length;
      if (zombies.scanned < REAP_ZOMBIES_BATCH) break;
    }
    // Tries ended from outside whose worker stopped heartbeating (abandonedTries.ts): presumed dead
    // with it, as zombies are, they no longer hold their runs' compensations (released below).
    if (now.getTime() >= this.reapNotBefore) {
      const released = await releaseDeadWorkers(this.db.pool, new Date(now.getTime() - this.zombieTimeoutMs));
      if (released > 0) this.logger.warn(`${released} cancelled or marked tr${released === 1 ? "y" : "ies"} of workers that stopped heartbeating no longer hold their runs' compensations`);
    }
    let runsCreated = 0;
    // Each pass moves on (or defers) every DAG it locked; another pass only if one may still be due.
    for (let pass = 0; pass < 20; pass++) {
      const created = await createScheduledRuns(this.db, now);
      runsCreated += created.created.length;
      for (const u of created.unschedulable) this.logger.error(`dag ${u.dagId} cannot be scheduled: ${u.reason}`);
      if (!created.mayHaveMore) break;
    }
    // Backfills: the next runs of each (in batches), before startRuns so they start this tick.
    let backfillRunsCreated = 0;
    await throughPages(ADVANCE_BACKFILLS_PAGE, async (page) => {
      const advanced = await advanceBackfills(this.db, now, page);
      backfillRunsCreated += advanced.created.length;
      for (const id of advanced.completed) this.logger.info(`backfill ${id} completed`);
      return advanced;
    });
    for (const id of await finishCancelledBackfills(this.db, now)) this.logger.info(`backfill ${id} cancelled: its last run ended`);
    await throughPages(START_RUNS_PAGE, async (page) => {
      const batch = await startRuns(this.db, now, (h) => this.versions.shape(h), page);
      runsStarted += batch.started;
      tasksQueued += batch.queued;
      for (const f of batch.failed) this.logger.error(`dag run ${f.dagId}/${f.runId} failed: ${f.reason}`);
      return batch;
    });
    // Retries and sensor reschedules that are due, in batches of QUEUE_RETRIES_BATCH until fewer come back.
    let retriesQueued = 0;
    for (;;) {
      const queued = await queueRetries(this.db, now, QUEUE_RETRIES_BATCH);
      retriesQueued += queued;
      if (queued < QUEUE_RETRIES_BATCH) break;
    }
    // One page of scheduled tries a tick, each tick after the last: all of them are looked at in turn.
    const release = await releaseScheduled(this.db, now, (h) => this.versions.shape(h), { afterId: this.releaseAfterId, limit: RELEASE_SCHEDULED_PAGE });
    this.releaseAfterId = release.scanned < RELEASE_SCHEDULED_PAGE ? 0 : release.lastId;
    tasksQueued += release.released;
    await this.failUnusable(now, release.unusable);
    // Deferred tasks whose signal did not come in time (indexed by next_check_at; costs nothing while they wait),
    // a page at a time until one comes back short. Those a page could not end (their run's version unreadable,
    // and the run perhaps not failed for it) are left out of the next pages: they would fill each page again.
    const deferredPage = this.options.timeoutDeferredPage ?? TIMEOUT_DEFERRED_PAGE;
    const notEnded: number[] = [];
    for (;;) {
      const deferred = await timeoutDeferred(this.db, now, (h) => this.versions.shape(h), { limit: deferredPage, leaveOut: notEnded });
      tasksQueued += deferred.queued;
      await this.failUnusable(now, deferred.unusable);
      notEnded.push(...deferred.notEnded);
      if (deferred.scanned < deferredPage) break;
    }
    if (tasksQueued + retriesQueued > 0) this.options.onTasksQueued?.();
    if (Date.now() - this.lastReconcile > 30_000) {
      this.lastReconcile = Date.now();
      await this.checkPools();
    }
    if (Date.now() - this.lastProcessCleanup > 60_000) {
      this.lastProcessCleanup = Date.now();
      const removed = await deleteStaleProcesses(this.db.pool, new Date(now.getTime() - 3_600_000));
      if (removed > 0) this.logger.info(`removed ${removed} process row(s) silent for over an hour`);
    }
    if (Date.now() - this.lastBeat > 5000) await this.beat(now);
    return { runsCreated, backfillRunsCreated, runsTimedOut: timedOut.runs.length, runsStarted, tasksQueued, retriesQueued, zombiesReaped, durationMs: performance.now() - started };
  }

  /** Logs the zombies reaped and sets aside those refused (reapZombies' result). */
  private reported(now: Date, zombies: ReapedZombies): void {
    for (const z of zombies.reaped) {
      this.logger.warn(
        `zombie: try ${z.tryNumber} of ${z.dagId}.${z.taskId} (run ${z.runId}) on ${z.hostname ?? "?"} pid ${z.pid ?? "?"} ` +
          `stopped heartbeating at ${z.heartbeatAt.toISOString()}; now ${z.state}`,
      );
    }
    for (const z of zombies.refused) {
      this.unreapable.park(z.id, now.getTime());
      this.logger.error(
        `zombie: try ${z.tryNumber} of ${z.dagId}.${z.taskId} (run ${z.runId}) could not be reaped (${z.code}): ${z.reason}; ` +
          `it stays running and is tried again every ${PARKED_RETRY_MS / 1000} s, the other zombies are reaped`,
      );
    }
  }

  /**
   * Pool upkeep, every 30 s from the tick: occupied slots recomputed from the running tasks, and a
   * warning (once per pool name, as the worker warns once about a try larger than its pool) for
   * queued tasks whose pool does not exist, which no claim takes (Airflow: "Tasks using
   * non-existent pool … will not be scheduled"). The reason is poolSlotsDep's, as the API's
   * …/dependencies gives it.
   */
  async checkPools(): Promise<void> {
    const fixed = await reconcilePools(this.db);
    if (fixed > 0) this.logger.warn(`corrected the occupied slots of ${fixed} pool(s) from the running tasks`);
    for (const pool of await missingPoolsOfQueued(this.db.pool)) {
      if (this.missingPoolWarned.has(pool)) continue;
      const waiting = await queuedInPool(this.db.pool, pool);
      // Claimed or moved on meanwhile: nothing to warn about, and the pool is not marked warned,
      // so tasks queued in it later are warned about.
      if (!waiting || !this.missingPoolWarned.first(pool)) continue;
      const reason = poolSlotsDep({ ...waiting.sample, pool }, undefined).reason;
      this.logger.warn(`Tasks using non-existent pool "${pool}" will not be scheduled: ${waiting.queued} queued task instance(s) wait. ${reason}`);
    }
  }

  /**
   * Fails the runs a step met pinned to a version that cannot be read (failUnusableRuns): the step
   * moved the others on, and they would stop it at every tick.
   */
  private async failUnusable(now: Date, runs: UnusableRun[]): Promise<void> {
    if (runs.length === 0) return;
    for (const f of await failUnusableRuns(this.db, now, runs)) this.logger.error(`dag run ${f.dagId}/${f.runId} failed: ${f.reason}`);
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
        return { runsCreated: 0, backfillRunsCreated: 0, runsTimedOut: 0, runsStarted: 0, tasksQueued: 0, retriesQueued: 0, zombiesReaped: 0, durationMs: 0 };
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

  private async beat(now: Date): Promise<void> {
    await beatProcess(this.db, now, { id: this.id, kind: "scheduler", startedAt: this.startedAt });
    this.lastBeat = Date.now();
  }

  /**
   * Writes the first heartbeat, then starts ticking. Resolves once that heartbeat is stored (as
   * Airflow's scheduler job records one when it starts): /health, asked the moment the process
   * is up, sees this scheduler, whereas a first tick may take long. A first heartbeat that fails
   * is logged, not thrown: the ticks beat once the database answers.
   */
  async start(): Promise<void> {
    this.firstBeat = this.beat(this.clock.now()).catch((err) => this.logger.error(`scheduler heartbeat failed: ${(err as Error).message}`));
    await this.firstBeat;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // Its row is removed below: a first heartbeat still in flight would write it back.
    await this.firstBeat;
    await this.ticking;
    await removeProcess(this.db, this.id).catch(() => undefined);
  }
}
