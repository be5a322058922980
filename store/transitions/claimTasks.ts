// claimTasks — a worker takes queued task instances for its free slots, within pool slots.
// locks: queued task_instance rows via ix_ti_claim (state, queue, priority_weight DESC, id),
//   whose order matches the ORDER BY exactly, with SKIP LOCKED so claimers never wait on
//   each other. One statement claims for the whole pool (claims scale with batch size).
// pools: candidates in full pools are skipped in the read; the pools of the rest are locked
//   (PK, after the task rows, like every transition) and only what fits is claimed.
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
}

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
  /** Direct upstream outputs, when the claim already fetched them (the fast path does). */
  upstreamOutputs?: Record<string, unknown>;
}

export async function claimTasks(db: Db, req: ClaimRequest): Promise<ClaimedTask[]> {
  if (req.limit <= 0 || req.queues.length === 0) return [];
  return db.batchTx(async (btx) => {
    // Round trip 1: a locking read per queue on ix_ti_claim, skipping pools that are full.
    const found = await btx.run(
      req.queues.map((queue) => ({
        sql: `SELECT id, pool, pool_slots, priority_weight FROM task_instance
               WHERE state = 'queued' AND queue = ? AND pool NOT IN (SELECT name FROM pool WHERE occupied_slots >= slots)
               ORDER BY priority_weight DESC, id LIMIT ${Math.floor(req.limit)} FOR UPDATE SKIP LOCKED`,
        params: [queue],
      })),
    );
    const candidates = (found as RowDataPacket[][])
      .flat()
      .sort((a, b) => b.priority_weight - a.priority_weight || Number(a.id) - Number(b.id));
    if (candidates.length === 0) return [];
    // Round trip 2: lock the pools involved and take what fits, highest priority first.
    const pools = [...new Set(candidates.map((c) => c.pool as string))].sort();
    const [poolRows] = (await btx.run([
      { sql: `SELECT name, slots, occupied_slots FROM pool WHERE name IN (${inList(pools)}) ORDER BY name FOR UPDATE`, params: pools },
    ])) as [RowDataPacket[]];
    const free = new Map(poolRows.map((p) => [p.name as string, Number(p.slots) - Number(p.occupied_slots)]));
    const taken: RowDataPacket[] = [];
    const deltas = new Map<string, number>();
    for (const c of candidates) {
      if (taken.length >= req.limit) break;
      const left = free.get(c.pool) ?? 0;
      if (left < c.pool_slots) continue;
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
    }));
  });
}
