// claimTasks — a worker takes queued task instances for its free slots.
// locks: queued task_instance rows via ix_ti_claim (state, queue, priority_weight DESC, id),
//   whose order matches the ORDER BY exactly, with SKIP LOCKED so claimers never wait on
//   each other. One statement claims for the whole pool (claims scale with batch size).
// fence: each claimed try gets try_number + 1 and the claim token; only that pair may finish it.
import { inList, type Db, type RowDataPacket } from "../db.ts";
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
  token: string;
  /** When this try was claimed (its start_date). */
  startedAt: Date;
  /** Direct upstream outputs, when the claim already fetched them (the fast path does). */
  upstreamOutputs?: Record<string, unknown>;
}

export async function claimTasks(db: Db, req: ClaimRequest): Promise<ClaimedTask[]> {
  if (req.limit <= 0 || req.queues.length === 0) return [];
  return db.batchTx(async (btx) => {
    // One round trip: a locking read per queue, each on ix_ti_claim.
    const found = await btx.run(
      req.queues.map((queue) => ({
        sql: `SELECT id FROM task_instance WHERE state = 'queued' AND queue = ?
               ORDER BY priority_weight DESC, id LIMIT ${Math.floor(req.limit)} FOR UPDATE SKIP LOCKED`,
        params: [queue],
      })),
    );
    const ids = (found as RowDataPacket[][]).flat().slice(0, req.limit).map((r) => Number(r.id));
    if (ids.length === 0) return [];
    // Rows of other queues beyond the limit stay locked until COMMIT only.
    const [, rows] = (await btx.commit([
      {
        sql: `UPDATE task_instance SET state = 'running', try_number = try_number + 1, claim_token = ?, hostname = ?, pid = ?,
                     start_date = ?, end_date = NULL, duration = NULL, heartbeat_at = ?, next_retry_at = NULL
               WHERE id IN (${inList(ids)})`,
        params: [req.token, req.hostname, req.pid, req.now, req.now, ...ids],
      },
      {
        sql: `SELECT ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries,
                     r.version_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf
                FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
               WHERE ti.id IN (${inList(ids)})`,
        params: ids,
      },
    ])) as [unknown, RowDataPacket[]];
    return rows.map((r) => ({
      id: Number(r.id),
      dagRunId: Number(r.dag_run_id),
      dagId: r.dag_id,
      runId: r.run_id,
      taskId: r.task_id,
      mapIndex: r.map_index,
      tryNumber: r.try_number,
      maxTries: r.max_tries,
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
