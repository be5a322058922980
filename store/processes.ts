// Processes: what the baton_process heartbeats say about workers, for operators (/workers,
// /health), and the clean-up of rows left behind by processes that died.
// reads: ix_process_kind (kind, heartbeat_at) — equality on kind, ordered by heartbeat.
import { parseJsonText } from "./rows.ts";
import type { Queryable, ResultSetHeader, RowDataPacket } from "./db.ts";
import { limitOffset } from "./queries/paging.ts";

export interface WorkerRow {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number | null;
  running: number | null;
  startedAt: Date;
  heartbeatAt: Date;
}

/** A worker's heartbeat `info` JSON (what it serves), or {} when it is none. */
function workerInfo(raw: unknown): Record<string, unknown> {
  const parsed = parseJsonText<unknown>(raw, {});
  return (parsed && typeof parsed === "object" ? parsed : {}) as Record<string, unknown>;
}

/** The queues a worker's info lists. */
function queuesOf(info: Record<string, unknown>): string[] {
  return Array.isArray(info.queues) ? info.queues.map(String) : [];
}

/** Workers by most recent heartbeat first, with the total, paged. */
export async function listWorkers(db: Queryable, page: { limit: number; offset: number }): Promise<{ rows: WorkerRow[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT id, hostname, pid, started_at, heartbeat_at, info FROM baton_process WHERE kind = 'worker'
      ORDER BY heartbeat_at DESC, id ${limitOffset(page)}`,
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM baton_process WHERE kind = 'worker'");
  return {
    rows: rows.map((r) => {
      const info = workerInfo(r.info);
      const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
      return {
        id: r.id,
        // The worker's --hostname when it reports one (the name recorded on its tasks), else the OS's.
        hostname: typeof info.hostname === "string" ? info.hostname : r.hostname,
        pid: Number(r.pid),
        queues: queuesOf(info),
        concurrency: num(info.concurrency),
        running: num(info.running),
        startedAt: r.started_at,
        heartbeatAt: r.heartbeat_at,
      };
    }),
    total: Number(count!.n),
  };
}

/** How many workers heartbeated since `since`, and the latest heartbeat of any worker. */
export async function workerLiveness(db: Queryable, since: Date): Promise<{ alive: number; latest: Date | null }> {
  const [[row]] = await db.query<RowDataPacket[]>(
    "SELECT SUM(heartbeat_at >= ?) AS alive, MAX(heartbeat_at) AS latest FROM baton_process WHERE kind = 'worker'",
    [since],
  );
  return { alive: Number(row?.alive ?? 0), latest: row?.latest ?? null };
}

/** The workers that heartbeated since `since` and the queues they serve (for …/dependencies). */
export async function liveWorkerQueues(db: Queryable, since: Date): Promise<{ count: number; queues: Set<string> }> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT info FROM baton_process WHERE kind = 'worker' AND heartbeat_at >= ?", [since]);
  return { count: rows.length, queues: new Set(rows.flatMap((r) => queuesOf(workerInfo(r.info)))) };
}

/**
 * Deletes the rows of processes that have not heartbeated since `before` (killed with -9, or
 * their host died; a clean stop deletes its own row). Safe from several schedulers at once.
 */
export async function deleteStaleProcesses(db: Queryable, before: Date): Promise<number> {
  const [result] = await db.query<ResultSetHeader>("DELETE FROM baton_process WHERE heartbeat_at < ? LIMIT 1000", [before]);
  return result.affectedRows;
}
