// finishTries — records the outcome of tries a worker ran and advances their runs, batch-first:
// everything that finished since the worker's last flush goes in one transaction (group
// commit), in two round trips when no task cascades:
//   1. BEGIN; fenced UPDATE of each try; INSERT its XComs; add it to its downstream tasks'
//      up_* counters; SELECT those downstream rows; count down each run.
//   2. downstream tasks now ready are claimed by this worker for its free slots (it just
//      freed them) or queued for others; SELECT the claimed tasks' upstream outputs; COMMIT.
// Such a claim (a hand-off: the finished try's worker and pool slots go to a task of its run)
// passes the hand-off gate (scheduler/handoff.ts), read in round trip 1 without a lock: the
// pool still exists, its running tries leave room once these release theirs, and no queued try
// of the pool on the worker's queues that a claim could take has a higher priority (claimReads). Otherwise the task is queued, and the
// worker's next claim, which orders by priority within pool slots, decides.
// On MariaDB, when round trip 1's answers cannot change what happens next (a chain's hop: its
// single-upstream downstream task is claimed in round trip 1 itself; a fan-in whose join keeps
// waiting), round trip 1 ends with the pool slots' UPDATE and a COMMIT guarded by that
// condition checked in SQL (earlyCommitCondition), and there is no round trip 2.
// locks: the finished task_instance rows (PK), their downstream rows (ux_task_instance), the
//   dag_run rows (PK), in that order; a rescheduled sensor's UPDATE also reads its task_step
//   rows (PK prefix), written only by that try, which is over.
// fence: an UPDATE only matches a row still `running` with the same try_number and claim
//   token. A result that matches nothing (a zombie waking late, a try handed back) is
//   `fenced`: the transaction restarts without it. Tries that all end (no reschedule or
//   deferral) are recorded by one UPDATE for the batch; when it matches fewer rows than
//   tries, the transaction restarts with an UPDATE per try to find the fenced ones.
// outcomes: success / skipped / failed settle downstream tasks (skips and upstream_failed
//   cascade through settle()); failures with tries left go up_for_retry with next_retry_at.
//   A sensor's first poke, when its try made it, is kept in first_poke_at whatever the outcome:
//   its timeout counts from it across reschedules and retries.
import { jsonWithinBytes } from "../../core/json.ts";
import { taskInputs, type DagShape, type SerializedTask } from "../../core/dagStructure.ts";
import { RunType, TaskState } from "../../core/states.ts";
import { nextRetryAt, shouldRetry } from "../../scheduler/retryPolicy.ts";
import { blockedByQueued, mayHandOff, type HandoffPool } from "../../scheduler/handoff.ts";
import { occupancyStatements } from "../pools.ts";
import { holdsWhenReady, isCompensation, runsWithAbandonedTries } from "./abandonedTries.ts";
import { deliverPendingSignal } from "./signals.ts";
import { inList, type BatchTx, type Db, type ResultSetHeader, type RowDataPacket, type Statement } from "../db.ts";
import { outputsByRun, upstreamOutputsStatement, type WantedOutputs } from "../xcom.ts";
import { BACKFILL_PRIORITY_FLOOR, type ClaimedTask } from "./claimTasks.ts";
import { taskPriority } from "./startRuns.ts";
import { RULES_WAITING_ON_SUCCESSES, evaluateTriggerRule } from "../../scheduler/triggerRules.ts";
import {
  counterColumn,
  countsOfSingleUpstream,
  decideDownstream,
  endStatements,
  holdStatement,
  finishRun,
  queueStatement,
  selectDownstream,
  settle,
  skipTasks,
  upstreamIncrements,
  type SettledTask,
} from "./settle.ts";

/** What a try's error takes in task_instance.error at most (a TEXT, 65,535 bytes): a task's own error can be any size, in any script. */
export const STORED_ERROR_MAX_BYTES = 60_000;

/**
 * A stored log only grows when a try runs again under the same try number (handed back at
 * shutdown); rescheduled sensor pokes after the first go to the try's file (executor/tryLog.ts).
 * Past this size the row stops growing rather than failing the transaction that records the try.
 */
const MAX_STORED_LOG_BYTES = 1024 * 1024;

export interface TryError {
  name: string;
  code?: string;
  message: string;
  stack?: string;
  nonRetryable?: boolean;
}

export interface FinishedTry {
  /** The try as it was claimed: identity, fence and run context. */
  task: ClaimedTask;
  /** reschedule: a sensor pokes again after rescheduleInMs, releasing its slot; deferred: waits for a signal. */
  outcome: "success" | "failed" | "skipped" | "reschedule" | "deferred";
  rescheduleInMs?: number;
  /** JSON-serializable return value; undefined stores no XCom. */
  output?: unknown;
  error?: TryError;
  /** Tasks a successful branch / short-circuit try chose to skip. */
  skipTasks?: string[];
  /** The try's log when it stayed short; stored in task_log (appended: a rescheduled sensor's pokes share a try). */
  log?: string;
  endedAt: Date;
  /**
   * A sensor's first poke, when this try made it (the task instance had none): kept in
   * first_poke_at whatever the outcome, so a retry's timeout counts from it too.
   */
  firstPokeAt?: Date;
}

/** This worker's free slots, to claim downstream tasks that become ready. */
export interface TakeRequest {
  limit: number;
  queues: readonly string[];
  hostname: string;
  pid: number;
  token: string;
  /**
   * Pools whose hand-off gate reads a prefix of the queue, skipping tries no claim takes (claimReads):
   * those whose shallow read refused a hand-off a while ago (scheduler/handoff.ts GateDepths). Others
   * are read shallow: the first queued try, whatever it is.
   */
  deepGatePools?: ReadonlySet<string>;
}

export interface FinishResult {
  finished: number[];
  /** Task instance ids of fencedTries (one per fenced try). */
  fenced: number[];
  /** The fenced tries themselves: a batch may hold two tries of one task instance (a cleared one and the next). */
  fencedTries: FinishedTry[];
  retrying: number[];
  /** Ready tasks left queued for any worker. */
  queued: number[];
  /** Ready tasks claimed by the caller in the same transaction. */
  taken: ClaimedTask[];
  runsFinished: { dagRunId: number; state: "success" | "failed" }[];
  /**
   * Pools read shallow whose first queued try refused a hand-off for its priority: it may be a try
   * no claim takes, so the worker reads them deep for a while (GateDepths.noteBlocked).
   */
  gateBlocked: string[];
}

interface Planned {
  t: FinishedTry;
  state: string;
  statement: Statement;
  /** A statement that only makes sense if the fenced UPDATE matched (sent after all of them). */
  extra?: Statement;
  /** An ending outcome's values, in ENDED_COLUMNS order: tries that all have one are recorded by one UPDATE. */
  ended?: unknown[];
}

/** Columns of the derived table recordEnded() joins: the fence (id, try_number, token) and the new values. */
const ENDED_COLUMNS = ["id", "try_number", "token", "state", "start_date", "end_date", "duration", "next_retry_at", "error", "first_poke_at"] as const;

/**
 * One fenced UPDATE for many ended tries: the tries' values as a derived table joined on the
 * primary key (driven by the derived rows, in id order, so rows are locked as the per-try
 * statements lock them). A statement per try cost ≈ 0.3 ms of MariaDB time each; one per batch
 * costs ≈ 0.1 ms per row. It matches one row per live try; fewer means some try is fenced, and
 * finishTries then records the batch try by try to learn which.
 */
function recordEnded(planned: Planned[]): Statement {
  const first = ENDED_COLUMNS.map((c) => `? AS ${c}`).join(", ");
  const rest = ENDED_COLUMNS.map(() => "?").join(", ");
  return {
    sql: `UPDATE task_instance t FORCE INDEX (PRIMARY)
            JOIN (SELECT ${first}${planned.slice(1).map(() => ` UNION ALL SELECT ${rest}`).join("")}) v ON t.id = v.id
             SET t.state = v.state, t.start_date = v.start_date, t.end_date = v.end_date, t.duration = v.duration,
                 t.next_retry_at = v.next_retry_at, t.error = v.error, t.heartbeat_at = NULL,
                 t.first_poke_at = COALESCE(t.first_poke_at, v.first_poke_at)
           WHERE t.state = 'running' AND t.try_number = v.try_number AND t.claim_token = v.token`,
    params: planned.flatMap((p) => p.ended!),
  };
}

/**
 * The end_date a finish records for a try that started at `startedAt` and ended at `endedAt` (the
 * worker's clock): not before its start, which may be its queued_at, written with another
 * process's clock (claimTasks). What recordedResults looks for after a lost COMMIT answer.
 */
export function recordedEnd(startedAt: Date, endedAt: Date): Date {
  return endedAt.getTime() < startedAt.getTime() ? startedAt : endedAt;
}

function plan(t: FinishedTry, now: Date, shape: DagShape): Planned {
  const { task } = t;
  const fence = [task.id, task.tryNumber, task.token];
  const endedAt = recordedEnd(task.startedAt, t.endedAt);
  if (t.outcome === "reschedule") {
    // Airflow: a reschedule does not use up a try; the poke is recorded in task_reschedule.
    // The next poke runs under this try number again, so a first try's claim would not load the
    // steps its pokes recorded (only tries after the first do): steps_kept says there are some,
    // as a hand-back does, and the next poke reuses them instead of running them again.
    const at = new Date(now.getTime() + Math.max(0, t.rescheduleInMs ?? 0));
    return {
      t,
      state: TaskState.UpForReschedule,
      statement: {
        sql: `UPDATE task_instance SET state = 'up_for_reschedule', try_number = try_number - 1, next_retry_at = ?, end_date = ?,
                     start_date = ?, first_poke_at = COALESCE(first_poke_at, ?, start_date), poke_count = poke_count + 1, heartbeat_at = NULL,
                     steps_kept = EXISTS (SELECT 1 FROM task_step s WHERE s.task_instance_id = task_instance.id)
               WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
        params: [at, endedAt, task.startedAt, t.firstPokeAt ?? null, ...fence],
      },
      extra: {
        sql: "INSERT INTO task_reschedule (task_instance_id, try_number, start_date, end_date, reschedule_date) VALUES (?, ?, ?, ?, ?)",
        params: [task.id, task.tryNumber, task.startedAt, endedAt, at],
      },
    };
  }
  if (t.outcome === "deferred") {
    const signal = shape.byId.get(task.taskId)?.signal;
    const checkAt = signal?.timeoutMs !== null && signal?.timeoutMs !== undefined ? new Date(now.getTime() + signal.timeoutMs) : null;
    return {
      t,
      state: TaskState.Deferred,
      statement: {
        sql: `UPDATE task_instance SET state = 'deferred', deferred_on = ?, next_check_at = ?, heartbeat_at = NULL
               WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
        params: [signal?.name ?? null, checkAt, ...fence],
      },
    };
  }
  let state: string = t.outcome;
  let retryAt: Date | null = null;
  const spec = shape.byId.get(task.taskId);
  if (t.outcome === "failed" && spec && shouldRetry(task.tryNumber, task.maxTries, !!t.error?.nonRetryable)) {
    state = TaskState.UpForRetry;
    retryAt = nextRetryAt(now, spec, task, task.tryNumber);
  }
  const duration = (endedAt.getTime() - task.startedAt.getTime()) / 1000;
  const error = t.error ? jsonWithinBytes({ ...t.error }, STORED_ERROR_MAX_BYTES) : null;
  const firstPokeAt = t.firstPokeAt ?? null;
  return {
    t,
    state,
    statement: {
      sql: `UPDATE task_instance SET state = ?, start_date = ?, end_date = ?, duration = ?, next_retry_at = ?, error = ?, heartbeat_at = NULL,
                   first_poke_at = COALESCE(first_poke_at, ?)
             WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
      params: [state, task.startedAt, endedAt, duration, retryAt, error, firstPokeAt, task.id, task.tryNumber, task.token],
      prepare: true,
    },
    ended: [task.id, task.tryNumber, task.token, state, task.startedAt, endedAt, duration, retryAt, error, firstPokeAt],
  };
}

export async function finishTries(
  db: Db,
  now: Date,
  tries: FinishedTry[],
  shapeOf: (versionHash: string) => Promise<DagShape>,
  take?: TakeRequest,
): Promise<FinishResult> {
  const shapes = new Map<string, DagShape>();
  for (const t of tries) if (!shapes.has(t.task.versionHash)) shapes.set(t.task.versionHash, await shapeOf(t.task.versionHash));
  return db.batchTx(async (btx) => {
    const fencedTries: FinishedTry[] = [];
    const fencedIds = () => fencedTries.map((t) => t.task.id);
    let live = [...tries].sort((a, b) => a.task.id - b.task.id);
    let tryByTry = false;
    for (;;) {
      const result = await attempt(btx, now, live, shapes, take, tryByTry);
      if (result === FENCED_IN_BATCH) {
        // Some try of the batch is fenced, but one UPDATE cannot say which: again, try by try.
        await btx.rollback();
        tryByTry = true;
        continue;
      }
      if (result.fencedTries.length === 0) return { ...result, fenced: fencedIds(), fencedTries };
      // Someone else owns those tries now: undo and record the others alone.
      fencedTries.push(...result.fencedTries);
      await btx.rollback();
      live = live.filter((t) => !result.fencedTries.includes(t));
      if (live.length === 0) return { finished: [], fenced: fencedIds(), fencedTries, retrying: [], queued: [], taken: [], runsFinished: [], gateBlocked: [] };
    }
  });
}

/** A downstream task this worker claimed in the transaction, in the run of `run` (a try of the same run). */
function claimedFrom(
  run: ClaimedTask,
  row: RowDataPacket,
  tryNumber: number,
  take: TakeRequest,
  now: Date,
  upstreamOutputs: Record<string, unknown>,
): ClaimedTask {
  return {
    ...run,
    id: Number(row.id),
    taskId: row.task_id,
    mapIndex: -1,
    pool: row.pool,
    poolSlots: Number(row.pool_slots),
    tryNumber,
    maxTries: Number(row.max_tries),
    keyEpoch: Number(row.key_epoch),
    token: take.token,
    startedAt: now,
    firstPokeAt: row.first_poke_at ?? null,
    pokeCount: Number(row.poke_count ?? 0),
    stepsKept: Number(row.steps_kept ?? 0) === 1,
    upstreamOutputs,
  };
}

/** What earlyCommitCondition() needs of a run's part of the batch. */
interface RunOutcomes {
  shape: DagShape;
  settled: SettledTask[];
  forcedSkips: Set<string>;
  counted: string[];
}

/**
 * The SQL condition under which the first round trip may COMMIT, or null when the batch is
 * sure to need a second one: a reschedule or deferral (no fence count), a branch's skips, a
 * task without downstream tasks (its run may end), a failure or skip counting towards a
 * downstream task decided from counters (it may end it), or such a task whose rule might fire
 * on a success. Checked in SQL after the statements:
 *   - every fenced UPDATE and speculative claim matched its rows (ROW_COUNT() sums);
 *   - no run is left with unfinished_tasks = 0 (it would end);
 *   - every counted downstream task still waits: no upstream ended other than in success, not
 *     all of them ended, and the row's own rule is one of RULES_WAITING_ON_SUCCESSES, which wait
 *     in exactly that case (the row's rule decides, so it is checked, not only the shape's).
 */
function earlyCommitCondition(fenced: number, taken: number, runIds: number[], runs: Map<number, RunOutcomes>): Statement | null {
  const parts = [`@baton_fence_rows = ${fenced}`];
  const params: unknown[] = [];
  if (taken > 0) parts.push(`@baton_taken_rows = ${taken}`);
  for (const dagRunId of runIds) {
    const run = runs.get(dagRunId)!;
    if (run.forcedSkips.size > 0) return null;
    if (run.settled.some((s) => (run.shape.byId.get(s.taskId)?.downstream.length ?? 0) === 0)) return null;
    if (run.counted.length === 0) continue;
    if (run.settled.some((s) => s.state !== TaskState.Success)) return null;
    if (!run.counted.every((taskId) => RULES_WAITING_ON_SUCCESSES.includes(run.shape.byId.get(taskId)!.triggerRule))) return null;
    parts.push(`NOT EXISTS (SELECT 1 FROM task_instance WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(run.counted)})
                  AND state IN ('none', 'scheduled')
                  AND (up_skipped + up_failed + up_upstream_failed > 0 OR up_success + up_removed >= upstream_total
                       OR trigger_rule NOT IN (${inList(RULES_WAITING_ON_SUCCESSES)})))`);
    params.push(dagRunId, ...run.counted, ...RULES_WAITING_ON_SUCCESSES);
  }
  if (runIds.length > 0) {
    parts.push(`NOT EXISTS (SELECT 1 FROM dag_run WHERE id IN (${inList(runIds)}) AND unfinished_tasks = 0 AND state = 'running')`);
    params.push(...runIds);
  }
  return { sql: parts.join(" AND "), params };
}

/** Queues single-upstream downstream tasks, counting their upstream's outcome in `column` (a task already decided is left). */
function queueSingleUpstream(now: Date, dagRunId: number, column: string, taskIds: string[]): Statement {
  return {
    sql: `UPDATE task_instance SET ${column} = ${column} + 1, state = 'queued', queued_at = ?
           WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)}) AND state IN ('none', 'scheduled')`,
    params: [now, dagRunId, ...taskIds],
    prepare: true,
  };
}

/** How many of a pool's first queued tries (per queue) the hand-off gate checks for one a claim could take. */
const GATE_DEPTH = 16;

/**
 * What the first round trip's claims check, read before them in one statement, without a lock (a
 * pause, a pool resized or a try queued meanwhile is seen by the next finish):
 *   - paused: how many of `pauseDags` are paused (@baton_paused; no column without pauseDags);
 *   - the hand-off gate (scheduler/handoff.ts), per pool a downstream task may be handed slots of,
 *     in session variables for the claims of the same round trip (handoffCondition) and answered
 *     for the second round trip's (mayHandOff): room_N, the pool's free slots once this batch's
 *     tries release `released` (NULL: no such pool, e.g. deleted), and top_N, the highest priority
 *     queued in it on the worker's queues (NULL: none), read on ix_ti_pool_queue (state, pool,
 *     queue, priority_weight DESC, id) shallow or deep (GateDepths decides which, per pool):
 *       shallow: the first entry, whatever its try (one index entry);
 *       deep: of the first GATE_DEPTH entries, the first whose try is not one no claim takes
 *         (claimTasks): a paused DAG's (but for a backfill try), one needing more slots than the
 *         pool has in all, one whose DAG row is gone.
 *     Such tries may stay queued for ever (an oversized try) or for as long as a pause lasts, and
 *     each refuses every shallow-read hand-off in the pool, sending each hop of a chain through a
 *     full claim (3+ round trips, with DAG and pool rows locked) instead: so a shallow read that
 *     refused a hand-off makes the worker read that pool deep for a while (FinishResult.gateBlocked).
 * Trade-off of the depth: a dive that skips such tries row by row walks all of them (a paused DAG
 * with 1,000 queued tries: 1,000 row reads per finish), so the deep read takes a bounded prefix,
 * index only, and checks the rows of that prefix in order until one passes: when GATE_DEPTH tries
 * that no claim takes lead the pool, the gate sees no blocker and hands off, even if a try of
 * higher priority that a claim could take waits behind them. A claim in a small pool does not read
 * that far either (MAX_READ_PASSES reads of candidateLimit(free) tries each). Not skipped (they can
 * change at any moment, or are known to one worker only): a DAG at its maxActiveTasks, tries a
 * worker set aside (leaveOut); such a try refuses the hand-off as before.
 * ANALYZE FORMAT=JSON of the deep read (MariaDB 10.11; a 1-slot pool with 1,000 tries of a paused
 * DAG queued at priority 100 and 5 others at 1, 20,000 ended; a pool with 1,000 tries needing 5
 * slots; a pool whose first try passes): the pools by PRIMARY (const); the prefix, a derived
 * table, type ref on ix_ti_pool_queue, index only, r_rows 16 (not 1,005); then per row of it, in
 * order, task_instance by PRIMARY (eq_ref) and dag by PRIMARY (eq_ref), stopping at the first that
 * passes. The whole statement (pause count included): Handler_read_key 21, _next 15, _rnd 16 when
 * all 16 are skipped; key 6, next 15, rnd 1 when the first passes. The shallow read alone (no
 * pause count): key 2, next 0.
 * Cost (bench/gate.ts, `npm run bench -- gate`: one connection, the statement alone with one pool
 * and one queue): the deep read ≈ +90–140 µs per pool and queue per finish over the shallow one,
 * as much with nothing queued as when the first entry passes, for the cost is preparing the
 * statement's query blocks, not reading 16 entries. Checking the first entry first and reading the
 * prefix only when that try fails, IF(passes, its priority, (prefix)), costs ≈ 25–125 µs more than
 * the deep read in every case: MariaDB parses and optimizes the prefix it does not run. Hence the
 * choice made by the worker, outside SQL.
 */
export function claimReads(pauseDags: string[], pools: { name: string; released: number; deep?: boolean }[], queues: readonly string[]): Statement {
  // ORDER BY … LIMIT 1, not MAX(): MariaDB reads every queued try of the pool for a MAX() over a DESC key part.
  const shallow = `(SELECT priority_weight FROM task_instance FORCE INDEX (ix_ti_pool_queue)
                     WHERE state = 'queued' AND pool = ? AND queue = ? ORDER BY priority_weight DESC, id LIMIT 1)`;
  // The prefix is a derived table of its own (LIMIT: never merged, conditions not pushed into it),
  // so the checks filter its GATE_DEPTH rows, and never make the index read walk on past them.
  const deep = `(SELECT c.priority_weight
                   FROM (SELECT id, priority_weight FROM task_instance FORCE INDEX (ix_ti_pool_queue)
                          WHERE state = 'queued' AND pool = ? AND queue = ? ORDER BY priority_weight DESC, id LIMIT ${GATE_DEPTH}) c
                   JOIN task_instance t ON t.id = c.id
                   JOIN dag d ON d.dag_id = t.dag_id
                  WHERE t.pool_slots <= (SELECT slots FROM pool WHERE name = ?) AND (d.is_paused = 0 OR c.priority_weight < ${BACKFILL_PRIORITY_FLOOR})
                  ORDER BY c.priority_weight DESC, c.id LIMIT 1)`;
  const top = (dive: string) => (queues.length === 1 ? dive : `(SELECT MAX(w) FROM (${queues.map(() => `SELECT ${dive} AS w`).join(" UNION ALL ")}) q)`);
  const columns = [
    ...(pauseDags.length > 0 ? [`@baton_paused := (SELECT COUNT(*) FROM dag WHERE dag_id IN (${inList(pauseDags)}) AND is_paused = 1) AS paused`] : []),
    ...pools.map((p, i) => `@baton_room_${i} := (SELECT slots - occupied_slots FROM pool WHERE name = ?) + ? AS room_${i}, @baton_top_${i} := ${top(p.deep ? deep : shallow)} AS top_${i}`),
  ];
  return {
    sql: `SELECT ${columns.join(", ")}`,
    params: [...pauseDags, ...pools.flatMap(({ name, released, deep }) => [name, released, ...queues.flatMap((q) => (deep ? [name, q, name] : [name, q]))])],
    // Not with a derived table (a deep read, several queues): see Statement.prepare.
    prepare: queues.length === 1 && pools.every((p) => !p.deep),
  };
}

/**
 * mayHandOff() in SQL, for a claiming UPDATE of the first round trip on the gate's pool N: the
 * pool has room for `slots` (this and the earlier claims of that round trip in the pool), and the
 * claimed row's priority is not below the pool's top queued one.
 */
function handoffCondition(n: number, slots: number): string {
  return `@baton_room_${n} >= ${Math.floor(slots)} AND (@baton_top_${n} IS NULL OR priority_weight >= @baton_top_${n})`;
}

/** attempt()'s answer when the batch UPDATE matched fewer rows than tries. */
const FENCED_IN_BATCH = Symbol("fenced in batch");

async function attempt(
  btx: BatchTx,
  now: Date,
  tries: FinishedTry[],
  shapes: Map<string, DagShape>,
  take: TakeRequest | undefined,
  tryByTry: boolean,
): Promise<FinishResult | typeof FENCED_IN_BATCH> {
  const result: FinishResult = { finished: [], fenced: [], fencedTries: [], retrying: [], queued: [], taken: [], runsFinished: [], gateBlocked: [] };
  if (tries.length === 0) return result;
  const planned = tries.map((t) => plan(t, now, shapes.get(t.task.versionHash)!));
  // Reschedules and deferrals (rare) keep their own statements, and so then does the whole batch.
  const batched = !tryByTry && planned.length > 1 && planned.every((p) => p.ended);
  const fences = batched ? [recordEnded(planned)] : planned.map((p) => p.statement);
  // Committing in the first round trip (below) needs the fenced UPDATEs' matched rows in SQL:
  // each is followed by adding its ROW_COUNT() to a session variable.
  const countFences = btx.conditionalCommit && planned.every((p) => p.ended);
  const statements: Statement[] = [];
  const fenceIndexes: number[] = [];
  fences.forEach((fence, i) => {
    fenceIndexes.push(statements.length);
    statements.push(fence);
    if (countFences) statements.push({ sql: `SET @baton_fence_rows = ${i === 0 ? "" : "@baton_fence_rows + "}ROW_COUNT()` });
  });
  let capacity = take ? Math.max(0, take.limit) : 0;
  // Pool slots: every try here leaves `running` and frees its slots. A task this worker takes
  // in the same transaction may reuse freed slots of its own pool (a hand-off, so it needs no
  // pool lock to know they are free); anything else waits for a claim, which checks pools.
  // The same hand-off keeps a DAG's running count (maxActiveTasks) from growing.
  const poolDeltas = new Map<string, number>();
  const handoff = new Map<string, number>();
  const dagHandoff = new Map<string, number>();
  for (const p of planned) {
    poolDeltas.set(p.t.task.pool, (poolDeltas.get(p.t.task.pool) ?? 0) - p.t.task.poolSlots);
    handoff.set(p.t.task.pool, (handoff.get(p.t.task.pool) ?? 0) + p.t.task.poolSlots);
    dagHandoff.set(p.t.task.dagId, (dagHandoff.get(p.t.task.dagId) ?? 0) + 1);
  }
  const released = new Map(handoff);
  const reserve = (dagId: string, pool: string, slots: number): boolean => {
    if ((handoff.get(pool) ?? 0) < slots || (dagHandoff.get(dagId) ?? 0) < 1) return false;
    handoff.set(pool, handoff.get(pool)! - slots);
    dagHandoff.set(dagId, dagHandoff.get(dagId)! - 1);
    poolDeltas.set(pool, (poolDeltas.get(pool) ?? 0) + slots);
    return true;
  };
  /** A reserved task whose claim matched no row: its slots are free again. */
  const unreserve = (dagId: string, pool: string, slots: number): void => {
    handoff.set(pool, (handoff.get(pool) ?? 0) + slots);
    dagHandoff.set(dagId, (dagHandoff.get(dagId) ?? 0) + 1);
    poolDeltas.set(pool, (poolDeltas.get(pool) ?? 0) - slots);
    capacity++;
  };

  for (const p of planned) if (p.extra) statements.push(p.extra);
  const xcoms = planned.filter((p) => p.t.outcome === "success" && p.t.output !== undefined);
  if (xcoms.length > 0) {
    statements.push({
      sql: `INSERT INTO xcom (dag_run_id, task_id, map_index, xcom_key, value, created_at)
            VALUES ${xcoms.map(() => "(?, ?, ?, 'return_value', ?, ?)").join(", ")}
            ON DUPLICATE KEY UPDATE value = VALUES(value), created_at = VALUES(created_at)`,
      params: xcoms.flatMap((p) => [p.t.task.dagRunId, p.t.task.taskId, p.t.task.mapIndex, JSON.stringify(p.t.output), now]),
      prepare: true,
    });
  }

  const logs = planned.filter((p) => p.t.log !== undefined);
  if (logs.length > 0) {
    statements.push({
      sql: `INSERT INTO task_log (task_instance_id, try_number, content, updated_at)
            VALUES ${logs.map(() => "(?, ?, ?, ?)").join(", ")}
            ON DUPLICATE KEY UPDATE content = IF(LENGTH(content) + LENGTH(VALUES(content)) <= ${MAX_STORED_LOG_BYTES}, CONCAT(content, VALUES(content)), content),
                                    updated_at = VALUES(updated_at)`,
      params: logs.flatMap((p) => [p.t.task.id, p.t.task.tryNumber, p.t.log, now]),
      prepare: true,
    });
  }

  interface RunWork {
    shape: DagShape;
    context: ClaimedTask;
    settled: SettledTask[];
    /** Outputs of this batch's tries, by task id: the only upstream of a speculatively taken task. */
    outputs: Record<string, unknown>;
    /** Single-upstream downstream tasks this worker claims in the first round trip (counter column: how its upstream ended). */
    taken: { taskId: string; upstream: string; column: string }[];
    speculativeQueued: boolean;
    /** Downstream tasks a branch / short-circuit in this batch skips: never queued or claimed here. */
    forcedSkips: Set<string>;
    selectIndex?: number;
    /** Downstream tasks with several upstream tasks, decided from their counters after the first round trip. */
    counted: string[];
    takenIndex?: number;
  }
  const runs = new Map<number, RunWork>();
  // A paused DAG starts no new task, in running runs too (Airflow), but for its backfill runs'.
  // Read without a lock: a pause committed meanwhile lets at most the tries of this call through.
  // Nothing of a batch with a paused DAG is taken here; its ready tasks are queued, and claims
  // hold them (claimTasks).
  const pauseDags = capacity > 0 ? [...new Set(planned.filter((p) => !p.t.task.backfill).map((p) => p.t.task.dagId))].sort() : [];
  // Only where this call set it: a session variable outlives the call on its pooled connection,
  // and is NULL on a fresh one (a batch of backfill tries reads no pause, yet takes).
  const unlessPaused = pauseDags.length === 0 ? "" : " AND @baton_paused = 0";
  /** Downstream tasks claimed speculatively; an early commit needs every one matched (its pool slot is counted). */
  let takenExpected = 0;
  for (const p of planned) {
    if (p.state === TaskState.UpForRetry || p.state === TaskState.UpForReschedule || p.state === TaskState.Deferred) continue;
    const run = runs.get(p.t.task.dagRunId) ?? {
      shape: shapes.get(p.t.task.versionHash)!,
      context: p.t.task,
      settled: [],
      outputs: {},
      taken: [],
      speculativeQueued: false,
      forcedSkips: new Set<string>(),
      counted: [],
    };
    run.settled.push({ taskId: p.t.task.taskId, state: p.state });
    if (p.state === TaskState.Success) for (const id of p.t.skipTasks ?? []) run.forcedSkips.add(id);
    if (p.t.output !== undefined) run.outputs[p.t.task.taskId] = p.t.output;
    runs.set(p.t.task.dagRunId, run);
  }
  const runIds = [...runs.keys()].sort((a, b) => a - b);
  /**
   * Whether `down`, a downstream task of the settled try `s`, may become ready in this batch and be
   * handed slots: not skipped by a branch, not one that waits on its previous run (held, never
   * handed off); with a single upstream, its rule fires on `s` (it is claimed in the first round
   * trip); with several, or a compensation's, its counters decide after that round trip.
   */
  const mayBecomeReady = (run: RunWork, s: SettledTask, down: string): boolean => {
    const spec = run.shape.byId.get(down)!;
    if (run.forcedSkips.has(down) || spec.dependsOnPast) return false;
    return spec.upstream.length !== 1 || spec.kind === "compensate" || evaluateTriggerRule(spec.triggerRule, countsOfSingleUpstream(s.state)) === "ready";
  };
  // The hand-off gate's pools: those this batch frees slots of, used by a downstream task of the
  // worker's queues that may become ready here (only those can be handed slots: a chain's task
  // after a failure, a branch's skipped task, a dependsOnPast task read nothing). Numbered for
  // claimReads' variables.
  const gatePools = new Map<string, number>();
  for (const dagRunId of capacity > 0 ? runIds : []) {
    const run = runs.get(dagRunId)!;
    for (const s of run.settled) {
      for (const down of run.shape.byId.get(s.taskId)?.downstream ?? []) {
        const spec = run.shape.byId.get(down)!;
        if (released.has(spec.pool) && take!.queues.includes(spec.queue) && !gatePools.has(spec.pool) && mayBecomeReady(run, s, down)) {
          gatePools.set(spec.pool, gatePools.size);
        }
      }
    }
  }
  // The pause and the gate, read in one statement before the claims that check them.
  let readsIndex: number | undefined;
  if (pauseDags.length > 0 || gatePools.size > 0) {
    readsIndex = statements.length;
    const deep = take!.deepGatePools;
    statements.push(claimReads(pauseDags, [...gatePools.keys()].map((name) => ({ name, released: released.get(name)!, deep: deep?.has(name) ?? false })), [...new Set(take!.queues)]));
  }
  // The free slots go to the single-upstream tasks of highest priority this batch readies, across
  // its runs, as a claim would order them (the DAG's order among equals): in the DAG's order, a
  // fan-out's first-listed task took the one slot however low its priority.
  // A downstream task with a single upstream is decided by that upstream alone: settled, decided
  // and claimed or queued in this same round trip (a chain advances in one round trip + COMMIT).
  const singleUpstream = new Map(
    runIds.map((dagRunId) => {
      const run = runs.get(dagRunId)!;
      const readied: { s: SettledTask; down: string; spec: SerializedTask }[] = [];
      for (const s of run.settled) {
        for (const down of run.shape.byId.get(s.taskId)?.downstream ?? []) {
          const spec = run.shape.byId.get(down)!;
          if (spec.kind !== "compensate" && spec.upstream.length === 1 && mayBecomeReady(run, s, down)) readied.push({ s, down, spec });
        }
      }
      return [dagRunId, readied];
    }),
  );
  const takes = new Set<string>();
  if (capacity > 0) {
    const candidates = runIds.flatMap((dagRunId) => {
      const run = runs.get(dagRunId)!;
      const runType = run.context.backfill ? RunType.Backfill : RunType.Manual;
      return singleUpstream.get(dagRunId)!.map(({ down, spec }) => ({ key: `${dagRunId}\0${down}`, dagId: run.context.dagId, spec, priority: taskPriority(runType, spec.priorityWeight) }));
    });
    candidates.sort((a, b) => b.priority - a.priority);
    for (const { key, dagId, spec } of candidates) {
      // A task with maxActiveTisPerDag is never handed off: only a claim counts its running
      // instances, under its DAG's row lock (claimTasks); it is queued for one.
      if (spec.maxActiveTisPerDag !== undefined) continue;
      if (capacity > 0 && gatePools.has(spec.pool) && take!.queues.includes(spec.queue) && reserve(dagId, spec.pool, spec.poolSlots)) {
        capacity--;
        takes.add(key);
      }
    }
  }
  /** Slots the first round trip's claims ask of each gate pool so far, in statement order. */
  const gateAsked = new Map<string, number>();
  for (const dagRunId of runIds) {
    const run = runs.get(dagRunId)!;
    // The claim of a task to take is guarded by the hand-off gate (handoffCondition): one UPDATE
    // per counter column and pool, each checked against its pool's room.
    const speculative = new Map<string, { column: string; upstream: string; pool: string | null }>();
    for (const { s, down, spec } of singleUpstream.get(dagRunId)!) {
      speculative.set(down, { column: counterColumn(s.state), upstream: s.taskId, pool: takes.has(`${dagRunId}\0${down}`) ? spec.pool : null });
    }
    const groups = new Map<string, { column: string; pool: string | null; taskIds: string[] }>();
    for (const [taskId, sp] of speculative) {
      const key = sp.pool === null ? `queue\0${sp.column}` : `take\0${sp.column}\0${sp.pool}`;
      const group = groups.get(key) ?? { column: sp.column, pool: sp.pool, taskIds: [] };
      group.taskIds.push(taskId);
      groups.set(key, group);
    }
    for (const { column, pool, taskIds } of groups.values()) {
      taskIds.sort();
      if (pool !== null) {
        const asked = (gateAsked.get(pool) ?? 0) + taskIds.reduce((n, id) => n + run.shape.byId.get(id)!.poolSlots, 0);
        gateAsked.set(pool, asked);
        statements.push({
          sql: `UPDATE task_instance SET ${column} = ${column} + 1, state = 'running', try_number = try_number + 1, claim_token = ?,
                       hostname = ?, pid = ?, queued_at = ?, start_date = ?, end_date = NULL, duration = NULL, heartbeat_at = ?,
                       next_retry_at = NULL
                 WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(taskIds)}) AND state IN ('none', 'scheduled')${unlessPaused}
                   AND max_active_tis_per_dag IS NULL AND ${handoffCondition(gatePools.get(pool)!, asked)}`,
          params: [take!.token, take!.hostname, take!.pid, now, now, now, dagRunId, ...taskIds],
          prepare: true,
        });
        for (const taskId of taskIds) run.taken.push({ taskId, upstream: speculative.get(taskId)!.upstream, column });
        if (countFences) {
          statements.push({ sql: `SET @baton_taken_rows = ${takenExpected === 0 ? "" : "@baton_taken_rows + "}ROW_COUNT()` });
          takenExpected += taskIds.length;
        }
      } else {
        statements.push(queueSingleUpstream(now, dagRunId, column, taskIds));
        run.speculativeQueued = true;
      }
    }
    if (run.taken.length > 0) {
      run.takenIndex = statements.length;
      statements.push({
        sql: `SELECT id, task_id, try_number, max_tries, key_epoch, state, claim_token, first_poke_at, poke_count, steps_kept, pool, pool_slots, priority_weight FROM task_instance
               WHERE dag_run_id = ? AND map_index = -1 AND task_id IN (${inList(run.taken.map((t) => t.taskId))})`,
        params: [dagRunId, ...run.taken.map((t) => t.taskId)],
        prepare: true,
      });
    }
    const { statements: increments, downstream } = upstreamIncrements(dagRunId, run.shape, run.settled, (down) => !speculative.has(down));
    statements.push(...increments);
    if (downstream.length > 0) {
      run.counted = downstream;
      run.selectIndex = statements.length;
      statements.push(selectDownstream(dagRunId, downstream));
    }
  }
  for (const dagRunId of runIds) {
    statements.push({ sql: "UPDATE dag_run SET unfinished_tasks = unfinished_tasks - ? WHERE id = ?", params: [runs.get(dagRunId)!.settled.length, dagRunId], prepare: true });
  }
  // Often the first round trip's answers decide nothing: a chain's hop (the finished task's
  // downstream task was claimed or queued by it), or a wide fan-in's middle (the join keeps
  // waiting). Then that round trip also records the pool slots and COMMITs, if a condition
  // checked in SQL says so, saving a round trip (a chain's hop ≈ 0.1 ms shorter). If it does not
  // hold, nothing of that was done (pool rows stay unlocked) and the transaction goes on below.
  const condition = countFences ? earlyCommitCondition(planned.length, takenExpected, runIds, runs) : null;
  // Every run is checked, even one that just got a task queued or claimed: a speculative UPDATE
  // may have matched no row (its task already ended, e.g. after a clear), so it proves nothing.
  // The condition checks the same in SQL: where it is sent, the runs are read only if it fails, by
  // the block that checks it (runCommittingIf's otherwise).
  const runsRead: Statement | null = runIds.length > 0 ? { sql: `SELECT id, unfinished_tasks, state FROM dag_run WHERE id IN (${inList(runIds)})`, params: runIds, prepare: true } : null;
  const runSelectIndex = statements.length;
  if (runsRead && !condition) statements.push(runsRead);
  let results: unknown[];
  let committedEarly = false;
  let runRows: RowDataPacket[] = [];
  if (condition) {
    let otherwise: unknown;
    ({ results, committed: committedEarly, otherwise } = await btx.runCommittingIf(statements, condition, occupancyStatements(poolDeltas), runsRead ?? undefined));
    if (!committedEarly && runsRead) runRows = otherwise as RowDataPacket[];
  } else {
    results = await btx.run(statements);
    if (runsRead) runRows = results[runSelectIndex] as RowDataPacket[];
  }
  if (committedEarly && fenceIndexes.reduce((rows, i) => rows + (results[i] as ResultSetHeader).affectedRows, 0) !== planned.length) {
    // The guard counted ROW_COUNT() as the client counts affectedRows; it committed, so they must agree.
    throw new Error("finishTries: committed in the first round trip, yet a fenced UPDATE matched no row");
  }
  if (batched) {
    if ((results[fenceIndexes[0]!] as ResultSetHeader).affectedRows !== planned.length) return FENCED_IN_BATCH;
  } else {
    planned.forEach((p, i) => {
      if ((results[fenceIndexes[i]!] as ResultSetHeader).affectedRows !== 1) result.fencedTries.push(p.t);
    });
  }
  if (result.fencedTries.length > 0) return result;
  for (const p of planned) {
    result.finished.push(p.t.task.id);
    if (p.state === TaskState.UpForRetry) result.retrying.push(p.t.task.id);
  }

  const reads = readsIndex === undefined ? undefined : (results[readsIndex] as RowDataPacket[])[0];
  const paused = pauseDags.length > 0 && Number(reads?.paused ?? 0) > 0;
  const gate = new Map<string, HandoffPool>();
  const orNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  for (const [pool, n] of reads ? gatePools : []) gate.set(pool, { room: orNull(reads![`room_${n}`]), topQueued: orNull(reads![`top_${n}`]) });
  /**
   * A hand-off refused for a queued try ahead of it alone (not a pause, not room), in a pool read
   * shallow: FinishResult.gateBlocked. Checked against the room before this task's refusal.
   */
  const noteIfBlocked = (pool: string, poolSlots: number, priorityWeight: number) => {
    if (paused || take?.deepGatePools?.has(pool) || result.gateBlocked.includes(pool)) return;
    if (blockedByQueued(gate.get(pool), poolSlots, priorityWeight)) result.gateBlocked.push(pool);
  };
  const useRoom = (pool: string, slots: number) => {
    const read = gate.get(pool);
    if (read?.room !== null && read?.room !== undefined) read.room -= slots;
  };
  /**
   * Speculative claims that matched no row, to queue in the second round trip when the task still
   * waits: the hand-off gate refused it, or its DAG is paused (or it had already ended: nothing to queue).
   */
  const refused: { dagRunId: number; column: string; taskIds: string[] }[] = [];
  // Speculatively claimed tasks are ours if the row now carries our token on this try.
  for (const dagRunId of runIds) {
    const run = runs.get(dagRunId)!;
    if (run.speculativeQueued) result.queued.push(-1);
    if (run.takenIndex === undefined) continue;
    const matched = new Set<string>();
    for (const row of results[run.takenIndex] as RowDataPacket[]) {
      if (row.state !== TaskState.Running || row.claim_token !== take!.token) {
        // Refused while it still waits: by the gate (or a pause), not because it had already ended.
        if (row.state === TaskState.None || row.state === TaskState.Scheduled) noteIfBlocked(row.pool, Number(row.pool_slots), Number(row.priority_weight));
        continue;
      }
      matched.add(row.task_id);
      const upstream = run.taken.find((t) => t.taskId === row.task_id)!.upstream;
      // Read after the claiming UPDATE: try_number is already this try's.
      result.taken.push(claimedFrom(run.context, row, Number(row.try_number), take!, now, upstream in run.outputs ? { [upstream]: run.outputs[upstream] } : {}));
    }
    // A task whose claim matched no row holds no slot; a task claimed used its pool's room.
    const byColumn = new Map<string, string[]>();
    for (const { taskId, column } of run.taken) {
      const spec = run.shape.byId.get(taskId)!;
      if (matched.has(taskId)) {
        useRoom(spec.pool, spec.poolSlots);
        continue;
      }
      unreserve(run.context.dagId, spec.pool, spec.poolSlots);
      byColumn.set(column, [...(byColumn.get(column) ?? []), taskId]);
    }
    for (const [column, taskIds] of byColumn) refused.push({ dagRunId, column, taskIds });
  }
  if (committedEarly) return result;

  // Multi-upstream downstream tasks: decide from their counters.
  const ready: { row: RowDataPacket; run: ClaimedTask }[] = [];
  const held: number[] = [];
  const cascades: { dagRunId: number; shape: DagShape; ended: ReturnType<typeof decideDownstream>["ended"] }[] = [];
  const decided = new Map<number, ReturnType<typeof decideDownstream>>();
  for (const dagRunId of runIds) {
    const run = runs.get(dagRunId)!;
    if (run.selectIndex === undefined) continue;
    decided.set(dagRunId, decideDownstream((results[run.selectIndex] as RowDataPacket[]).filter((row) => !run.forcedSkips.has(row.task_id))));
  }
  // A compensation made ready waits while a try of its run winds down (abandonedTries.ts): read
  // only then, for the runs concerned (a saga's step, never a chain's hop).
  const compensating = [...decided].filter(([dagRunId, d]) => d.ready.some((row) => isCompensation(runs.get(dagRunId)!.shape, row.task_id)));
  const waiting = await runsWithAbandonedTries(btx.conn, compensating.map(([dagRunId]) => dagRunId));
  for (const [dagRunId, decisions] of decided) {
    const run = runs.get(dagRunId)!;
    for (const row of decisions.ready) {
      if (holdsWhenReady(run.shape, row.task_id, waiting.has(dagRunId))) held.push(Number(row.id));
      else ready.push({ row, run: run.context });
    }
    if (decisions.ended.length > 0) cascades.push({ dagRunId, shape: run.shape, ended: decisions.ended });
  }
  const finishedRuns = new Set<number>();
  for (const row of runRows) {
    if (Number(row.unfinished_tasks) === 0 && row.state === "running") finishedRuns.add(Number(row.id));
  }

  // Rare paths, one statement at a time: signals that arrived before their task deferred,
  // branch skips, skips / upstream_failed cascading, and run ends.
  for (const p of planned) {
    if (p.state !== TaskState.Deferred) continue;
    const outcome = await deliverPendingSignal(btx.conn, now, p.t.task.id, shapes.get(p.t.task.versionHash)!);
    result.queued.push(...outcome.queued);
    if (outcome.runState) result.runsFinished.push({ dagRunId: p.t.task.dagRunId, state: outcome.runState });
  }
  for (const dagRunId of runIds) {
    const run = runs.get(dagRunId)!;
    if (run.forcedSkips.size === 0) continue;
    const outcome = await skipTasks(btx.conn, now, dagRunId, run.shape, [...run.forcedSkips].sort());
    result.queued.push(...outcome.queued);
    if (outcome.runState) result.runsFinished.push({ dagRunId, state: outcome.runState });
  }
  for (const { dagRunId, shape, ended } of cascades) {
    for (const s of endStatements(now, ended)) await btx.conn.query(s.sql, s.params);
    const outcome = await settle(btx.conn, now, dagRunId, shape, ended.map(({ row, state }) => ({ taskId: row.task_id as string, state })));
    result.queued.push(...outcome.queued);
    if (outcome.runState) result.runsFinished.push({ dagRunId, state: outcome.runState });
  }
  for (const dagRunId of finishedRuns) {
    const state = await finishRun(btx.conn, now, dagRunId, runs.get(dagRunId)!.shape);
    if (state) result.runsFinished.push({ dagRunId, state });
    else result.queued.push(-1); // compensation tasks were queued
  }

  const takeable: typeof ready = [];
  // Highest priority first, as a claim orders them (stable: read order among equals).
  const byPriority = [...ready].sort((a, b) => Number(b.row.priority_weight) - Number(a.row.priority_weight));
  for (const candidate of take && !paused ? byPriority : []) {
    if (takeable.length >= capacity) break;
    const { pool, queue } = candidate.row;
    const slots = Number(candidate.row.pool_slots);
    if (!take!.queues.includes(queue)) continue;
    // maxActiveTisPerDag: left queued for a claim, which counts under the DAG's lock (as above).
    if (candidate.row.max_active_tis_per_dag != null || shapes.get(candidate.run.versionHash)?.byId.get(candidate.row.task_id)?.maxActiveTisPerDag !== undefined) continue;
    if (mayHandOff(gate.get(pool), slots, Number(candidate.row.priority_weight)) && reserve(candidate.run.dagId, pool, slots)) {
      takeable.push(candidate);
      useRoom(pool, slots);
    } else noteIfBlocked(pool, slots, Number(candidate.row.priority_weight));
  }
  const takenIds = new Set(takeable.map(({ row }) => Number(row.id)));
  const left = ready.filter(({ row }) => !takenIds.has(Number(row.id))).map(({ row }) => Number(row.id));
  const final: Statement[] = held.length > 0 ? [holdStatement(held)] : [];
  // Speculative claims refused by the hand-off gate or a pause matched nothing: queue those tasks,
  // as their claims would have (counting the upstream task's outcome), for a claim (once unpaused).
  const refusedIndexes: number[] = [];
  for (const { dagRunId, column, taskIds } of refused) {
    refusedIndexes.push(final.length);
    final.push(queueSingleUpstream(now, dagRunId, column, taskIds));
  }
  if (left.length > 0) {
    final.push(queueStatement(now, left));
    result.queued.push(...left);
  }
  let outputsIndex = -1;
  let wanted: WantedOutputs[] = [];
  if (take && takeable.length > 0) {
    final.push({
      sql: `UPDATE task_instance SET state = 'running', try_number = try_number + 1, claim_token = ?, hostname = ?, pid = ?,
                   queued_at = ?, start_date = ?, end_date = NULL, duration = NULL, heartbeat_at = ?, next_retry_at = NULL
             WHERE id IN (${inList([...takenIds])})`,
      params: [take.token, take.hostname, take.pid, now, now, now, ...takenIds],
    });
    wanted = takeable.map(({ row, run }) => {
      const shape = shapes.get(run.versionHash)!;
      return { dagRunId: run.dagRunId, taskIds: taskInputs(shape.byId.get(row.task_id)), runTasks: shape.byId.size };
    });
    const read = upstreamOutputsStatement(wanted);
    if (read) {
      outputsIndex = final.length;
      final.push(read);
    }
  }
  // Pool rows last, in name order: every transition locks task rows before pool rows.
  const occupancy = occupancyStatements(poolDeltas);
  const finalResults = await btx.commit([...final, ...occupancy]);
  if (refusedIndexes.some((i) => (finalResults[i] as ResultSetHeader).affectedRows > 0)) result.queued.push(-1);

  const outputs = outputsByRun(wanted, outputsIndex >= 0 ? (finalResults[outputsIndex] as RowDataPacket[]) : []);
  for (const { row, run } of takeable) {
    // Read before the claiming UPDATE: this try is the next one.
    result.taken.push(claimedFrom(run, row, Number(row.try_number) + 1, take!, now, outputs.get(run.dagRunId) ?? {}));
  }
  return result;
}
