// claimTasks — a worker takes queued task instances for its free slots, within pool slots.
// locks: queued task_instance rows, read per pool with free slots on ix_ti_pool_queue (state,
//   pool, queue, priority_weight DESC, id), whose order matches the ORDER BY exactly, with SKIP
//   LOCKED so claimers never wait on each other; a full pool's tries are never read. One
//   claim takes tries for the worker's free slots (claims scale with batch size).
// pause: a paused DAG's tries stay queued; its backfill runs' tries still run (as its backfill runs
//   start, see startRuns: unlike Airflow, which asks for the DAG unpaused). A read that turned a paused DAG's tries away makes the claim read on per DAG
//   (below), and of that DAG only its backfill tries (a dive past the rest): however many tries a
//   paused DAG has queued, they hide no other DAG's tries, and are never walked.
// pools and maxActiveTasks: the DAG and pool rows of the candidates are locked (PK, after the
//   task rows, like every transition), the DAGs' running tasks counted (ix_ti_dag_pool), and
//   only what fits is claimed. A try that needs more slots than its pool has left makes the
//   claim read that pool again past it; a DAG that runs out of room (or is paused) makes it read
//   the next tries of each other DAG that has queued tries in an open pool, on ix_ti_dag_pool
//   (dag_id, state, pool, priority_weight DESC, id), so no backlog of a DAG at its limit hides them. Up to
//   MAX_READ_PASSES reads; a later read locks its new DAG and pool rows with SKIP LOCKED
//   (after pool rows, waiting could deadlock) and leaves the tries of rows others hold. Tries
//   claimed ahead of the worker's free slots (req.ahead) take at most half of a pool's free slots.
// maxActiveTisPerDag: a candidate row carries its task's limit (task_instance.max_active_tis_per_dag,
//   copied from its run's version when it was created; NULL for nearly every try). Only when some
//   candidate has one does round trip 2 carry one more statement: per task of those candidates, its
//   running instances across the DAG's runs (ix_ti_dag_pool: the DAG's running tries), after the
//   DAG row lock that serializes the claims counting maxActiveTasks, which so keeps this count
//   race-free too (the hand-off in finishTries takes no such task). What is left under each try's
//   own limit is claimed, in claim order; a try turned away for it makes the claim read on per
//   DAG, past it, as for a DAG out of room, and marks its task starved (Airflow's starved_tasks in
//   _executable_task_instances_to_queued): the claim's later dives into that DAG's tries leave out
//   the task's tries at their own limit (a condition on the rows, so the dive stays a range on
//   ix_ti_dag_pool and reads past them instead of returning them), so however long its backlog, it
//   hides no lower-priority try of its own DAG in its lane (other DAGs' are read per DAG anyway).
//   The per-pool read never follows a starved try (the claim then reads per DAG), so it has no
//   such condition; nor has any read while no task is starved (the usual case).
//   A try needing more slots than its pool has in all is never taken; the claim reports those it
//   read (ClaimResult.oversized) from the rows it holds, with no statement of its own, and reads
//   on per DAG, as past a paused DAG's tries: however many of them wait, they hide no other DAG's.
// fence: each claimed try gets try_number + 1 and the claim token; only that pair may finish it.
// refused: when the database refuses the claiming UPDATE for a value of one row (isDataError: its
//   try_number at the column's limit, say), the claim goes on in the same transaction, locks held,
//   claiming the tries one statement each (only on this rare path): a try refused alone is claimed
//   without being counted as a new try (ClaimedTask.unstartable: the worker fails it at once with
//   BATON_TASK_UNCLAIMABLE, which settles its run), and one refused even so is left queued and
//   reported (ClaimResult.refused) for the worker to leave out of its claims (req.leaveOut) and try
//   again later. One bad row never fails the claim of the others, nor every claim after it.
import { inList, isDataError, type BatchTx, type Db, type RowDataPacket, type Statement } from "../db.ts";
import { occupancyStatements } from "../pools.ts";
import { parseJsonText } from "../rows.ts";

export interface ClaimRequest {
  now: Date;
  limit: number;
  queues: readonly string[];
  hostname: string;
  pid: number;
  token: string;
  /** At most this many backfill tasks (priority below BACKFILL_PRIORITY_FLOOR) in this claim. */
  maxBackfill?: number;
  /**
   * How many of `limit` are claimed ahead of free slots (they wait in the worker). A try claimed
   * ahead holds its pool slots while it waits, so it is only taken while its pool keeps at least
   * half of the slots that were free when the claim began: other workers keep their share.
   */
  ahead?: number;
  /** Queued tries not to read: refused by the database before (ClaimResult.refused), set aside by the caller. */
  leaveOut?: readonly number[];
}

/**
 * Backfill runs' tasks have their priority lowered by 1e9 (startRuns): anything below this is one.
 * Sound because effective weights stay within ±499,999,999 (core/dagLimits.ts): no ordinary try is
 * below it, no backfill try at or above it.
 */
export const BACKFILL_PRIORITY_FLOOR = -500_000_000;

export interface ClaimedTask {
  id: number;
  dagRunId: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  maxTries: number;
  /**
   * task_instance.key_epoch (migration 0032): new attempts of its saga run that redid it after its
   * compensation undid it; part of ctx.idempotencyKey from 1 on. Read per claimed row (never
   * copied from another try: finishTries' hand-off reads it with the row it claims).
   */
  keyEpoch: number;
  versionHash: string;
  logicalDate: Date | null;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
  /** The pool whose slots this try occupies while it runs. */
  pool: string;
  poolSlots: number;
  token: string;
  /** When this try was claimed (its start_date: the claim's now, or its queued_at if that is later). */
  startedAt: Date;
  /**
   * When it entered `queued`, as claimTasks read it (for claim latency). Meaningful only on
   * claimTasks' result: finishTries' fast-path claims copy the finished try's fields.
   */
  queuedAt?: Date | null;
  /** Sensors: first poke of this task instance (across reschedules) and pokes rescheduled so far. */
  firstPokeAt: Date | null;
  pokeCount: number;
  /**
   * A handed-back try, or an earlier poke of a rescheduled sensor's try, left durable steps
   * (task_instance.steps_kept, migration 0027): this try loads them although it is numbered 1. Tries after the first load them whatever this says.
   */
  stepsKept?: boolean;
  /** A backfill run's task: a worker keeps one slot free of them for everything else. */
  backfill?: boolean;
  /** Direct upstream outputs, when the claim already fetched them (the fast path does). */
  upstreamOutputs?: Record<string, unknown>;
  /**
   * The database refused to start this try (its reason): claimed under the last try's number
   * instead of a new one, for the worker to fail at once (BATON_TASK_UNCLAIMABLE).
   */
  unstartable?: string;
}

/** The DAGs that have running runs: index-only on ix_dag_run_state_dag (migration 0024). */
export const RUNNING_RUNS_DAGS = "SELECT DISTINCT dag_id FROM dag_run FORCE INDEX (ix_dag_run_state_dag) WHERE state = 'running'";

/** Reads per claim: a DAG that runs out of room mid-read makes the claim read past its tries. */
const MAX_READ_PASSES = 3;

/** DAGs whose next tries one per-DAG read takes, per queue and open pool (see readPerDag). */
const DAGS_PER_READ = 32;

/**
 * Candidates read (and locked) for a claim of `limit` tries: a few more than it takes, for
 * tries that round trip 2 turns away (a DAG with less room than it has tries in the read, a
 * pool with fewer free slots than a try needs, the claim-ahead share, a claimer that won a race).
 * Every row read stays locked until COMMIT, hidden from other claimers' SKIP LOCKED reads.
 */
export function candidateLimit(limit: number): number {
  const n = Math.floor(limit);
  return Math.min(500, n + Math.min(n, 16));
}

/** Where a read ended, in claim order (priority_weight DESC, id). */
export interface Position {
  priority: number;
  id: number;
}

function lastPosition(rows: RowDataPacket[]): Position | undefined {
  const last = rows[rows.length - 1];
  return last ? { priority: Number(last.priority_weight), id: Number(last.id) } : undefined;
}

interface CandidateRead {
  /** Locked candidate rows, one list per statement. */
  rows: RowDataPacket[][];
  /** A list came back full, or DAGs were left unread: another pass may find more. */
  mayHaveMore: boolean;
}

const CANDIDATE_COLUMNS = "id, dag_id, pool, pool_slots, priority_weight, queue, max_active_tis_per_dag";

/**
 * For these limited candidates (read by id: their rows are this claim's), each one's task and the
 * task's running instances across its DAG's runs, counted once per task (a derived table of the
 * distinct tasks): a dive on ix_ti_dag_pool (dag_id, state) reading the DAG's running tries for
 * their task_id. Run after the DAG rows are locked (their claims are serialized by them).
 */
function runningOfTasks(ids: number[]): Statement {
  return {
    sql: `SELECT c.id, c.dag_id, c.task_id, k.n
            FROM task_instance c
            JOIN (SELECT d.dag_id, d.task_id,
                         (SELECT COUNT(*) FROM task_instance r FORCE INDEX (ix_ti_dag_pool)
                           WHERE r.dag_id = d.dag_id AND r.state = 'running' AND r.task_id = d.task_id) AS n
                    FROM (SELECT DISTINCT dag_id, task_id FROM task_instance WHERE id IN (${inList(ids)})) d) k
              ON k.dag_id = c.dag_id AND k.task_id = c.task_id
           WHERE c.id IN (${inList(ids)})`,
    params: [...ids, ...ids],
  };
}

/**
 * Per DAG, its tasks a try of which this claim turned away at its maxActiveTisPerDag, with their
 * running instances (counted under the DAG's lock, plus those this claim took: the count only grows).
 */
type StarvedTasks = Map<string, Map<string, number>>;

/**
 * Leaves a DAG's starved tasks out of a read of its tries (Airflow's starved_tasks): those tries of
 * them whose own limit their running instances reach (a run of another version may have a higher
 * limit, or none). A condition on the rows the dive reads anyway (it checks their queue), so the
 * dive stays on its index; it reads past the starved tries in its range, as Airflow's query does.
 * No DAG's task starved (the usual case): no condition at all.
 */
function starvedSql(tasks: Map<string, number> | undefined): { sql: string; params: unknown[] } {
  if (!tasks || tasks.size === 0) return { sql: "", params: [] };
  const each = [...tasks];
  return {
    sql: ` AND NOT (${each.map(() => "(task_id = ? AND max_active_tis_per_dag IS NOT NULL AND max_active_tis_per_dag <= ?)").join(" OR ")})`,
    params: each.flatMap(([taskId, running]) => [taskId, running]),
  };
}

/** Leaves out the tries a caller set aside (none in the usual case: no condition at all). */
const leaveOutSql = (ids: readonly number[]) => (ids.length > 0 ? ` AND id NOT IN (${inList(ids)})` : "");
const AFTER_POSITION = "AND (priority_weight < ? OR (priority_weight = ? AND id > ?))";
const afterParams = (p: Position | undefined) => (p ? [p.priority, p.priority, p.id] : []);
/** Where a paused DAG's reads start: past its tries at BACKFILL_PRIORITY_FLOOR and above (no id is larger). */
const BACKFILL_START: Position = { priority: BACKFILL_PRIORITY_FLOOR, id: Number.MAX_SAFE_INTEGER };

/** The later of two read positions in claim order. */
function laterPosition(a: Position | undefined, b: Position | undefined): Position | undefined {
  if (!a || !b) return a ?? b;
  return a.priority < b.priority || (a.priority === b.priority && a.id > b.id) ? a : b;
}

/** A pool a claim may read tries of, with the slots it had free when last read. */
interface OpenPool {
  name: string;
  free: number;
}

const laneKey = (queue: string, pool: string, dagId = "") => `${queue}\0${pool}\0${dagId}`;

/**
 * The pools with free slots and queued tries of these queues: a plain read (one index dive per
 * pool), before any row is locked. A full pool's backlog is then never read at all.
 */
async function openPools(btx: BatchTx, queues: readonly string[]): Promise<OpenPool[]> {
  const [rows] = (await btx.run([
    {
      // A scalar subquery per pool, not EXISTS: MariaDB may turn EXISTS into a semi-join that
      // reads every queued try (a CI run did: 3,003 index reads for 3,000 tries of a full pool).
      sql: `SELECT name, free FROM (
              SELECT p.name, p.slots - p.occupied_slots AS free,
                     (SELECT 1 FROM task_instance t FORCE INDEX (ix_ti_pool_queue)
                       WHERE t.state = 'queued' AND t.pool = p.name AND t.queue IN (${inList(queues)}) LIMIT 1) AS waiting
                FROM pool p WHERE p.occupied_slots < p.slots) open
             WHERE waiting IS NOT NULL ORDER BY name`,
      params: [...queues],
    },
  ])) as RowDataPacket[][];
  return rows!.map((r) => ({ name: r.name as string, free: Number(r.free) }));
}

/**
 * Each open pool's next tries per queue, in priority order on ix_ti_pool_queue (state, pool,
 * queue, priority_weight DESC, id), from where the last read of that pool and queue ended: up
 * to `want`, and a few more than the pool's free slots (candidateLimit: tries needing more slots
 * than are left are read past on the next pass), so small pools lock few rows.
 */
async function readPerPool(
  btx: BatchTx,
  queues: readonly string[],
  want: number,
  pools: OpenPool[],
  poolReadUpTo: Map<string, Position>,
  leaveOut: readonly number[],
): Promise<CandidateRead> {
  const reads = queues
    .flatMap((queue) => pools.map((pool) => ({ queue, pool: pool.name, limit: Math.min(want, candidateLimit(pool.free)) })))
    .filter((r) => r.limit > 0);
  if (reads.length === 0) return { rows: [], mayHaveMore: false };
  const rows = (await btx.run(
    reads.map(({ queue, pool, limit }) => {
      const after = poolReadUpTo.get(laneKey(queue, pool));
      return {
        sql: `SELECT ${CANDIDATE_COLUMNS} FROM task_instance FORCE INDEX (ix_ti_pool_queue)
               WHERE state = 'queued' AND pool = ? AND queue = ? ${after ? AFTER_POSITION : ""}${leaveOutSql(leaveOut)}
               ORDER BY priority_weight DESC, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
        params: [pool, queue, ...afterParams(after), ...leaveOut],
      };
    }),
  )) as RowDataPacket[][];
  rows.forEach((list, i) => {
    const last = lastPosition(list);
    if (last) poolReadUpTo.set(laneKey(reads[i]!.queue, reads[i]!.pool), last);
  });
  return { rows, mayHaveMore: rows.some((list, i) => list.length === reads[i]!.limit) };
}

/**
 * Once a DAG ran out of room (or a paused one's tries were read), per queue and open pool: the DAGs
 * (of the running runs, index-only on ix_dag_run_state_dag (state, dag_id): a try is queued only
 * while its run runs) with tries there this claim has not read, up to DAGS_PER_READ, in the claim
 * order of each one's next try (priority, then age: with more DAGs waiting than one read takes, the
 * ones queued first go first, not the ones named first), full DAGs and those a read found no more of
 * left out; then each one's next tries on ix_ti_dag_pool (dag_id, state, pool, priority_weight DESC,
 * id), after the pool's read and the DAG's own last read. A paused DAG's tries are read from
 * BACKFILL_START on (its backfill runs' only): its next one is found apart from the others' (its dag
 * row by primary key, UNION ALL), so the dive starts there too. A DAG's backlog costs one index
 * dive, never a walk, and a full pool's tries are never read (the queue is checked on the rows: it did not fit in the index key,
 * 3,072 bytes; a DAG's tries in one pool seldom span queues). Reads about twice `want` in all
 * (each DAG's share; at most its known room).
 */
async function readPerDag(
  btx: BatchTx,
  queues: readonly string[],
  want: number,
  pools: OpenPool[],
  claim: {
    poolReadUpTo: Map<string, Position>;
    /** Per queue, pool and DAG (laneKey), where this claim's last per-DAG read ended. */
    dagReadUpTo: Map<string, Position>;
    /** Per-DAG reads that came back short (laneKey): nothing more there. */
    exhausted: Set<string>;
    fullDags: Set<string>;
    /** Paused DAGs this claim locked: only their backfill runs' tries are read. */
    pausedDags: Set<string>;
    /** Room left under maxActiveTasks of the DAGs this claim locked. */
    dagRoom: Map<string, number>;
    /** Tasks at their maxActiveTisPerDag: their tries are left out of their DAG's reads. */
    starved: StarvedTasks;
    leaveOut: readonly number[];
  },
): Promise<CandidateRead> {
  const { poolReadUpTo, dagReadUpTo, exhausted, fullDags, pausedDags, dagRoom, starved, leaveOut } = claim;
  const lanes = queues.flatMap((queue) => pools.map((pool) => ({ queue, pool: pool.name })));
  if (lanes.length === 0) return { rows: [], mayHaveMore: false };
  // Paused DAGs are left out of the running runs' DAGs, and searched on their own from BACKFILL_START.
  const skipDags = [...new Set([...fullDags, ...pausedDags])];
  const backfillOnly = [...pausedDags].filter((d) => !fullDags.has(d));
  const readFrom = (queue: string, pool: string, dagId: string) => {
    const after = laterPosition(poolReadUpTo.get(laneKey(queue, pool)), dagReadUpTo.get(laneKey(queue, pool, dagId)));
    return pausedDags.has(dagId) ? laterPosition(after, BACKFILL_START) : after;
  };
  /** Dag d's next queued try in the lane after `after` (a correlated dive on ix_ti_dag_pool). */
  const topOf = (after: Position | undefined) => `(SELECT t.id FROM task_instance t FORCE INDEX (ix_ti_dag_pool)
                                   WHERE t.dag_id = d.dag_id AND t.state = 'queued' AND t.pool = ? AND t.queue = ? ${after ? AFTER_POSITION : ""}
                                   ORDER BY t.priority_weight DESC, t.id LIMIT 1)`;
  const tops = (await btx.run(
    lanes.map(({ queue, pool }) => {
      const after = poolReadUpTo.get(laneKey(queue, pool));
      const backfillAfter = laterPosition(after, BACKFILL_START);
      const backfillTops = backfillOnly.length
        ? `
                UNION ALL
                SELECT d.dag_id, ${topOf(backfillAfter)} AS top_id FROM dag d WHERE d.dag_id IN (${inList(backfillOnly)})`
        : "";
      return {
        sql: `SELECT waiting.dag_id FROM (
                SELECT d.dag_id, ${topOf(after)} AS top_id
                  FROM (${RUNNING_RUNS_DAGS}) d
                  ${skipDags.length ? `WHERE d.dag_id NOT IN (${inList(skipDags)})` : ""}${backfillTops}) waiting
               JOIN task_instance top ON top.id = waiting.top_id
               ORDER BY top.priority_weight DESC, top.id LIMIT ${DAGS_PER_READ + exhausted.size + 1}`,
        params: [
          ...[pool, queue, ...afterParams(after), ...skipDags],
          ...(backfillOnly.length ? [pool, queue, ...afterParams(backfillAfter), ...backfillOnly] : []),
        ],
      };
    }),
  )) as RowDataPacket[][];
  let truncated = false;
  const triples = tops.flatMap((list, i) => {
    const fresh = list.map((r) => ({ ...lanes[i]!, dagId: r.dag_id as string })).filter((t) => !exhausted.has(laneKey(t.queue, t.pool, t.dagId)));
    if (fresh.length > DAGS_PER_READ) truncated = true;
    return fresh.slice(0, DAGS_PER_READ);
  });
  const share = Math.min(want, Math.max(4, Math.ceil((2 * want) / Math.max(1, triples.length))));
  const reads = triples.map((t) => ({ ...t, limit: Math.min(share, dagRoom.get(t.dagId) ?? share) })).filter((r) => r.limit > 0);
  if (reads.length === 0) return { rows: [], mayHaveMore: truncated };
  const rows = (await btx.run(
    reads.map(({ queue, pool, dagId, limit }) => {
      return dagDive(dagId, pool, queue, readFrom(queue, pool, dagId), limit, leaveOut, starved.size ? starved.get(dagId) : undefined);
    }),
  )) as RowDataPacket[][];
  rows.forEach((list, i) => {
    const key = laneKey(reads[i]!.queue, reads[i]!.pool, reads[i]!.dagId);
    const last = lastPosition(list);
    if (last) dagReadUpTo.set(key, last);
    if (list.length < reads[i]!.limit) exhausted.add(key);
  });
  return { rows, mayHaveMore: truncated || rows.some((list, i) => list.length === reads[i]!.limit) };
}

/**
 * One DAG's next queued tries in a lane after `after`, on ix_ti_dag_pool (dag_id, state, pool,
 * priority_weight DESC, id): a range dive in claim order, its starved tasks' tries left out.
 */
export function dagDive(
  dagId: string,
  pool: string,
  queue: string,
  after: Position | undefined,
  limit: number,
  leaveOut: readonly number[],
  starvedTasks: Map<string, number> | undefined,
): Statement {
  const notStarved = starvedSql(starvedTasks);
  return {
    sql: `SELECT ${CANDIDATE_COLUMNS} FROM task_instance FORCE INDEX (ix_ti_dag_pool)
           WHERE dag_id = ? AND state = 'queued' AND pool = ? AND queue = ? ${after ? AFTER_POSITION : ""}${leaveOutSql(leaveOut)}${notStarved.sql}
           ORDER BY priority_weight DESC, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    params: [dagId, pool, queue, ...afterParams(after), ...leaveOut, ...notStarved.params],
  };
}

export async function claimTasks(db: Db, req: ClaimRequest): Promise<ClaimedTask[]> {
  return (await claimTasksReporting(db, req)).tasks;
}

export interface ClaimResult {
  tasks: ClaimedTask[];
  /** Queued tries were left because their pool had to keep half of its free slots from tries claimed ahead. */
  heldBack: boolean;
  /**
   * Tries read and left because they ask for more slots than their pool has in all: no claim will
   * ever take them (scheduler/deps/poolSlots.ts). Noticed only where the claim turned them away,
   * from rows it read anyway; the caller warns about them.
   */
  oversized: OversizedTry[];
  /** Queued tries the database refused to claim even alone: left queued (see `refused` above claimTasks). */
  refused: RefusedTry[];
}

export interface RefusedTry {
  id: number;
  dagId: string;
  /** The database's reason. */
  reason: string;
}

export interface OversizedTry {
  id: number;
  dagId: string;
  pool: string;
  poolSlots: number;
  poolTotalSlots: number;
}

/** claimTasks, also saying whether the claim-ahead rule left queued tries behind (the worker claims again sooner). */
export async function claimTasksReporting(db: Db, req: ClaimRequest): Promise<ClaimResult> {
  if (req.limit <= 0 || req.queues.length === 0) return { tasks: [], heldBack: false, oversized: [], refused: [] };
  // A queue named twice (`--queues a,a`) would be read twice: the same rows, their slots counted twice.
  if (new Set(req.queues).size !== req.queues.length) req = { ...req, queues: [...new Set(req.queues)] };
  let heldBack = false;
  let oversized: OversizedTry[] = [];
  let refused: RefusedTry[] = [];
  const leaveOut = req.leaveOut ?? [];
  const tasks = await db.batchTx(async (btx): Promise<ClaimedTask[]> => {
    heldBack = false;
    oversized = [];
    refused = [];
    const taken: RowDataPacket[] = [];
    const deltas = new Map<string, number>();
    // What round trip 2 locked and counted: DAG rows (they serialize claims that count
    // maxActiveTasks) with the room left under it, pool rows with their free slots.
    const dagRoom = new Map<string, number>();
    const lockedDags = new Set<string>();
    // maxActiveTisPerDag: each limited candidate's task (dag_id, task_id), and per task its
    // running instances, counted under its DAG's lock, plus those this claim took.
    const taskOf = new Map<number, string>();
    const taskRunning = new Map<string, number>();
    const taskIdOf = new Map<string, string>();
    // Tasks a try of which was turned away at its limit: later reads leave their tries out.
    const starved: StarvedTasks = new Map();
    const free = new Map<string, number>();
    const freeAtStart = new Map<string, number>();
    const poolSize = new Map<string, number>();
    const runsNow = req.limit - Math.min(req.limit, Math.max(0, req.ahead ?? 0));
    let backfill = 0;
    // Per queue and pool (laneKey), where the last read of its tries ended: a later read starts
    // after it (the rows before stay locked by this transaction, so SKIP LOCKED would read them
    // again). Per-DAG reads keep theirs per queue, pool and DAG.
    const poolReadUpTo = new Map<string, Position>();
    const dagReadUpTo = new Map<string, Position>();
    const exhausted = new Set<string>();
    // DAGs whose room this claim used up, and pools left with no free slot (or held by another
    // claimer), while the read still had tries of theirs: later reads skip them (a full DAG
    // turns the later reads into per-DAG reads).
    const fullDags = new Set<string>();
    const fullPools = new Set<string>();
    // A paused DAG starts no new task, in running runs too (Airflow), but for its backfill runs'.
    // Once a read turned some of its tries away, later reads go per DAG, reading past them (a read
    // of the pool would find more of its backlog: in a small pool, nothing else). So do tries
    // needing more slots than their pool has in all: they wait until the pool grows, and a read of
    // a small pool takes a few entries, so 7 of them ahead in a 1-slot pool hid every other try
    // there for as long (a chain's task the hand-off gate queued behind them, say).
    const pausedDags = new Set<string>();
    let readPerDagNext = false;
    let poolsToRead: OpenPool[] | undefined;
    for (let pass = 0; pass < MAX_READ_PASSES && taken.length < req.limit; pass++) {
      const want = candidateLimit(req.limit - taken.length);
      // Round trip 1: locking reads, per pool with free slots (their list read first, once).
      // After a DAG ran out of room (or a paused one's tries were turned away), per DAG and pool
      // instead: the next tries of each other DAG (of a paused one, its backfill tries).
      poolsToRead ??= await openPools(btx, req.queues);
      const open = poolsToRead.filter((p) => !fullPools.has(p.name)).map((p) => ({ name: p.name, free: free.get(p.name) ?? p.free }));
      const read =
        fullDags.size === 0 && !readPerDagNext
          ? await readPerPool(btx, req.queues, want, open, poolReadUpTo, leaveOut)
          : await readPerDag(btx, req.queues, want, open, { poolReadUpTo, dagReadUpTo, exhausted, fullDags, pausedDags, dagRoom, starved, leaveOut });
      const candidates = read.rows.flat().sort((a, b) => b.priority_weight - a.priority_weight || Number(a.id) - Number(b.id));
      if (candidates.length === 0) break;
      // Round trip 2: lock the DAGs and pools not locked yet, count the DAGs' running tasks. A
      // later read's rows come after this claim already holds pool rows, so it skips rows other
      // claimers hold instead of waiting for them (waiting in that order could deadlock): their
      // tries count as having no room.
      const skipLocked = pass > 0 ? " SKIP LOCKED" : "";
      const dagIds = [...new Set(candidates.map((c) => c.dag_id as string))].filter((d) => !dagRoom.has(d)).sort();
      const pools = [...new Set(candidates.map((c) => c.pool as string))].filter((p) => !free.has(p)).sort();
      // Limited candidates not counted yet, of DAGs locked now or before (none: no statement).
      const locking = new Set(dagIds);
      const toCount = candidates
        .filter((c) => c.max_active_tis_per_dag !== null && !taskOf.has(Number(c.id)) && (locking.has(c.dag_id) || lockedDags.has(c.dag_id)))
        .map((c) => Number(c.id));
      const statements = [
        ...(dagIds.length === 0
          ? []
          : [
              { sql: `SELECT dag_id, max_active_tasks, is_paused FROM dag WHERE dag_id IN (${inList(dagIds)}) ORDER BY dag_id FOR UPDATE${skipLocked}`, params: dagIds },
              {
                sql: `SELECT dag_id, COUNT(*) AS n FROM task_instance WHERE dag_id IN (${inList(dagIds)}) AND state = 'running' GROUP BY dag_id`,
                params: dagIds,
              },
            ]),
        ...(toCount.length === 0 ? [] : [runningOfTasks(toCount)]),
        ...(pools.length === 0 ? [] : [{ sql: `SELECT name, slots, occupied_slots FROM pool WHERE name IN (${inList(pools)}) ORDER BY name FOR UPDATE${skipLocked}`, params: pools }]),
      ];
      const locked = (statements.length ? await btx.run(statements) : []) as RowDataPacket[][];
      const [dagRows, running] = dagIds.length ? [locked[0]!, locked[1]!] : [[], []];
      const tasksRunning = toCount.length ? locked[dagIds.length ? 2 : 0]! : [];
      const poolRows = pools.length ? locked[locked.length - 1]! : [];
      // A DAG or pool row skipped as locked counts as no room (a DAG's running count is then not subtracted).
      for (const d of dagIds) dagRoom.set(d, 0);
      for (const p of pools) free.set(p, 0);
      for (const d of dagRows) lockedDags.add(d.dag_id as string);
      for (const d of dagRows) {
        dagRoom.set(d.dag_id as string, Number(d.max_active_tasks));
        if (d.is_paused) pausedDags.add(d.dag_id as string);
      }
      for (const r of running) if (lockedDags.has(r.dag_id)) dagRoom.set(r.dag_id, dagRoom.get(r.dag_id)! - Number(r.n));
      // A DAG row skipped as locked: its tries have no room anyway, their count is left unused.
      for (const t of tasksRunning) {
        if (!lockedDags.has(t.dag_id)) continue;
        const key = laneKey("", t.dag_id, t.task_id);
        if (!taskRunning.has(key)) taskRunning.set(key, Number(t.n));
        taskOf.set(Number(t.id), key);
        taskIdOf.set(key, t.task_id as string);
      }
      for (const p of poolRows) {
        free.set(p.name as string, Number(p.slots) - Number(p.occupied_slots));
        freeAtStart.set(p.name as string, Number(p.slots) - Number(p.occupied_slots));
        poolSize.set(p.name as string, Number(p.slots));
      }
      // Take what fits, by priority.
      let turnedAwayForRoom = false;
      let stop = false;
      for (const c of candidates) {
        if (taken.length >= req.limit) break;
        const isBackfill = Number(c.priority_weight) < BACKFILL_PRIORITY_FLOOR;
        if (pausedDags.has(c.dag_id) && !isBackfill) {
          readPerDagNext = true;
          turnedAwayForRoom = true;
          continue;
        }
        const left = free.get(c.pool) ?? 0;
        if ((dagRoom.get(c.dag_id) ?? 0) < 1) {
          fullDags.add(c.dag_id);
          turnedAwayForRoom = true;
          continue;
        }
        // Its task runs its maxActiveTisPerDag instances already (this try's own limit: runs of
        // other versions may have others): read on per DAG, leaving the task's tries at their
        // limit out (its backlog would fill every read of its DAG's lane).
        const task = c.max_active_tis_per_dag === null ? undefined : taskOf.get(Number(c.id));
        if (c.max_active_tis_per_dag !== null && (task === undefined || taskRunning.get(task)! >= Number(c.max_active_tis_per_dag))) {
          if (task !== undefined) {
            const tasks = starved.get(c.dag_id) ?? new Map<string, number>();
            tasks.set(taskIdOf.get(task)!, taskRunning.get(task)!);
            starved.set(c.dag_id, tasks);
          }
          readPerDagNext = true;
          turnedAwayForRoom = true;
          continue;
        }
        if (left < c.pool_slots) {
          const size = poolSize.get(c.pool);
          if (size !== undefined && c.pool_slots > size) {
            oversized.push({ id: Number(c.id), dagId: c.dag_id, pool: c.pool, poolSlots: Number(c.pool_slots), poolTotalSlots: size });
            readPerDagNext = true;
          }
          // Tries behind it may need fewer slots: they are read next, past it. A pool with no
          // slot left (this claim filled it, or another claimer holds it) is skipped from then
          // on but makes no read of its own: walking past its queue would find nothing for it.
          if (left <= 0) fullPools.add(c.pool);
          else turnedAwayForRoom = true;
          continue;
        }
        if (taken.length >= runsNow && (left - c.pool_slots) * 2 < (freeAtStart.get(c.pool) ?? 0)) {
          heldBack = true;
          stop = true;
          continue;
        }
        if (isBackfill && backfill >= (req.maxBackfill ?? Infinity)) {
          stop = true;
          continue;
        }
        if (isBackfill) backfill++;
        if (task !== undefined) {
          taskRunning.set(task, taskRunning.get(task)! + 1);
          // A try of a higher limit (another version's) of a starved task: its count grew.
          const tasks = starved.get(c.dag_id);
          if (tasks?.has(taskIdOf.get(task)!)) tasks.set(taskIdOf.get(task)!, taskRunning.get(task)!);
        }
        dagRoom.set(c.dag_id, dagRoom.get(c.dag_id)! - 1);
        free.set(c.pool, left - c.pool_slots);
        deltas.set(c.pool, (deltas.get(c.pool) ?? 0) + Number(c.pool_slots));
        taken.push(c);
      }
      // Read again only past DAGs that ran out of room or are paused and tries that needed more
      // slots than their pool had left, and only if a read came back full (more may wait behind them);
      // tries held back by the pool rule or the backfill share would be held back again.
      if (stop || !turnedAwayForRoom || !read.mayHaveMore) break;
    }
    if (taken.length === 0) return [];
    let ids = taken.map((c) => Number(c.id));
    // Round trip 3: claim, count the slots, read what the tasks need, COMMIT.
    let results: unknown[];
    let unstartable = new Map<number, string>();
    try {
      results = await btx.commit([startStatement(req, ids, true), ...occupancyStatements(deltas), claimedRead(ids)]);
    } catch (err) {
      if (!isDataError(err)) throw err;
      ({ ids, unstartable, refused } = await startAlone(btx, req, taken, deltas));
      results = await btx.commit([...occupancyStatements(deltas), ...(ids.length > 0 ? [claimedRead(ids)] : [])]);
      if (ids.length === 0) return [];
    }
    const rows = results[results.length - 1] as RowDataPacket[];
    return rows.map((r) => ({
      id: Number(r.id),
      dagRunId: Number(r.dag_run_id),
      dagId: r.dag_id,
      runId: r.run_id,
      taskId: r.task_id,
      mapIndex: r.map_index,
      tryNumber: r.try_number,
      maxTries: r.max_tries,
      keyEpoch: Number(r.key_epoch),
      pool: r.pool,
      poolSlots: Number(r.pool_slots),
      versionHash: r.version_hash,
      logicalDate: r.logical_date,
      dataIntervalStart: r.data_interval_start,
      dataIntervalEnd: r.data_interval_end,
      conf: parseJsonText(r.conf, {}),
      token: req.token,
      startedAt: r.start_date ?? req.now,
      queuedAt: r.queued_at ?? null,
      firstPokeAt: r.first_poke_at ?? null,
      pokeCount: Number(r.poke_count ?? 0),
      stepsKept: Number(r.steps_kept ?? 0) === 1,
      backfill: Number(r.priority_weight) < BACKFILL_PRIORITY_FLOOR,
      ...(unstartable.has(Number(r.id)) ? { unstartable: unstartable.get(Number(r.id)) } : {}),
    }));
  });
  return { tasks, heldBack, oversized, refused };
}

/**
 * The UPDATE that makes the claim's tries `running` for the claimer; `counted`: as a new try
 * (try_number + 1). `alone`: one try after a refused batch, only while still queued (a refusal
 * after the batch UPDATE, in the pool slots' one, left it applied). start_date is not before
 * queued_at: the claimer took its now before it read the tries, one may have been queued since.
 */
function startStatement(req: ClaimRequest, ids: number[], counted: boolean, alone = false): Statement {
  return {
    sql: `UPDATE task_instance SET state = 'running',${counted ? " try_number = try_number + 1," : ""} claim_token = ?, hostname = ?, pid = ?,
                 start_date = IF(queued_at > ?, queued_at, ?), end_date = NULL, duration = NULL, heartbeat_at = ?, next_retry_at = NULL
           WHERE id IN (${inList(ids)})${alone ? " AND state = 'queued'" : ""}`,
    params: [req.token, req.hostname, req.pid, req.now, req.now, req.now, ...ids],
  };
}

/** What the claimed tries need to run, read after their UPDATE (try_number is theirs). */
function claimedRead(ids: number[]): Statement {
  return {
    sql: `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.pool, ti.pool_slots,
                 ti.priority_weight, ti.key_epoch,
                 ti.first_poke_at, ti.poke_count, ti.queued_at, ti.start_date, ti.steps_kept,
                 r.version_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf
            FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
           WHERE ti.id IN (${inList(ids)}) ORDER BY ti.priority_weight DESC, ti.id`,
    params: ids,
  };
}

/**
 * After the database refused the claiming UPDATE for a value (a failed statement changes nothing;
 * the transaction and its locks stay): each try claimed by a statement of its own. A try refused
 * alone is claimed without being counted as a new try (unstartable, with the reason), and one
 * refused even so is left queued (refused), its pool slots taken out of `deltas`. A round trip per
 * try, on this rare path only.
 */
async function startAlone(
  btx: BatchTx,
  req: ClaimRequest,
  taken: RowDataPacket[],
  deltas: Map<string, number>,
): Promise<{ ids: number[]; unstartable: Map<number, string>; refused: RefusedTry[] }> {
  const ids: number[] = [];
  const unstartable = new Map<number, string>();
  const refused: RefusedTry[] = [];
  const alone = async (statement: Statement): Promise<string | null> => {
    try {
      await btx.run([statement]);
      return null;
    } catch (err) {
      if (!isDataError(err)) throw err;
      return (err as Error).message;
    }
  };
  for (const c of taken) {
    const id = Number(c.id);
    const reason = await alone(startStatement(req, [id], true, true));
    if (reason === null) {
      ids.push(id);
    } else if ((await alone(startStatement(req, [id], false, true))) === null) {
      ids.push(id);
      unstartable.set(id, reason);
    } else {
      refused.push({ id, dagId: c.dag_id, reason });
      deltas.set(c.pool, deltas.get(c.pool)! - Number(c.pool_slots));
    }
  }
  return { ids, unstartable, refused };
}
