// claimTasks — a worker takes queued task instances for its free slots, within pool slots.
// locks: queued task_instance rows via ix_ti_claim (state, queue, priority_weight DESC, id),
//   whose order matches the ORDER BY exactly, with SKIP LOCKED so claimers never wait on
//   each other. One statement claims for the whole pool (claims scale with batch size).
// pools and maxActiveTasks: candidates in full pools are skipped in the read; the DAG and pool
//   rows of the rest are locked (PK, after the task rows, like every transition), the DAGs'
//   running tasks counted (ix_ti_dag_state), and only what fits is claimed. Tries claimed ahead of
//   the worker's free slots (req.ahead) take at most half of a pool's free slots.
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
    // Round trip 1: a locking read per queue on ix_ti_claim, skipping pools that are full.
    const found = await btx.run(
      req.queues.map((queue) => ({
        // More candidates than slots, so a DAG at its maxActiveTasks does not hide the others.
        sql: `SELECT id, dag_id, pool, pool_slots, priority_weight FROM task_instance
               WHERE state = 'queued' AND queue = ? AND pool NOT IN (SELECT name FROM pool WHERE occupied_slots >= slots)
               ORDER BY priority_weight DESC, id LIMIT ${Math.min(500, Math.floor(req.limit) * 4)} FOR UPDATE SKIP LOCKED`,
        params: [queue],
      })),
    );
    const candidates = (found as RowDataPacket[][])
      .flat()
      .sort((a, b) => b.priority_weight - a.priority_weight || Number(a.id) - Number(b.id));
    if (candidates.length === 0) return [];
    // Round trip 2: lock the DAGs and pools involved (DAG rows serialize claims that count
    // maxActiveTasks), count the DAGs' running tasks, and take what fits by priority.
    const pools = [...new Set(candidates.map((c) => c.pool as string))].sort();
    const dagIds = [...new Set(candidates.map((c) => c.dag_id as string))].sort();
    const [dagRows, running, poolRows] = (await btx.run([
      { sql: `SELECT dag_id, max_active_tasks FROM dag WHERE dag_id IN (${inList(dagIds)}) ORDER BY dag_id FOR UPDATE`, params: dagIds },
      {
        sql: `SELECT dag_id, COUNT(*) AS n FROM task_instance WHERE dag_id IN (${inList(dagIds)}) AND state = 'running' GROUP BY dag_id`,
        params: dagIds,
      },
      { sql: `SELECT name, slots, occupied_slots FROM pool WHERE name IN (${inList(pools)}) ORDER BY name FOR UPDATE`, params: pools },
    ])) as [RowDataPacket[], RowDataPacket[], RowDataPacket[]];
    const free = new Map(poolRows.map((p) => [p.name as string, Number(p.slots) - Number(p.occupied_slots)]));
    const freeAtStart = new Map(free);
    const runsNow = req.limit - Math.min(req.limit, Math.max(0, req.ahead ?? 0));
    const dagRoom = new Map(dagRows.map((d) => [d.dag_id as string, Number(d.max_active_tasks)]));
    for (const r of running) dagRoom.set(r.dag_id, (dagRoom.get(r.dag_id) ?? 0) - Number(r.n));
    const taken: RowDataPacket[] = [];
    const deltas = new Map<string, number>();
    let backfill = 0;
    for (const c of candidates) {
      if (taken.length >= req.limit) break;
      const left = free.get(c.pool) ?? 0;
      if (left < c.pool_slots || (dagRoom.get(c.dag_id) ?? 0) < 1) continue;
      if (taken.length >= runsNow && (left - c.pool_slots) * 2 < (freeAtStart.get(c.pool) ?? 0)) {
        heldBack = true;
        continue;
      }
      const isBackfill = Number(c.priority_weight) < BACKFILL_PRIORITY_FLOOR;
      if (isBackfill && backfill >= (req.maxBackfill ?? Infinity)) continue;
      if (isBackfill) backfill++;
      dagRoom.set(c.dag_id, dagRoom.get(c.dag_id)! - 1);
      free.set(c.pool, left - c.pool_slots);
      deltas.set(c.pool, (deltas.get(c.pool) ?? 0) + Number(c.pool_slots));
      taken.push(c);
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
