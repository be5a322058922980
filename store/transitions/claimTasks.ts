// claimTasks — a worker takes queued task instances for its free slots, within pool slots.
// locks: queued task_instance rows via ix_ti_claim (state, queue, priority_weight DESC, id),
//   whose order matches the ORDER BY exactly, with SKIP LOCKED so claimers never wait on
//   each other. One statement claims for the whole pool (claims scale with batch size).
// pools and maxActiveTasks: candidates in full pools are skipped in the read; the DAG and pool
//   rows of the rest are locked (PK, after the task rows, like every
//   transition), the DAGs' running tasks counted (ix_ti_dag_state), and only what fits is
//   claimed. A DAG that runs out of room within a read (or a pool, for a try needing more slots
//   than are left) makes the claim read again past those tries, up to MAX_READ_PASSES reads; a
//   later read locks its new DAG and pool rows with SKIP LOCKED (after pool rows, waiting could
//   deadlock) and leaves the tries of rows others hold. Tries claimed ahead of the worker's free
//   slots (req.ahead) take at most half of a pool's free slots.
// fence: each claimed try gets try_number + 1 and the claim token; only that pair may finish it.
import { inList, type Db, type RowDataPacket } from "../db.ts";
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
}

/** Backfill runs' tasks have their priority lowered by 1e9 (startRuns): anything below this is one. */
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
  versionHash: string;
  logicalDate: Date | null;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
  /** The pool whose slots this try occupies while it runs. */
  pool: string;
  poolSlots: number;
  token: string;
  /** When this try was claimed (its start_date). */
  startedAt: Date;
  /**
   * When it entered `queued`, as claimTasks read it (for claim latency). Meaningful only on
   * claimTasks' result: finishTries' fast-path claims copy the finished try's fields.
   */
  queuedAt?: Date | null;
  /** Sensors: first poke of this task instance (across reschedules) and pokes rescheduled so far. */
  firstPokeAt: Date | null;
  pokeCount: number;
  /** A backfill run's task: a worker keeps one slot free of them for everything else. */
  backfill?: boolean;
  /** Direct upstream outputs, when the claim already fetched them (the fast path does). */
  upstreamOutputs?: Record<string, unknown>;
}

/** Reads per claim: a DAG that runs out of room mid-read makes the claim read past its tries. */
const MAX_READ_PASSES = 3;

/** How far a later read walks past the tries it skips (≈ 3.5 µs each on this project's 2-core machine). */
const SKIP_SCAN_ROWS = 2000;

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

export async function claimTasks(db: Db, req: ClaimRequest): Promise<ClaimedTask[]> {
  return (await claimTasksReporting(db, req)).tasks;
}

export interface ClaimResult {
  tasks: ClaimedTask[];
  /** Queued tries were left because their pool had to keep half of its free slots from tries claimed ahead. */
  heldBack: boolean;
}

/** claimTasks, also saying whether the claim-ahead rule left queued tries behind (the worker claims again sooner). */
export async function claimTasksReporting(db: Db, req: ClaimRequest): Promise<ClaimResult> {
  if (req.limit <= 0 || req.queues.length === 0) return { tasks: [], heldBack: false };
  let heldBack = false;
  const tasks = await db.batchTx(async (btx): Promise<ClaimedTask[]> => {
    heldBack = false;
    const taken: RowDataPacket[] = [];
    const deltas = new Map<string, number>();
    // What round trip 2 locked and counted: DAG rows (they serialize claims that count
    // maxActiveTasks) with the room left under it, pool rows with their free slots.
    const dagRoom = new Map<string, number>();
    const free = new Map<string, number>();
    const freeAtStart = new Map<string, number>();
    const runsNow = req.limit - Math.min(req.limit, Math.max(0, req.ahead ?? 0));
    let backfill = 0;
    // Where each queue's last read ended, in the read's order: a later read starts after it (the
    // rows before stay locked by this transaction, so SKIP LOCKED would read them again).
    const readUpTo = new Map<string, { priority: number; id: number }>();
    // DAGs whose room this claim used up, and pools left with no free slot (or held by another
    // claimer), while the read still had tries of theirs: later reads skip them.
    const fullDags = new Set<string>();
    const fullPools = new Set<string>();
    for (let pass = 0; pass < MAX_READ_PASSES && taken.length < req.limit; pass++) {
      const want = candidateLimit(req.limit - taken.length);
      // Round trip 1: a locking read per queue on ix_ti_claim, skipping full pools (a plain read:
      // subqueries of a locking read lock nothing). A later read starts where the queue's last
      // one ended and skips the DAGs and pools found full; it walks past their tries' index
      // entries, so it stops after SKIP_SCAN_ROWS rows examined (with a warning, not an error):
      // a DAG at its limit with more queued tries than that ahead of every other DAG's still
      // hides them.
      const skipDags = [...fullDags];
      const skipPools = [...fullPools];
      const bound = pass > 0 ? ` ROWS EXAMINED ${SKIP_SCAN_ROWS + want}` : "";
      const found = (await btx.run(
        req.queues.map((queue) => {
          const after = readUpTo.get(queue);
          return {
            sql: `SELECT id, dag_id, pool, pool_slots, priority_weight, queue FROM task_instance
                   WHERE state = 'queued' AND queue = ? AND pool NOT IN (SELECT name FROM pool WHERE occupied_slots >= slots)
                     ${skipDags.length ? `AND dag_id NOT IN (${inList(skipDags)})` : ""} ${skipPools.length ? `AND pool NOT IN (${inList(skipPools)})` : ""}
                     ${after ? "AND (priority_weight < ? OR (priority_weight = ? AND id > ?))" : ""}
                   ORDER BY priority_weight DESC, id LIMIT ${want}${bound} FOR UPDATE SKIP LOCKED`,
            params: [queue, ...skipDags, ...skipPools, ...(after ? [after.priority, after.priority, after.id] : [])],
          };
        }),
      )) as RowDataPacket[][];
      const candidates = found.flat().sort((a, b) => b.priority_weight - a.priority_weight || Number(a.id) - Number(b.id));
      if (candidates.length === 0) break;
      for (const rows of found) {
        const last = rows[rows.length - 1];
        if (last) readUpTo.set(last.queue as string, { priority: Number(last.priority_weight), id: Number(last.id) });
      }
      // Round trip 2: lock the DAGs and pools not locked yet, count the DAGs' running tasks. A
      // later read's rows come after this claim already holds pool rows, so it skips rows other
      // claimers hold instead of waiting for them (waiting in that order could deadlock): their
      // tries count as having no room.
      const skipLocked = pass > 0 ? " SKIP LOCKED" : "";
      const dagIds = [...new Set(candidates.map((c) => c.dag_id as string))].filter((d) => !dagRoom.has(d)).sort();
      const pools = [...new Set(candidates.map((c) => c.pool as string))].filter((p) => !free.has(p)).sort();
      const statements = [
        ...(dagIds.length === 0
          ? []
          : [
              { sql: `SELECT dag_id, max_active_tasks FROM dag WHERE dag_id IN (${inList(dagIds)}) ORDER BY dag_id FOR UPDATE${skipLocked}`, params: dagIds },
              {
                sql: `SELECT dag_id, COUNT(*) AS n FROM task_instance WHERE dag_id IN (${inList(dagIds)}) AND state = 'running' GROUP BY dag_id`,
                params: dagIds,
              },
            ]),
        ...(pools.length === 0 ? [] : [{ sql: `SELECT name, slots, occupied_slots FROM pool WHERE name IN (${inList(pools)}) ORDER BY name FOR UPDATE${skipLocked}`, params: pools }]),
      ];
      const locked = (statements.length ? await btx.run(statements) : []) as RowDataPacket[][];
      const [dagRows, running] = dagIds.length ? [locked[0]!, locked[1]!] : [[], []];
      const poolRows = pools.length ? locked[locked.length - 1]! : [];
      // A DAG or pool row skipped as locked counts as no room (a DAG's running count is then not subtracted).
      for (const d of dagIds) dagRoom.set(d, 0);
      for (const p of pools) free.set(p, 0);
      const lockedDags = new Set(dagRows.map((d) => d.dag_id as string));
      for (const d of dagRows) dagRoom.set(d.dag_id as string, Number(d.max_active_tasks));
      for (const r of running) if (lockedDags.has(r.dag_id)) dagRoom.set(r.dag_id, dagRoom.get(r.dag_id)! - Number(r.n));
      for (const p of poolRows) {
        free.set(p.name as string, Number(p.slots) - Number(p.occupied_slots));
        freeAtStart.set(p.name as string, Number(p.slots) - Number(p.occupied_slots));
      }
      // Take what fits, by priority.
      let turnedAwayForRoom = false;
      let stop = false;
      for (const c of candidates) {
        if (taken.length >= req.limit) break;
        const left = free.get(c.pool) ?? 0;
        if ((dagRoom.get(c.dag_id) ?? 0) < 1) {
          fullDags.add(c.dag_id);
          turnedAwayForRoom = true;
          continue;
        }
        if (left < c.pool_slots) {
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
        const isBackfill = Number(c.priority_weight) < BACKFILL_PRIORITY_FLOOR;
        if (isBackfill && backfill >= (req.maxBackfill ?? Infinity)) {
          stop = true;
          continue;
        }
        if (isBackfill) backfill++;
        dagRoom.set(c.dag_id, dagRoom.get(c.dag_id)! - 1);
        free.set(c.pool, left - c.pool_slots);
        deltas.set(c.pool, (deltas.get(c.pool) ?? 0) + Number(c.pool_slots));
        taken.push(c);
      }
      // Read again only past DAGs that ran out of room and tries that needed more slots than
      // their pool had left, and only if a read came back full (more may wait behind them);
      // tries held back by the pool rule or the backfill share would be held back again.
      if (stop || !turnedAwayForRoom || !found.some((rows) => rows.length === want)) break;
    }
    if (taken.length === 0) return [];
    const ids = taken.map((c) => Number(c.id));
    // Round trip 3: claim, count the slots, read what the tasks need, COMMIT.
    const occupancy = occupancyStatements(deltas);
    const results = await btx.commit([
      {
        sql: `UPDATE task_instance SET state = 'running', try_number = try_number + 1, claim_token = ?, hostname = ?, pid = ?,
                     start_date = ?, end_date = NULL, duration = NULL, heartbeat_at = ?, next_retry_at = NULL
               WHERE id IN (${inList(ids)})`,
        params: [req.token, req.hostname, req.pid, req.now, req.now, ...ids],
      },
      ...occupancy,
      {
        sql: `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.pool, ti.pool_slots,
                     ti.priority_weight,
                     ti.first_poke_at, ti.poke_count, ti.queued_at,
                     r.version_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf
                FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
               WHERE ti.id IN (${inList(ids)})`,
        params: ids,
      },
    ]);
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
      pool: r.pool,
      poolSlots: Number(r.pool_slots),
      versionHash: r.version_hash,
      logicalDate: r.logical_date,
      dataIntervalStart: r.data_interval_start,
      dataIntervalEnd: r.data_interval_end,
      conf: parseJsonText(r.conf, {}),
      token: req.token,
      startedAt: req.now,
      queuedAt: r.queued_at ?? null,
      firstPokeAt: r.first_poke_at ?? null,
      pokeCount: Number(r.poke_count ?? 0),
      backfill: Number(r.priority_weight) < BACKFILL_PRIORITY_FLOOR,
    }));
  });
  return { tasks, heldBack };
}
