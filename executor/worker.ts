import { randomBytes } from "node:crypto";
import { appendFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Child } from "../core/childProcess.ts";
import { beforeDeadline, settledWithin } from "../core/concurrency.ts";
import { offsetFromWallClock, type Clock } from "../core/clock.ts";
import { DEFAULT_TASK_LOG_MAX_BYTES } from "../core/config.ts";
import { formatDuration } from "../core/durations.ts";
import { setLongTimeout, type LongTimeout } from "../core/timers.ts";
import { taskInputs } from "../core/dagStructure.ts";
import { taskLogPath } from "../core/logPaths.ts";
import type { Logger } from "../core/logger.ts";
import { processMetrics, type BatonMetrics, type RecordedTryState, type WorkerDbCall } from "../core/metrics.ts";
import { PARKED_RETRY_MS, ParkedIds } from "../core/parked.ts";
import { isConnectionError, isDataError, unknownCommitOf, type Db } from "../store/db.ts";
import { truncateUtf8 } from "../core/json.ts";
import { claimTasksReporting, type ClaimedTask, type OversizedTry } from "../store/transitions/claimTasks.ts";
import { taskInstanceNames } from "../store/queries/read.ts";
import { shownSlots } from "../store/pools.ts";
import { connectionsBusy, recordedResults, triesClaimedBy } from "../store/queries/unknownCommits.ts";
import { poolSlotsDep } from "../scheduler/deps/poolSlots.ts";
import { GateDepths } from "../scheduler/handoff.ts";
import { WarnOnce } from "../core/warnOnce.ts";
import { finishTries, STORED_ERROR_MAX_BYTES, type FinishedTry, type FinishResult, type TryError } from "../store/transitions/finishTries.ts";
import { handBack, type HeldTry } from "../store/transitions/handBack.ts";
import { beatProcess, beatTries, removeProcess } from "../store/transitions/heartbeat.ts";
import { VersionCache, isUnusableVersion } from "../store/versions.ts";
import { upstreamOutputs } from "../store/xcom.ts";
import { recordFirstPoke } from "../store/transitions/recordFirstPoke.ts";
import { releaseAbandoned } from "../store/transitions/abandonedTries.ts";
import { recordStep, stepsOf } from "../store/transitions/recordStep.ts";
import { BundleCache } from "./bundleCache.ts";
import { claimAheadAllowance, movingAverage } from "./claimAhead.ts";
import { RunCallbacks } from "./runCallbacks.ts";
import { TryCallbacks } from "./tryCallbacks.ts";
import { tryMessage } from "./tryMessage.ts";
import { answerSecret, isSecretGet } from "./secrets.ts";
import {
  CALLBACK_TIMEOUT_MS,
  type DagCallbackMessage,
  type EndedTryCallbackMessage,
  type EndedTryCallbackResult,
  type RunTryMessage,
  type SensorFirstPoke,
  type FirstPokeAck,
  type StepAck,
  type StepPut,
  type TryOutcome,
} from "./protocol.ts";
import { INSTALL_ROOT } from "../core/installation.ts";

const CHILD_SCRIPT = path.join(INSTALL_ROOT, "executor", "child.ts");
/**
 * What a finish batch may send of its tries' outputs, logs and errors, escaped: well under the
 * smallest max_allowed_packet in use (MySQL 5.7's 4 MiB; MariaDB's default is 16 MiB, MySQL 8's
 * 64 MiB), with room for the statements around them.
 */
const FINISH_BATCH_SENT_BYTES = 3 * 1024 * 1024;

/**
 * A finished try's share of its batch's round trip, at most: a character of the text takes 3
 * bytes at most, in UTF-8 or escaped (an ASCII quote or backslash becomes two).
 */
function sentBytes(t: FinishedTry): number {
  const output = t.output === undefined ? 0 : (JSON.stringify(t.output)?.length ?? 0);
  const error = t.error === undefined ? 0 : Math.min(STORED_ERROR_MAX_BYTES, JSON.stringify(t.error).length);
  return 256 + 3 * (output + (t.log?.length ?? 0)) + error;
}

/**
 * Everything a task process exchanges with its worker is JSON (outputs and step results are
 * JSON-checked in the child). It runs as a compiled entry: it imports only JavaScript (DAG
 * bundles and the SDK module), so tsx would only cost its boot. In a process group of its own:
 * killing it (executionTimeout, shutdown) kills the processes the task started too, and a signal
 * for the worker's whole group (Ctrl-C, systemd stopping the unit) leaves the try to the worker,
 * which finishes it or hands it back, instead of failing it as a process that died. What it prints
 * outside a try's capture goes to the worker's stderr, with the service logs (stdout may be a CLI's
 * document: `baton -o json dags test`).
 */
const TASK_CHILD = { stdio: "stderr", serialization: "json", precompiled: true, processGroup: true } as const;

export interface WorkerOptions {
  concurrency: number;
  queues: string[];
  hostname?: string;
  logsFolder: string;
  cacheFolder: string;
  pollMinMs?: number;
  pollMaxMs?: number;
  heartbeatMs?: number;
  /** After a timeout aborts ctx.signal, how long the task gets before its process is killed. */
  killGraceMs?: number;
  /** The scheduler's zombie timeout: a worker that cannot heartbeat for half of it kills its tasks. */
  heartbeatTimeoutMs?: number;
  /**
   * stop(): how long each of its database steps may take (waiting for a claim in flight, handing
   * back unfinished tries, recording the results of ended ones) before stop() gives up and fails
   * (default 5 s). Tries left unrecorded stay running in the database until reaped as zombies.
   */
  stopRecordTimeoutMs?: number;
  /** Cap on the JSON size of a task's output and of each durable step's result (default 1 MiB). */
  maxValueBytes?: number;
  /**
   * What a try's log keeps of its output (BATON_TASK_LOG_MAX_BYTES; default 100 MiB, 0: no limit):
   * past it the rest is dropped and counted, and the try goes on (executor/tryLog.ts).
   */
  maxLogBytes?: number;
  /** How long a DAG's onSuccess/onFailure may run (default CALLBACK_TIMEOUT_MS, 60 s): for tests. */
  dagCallbackTimeoutMs?: number;
  /** "process": every try runs in a fresh child, discarded afterwards (default "warm": reused children). */
  isolation?: "warm" | "process";
  /**
   * Start the warm children (one per slot) when the worker starts, as Celery's prefork pool
   * does, and register and claim once they are up, instead of booting them at the first tries
   * (default false; `baton worker` and the standalone set it). A child takes ≈ 250 ms of CPU to
   * boot here: a fresh worker's first tries waited for it, and four fresh workers' 16 boots on
   * two cores took ≈ 2 s.
   */
  prestartChildren?: boolean;
  /**
   * Tries ended from outside (cancelled, marked, cleared) whose process has since ended no longer
   * hold their runs' compensations (abandonedTries.ts): the scheduler queues those now.
   */
  onAbandonedReleased?: () => void;
  /** Tasks that finish or started successfully are reported here (tests, `dags test`). */
  onRecorded?: (result: { finished: number[]; runsFinished: { dagRunId: number; state: string }[] }) => void;
  /** Where try durations and claim latencies are observed (default: this process's metrics). */
  metrics?: BatonMetrics;
  /**
   * The most tries claimed beyond the free slots while tries are short (default: 64 × concurrency).
   * They wait in this worker and start the moment a slot frees, so a slot never waits for a claim's
   * round trips. How many are claimed ahead adapts: enough to keep every slot busy for two turns
   * of the database loop (a finish and a claim each), so no-op tasks are claimed in large
   * batches and long tries are not claimed ahead at all (they never wait here while another
   * worker idles).
   */
  claimAhead?: number;
  /** A try claimed ahead that has not started within this is handed back for any worker (default 1 s). */
  claimAheadMaxWaitMs?: number;
  /** How often to look for DAG callbacks made due by runs other processes ended, and for task callbacks owed by tries a scheduler reaped (default 1,000 ms). */
  callbackPollMs?: number;
}

/**
 * A try claimed ahead that has not started within this is handed back for any worker: the
 * tries ahead of it turned out long, and it must not wait here while another worker idles.
 */
const MAX_WAIT_MS = 1000;

/**
 * After a COMMIT whose answer was lost, how long the worker waits for the server to end that
 * connection's batch before it reads what the batch claimed (it reads anyway after this).
 */
const UNKNOWN_COMMIT_WAIT_MS = 5000;

/** How long a claimed try whose inputs could not be read alone is first left out of this worker's claims (then longer: unreadable). */
const UNREAD_FIRST_WAIT_MS = 1000;

/** Why a try's result is discarded when its row moved on without it, as its log says (the start of the line). */
const NO_LONGER_OURS = "this try is no longer the task instance's (cancelled, marked, cleared, timed out or reaped)";

/** How long a worker with prestartChildren waits for its children to boot before it claims anyway. */
const CHILD_BOOT_WAIT_MS = 10_000;

function tryKey(task: { id: number; tryNumber: number }): string {
  return `${task.id}#${task.tryNumber}`;
}

/** Whether dispatch reads inputs for this try: its durable steps, or its upstream outputs (not read by its claim). */
function readsInputs(task: ClaimedTask): boolean {
  return task.unstartable === undefined && (task.tryNumber > 1 || !!task.stepsKept || task.upstreamOutputs === undefined);
}

/** A claimed try ready to run, waiting for a free slot. */
interface Prepared {
  task: ClaimedTask;
  message: RunTryMessage;
  timeoutMs: number | null;
  dedicated: boolean;
  /** When it started waiting (Date.now()). */
  since: number;
}

interface Slot {
  child: Child;
  busy: boolean;
  /** Runs one try only (isolation: "process"); stopped afterwards. */
  dedicated?: boolean;
}

interface Held {
  task: ClaimedTask;
  slot?: Slot;
  timedOut?: boolean;
  /** Being handed back, or handed back by a stopping worker: it never starts, and is neither beaten, nor taken for an orphan, nor aborted by a heartbeat that began before. */
  handedBack?: boolean;
  /** The try is no longer ours (cleared, reaped, its run timed out, or we lost the database). */
  lost?: boolean;
  /** Why it was abandoned, as its log says it (abandon). */
  lostWhy?: string;
  /** Its process was killed after the grace abandon() gave it: how long that was (ms). */
  killedAfterMs?: number;
  /** A sensor's first poke, when this try made it: recorded with the outcome. */
  firstPokeAt?: Date;
  /** The try's process ran (or began) its callbacks itself: the worker never runs them for it. */
  callbacksTaken?: boolean;
  timers: LongTimeout[];
}

/**
 * Claims queued task instances for its pool of warm child processes, runs them, and records
 * their results. All of its database work runs in one loop on one connection at a time:
 * claims are batched for every free slot, finished tries are recorded together, and the
 * transaction that records results also claims the next tasks (the fast path).
 */
export class Worker {
  readonly id = randomBytes(16).toString("hex");
  private readonly versions: VersionCache;
  private readonly bundles: BundleCache;
  /** The caps every try message and callback carries (options' or their defaults). */
  private readonly maxValueBytes: number;
  private readonly maxLogBytes: number;
  private readonly runCallbacks: RunCallbacks;
  private readonly tryCallbacks: TryCallbacks;
  /** Tries this worker claimed and has not recorded, by tryKey: a cleared try and the next try of the same task instance may both be here. */
  private readonly held = new Map<string, Held>();
  /** How the hand-off gate reads each pool's queue (shallow, or deep for a while after a refusal). */
  private readonly gateDepths = new GateDepths();
  /** Tries too big for their pool, already looked up (by id and sizes), and already warned about (by task, pool and sizes). */
  private readonly oversizedSeen = new WarnOnce();
  private readonly oversizedWarned = new WarnOnce();
  private readonly slots: Slot[] = [];
  private finished: FinishedTry[] = [];
  /** The finish batch being recorded right now (taken from `finished`; back there if the call fails). */
  private recording: readonly FinishedTry[] = [];
  /**
   * Tries (tryKey) of a finish batch the database refused for a value (isDataError): they are
   * recorded one per call until each is (or is parked), so the one at fault cannot hold the
   * others back, nor be batched with them again.
   */
  private readonly recordAlone = new Set<string>();
  /**
   * Tries whose result the database refused even as BATON_RESULT_UNRECORDABLE (a value their
   * outcome's consequences write, e.g. an old DAG version's compensation): out of `finished`, so
   * the other results go on being recorded, and tried again every PARKED_RETRY_MS meanwhile.
   */
  private parked: { t: FinishedTry; retryAt: number }[] = [];
  /**
   * Queued tries the database refused to claim even alone (claimTasks' `refused`): left out of
   * this worker's claims, so they cannot fail each one, and tried again after PARKED_RETRY_MS.
   */
  private readonly unclaimable = new ParkedIds();
  /**
   * Claimed tries whose inputs (durable steps, upstream outputs, DAG version) could not be read:
   * never started, held (and heartbeated) until the loop's next turn hands them back (handBackUnread).
   */
  private unread: Held[] = [];
  /**
   * Tries whose inputs could not be read even alone: left out of this worker's claims for
   * UNREAD_FIRST_WAIT_MS, twice as long each time it happens again, up to PARKED_RETRY_MS.
   */
  private readonly unreadable = new ParkedIds();
  private loopRunning = false;
  private wantClaim = true;
  /** The last claim left queued tries behind: see claimIfRunningLow. */
  private claimWhenLow = false;
  /** The loop's next turn claims before it records finished tries. */
  private claimFirst = false;
  private stopping = false;
  /** stop() has ended: no database loop, retry or timer starts again, whatever is still in flight. */
  private halted = false;
  /** begin() ran: until then (prestarted children booting) wake() only records that work waits. */
  private begun = false;
  /** The registration start() writes: stop() waits for it before removing the process row. */
  private firstBeat?: Promise<void>;
  private pollDelay: number;
  private pollTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatRetry?: NodeJS.Timeout;
  private heartbeatFailing = false;
  private readonly startedAt: Date;
  private idleWaiters: (() => void)[] = [];
  private loopDone?: Promise<void>;
  private failures = 0;
  private lastHeartbeatOk = Date.now();
  private backoffTimer?: NodeJS.Timeout;
  private waitTimer?: NodeJS.Timeout;
  /** Claimed tries waiting for a slot, in claim order. */
  private readonly waiting: Prepared[] = [];
  /** Moving average of recent tries' durations (ms); undefined until one finished. */
  private recentTryMs?: number;
  /** Task callbacks of tries this worker ended (runEndedTryCallback), still running: stop() waits for them within its grace. */
  private readonly endedTryCallbacks = new Set<Promise<void>>();
  /** The children running them (a dedicated one is in no pool): stop() kills those left after the grace. */
  private readonly callbackSlots = new Set<Slot>();
  /** stop() is killing the children: no task callback starts any more. */
  private callbacksClosed = false;
  /** Moving average of the loop's database calls (a finish or a claim, ms). */
  private recentDbMs?: number;
  private readonly maxWaitMs: number;
  /**
   * Connections (server thread ids) whose COMMIT answer was lost in a finish, a claim or a
   * hand-back: which tries are this worker's is unknown until recoverUnknownCommits() has looked.
   */
  private unknownCommits: number[] = [];
  /** Results (tryKey) sent in a call whose COMMIT answer was lost: if fenced when sent again, they may be recorded already. */
  private readonly resentResults = new Set<string>();
  /** Steps and first pokes being stored for running tries: a hand-back waits for them, so it sees what they stored. */
  private readonly tryWrites = new Set<Promise<unknown>>();
  /** The hand-back of tries that waited too long, while in flight: stop() waits for it before handing back the rest. */
  private waitingHandBack?: Promise<unknown>;
  /**
   * Tries no longer ours (tryKey) whose process has ended or never started: their abandoned_try
   * rows, if any, are deleted (releaseEnded), retried at each heartbeat until that succeeds.
   */
  private readonly endedTries = new Map<string, { id: number; tryNumber: number }>();
  /** releaseEnded in flight, and whether another pass is wanted after it. */
  private releasing?: Promise<void>;
  private releaseAgain = false;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: WorkerOptions,
  ) {
    this.maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    this.maxLogBytes = options.maxLogBytes ?? DEFAULT_TASK_LOG_MAX_BYTES;
    this.versions = new VersionCache(db.pool);
    this.bundles = new BundleCache(path.join(options.cacheFolder, "bundles"), this.versions);
    this.runCallbacks = new RunCallbacks(db, clock, logger, this.versions, this.bundles, (m) => this.runDagCallback(m), {
      logsFolder: options.logsFolder,
      maxLogBytes: this.maxLogBytes,
      pollMs: options.callbackPollMs,
      callbackTimeoutMs: options.dagCallbackTimeoutMs,
    });
    this.tryCallbacks = new TryCallbacks(db, clock, logger, this.versions, this.bundles, (m, dedicated) => this.tryCallbackInChild(m, dedicated), {
      queues: options.queues,
      logsFolder: options.logsFolder,
      maxValueBytes: this.maxValueBytes,
      maxLogBytes: this.maxLogBytes,
      pollMs: options.callbackPollMs,
      isolation: options.isolation,
    });
    this.pollDelay = options.pollMinMs ?? 20;
    this.maxWaitMs = options.claimAheadMaxWaitMs ?? MAX_WAIT_MS;
    this.startedAt = clock.now();
  }

  get runningCount(): number {
    let n = 0;
    for (const h of this.held.values()) if (h.slot) n++;
    return n;
  }

  /**
   * Registers this worker (its first heartbeat, as Scheduler.start writes the scheduler's), then
   * boots its children and claims once they answer. Registered first: /health and the `queue`
   * dependency see the worker while its children boot (up to CHILD_BOOT_WAIT_MS), not only after.
   * A first heartbeat that fails is logged, not thrown: the heartbeats begin() starts retry it.
   */
  async start(): Promise<void> {
    this.firstBeat = beatProcess(this.db, this.clock.now(), this.processInfo()).catch((err) =>
      this.logger.warn(`heartbeat failed (retried once the worker begins): ${(err as Error).message}`),
    );
    await this.firstBeat;
    if (this.stopping) return;
    if (this.options.prestartChildren && this.options.isolation !== "process") {
      const booting: Child[] = [];
      while (this.slots.length < this.options.concurrency) {
        const child = new Child(CHILD_SCRIPT, TASK_CHILD);
        this.slots.push({ child, busy: false });
        booting.push(child);
      }
      // Register and claim once they answer: tries claimed before would wait here while warm
      // workers idle. A child that fails to boot is replaced at its first try.
      void settledWithin(Promise.allSettled(booting.map((c) => c.request({ type: "ping" }))), CHILD_BOOT_WAIT_MS).then(() => {
        if (!this.stopping) this.begin();
      });
      return;
    }
    this.begin();
  }

  private begin(): void {
    this.begun = true;
    const heartbeatMs = this.options.heartbeatMs ?? 5000;
    const beat = () =>
      void this.heartbeat().then(
        () => (this.heartbeatFailing = false),
        (err) => {
          // Warned once per outage; the retries, every second, only at debug level.
          this.logger[this.heartbeatFailing ? "debug" : "warn"](`heartbeat failed (retrying every second until it works): ${(err as Error).message}`);
          this.heartbeatFailing = true;
          // Retried soon, not a whole interval later: once the database is back after a blip, the
          // scheduler hears from this worker's tries before it could take them for zombies.
          if (this.heartbeatRetry || this.halted) return;
          this.heartbeatRetry = setTimeout(() => {
            this.heartbeatRetry = undefined;
            beat();
          }, Math.min(1000, heartbeatMs / 2));
        },
      );
    beat();
    this.heartbeatTimer = setInterval(beat, heartbeatMs);
    this.runCallbacks.start();
    this.tryCallbacks.start();
    this.kick();
  }

  /** New work may be queued: claim now instead of waiting for the next poll. */
  wake(): void {
    if (this.stopping) return;
    this.pollDelay = this.options.pollMinMs ?? 20;
    this.wantClaim = true;
    // Before begin() there is no heartbeat: a try claimed now could be reaped as a zombie.
    if (this.begun) this.kick();
  }

  private kick(): void {
    if (this.halted || this.loopRunning || this.backoffTimer) return;
    this.loopRunning = true;
    this.loopDone = this.dbLoop()
      .then(() => {
        if (this.failures > 0) this.logger.info("database reachable again; worker resumed");
        this.failures = 0;
      })
      .catch((err) => {
        // The database blinked: keep every unrecorded result and retry with backoff.
        this.failures++;
        if (this.halted) return;
        const delay = Math.min(5000, 100 * 2 ** Math.min(this.failures - 1, 6));
        if (this.failures === 1 || this.failures % 20 === 0) {
          this.logger.error(`worker database work failed (${(err as Error).message}); retrying every ≤ ${delay} ms`);
        }
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = undefined;
          this.wantClaim = true;
          this.kick();
        }, delay);
      })
      .finally(() => {
        this.loopRunning = false;
        if (!this.backoffTimer && (this.finished.length > 0 || this.unknownCommits.length > 0 || this.unread.length > 0 || (this.wantClaim && this.freeSlots() > 0 && !this.stopping))) this.kick();
        for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** How many more tries to claim: free slots, plus the claim-ahead allowance while tries are short. */
  private freeSlots(): number {
    return Math.max(0, this.options.concurrency + this.claimAheadAllowance() - this.runningCount - this.waiting.length);
  }

  private claimAheadAllowance(): number {
    return claimAheadAllowance({
      concurrency: this.options.concurrency,
      cap: this.options.claimAhead,
      tryMs: this.recentTryMs,
      dbMs: this.recentDbMs,
      maxWaitMs: this.maxWaitMs,
    });
  }

  private observeDbCall(since: number, call: WorkerDbCall, tries: number): void {
    const ms = performance.now() - since;
    this.recentDbMs = movingAverage(this.recentDbMs, ms);
    const metrics = this.options.metrics ?? processMetrics();
    metrics.workerDbCallDuration.observe({ call }, ms / 1000);
    metrics.workerDbCallTries.inc({ call }, tries);
  }

  /** No heartbeat for half the zombie timeout: our claims may be reaped, so start nothing new. */
  private heartbeatStale(): boolean {
    return Date.now() - this.lastHeartbeatOk > (this.options.heartbeatTimeoutMs ?? 30_000) / 2;
  }

  /**
   * After a short claim that may have left tries queued: claim in the loop's next turn once the
   * tries waiting here cover no more than two of its database calls (half the claim-ahead
   * allowance, which covers four), so the slots are fed before they empty.
   */
  private claimIfRunningLow(): void {
    if (!this.claimWhenLow || this.waiting.length > this.claimAheadAllowance() / 2) return;
    this.claimWhenLow = false;
    this.wantClaim = true;
    // Before the results that keep arriving: finishing them first, turn after turn, left the
    // slots idle until no try was left to record.
    this.claimFirst = true;
  }

  /** Starts waiting tries while slots are free. */
  private startWaiting(): void {
    while (!this.stopping && this.waiting.length > 0 && this.runningCount < this.options.concurrency && !this.heartbeatStale()) {
      const next = this.waiting.shift()!;
      const held = this.held.get(tryKey(next.task));
      if (!held || held.lost || held.handedBack) {
        // Cleared or reaped while it waited here: it never ran, so there is nothing to record.
        if (held && !held.handedBack) {
          this.held.delete(tryKey(next.task));
          this.noteEnded(next.task);
        }
        continue;
      }
      this.runInChild(next.task, next.message, next.timeoutMs, next.dedicated);
    }
  }

  private async dbLoop(): Promise<void> {
    for (;;) {
      // Before anything else: tries a lost COMMIT claimed (or failed to hand back) for this worker would otherwise run nowhere.
      if (this.unknownCommits.length > 0) await this.recoverUnknownCommits();
      // Then tries claimed without their inputs: queued again for any worker, not held here idle.
      if (this.unread.length > 0) await this.handBackUnread();
      this.unparkDue();
      if (this.finished.length > 0 && !(this.claimFirst && this.wantClaim && this.freeSlots() > 0 && !this.stopping)) {
        const batch = this.takeFinishBatch();
        const req = this.claimRequest(this.clock.now(), this.stopping ? 0 : this.freeSlots());
        const deepGatePools = this.gateDepths.deepPools(req.now.getTime());
        let result;
        const since = performance.now();
        this.recording = batch;
        try {
          result = await finishTries(this.db, req.now, batch, (h) => this.versions.shape(h), { ...req, deepGatePools });
          this.observeDbCall(since, "finish", batch.length - result.fencedTries.length);
          (this.options.metrics ?? processMetrics()).workerHandoffs.inc(result.taken.length);
          this.gateDepths.noteBlocked(result.gateBlocked, req.now.getTime());
        } catch (err) {
          this.recording = [];
          this.finished = batch.concat(this.finished);
          if (this.noteUnknownCommit(err)) for (const t of batch) this.resentResults.add(tryKey(t.task));
          else if ((isDataError(err) || isUnusableVersion(err)) && this.isolateRefused(batch, err)) continue;
          throw err;
        }
        this.recording = [];
        for (const t of batch) this.recordAlone.delete(tryKey(t.task));
        const recordedBefore = await this.recordedByLostCall(result.fencedTries);
        for (const t of batch) this.resentResults.delete(tryKey(t.task));
        for (const t of result.fencedTries) {
          if (recordedBefore.has(t)) {
            this.logger.info(`result of try ${t.task.tryNumber} of ${t.task.dagId}.${t.task.taskId} (run ${t.task.runId}) was recorded by the call whose answer was lost`);
            continue;
          }
          this.logger.warn(`result of task instance ${t.task.id} discarded: its try is no longer ours`);
          // Ended from outside after its process ended: it holds no compensation of its run back.
          this.noteEnded(t.task);
          // Its log would end with its own outcome, for a task instance that records another.
          this.keepLog(t.task, `${t.log ?? ""}[${new Date().toISOString()}] WARNING - ${NO_LONGER_OURS}: its ${t.outcome} outcome is discarded\n`);
        }
        this.observeRecorded(batch, result);
        const finished = recordedBefore.size === 0 ? result.finished : [...result.finished, ...[...recordedBefore].map((t) => t.task.id)];
        this.options.onRecorded?.({ finished, runsFinished: result.runsFinished });
        // Their callbacks are due (marked in the same commit): run them now, not at the next poll.
        if (result.runsFinished.length > 0) this.runCallbacks.wake();
        await this.dispatch(result.taken);
        // Ready tasks this worker could not take are queued: look for more work.
        if (result.queued.length > 0) this.wantClaim = true;
        continue;
      }
      const free = this.freeSlots();
      const claimedFirst = this.claimFirst;
      // Cleared before the claim: a claim that fails must not keep the results waiting behind claims.
      this.claimFirst = false;
      if (this.stopping || !this.wantClaim || free <= 0) return;
      const since = performance.now();
      const slotsFree = Math.max(0, this.options.concurrency - this.runningCount - this.waiting.length);
      const { tasks: claimed, heldBack, oversized, refused } = await claimTasksReporting(this.db, {
        ...this.claimRequest(this.clock.now(), free),
        ahead: Math.max(0, free - slotsFree),
        leaveOut: this.leftOut(Date.now()),
      }).catch((err: unknown) => {
        this.noteUnknownCommit(err);
        throw err;
      });
      this.observeDbCall(since, "claim", claimed.length);
      if (oversized.length > 0) void this.warnOversized(oversized);
      for (const r of refused) {
        this.unclaimable.park(r.id, Date.now());
        this.logger.error(
          `task instance ${r.id} of ${r.dagId} could not be claimed, even without counting a try (BATON_TASK_UNCLAIMABLE): ${r.reason}; ` +
            `it stays queued and this worker tries again every ${PARKED_RETRY_MS / 1000} s, claiming the others meanwhile`,
        );
      }
      const claimLatency = (this.options.metrics ?? processMetrics()).claimLatency;
      for (const t of claimed) {
        // Clamped: queued_at comes from another process's clock.
        if (t.queuedAt) claimLatency.observe(Math.max(0, t.startedAt.getTime() - new Date(t.queuedAt).getTime()) / 1000);
      }
      await this.dispatch(claimed);
      if (claimed.length < free) {
        // Claimed ahead of unrecorded results, whose tries still hold their pool slots and DAG
        // room: claim again once they are recorded, rather than at the next poll.
        this.wantClaim = claimedFirst && this.finished.length > 0;
        // Queued tries left behind by the claim-ahead rule: claim again as soon as the waiting
        // tries run low, not after the next poll, or the slots go idle until then.
        this.claimWhenLow = claimed.length > 0 && heldBack;
        this.schedulePoll(claimed.length > 0);
      }
    }
  }

  /** The finished tries to record in one call: all of them, or one of those to be recorded alone. */
  private takeFinishBatch(): FinishedTry[] {
    if (this.recordAlone.size > 0) {
      // Left in recordAlone until recorded (dbLoop) or parked: a try refused again is never batched.
      const i = this.finished.findIndex((t) => this.recordAlone.has(tryKey(t.task)));
      if (i >= 0) return this.finished.splice(i, 1);
    }
    // Bounded by what it sends: the batch's outputs and logs go to the server in one round trip,
    // which it refuses past max_allowed_packet (16 MiB on MariaDB by default). Sixteen tries
    // returning 1 MiB each, finishing together, were refused as one batch at every retry, and
    // their worker stopped recording anything until they were reaped as zombies. A try alone
    // always goes: one output is capped well below any server's packet (BATON_XCOM_MAX_BYTES).
    let bytes = 0;
    let n = 0;
    while (n < this.finished.length) {
      bytes += sentBytes(this.finished[n]!);
      if (n > 0 && bytes > FINISH_BATCH_SENT_BYTES) break;
      n++;
    }
    return this.finished.splice(0, n);
  }

  /**
   * A finish batch the database refused for one of its values (a date past year 9999 from a
   * DAG version stored before durations were bounded, a value too long for its column), or one
   * with a try whose DAG version cannot be read (isUnusableVersion: its outcome cannot be settled
   * without it): no retry of the same batch can succeed, and retrying it forever would keep every
   * other result unrecorded and the worker from claiming. So its tries are recorded one at a
   * time, and a try refused on its own is recorded as failed, not retried, with the reason,
   * without its output, and with none of its planned next dates (refused even so: parked).
   * Answers whether the loop may go on (false: this try was already recorded so and still
   * refused; the error is handled as any). The batch is back at the head of `finished`.
   */
  private isolateRefused(batch: FinishedTry[], err: unknown): boolean {
    const message = (err as Error).message;
    if (batch.length > 1) {
      this.logger.warn(`a batch of ${batch.length} results could not be recorded (${message}); recording them one at a time`);
      for (const t of batch) this.recordAlone.add(tryKey(t.task));
      return true;
    }
    const refused = batch[0]!;
    const { task } = refused;
    const what = `try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId})`;
    if (refused.error?.code === "BATON_RESULT_UNRECORDABLE") {
      // Refused even so: what its outcome sets off is at fault, not its values. Parked, so the
      // others are recorded; it stays running in the database (no heartbeat), where a scheduler
      // reaping it as a zombie meets the same refusal and sets it aside too (reapZombies).
      this.finished.splice(this.finished.indexOf(refused), 1);
      this.recordAlone.delete(tryKey(task));
      this.parked.push({ t: refused, retryAt: Date.now() + PARKED_RETRY_MS });
      this.logger.error(`result of ${what} could not be stored even as failed (${message}); trying again every ${PARKED_RETRY_MS / 1000} s meanwhile`);
      return true;
    }
    this.logger.error(`result of ${what} could not be stored (${message}): recorded as failed`);
    // A failure keeps its retries (its own error text may be what did not fit); a success,
    // reschedule or deferral whose values cannot be stored is not tried again.
    const retryable = refused.outcome === "failed" && !refused.error?.nonRetryable;
    this.finished[this.finished.indexOf(refused)] = {
      task,
      outcome: "failed",
      error: {
        name: "ResultUnrecordableError",
        code: "BATON_RESULT_UNRECORDABLE",
        message:
          `the ${refused.outcome} outcome of this try could not be stored: ${message}` +
          (refused.error ? `; its error was ${refused.error.name}: ${truncateUtf8(refused.error.message, 2_000)}` : ""),
        nonRetryable: !retryable,
      },
      log: refused.log,
      endedAt: refused.endedAt,
      firstPokeAt: refused.firstPokeAt,
    };
    return true;
  }

  /** Parked results due for another attempt go back to be recorded, each alone. */
  private unparkDue(): void {
    if (this.parked.length === 0) return;
    const now = Date.now();
    for (const p of this.parked.filter((x) => x.retryAt <= now)) {
      this.recordAlone.add(tryKey(p.t.task));
      this.finished.push(p.t);
    }
    this.parked = this.parked.filter((x) => x.retryAt > now);
  }

  /**
   * Hands back tries this worker holds and will not run (marked handedBack by the caller): queued
   * again, the try not counted. Resolves how many went back, or undefined when the COMMIT's
   * answer was lost (handBackTries); rejects when nothing was handed back, with them still held.
   */
  private async handBackHeld(holds: Held[], reason: string): Promise<number | undefined> {
    const returned = await this.handBackTries(
      holds.map((h) => ({ ...h.task, firstPokeAt: h.firstPokeAt ?? h.task.firstPokeAt })),
      reason,
      holds,
    );
    // Handed back, or left to recoverUnknownCommits(): either way no longer held.
    this.forget(holds);
    return returned;
  }

  /** Drops these held entries; an entry for the same try that is not one of them (a claim of it since it went back) stays. */
  private forget(holds: Held[]): void {
    for (const h of holds) if (this.held.get(tryKey(h.task)) === h) this.held.delete(tryKey(h.task));
  }

  /**
   * Every hand-back goes through here. When its COMMIT's answer is lost (unknownCommitOf) the
   * tries may be queued again already, and another worker (or this one) may claim and run them:
   * taking the failure for "nothing happened" and keeping them would run them twice. So it
   * resolves undefined, the caller forgets them (never runs them), and the connection is noted
   * for recoverUnknownCommits(), which hands back those still running under this worker's token
   * that it does not hold — exactly the ones the lost COMMIT did not return. Any other failure
   * rejects: the transaction did not commit, the tries are still ours. `reason` says why in their
   * events (detail: `handed back by worker <host>:<pid> (<reason>)`).
   */
  private async handBackTries(tries: HeldTry[], reason: string, holds: Held[] = []): Promise<number | undefined> {
    // `holds` are forgotten before the loop is woken: recovery must not take them for ours.
    if (tries.length === 0) return 0;
    try {
      return await handBack(this.db, this.clock.now(), tries, `handed back by worker ${this.options.hostname ?? os.hostname()}:${process.pid} (${reason})`);
    } catch (err) {
      if (!this.noteUnknownCommit(err)) throw err;
      this.logger.warn(
        `the answer to handing back ${tries.length} task instance(s) was lost (connection lost around its COMMIT): ` +
          "they are not run here; those still claimed by this worker are handed back once the database answers",
      );
      this.forget(holds);
      // Outside the loop (a hand-back of waiting tries): wake it to recover.
      this.kick();
      return undefined;
    }
  }

  /** Whether `err` is a lost COMMIT answer: then its connection is remembered for recoverUnknownCommits(). */
  private noteUnknownCommit(err: unknown): boolean {
    const unknown = unknownCommitOf(err);
    if (unknown) this.unknownCommits.push(unknown.threadId);
    return !!unknown;
  }

  /**
   * After a finish or a claim whose COMMIT answer was lost, which the loop then retries: that
   * transaction may have committed, claiming tries for this worker (a claim's, or a finish's
   * ready downstream tasks) that it never learned of. After a hand-back whose answer was lost,
   * the worker dropped the tries it sent (handBackTries): those it did not return are in the
   * same state. Nothing would run or heartbeat them, and a
   * scheduler would reap them as zombies, using up a try they never started. So, once the server
   * has ended that connection's batch (or after UNKNOWN_COMMIT_WAIT_MS), the tries running under
   * this worker's token that it neither holds nor has results of are handed back (queued, the try
   * not counted) for any worker, this one included. Runs only after such a failure; if the
   * database fails again, the loop retries it before anything else.
   */
  private async recoverUnknownCommits(): Promise<void> {
    const threads = [...new Set(this.unknownCommits)];
    const deadline = Date.now() + UNKNOWN_COMMIT_WAIT_MS;
    while (Date.now() < deadline && (await connectionsBusy(this.db.pool, threads))) await new Promise((r) => setTimeout(r, 50));
    const known = new Set([...this.held.keys(), ...this.finished.map((t) => tryKey(t.task))]);
    const orphans = (await triesClaimedBy(this.db.pool, this.id)).filter((t) => !known.has(tryKey({ id: t.id, tryNumber: t.tryNumber })));
    // Its own answer lost too: the next turn of the loop looks again, once that hand-back has ended.
    const returned = (await this.handBackTries(orphans, "claimed for it by a database call whose answer was lost")) ?? 0;
    this.unknownCommits = this.unknownCommits.filter((id) => !threads.includes(id));
    if (returned > 0) {
      this.logger.warn(`handed back ${returned} task instance(s) claimed for this worker by a database call whose answer was lost (connection lost around its COMMIT)`);
      this.wantClaim = true;
    }
  }

  /** Of results fenced when sent again after a lost COMMIT answer, those the lost call recorded (not discarded: they count). */
  private async recordedByLostCall(fenced: FinishedTry[]): Promise<Set<FinishedTry>> {
    const resent = fenced.filter((t) => this.resentResults.has(tryKey(t.task)));
    if (resent.length === 0) return new Set();
    try {
      const sent = resent.map((t) => ({ id: t.task.id, tryNumber: t.task.tryNumber, token: t.task.token, outcome: t.outcome, startedAt: t.task.startedAt, endedAt: t.endedAt, t }));
      return new Set((await recordedResults(this.db.pool, sent)).map((r) => r.t));
    } catch (err) {
      this.logger.warn(`could not check whether results sent again were recorded by a call whose answer was lost: ${(err as Error).message}`);
      return new Set();
    }
  }

  /**
   * A warning, once per task, pool and sizes, for tries the claim left because they need more
   * slots than their pool has in all (they would wait silently forever). Off the claim's path: a
   * lookup of their names only for tries not seen before.
   */
  private async warnOversized(tries: OversizedTry[]): Promise<void> {
    const seenKey = (t: OversizedTry) => `${t.id}\0${t.poolSlots}\0${t.poolTotalSlots}`;
    const fresh = tries.filter((t) => !this.oversizedSeen.has(seenKey(t)));
    if (fresh.length === 0) return;
    try {
      const names = await taskInstanceNames(this.db.pool, fresh.map((t) => t.id));
      for (const t of fresh) {
        // Seen once named: a lookup that failed leaves them to the next claim that meets them.
        this.oversizedSeen.first(seenKey(t));
        const name = names.get(t.id);
        if (!name || !this.oversizedWarned.first([t.dagId, name.taskId, t.pool, t.poolSlots, t.poolTotalSlots].join("\0"))) continue;
        const status = poolSlotsDep({ ...name, pool: t.pool, poolSlots: t.poolSlots }, { slots: shownSlots(t.poolTotalSlots) });
        this.logger.warn(status.reason);
      }
    } catch (err) {
      this.logger.warn(`could not name the tries that need more slots than their pool has: ${(err as Error).message}`);
    }
  }

  /** baton_task_finished_total and baton_task_duration_seconds, by the state each try was recorded in. */
  private observeRecorded(batch: FinishedTry[], result: FinishResult): void {
    const metrics = this.options.metrics ?? processMetrics();
    const recorded = new Set(result.finished);
    const retrying = new Set(result.retrying);
    for (const t of batch) {
      if (!recorded.has(t.task.id)) continue;
      // One of the states exported at 0 from the start (core/metrics.ts): a new one must be added there.
      const state: RecordedTryState =
        t.outcome === "failed" ? (retrying.has(t.task.id) ? "up_for_retry" : "failed")
        : t.outcome === "reschedule" ? "up_for_reschedule"
        : t.outcome;
      metrics.taskFinished.inc({ state });
      metrics.taskDuration.observe({ dag_id: t.task.dagId, state }, Math.max(0, t.endedAt.getTime() - t.task.startedAt.getTime()) / 1000);
    }
  }

  private claimRequest(now: Date, limit: number) {
    // One slot stays free of backfill tasks (with 2+ slots), so a backfill never makes other
    // runs wait for a slot: history yields to today.
    let backfillRunning = 0;
    for (const h of this.held.values()) if (h.task.backfill && !h.handedBack) backfillRunning++;
    const maxBackfill = this.options.concurrency > 1 ? Math.max(0, this.options.concurrency - 1 - backfillRunning) : undefined;
    return { now, limit, queues: this.options.queues, hostname: this.options.hostname ?? os.hostname(), pid: process.pid, token: this.id, maxBackfill };
  }

  /** Idle polling backs off from pollMinMs to pollMaxMs, and resets when work shows up. */
  private schedulePoll(foundWork = false): void {
    if (this.stopping) return;
    clearTimeout(this.pollTimer);
    const min = this.options.pollMinMs ?? 20;
    this.pollDelay = foundWork ? min : Math.min(this.options.pollMaxMs ?? 1000, this.pollDelay * 2);
    this.pollTimer = setTimeout(() => {
      this.wantClaim = true;
      this.kick();
    }, this.pollDelay);
  }

  private async dispatch(claimed: ClaimedTask[]): Promise<void> {
    if (claimed.length === 0) return;
    for (const task of claimed) {
      // An older try of the same task instance still held here was cleared: the row is on this
      // try now, so the old one must not run (waiting) or go on running.
      for (const h of this.held.values()) {
        if (h.task.id === task.id && h.task.tryNumber < task.tryNumber) {
          this.abandon(h, "the task instance was cleared and claimed again", "this try is no longer the task instance's (cleared and claimed again)");
        }
      }
      this.held.set(tryKey(task), { task, timers: [] });
    }
    const prepared: { task: ClaimedTask; message?: RunTryMessage; error?: TryError; timeoutMs: number | null; dedicated?: boolean; waitsForSignal?: boolean }[] = [];
    const { steps, outputs, unread, failed } = await this.readInputs(claimed);
    let unanswered = false;
    for (const task of claimed) {
      if (task.unstartable !== undefined) {
        prepared.push({ task, timeoutMs: null, error: this.unstartableError(task) });
        continue;
      }
      if (unread.has(task)) continue;
      const unreadable = failed.get(task);
      if (unreadable) {
        prepared.push({ task, timeoutMs: null, error: unreadable });
        continue;
      }
      if (unanswered) {
        // After the database failed to answer one of them: not read (a stalled one would make
        // each wait for the statement timeout), handed back with it.
        unread.add(task);
        continue;
      }
      try {
        const shape = await this.versions.shape(task.versionHash);
        const spec = shape.byId.get(task.taskId);
        prepared.push({
          task,
          timeoutMs: spec?.executionTimeoutMs ?? null,
          dedicated: this.options.isolation === "process" || spec?.isolation === "process",
          waitsForSignal: spec?.kind === "wait_for_signal",
          message: tryMessage(task, shape, {
            upstreamOutputs: task.upstreamOutputs ?? outputs.get(task.dagRunId) ?? {},
            steps: steps.get(task.id) ?? {},
            bundlePath: spec?.kind === "wait_for_signal" ? "" : await this.bundles.path(task.versionHash),
            logsFolder: this.options.logsFolder,
            maxValueBytes: this.maxValueBytes,
            maxLogBytes: this.maxLogBytes,
            clockOffsetMs: offsetFromWallClock(this.clock),
          }),
        });
      } catch (err) {
        // Its version's structure or code could not be read from the database: not the try's fault.
        if (isConnectionError(err)) {
          this.setAsideUnread(task, err);
          unread.add(task);
          unanswered = true;
          continue;
        }
        // Refused otherwise (ER_NET_PACKET_TOO_LARGE for a bundle over the packet limit): it would
        // fail the same way at every claim, as an inputs read refused, so it fails as one, coded.
        const error: TryError = isUnusableVersion(err)
          ? { name: "DagVersionUnusableError", code: "BATON_DAG_VERSION_UNUSABLE", message: `could not load the DAG version: ${(err as Error).message}` }
          : this.inputsUnreadableError(task, err, "its DAG version (structure, bundled code)");
        prepared.push({ task, timeoutMs: null, error });
      }
    }
    for (const task of unread) this.unread.push(this.held.get(tryKey(task))!);
    for (const p of prepared) {
      // A task waiting for a signal runs no code: it is deferred at once, holding no slot.
      if (p.message && p.waitsForSignal) this.complete(p.task, { outcome: "deferred" });
      else if (p.message) this.waiting.push({ task: p.task, message: p.message, timeoutMs: p.timeoutMs, dedicated: !!p.dedicated, since: Date.now() });
      else this.complete(p.task, { outcome: "failed", error: p.error });
    }
    this.startWaiting();
    if (this.waiting.length > 0) this.watchWaiting();
  }

  /**
   * The durable steps (a try after the first, or one whose row says it kept steps: a hand-back's,
   * a sensor's reschedule) and upstream outputs (unless the claim read them: the fast path) of
   * claimed tries, read for the whole batch in one statement each, as they are read whenever the
   * database answers. A try whose inputs could not be read must not start: it would run without
   * them (null upstream outputs, steps it recorded run again). When the batch's read fails, they
   * are read one at a time, so one try whose read fails does not hold back the others. One whose
   * read alone the database did not answer (isConnectionError: a connection lost, a statement
   * timeout, e.g. a value too big to read in time) is set aside (setAsideUnread), and those after
   * it are not read (the database is likely failing: a stalled one would make each wait for the
   * statement timeout); those not read (`unread`) are handed back by the loop. One whose read
   * fails otherwise (ER_NET_PACKET_TOO_LARGE) would fail the same way at every claim: its try
   * fails (`failed`, BATON_TASK_INPUTS_UNREADABLE), counted, so its retries apply, and the rest
   * are read on.
   */
  private async readInputs(
    claimed: ClaimedTask[],
  ): Promise<{ steps: Map<number, Record<string, unknown>>; outputs: Map<number, Record<string, unknown>>; unread: Set<ClaimedTask>; failed: Map<ClaimedTask, TryError> }> {
    const unread = new Set<ClaimedTask>();
    const failed = new Map<ClaimedTask, TryError>();
    try {
      return { ...(await this.readInputsOf(claimed)), unread, failed };
    } catch (err) {
      const reading = claimed.filter((t) => readsInputs(t));
      if (reading.length > 1) this.logger.warn(`could not read the inputs of ${reading.length} tries claimed together (${(err as Error).message}): reading them one at a time`);
      const steps = new Map<number, Record<string, unknown>>();
      const outputs = new Map<number, Record<string, unknown>>();
      for (const [i, task] of reading.entries()) {
        try {
          // A batch of one was read alone already.
          if (reading.length === 1) throw err;
          const one = await this.readInputsOf([task]);
          for (const [id, s] of one.steps) steps.set(id, s);
          for (const [runId, o] of one.outputs) outputs.set(runId, { ...outputs.get(runId), ...o });
        } catch (alone) {
          if (!isConnectionError(alone)) {
            failed.set(task, this.inputsUnreadableError(task, alone));
            continue;
          }
          this.setAsideUnread(task, alone, reading.length - i - 1);
          for (const t of reading.slice(i)) unread.add(t);
          break;
        }
      }
      return { steps, outputs, unread, failed };
    }
  }

  /** readInputs' reads, for the tries given: rejects if any fails. */
  private async readInputsOf(claimed: ClaimedTask[]): Promise<{ steps: Map<number, Record<string, unknown>>; outputs: Map<number, Record<string, unknown>> }> {
    // A first try has no steps, unless it runs again after a hand-back or a sensor's reschedule
    // that left some (the claim says so from the row it reads anyway): no query for the first
    // try of every task.
    const retried = claimed.filter((t) => t.unstartable === undefined && (t.tryNumber > 1 || t.stepsKept)).map((t) => t.id);
    const steps = retried.length > 0 ? await stepsOf(this.db.pool, retried) : new Map<number, Record<string, unknown>>();
    const missing = claimed.filter((t) => t.upstreamOutputs === undefined && t.unstartable === undefined);
    const wanted = (
      await Promise.all(
        missing.map(async (t) => {
          // A version that cannot be read fails its own tries (dispatch), not the others' inputs.
          const shape = await this.versions.shape(t.versionHash).catch((err: unknown) => {
            if (isUnusableVersion(err)) return undefined;
            throw err;
          });
          return shape && { dagRunId: t.dagRunId, taskIds: taskInputs(shape.byId.get(t.taskId)), runTasks: shape.byId.size };
        }),
      )
    ).filter((w) => w !== undefined);
    const outputs = wanted.length > 0 ? await upstreamOutputs(this.db.pool, wanted) : new Map<number, Record<string, unknown>>();
    return { steps, outputs };
  }

  /**
   * A claimed try whose inputs the database did not answer for, even alone: not started, handed back by the
   * loop (its try not counted), and left out of this worker's claims for a second, twice as long
   * each time it happens again (up to PARKED_RETRY_MS): once the database answers, it runs with
   * its inputs within a second or two; one whose read keeps failing is tried ever less often,
   * and logged as often. `others`: the tries claimed with it that are handed back unread.
   */
  private setAsideUnread(task: ClaimedTask, err: unknown, others = 0): void {
    const ms = this.unreadable.parkLonger(task.id, Date.now(), UNREAD_FIRST_WAIT_MS);
    this.logger.warn(
      `could not read the inputs of try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId}) (${(err as Error).message}): ` +
        `not started; it is handed back (the try not counted) and set aside for ${ms / 1000} s by this worker` +
        (others > 0 ? `; ${others} tr${others === 1 ? "y" : "ies"} claimed with it, not read, handed back too` : ""),
    );
  }

  /**
   * The failure of a try whose inputs (readInputs), or DAG version (dispatch), the database refused
   * to read: retried per its task's retries. `what`: what could not be read, as the message says it.
   */
  private inputsUnreadableError(task: ClaimedTask, err: unknown, what = "its inputs (recorded steps, upstream outputs)"): TryError {
    const { code, message } = err as { code?: string; message?: string };
    const text = `${what} could not be read: ${message ?? String(err)}${code ? ` (${code})` : ""}; failed without running`;
    this.logger.error(`try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId}): ${text} (BATON_TASK_INPUTS_UNREADABLE)`);
    return { name: "TaskInputsUnreadableError", code: "BATON_TASK_INPUTS_UNREADABLE", message: text };
  }

  /**
   * Hands back the tries dispatch could not read the inputs of (queued again, the try not
   * counted), for any worker; this one leaves out those set aside (leftOut). If the database
   * fails meanwhile they stay held (and heartbeated) and the loop retries with its backoff.
   */
  private async handBackUnread(): Promise<void> {
    const unread = this.unread;
    this.unread = [];
    const holds: Held[] = [];
    for (const h of unread) {
      if (this.held.get(tryKey(h.task)) !== h || h.handedBack) continue;
      // No longer ours (cleared, reaped): nothing to hand back.
      if (h.lost) {
        this.held.delete(tryKey(h.task));
        this.noteEnded(h.task);
      } else holds.push(h);
    }
    if (holds.length === 0) return;
    for (const h of holds) h.handedBack = true;
    let returned;
    try {
      returned = await this.handBackHeld(holds, "its inputs could not be read");
    } catch (err) {
      for (const h of holds) if (this.held.get(tryKey(h.task)) === h) h.handedBack = false;
      this.unread = holds.concat(this.unread);
      throw err;
    }
    if (returned !== undefined) this.logger.info(`handed back ${returned} task instance(s) whose inputs could not be read`);
    this.wantClaim = true;
  }

  /** Queued tries this worker does not claim now: refused by the database, or their inputs unreadable. */
  private leftOut(now: number): number[] {
    const refused = this.unclaimable.current(now);
    const unreadable = this.unreadable.current(now);
    return unreadable.length === 0 ? refused : refused.concat(unreadable);
  }

  /**
   * The failure of a try the database refused to start (claimTasks' unstartable: claimed under
   * its last try's number), recorded at once: whatever was refused would be refused again.
   */
  private unstartableError(task: ClaimedTask): TryError {
    const message = `the database refused to start this task instance as a new try (${task.unstartable}); failed without running`;
    this.logger.error(`try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId}): ${message} (BATON_TASK_UNCLAIMABLE)`);
    return { name: "TaskUnclaimableError", code: "BATON_TASK_UNCLAIMABLE", message, nonRetryable: true };
  }

  /** Hands back tries that waited here longer than maxWaitMs (checked while any wait). */
  private watchWaiting(): void {
    if (this.waitTimer) return;
    this.waitTimer = setInterval(() => {
      if (this.waiting.length === 0 || this.stopping) {
        clearInterval(this.waitTimer);
        this.waitTimer = undefined;
        return;
      }
      // The database is unreachable: the hand-back would fail too; they wait for the heartbeat.
      if (this.heartbeatStale()) return;
      const cutoff = Date.now() - this.maxWaitMs;
      const stale = this.waiting.filter((w) => w.since < cutoff);
      if (stale.length === 0) return;
      this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((w) => w.since >= cutoff));
      const holds = stale.flatMap((w) => {
        const held = this.held.get(tryKey(w.task));
        if (!held || held.lost || held.handedBack) {
          // Cleared or reaped while it waited here: nothing to hand back.
          if (held && !held.handedBack) {
            this.held.delete(tryKey(w.task));
            this.noteEnded(w.task);
          }
          return [];
        }
        held.handedBack = true;
        return [{ held, waited: w }];
      });
      if (holds.length === 0) return;
      // The tries ahead of them are long: no more claiming ahead until short tries bring the
      // average down again (else the same tries would be claimed and handed back over again).
      this.recentTryMs = Math.max(this.recentTryMs ?? 0, this.maxWaitMs);
      const inFlight = this.handBackHeld(
        holds.map((x) => x.held),
        `waited over ${formatDuration(this.maxWaitMs)} for a slot`,
      ).then(
        (returned) => {
          if (returned !== undefined) this.logger.info(`handed back ${returned} task instance(s) that waited over ${this.maxWaitMs} ms for a slot`);
          this.wantClaim = true;
        },
        (err) => {
          // Nothing was handed back: still ours in the database, they start when a slot frees.
          this.logger.warn(`could not hand back waiting tries: ${(err as Error).message}`);
          for (const { held, waited } of holds) {
            if (this.held.get(tryKey(held.task)) !== held) continue;
            held.handedBack = false;
            this.waiting.push({ ...waited, since: Date.now() });
          }
          this.startWaiting();
        },
      );
      this.waitingHandBack = inFlight;
      void inFlight.finally(() => {
        if (this.waitingHandBack === inFlight) this.waitingHandBack = undefined;
      });
    }, Math.max(10, this.maxWaitMs / 4));
    this.waitTimer.unref();
  }

  /** A DAG's onSuccess / onFailure in a warm child; rejects if the child died (the callback stays due). */
  private async runDagCallback(message: DagCallbackMessage): Promise<void> {
    const slot = this.acquireSlot();
    try {
      const result = await slot.child.request<{ retire?: boolean }>({ type: "dagCallback", callback: message });
      slot.busy = false;
      if (result?.retire) {
        this.dropSlot(slot);
        void slot.child.stop(1000);
      }
    } catch (err) {
      this.dropSlot(slot);
      throw err;
    }
  }

  /** A warm child from the pool, or (dedicated) a fresh one that is discarded after one try. */
  private acquireSlot(dedicated = false): Slot {
    if (dedicated) return { child: new Child(CHILD_SCRIPT, TASK_CHILD), busy: true, dedicated: true };
    let slot = this.slots.find((s) => !s.busy && s.child.alive);
    if (!slot) {
      const dead = this.slots.findIndex((s) => !s.child.alive);
      if (dead >= 0) this.slots.splice(dead, 1);
      slot = { child: new Child(CHILD_SCRIPT, TASK_CHILD), busy: false };
      this.slots.push(slot);
    }
    slot.busy = true;
    return slot;
  }

  private runInChild(task: ClaimedTask, message: RunTryMessage, timeoutMs: number | null, dedicated: boolean): void {
    const held = this.held.get(tryKey(task))!;
    const slot = this.acquireSlot(dedicated);
    slot.child.onMessage = (raw) => {
      const type = (raw as { type?: string }).type;
      if (type === "stepPut") void this.recordStep(slot, task, raw as unknown as StepPut);
      else if (type === "sensorFirstPoke") this.recordFirstPoke(slot, task, held, raw as unknown as SensorFirstPoke);
      else if (type === "tryCallbacks") held.callbacksTaken = true;
      else if (isSecretGet(raw)) void answerSecret(this.db.pool, slot.child, raw);
    };
    held.slot = slot;
    // A try claimed ahead starts now: its start_date is corrected when its outcome is recorded.
    task.startedAt = this.clock.now();
    const timeoutError: TryError = { name: "TaskTimeoutError", code: "BATON_TASK_TIMEOUT", message: `task exceeded its execution timeout of ${formatDuration(timeoutMs ?? 0)}` };
    if (timeoutMs !== null) {
      // A long timer: executionTimeout may be weeks, past what setTimeout can wait.
      held.timers.push(
        setLongTimeout(() => {
          held.timedOut = true;
          // `timeout`: the error this try is recorded with, for the callback its process runs.
          slot.child.send({ type: "abort", reason: `execution timeout of ${formatDuration(timeoutMs)} reached`, timeout: timeoutError });
          held.timers.push(setLongTimeout(() => void slot.child.kill(), this.options.killGraceMs ?? 10_000));
        }, timeoutMs),
      );
    }
    // Again at the start: a try claimed ahead may have waited for its slot while a fake clock moved.
    message.clockOffsetMs = offsetFromWallClock(this.clock);
    let died = false;
    slot.child
      .request<TryOutcome>({ type: "run", task: message })
      .then(
        ({ retire, ...outcome }) => {
          slot.busy = false;
          // An error went uncaught in that process (executor/child.ts): its state may be broken.
          if (retire) this.dropSlot(slot);
          if (slot.dedicated || retire) void slot.child.stop(1000);
          return outcome;
        },
        (err): TryOutcome => {
          died = true;
          this.dropSlot(slot);
          return { outcome: "failed", error: { name: "WorkerChildExited", code: "BATON_WORKER_CHILD_EXITED", message: `the task's process died: ${(err as Error).message}` } };
        },
      )
      .then((outcome) => {
        if (held.lost) {
          // Its result is discarded (complete): its log ends with why, not with "the task's process died".
          const end =
            held.killedAfterMs === undefined ? (died ? `${outcome.error?.message}; its result is discarded` : `its ${outcome.outcome} outcome is discarded`)
            : held.killedAfterMs === 0 ? "its process was killed; its result is discarded"
            : `its process, still running ${formatDuration(held.killedAfterMs)} after ctx.signal was aborted, was killed; its result is discarded`;
          return this.complete(task, { ...outcome, log: `${outcome.log ?? ""}[${new Date().toISOString()}] WARNING - ${held.lostWhy}: ${end}\n` });
        }
        if (held.timedOut && outcome.outcome !== "skipped") outcome = { outcome: "failed", error: timeoutError, log: outcome.log };
        if (!died && !held.timedOut) return this.complete(task, outcome);
        const { outcome: logged, written } = this.withReasonLogged(task, outcome, died && held.handedBack === true);
        // Its process died before it could run the try's callbacks: the worker does (unless the
        // try is no longer ours, or is handed back by a stopping worker: then it did not fail).
        const runCallbacks = died && !held.callbacksTaken && !held.lost && !held.handedBack && this.held.get(tryKey(task)) === held;
        this.complete(task, logged);
        if (runCallbacks && logged.error) this.runEndedTryCallback(task, message, logged.error, dedicated, written);
      });
  }

  /**
   * A try the worker ended (timed out, or its process died) gets the reason at the end of its
   * log: the task could not write it, and a log that stops mid-way says nothing of why.
   * `written` resolves once the line is in the try's file (at once when it travels with the outcome).
   */
  private withReasonLogged(task: ClaimedTask, outcome: TryOutcome, handedBack = false): { outcome: TryOutcome; written: Promise<void> } {
    if (!outcome.error) return { outcome, written: Promise.resolve() };
    // A stopping worker stopped its process and handed the try back: no failure, it runs again.
    const line = handedBack
      ? `[${new Date().toISOString()}] INFO - the worker stopped (shutdown): its process was ended and the try handed back, to run again (not counted as a try)\n`
      : `[${new Date().toISOString()}] ERROR - ${outcome.error.message} (${outcome.error.code})\n`;
    // Still in memory: it travels with the outcome. Otherwise the log is (or will be) its file.
    if (outcome.log !== undefined) return { outcome: { ...outcome, log: outcome.log + line }, written: Promise.resolve() };
    return { outcome, written: this.keepLog(task, line) };
  }

  /**
   * onRetry / onFailure (as the retry policy decides, as the task's process would have) of a try
   * this worker ended whose process died or was killed before it could run them, in a warm
   * child (a fresh one for isolation "process") with the try's ctx, bounded by
   * CALLBACK_TIMEOUT_MS; its lines are appended to the try's log file, after the reason the
   * worker wrote there. It never changes the task's state.
   *
   * The try's outcome is recorded without waiting for it (complete() ran already): the state
   * is decided by the failure, and a callback of up to a minute must not hold back the worker's
   * database loop, the run's next tasks, or the retry's delay. So, unlike the callbacks a task's
   * own process runs before its outcome is reported, this one may still be running when the
   * task instance is already up_for_retry or failed, or its next try has started.
   */
  private runEndedTryCallback(task: ClaimedTask, message: RunTryMessage, error: NonNullable<TryOutcome["error"]>, dedicated: boolean, after: Promise<void>): void {
    const callback: EndedTryCallbackMessage = { task: { ...message, clockOffsetMs: offsetFromWallClock(this.clock) }, error };
    const done = after
      .then(async () => {
        if (this.callbacksClosed) {
          await this.keepLog(task, `[${new Date().toISOString()}] WARNING - the task's callback was not run: the worker was stopping\n`);
          return;
        }
        try {
          await this.tryCallbackInChild(callback, dedicated);
        } catch (err) {
          this.logger.warn(`the callback of try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId}) did not complete: ${(err as Error).message}`);
          void this.keepLog(task, `[${new Date().toISOString()}] ERROR - the task's callback did not complete: ${(err as Error).message}\n`);
        }
      })
      .finally(() => this.endedTryCallbacks.delete(done));
    this.endedTryCallbacks.add(done);
  }

  /**
   * A try's onRetry / onFailure in a warm child (a fresh one when `dedicated`), bounded by
   * CALLBACK_TIMEOUT_MS; rejects if the child died or was killed. For tries this worker ended
   * (runEndedTryCallback) and tries a scheduler reaped (TryCallbacks).
   */
  private async tryCallbackInChild(callback: EndedTryCallbackMessage, dedicated: boolean): Promise<EndedTryCallbackResult> {
    const slot = this.acquireSlot(dedicated);
    this.callbackSlots.add(slot);
    slot.child.onMessage = (raw) => {
      if (isSecretGet(raw)) void answerSecret(this.db.pool, slot.child, raw);
    };
    // A callback that blocks its process's event loop never answers: kill it a little after the child's own deadline.
    const killer = setTimeout(() => void slot.child.kill(), CALLBACK_TIMEOUT_MS + 5000);
    try {
      const result = await slot.child.request<EndedTryCallbackResult>({ type: "endedTryCallback", callback });
      slot.busy = false;
      // Still running in there, or broken: that process is not given another try.
      if (slot.dedicated || !result.finished || result.retire) {
        this.dropSlot(slot);
        void slot.child.stop(1000);
      }
      return result;
    } catch (err) {
      this.dropSlot(slot);
      throw err;
    } finally {
      clearTimeout(killer);
      this.callbackSlots.delete(slot);
    }
  }

  /** Forgets a slot whose child died or is being retired: the pool never hands it out again. */
  private dropSlot(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
  }

  private complete(task: ClaimedTask, outcome: TryOutcome): void {
    const held = this.held.get(tryKey(task));
    if (!held || held.handedBack) return;
    for (const t of held.timers) t.clear();
    this.held.delete(tryKey(task));
    if (held.lost) {
      this.logger.info(`try ${task.tryNumber} of ${task.dagId}.${task.taskId} (run ${task.runId}) ended after its claim was lost; result discarded`);
      if (outcome.log) this.keepLog(task, outcome.log);
      // Its process has ended: the saga of its run may go on (its compensations waited for this).
      this.noteEnded(task);
      this.startWaiting();
      this.kick();
      return;
    }
    const endedAt = this.clock.now();
    if (held.slot) {
      const ms = endedAt.getTime() - task.startedAt.getTime();
      this.recentTryMs = movingAverage(this.recentTryMs, ms);
    }
    this.finished.push({ task, ...outcome, endedAt, firstPokeAt: held.firstPokeAt });
    this.startWaiting();
    this.claimIfRunningLow();
    this.kick();
  }

  /** A try no longer ours whose process has ended (or never started): its abandoned_try row goes. */
  private noteEnded(task: ClaimedTask): void {
    this.endedTries.set(tryKey(task), { id: task.id, tryNumber: task.tryNumber });
    void this.releaseEnded();
  }

  /**
   * Deletes the abandoned_try rows of the tries in endedTries (one statement; only after a try was
   * ended from outside), then wakes the scheduler if any went. One pass at a time; on failure
   * they stay, for the next heartbeat.
   */
  private releaseEnded(): Promise<void> {
    if (this.releasing) {
      this.releaseAgain = true;
      return this.releasing;
    }
    const pass = async () => {
      do {
        this.releaseAgain = false;
        const tries = [...this.endedTries];
        if (tries.length === 0) return;
        const released = await releaseAbandoned(this.db.pool, this.id, tries.map(([, t]) => t));
        for (const [key, t] of tries) if (this.endedTries.get(key) === t) this.endedTries.delete(key);
        if (released > 0) this.options.onAbandonedReleased?.();
      } while (this.releaseAgain && !this.halted);
    };
    this.releasing = pass()
      .catch((err) => this.logger.warn(`could not yet release ${this.endedTries.size} ended tr${this.endedTries.size === 1 ? "y" : "ies"} (cancelled or marked) for their runs' compensations: ${(err as Error).message}; retried at the next heartbeat`))
      .finally(() => (this.releasing = undefined));
    return this.releasing;
  }

  /** The log of a try whose result is discarded (claim lost, fenced) goes to its file: it is the one users look at. */
  private keepLog(task: ClaimedTask, text: string): Promise<void> {
    const file = taskLogPath(this.options.logsFolder, task);
    return mkdir(path.dirname(file), { recursive: true })
      .then(() => appendFile(file, text))
      .catch((err) => this.logger.warn(`could not write the log of task instance ${task.id}: ${(err as Error).message}`));
  }

  /**
   * A sensor's first poke: kept with the try (recorded with its outcome or hand-back) and stored
   * at once (fenced), so a try that never reports an outcome (its worker died) leaves it too and
   * the sensor's timeout still counts from it. The child waits for the answer before it pokes.
   */
  private recordFirstPoke(slot: Slot, task: ClaimedTask, held: Held, told: SensorFirstPoke): void {
    const at = new Date(told.at);
    held.firstPokeAt = at;
    const ack = (stored: boolean) => {
      const answer: FirstPokeAck = { type: "firstPokeAck", reqId: told.reqId, stored };
      slot.child.send(answer as unknown as Record<string, unknown>);
    };
    this.track(
      recordFirstPoke(this.db.pool, { id: task.id, tryNumber: task.tryNumber, token: task.token, at }).then(ack, (err) => {
        // The poke goes on: failing the try for it would cost a retry; the worker still holds
        // the first poke for the try's outcome or hand-back (lost only if it dies meanwhile).
        this.logger.warn(`could not store the first poke of ${task.dagId}.${task.taskId} (run ${task.runId}) yet: ${(err as Error).message}; it is stored with the try's outcome`);
        ack(false);
      }),
    );
  }

  /** A write a try's process asked for (a step, a first poke): stop() lets it land before handing the try back. */
  private track(write: Promise<unknown>): void {
    const done: Promise<void> = write.then(
      () => undefined,
      () => undefined,
    ).finally(() => this.tryWrites.delete(done));
    this.tryWrites.add(done);
  }

  /** A durable step completed in a child: record it (fenced by the try's claim) and answer. */
  private recordStep(slot: Slot, task: ClaimedTask, put: StepPut): Promise<void> {
    const write = this.recordStepAndAck(slot, task, put);
    this.track(write);
    return write;
  }

  private async recordStepAndAck(slot: Slot, task: ClaimedTask, put: StepPut): Promise<void> {
    let ack: StepAck;
    try {
      const outcome = await recordStep(this.db.pool, this.clock.now(), {
        tiId: task.id,
        tryNumber: task.tryNumber,
        token: task.token,
        name: put.name,
        valueText: put.valueText,
      });
      ack = { type: "stepAck", reqId: put.reqId, ...outcome };
    } catch (err) {
      ack = { type: "stepAck", reqId: put.reqId, status: "error", message: (err as Error).message };
    }
    slot.child.send(ack as unknown as Record<string, unknown>);
  }

  /**
   * Aborts ctx.signal of a try that is no longer ours (`reason`: the signal's), and kills its
   * process after the grace. `why` starts the line its log ends with (runInChild).
   */
  private abandon(held: Held, reason: string, why: string, graceMs = this.options.killGraceMs ?? 10_000): void {
    if (held.lost) return;
    held.lost = true;
    held.lostWhy = why;
    const slot = held.slot;
    if (!slot) return;
    // `abandoned`: its process runs none of its callbacks, whatever the task does after the abort.
    slot.child.send({ type: "abort", reason, abandoned: true });
    held.timers.push(
      setLongTimeout(() => {
        held.killedAfterMs = graceMs;
        void slot.child.kill();
      }, graceMs),
    );
  }

  /** This worker's process row: what /health, GET /workers and the `queue` dependency read. */
  private processInfo() {
    return {
      id: this.id,
      kind: "worker" as const,
      startedAt: this.startedAt,
      info: { queues: this.options.queues, concurrency: this.options.concurrency, running: this.runningCount, hostname: this.options.hostname ?? os.hostname() },
    };
  }

  private async heartbeat(): Promise<void> {
    const now = this.clock.now();
    // Tries waiting for a slot are ours too: they must not look like zombies.
    const running = [...this.held.values()].filter((h) => !h.lost && !h.handedBack);
    // So are tries that ended here and whose results are not recorded yet (the finish failed and
    // is retried, or is in flight): reaped meanwhile, a success would be failed as a zombie's, or
    // run again. Parked results are not among them: they are left for reapZombies (isolateRefused).
    const unrecorded = [...this.finished, ...this.recording].map((t) => ({ id: t.task.id, tryNumber: t.task.tryNumber }));
    try {
      await beatProcess(this.db, now, this.processInfo());
      const mine = await beatTries(this.db, now, [...running.map((h) => ({ id: h.task.id, tryNumber: h.task.tryNumber })), ...unrecorded], this.id);
      this.lastHeartbeatOk = Date.now();
      // Ended tries whose release failed (the database was unreachable) are released now.
      if (this.endedTries.size > 0) void this.releaseEnded();
      // Tries held back while the database was unreachable may start now.
      queueMicrotask(() => this.startWaiting());
      for (const h of running) {
        // Left be: a try that finished while the heartbeat was in flight (no longer held), and one
        // being handed back meanwhile. That hand-back may have committed before this heartbeat
        // read its row (queued again: not ours) and not have answered yet: it decides, not this
        // heartbeat (if it fails, nothing committed and the try is still ours; the next
        // heartbeat looks at it again).
        if (mine.get(h.task.id) === h.task.tryNumber || this.held.get(tryKey(h.task)) !== h || h.handedBack) continue;
        this.logger.warn(`try ${h.task.tryNumber} of ${h.task.dagId}.${h.task.taskId} (run ${h.task.runId}) is no longer ours (cancelled, marked, cleared, timed out or reaped): aborting it`);
        this.abandon(h, "the task instance was cancelled, marked, cleared, timed out or reaped", NO_LONGER_OURS);
      }
    } catch (err) {
      // Without heartbeats our tries become zombies that others will re-run: stop them first.
      if (this.heartbeatStale() && running.length > 0) {
        // Tries still waiting for a slot are not started meanwhile (startWaiting), nor dropped:
        // if they are reaped, the next heartbeat finds them no longer ours.
        const still = running.filter((h) => this.held.get(tryKey(h.task)) === h && h.slot);
        if (still.length > 0) this.logger.error(`no heartbeat for ${formatDuration(Date.now() - this.lastHeartbeatOk)} (database unreachable): killing ${still.length} running task(s) before they are re-run elsewhere`);
        for (const h of still) {
          this.abandon(h, "the worker lost its database connection", "the worker could not reach the database for half the heartbeat timeout (the try may run again elsewhere)", 0);
        }
      }
      throw err;
    }
  }

  /**
   * Stops claiming, lets running tries finish for up to graceMs, then kills what is left and
   * hands those tries back (queued again, try not counted), records what finished, and exits.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.pollTimer);
    try {
      await this.drainAndHandBack(graceMs);
    } finally {
      // Even when the hand-back or the last records fail (database gone): a heartbeat interval or
      // a retry left behind would keep the process alive, beating against a closed pool.
      this.halted = true;
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.heartbeatRetry);
      clearInterval(this.waitTimer);
      clearTimeout(this.backoffTimer);
      clearTimeout(this.pollTimer);
      // Its row is removed below: a first heartbeat still in flight would write it back.
      await this.firstBeat;
      // Ended tries' releases in flight land first (what is left goes with the process row: releaseDeadWorkers).
      if (this.releasing) await settledWithin(this.releasing, 1000);
      await settledWithin(removeProcess(this.db, this.id), 1000);
    }
  }

  private async drainAndHandBack(graceMs: number): Promise<void> {
    const limitMs = this.options.stopRecordTimeoutMs ?? 5000;
    const deadline = Date.now() + graceMs;
    const callbacksDone = Promise.all([this.runCallbacks.stop(deadline), this.tryCallbacks.stop(deadline)]);
    while (this.runningCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    await callbacksDone;
    // Callbacks of tries this worker ended (their outcome is recorded or in `finished`): what
    // the grace leaves of them is killed below, logged in the try's log as not completed.
    await settledWithin(Promise.all(this.endedTryCallbacks), Math.max(0, deadline - Date.now()));
    // A claim in flight when stopping began lands in `held` when it returns: wait for it, so
    // its tries are handed back with the rest instead of left running until reaped.
    if (this.loopRunning) await settledWithin(this.loopDone, limitMs);
    // Likewise a hand-back of waiting tries in flight: tries it fails to hand back are held again.
    await settledWithin(this.waitingHandBack, limitMs);
    this.waiting.length = 0;
    const leftovers = [...this.held.values()].filter((h) => !h.handedBack);
    for (const h of leftovers) {
      h.handedBack = true;
      for (const t of h.timers) t.clear();
    }
    const dedicated = leftovers.flatMap((h) => (h.slot?.dedicated ? [h.slot] : []));
    this.runCallbacks.halt();
    this.tryCallbacks.halt();
    this.callbacksClosed = true;
    await Promise.all([...this.slots, ...dedicated, ...this.callbackSlots].map((s) => (s.busy ? s.child.kill() : s.child.stop(1000))));
    await Promise.all([this.runCallbacks.release(), this.tryCallbacks.release()]);
    if (leftovers.length > 0) {
      // A step stored after the hand-back would be fenced, and one stored meanwhile might be
      // missed by it (steps_kept): let the writes the killed processes asked for land first.
      await settledWithin(Promise.all(this.tryWrites), limitMs);
      const returned = await beforeDeadline(
        this.handBackHeld(leftovers, "shutdown"),
        limitMs,
        `handing back the unfinished tries took over ${limitMs} ms (database unreachable?)`,
      );
      // Unknown: the loop below waits for recoverUnknownCommits() to hand back what is still ours.
      if (returned !== undefined) this.logger.info(`handed back ${returned} unfinished task instance(s)`);
    }
    const recordBy = Date.now() + limitMs;
    while (this.loopRunning || this.finished.length > 0 || this.unknownCommits.length > 0) {
      if (Date.now() > recordBy) {
        const unrecorded = this.finished;
        this.finished = [];
        for (const t of unrecorded) if (t.log) this.keepLog(t.task, t.log);
        throw new Error(
          unrecorded.length > 0
            ? `could not record ${unrecorded.length} finished tr${unrecorded.length === 1 ? "y" : "ies"} within ${limitMs} ms of stopping (the database refused them or did not answer): ` +
                "they stay running in the database until reaped as zombies, when their retry policy applies"
            : `a database call of the worker did not end within ${limitMs} ms of stopping`,
        );
      }
      if (!this.loopRunning && !this.backoffTimer) this.kick();
      await new Promise<void>((r) => {
        this.idleWaiters.push(r);
        // Also wakes while a retry waits or a call hangs, to check the deadline again.
        setTimeout(r, 100);
      });
    }
    await this.loopDone;
  }
}
