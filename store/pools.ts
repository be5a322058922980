// Pools: CRUD for the API and CLI, and the slot accounting used by claims.
import { BatonError } from "../core/errors.ts";
import { inList, type Db, type Queryable, type ResultSetHeader, type RowDataPacket, type Statement } from "./db.ts";
import { orderBy } from "./queries/read.ts";
import { limitOffset } from "./queries/paging.ts";

export const DEFAULT_POOL = "default_pool";

/** Airflow's slots of a pool without limit, as the API takes and answers them. */
export const UNLIMITED_SLOTS = -1;
/**
 * An unlimited pool as stored: pool.slots at INT's largest value, so what reads pool rows (claims'
 * free = slots - occupied_slots, the pool-size check, a finishing try's hand-off, which reads none)
 * needs no case of its own. The API takes at most MAX_POOL_SLOTS, far below it.
 */
export const UNLIMITED_STORED_SLOTS = 2_147_483_647;

/** slots as the API gave them (-1: no limit) → as pool.slots stores them. */
export function storedSlots(slots: number): number {
  return slots === UNLIMITED_SLOTS ? UNLIMITED_STORED_SLOTS : slots;
}

/** pool.slots as stored → as the API answers them (-1: no limit). */
export function shownSlots(slots: number): number {
  return slots >= UNLIMITED_STORED_SLOTS ? UNLIMITED_SLOTS : slots;
}

export interface PoolRow {
  name: string;
  slots: number;
  occupied_slots: number;
  description: string | null;
}

/**
 * Airflow's order_by fields of get_pools; ties (slots) are broken by the name. slots sorts as
 * stored: a pool without limit (UNLIMITED_STORED_SLOTS) as the largest, last ascending, though
 * the API answers it as -1 (Airflow, which stores -1, sorts it first).
 */
export const POOL_ORDER_FIELDS = { name: "name", slots: "slots" } as const;

/** A page of pools; orderBy is "field" or "-field" of POOL_ORDER_FIELDS (default name). */
export async function listPools(db: Queryable, page: { limit: number; offset: number; orderBy?: string }): Promise<{ rows: PoolRow[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT name, slots, occupied_slots, description FROM pool ${orderBy(page.orderBy, POOL_ORDER_FIELDS, "name", "name")} ${limitOffset(page)}`,
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM pool");
  return { rows: rows as PoolRow[], total: Number(count!.n) };
}

export async function getPool(db: Queryable, name: string): Promise<PoolRow | undefined> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT name, slots, occupied_slots, description FROM pool WHERE name = ?", [name]);
  return rows[0] as PoolRow | undefined;
}

/** Slots held by the task instances waiting in a pool, per state (Airflow's Pool.slots_stats). */
export interface PoolWaitingSlots {
  queued: number;
  scheduled: number;
  deferred: number;
}

/**
 * Waiting slots of the pools named (a list page's pools, or one): one GROUP BY, served by
 * ix_ti_pool_queue (state, pool, …) as a range over the state × pool pairs — it reads only the
 * waiting task instances of these pools, never the finished ones. Pools with none are absent.
 * EXPLAIN (MariaDB 10.11, 22,000 task instances, 3 % waiting, 2 of 5 pools): type range, key
 * ix_ti_state_pool (now ix_ti_pool_queue, same prefix), r_rows 282 = exactly the matching rows.
 */
export async function waitingSlots(db: Queryable, names: string[]): Promise<Map<string, PoolWaitingSlots>> {
  const stats = new Map<string, PoolWaitingSlots>();
  const unique = [...new Set(names)];
  if (unique.length === 0) return stats;
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT pool, state, SUM(pool_slots) AS n FROM task_instance
      WHERE state IN ('queued', 'scheduled', 'deferred') AND pool IN (${inList(unique)})
      GROUP BY pool, state`,
    unique,
  );
  for (const r of rows) {
    const entry = stats.get(r.pool as string) ?? { queued: 0, scheduled: 0, deferred: 0 };
    entry[r.state as keyof PoolWaitingSlots] = Number(r.n);
    stats.set(r.pool as string, entry);
  }
  return stats;
}

/**
 * A new pool's occupied slots are counted from the running task instances of its name (as
 * reconcilePools does), in the transaction that inserts it: a pool deleted and created again
 * while its tasks run must not report them as free slots until the next reconcile (30 s), or
 * claims would start more tasks beside them. Claims never took a try of the name meanwhile
 * (openPools reads existing pools only). A try that ends while this commits may leave its slot
 * counted (a plain read, no lock on the try): too many occupied, never too few, until reconcile.
 */
export async function createPool(db: Db, pool: { name: string; slots: number; description?: string | null }): Promise<void> {
  try {
    await db.tx(async (tx) => {
      await tx.query("INSERT INTO pool (name, slots, description) VALUES (?, ?, ?)", [pool.name, pool.slots, pool.description ?? null]);
      const running = (await runningSlots(tx, [pool.name])).get(pool.name) ?? 0;
      if (running > 0) await tx.query("UPDATE pool SET occupied_slots = ? WHERE name = ?", [running, pool.name]);
      // Files that failed only for want of a pool are parsed again on the next scan.
      await tx.query("DELETE FROM dag_file WHERE fileloc IN (SELECT fileloc FROM import_error WHERE code = 'BATON_POOL_NOT_FOUND')");
    });
  } catch (err) {
    if ((err as { code?: string }).code === "ER_DUP_ENTRY") throw new BatonError("BATON_POOL_EXISTS", `pool "${pool.name}" already exists`);
    throw err;
  }
}

export async function updatePool(db: Queryable, name: string, change: { slots?: number; description?: string | null }): Promise<boolean> {
  const sets: string[] = [];
  const params: unknown[] = [];
  if (change.slots !== undefined) {
    sets.push("slots = ?");
    params.push(change.slots);
  }
  if (change.description !== undefined) {
    sets.push("description = ?");
    params.push(change.description);
  }
  if (sets.length === 0) return !!(await getPool(db, name));
  const [result] = await db.query<ResultSetHeader>(`UPDATE pool SET ${sets.join(", ")} WHERE name = ?`, [...params, name]);
  return result.affectedRows > 0;
}

export async function deletePool(db: Queryable, name: string): Promise<boolean> {
  if (name === DEFAULT_POOL) throw new BatonError("BATON_POOL_PROTECTED", `${DEFAULT_POOL} cannot be deleted`);
  const [result] = await db.query<ResultSetHeader>("DELETE FROM pool WHERE name = ?", [name]);
  return result.affectedRows > 0;
}

/** Names among `names` that are not pools. */
export async function missingPools(db: Queryable, names: string[]): Promise<string[]> {
  const unique = [...new Set(names)];
  if (unique.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(`SELECT name FROM pool WHERE name IN (${inList(unique)})`, unique);
  const found = new Set(rows.map((r) => r.name as string));
  return unique.filter((n) => !found.has(n));
}

/**
 * Pool names that queued task instances use but no pool has (deleted while they waited): claims
 * read existing pools only (claimTasks' openPools), so those tries wait until a pool of the name is
 * created. For the scheduler's periodic check, never the claim path. The pool names of queued
 * tries are walked on ix_ti_pool_queue (state, pool, …) one name at a time (MIN(pool) past the
 * last one, "Select tables optimized away": one index dive per name, not a row per try — MariaDB
 * 10.11 reads every queued row for a DISTINCT or GROUP BY here, 29,791 with 30,000 queued).
 */
export async function missingPoolsOfQueued(db: Queryable, maxNames = 10_000): Promise<string[]> {
  const [pools] = await db.query<RowDataPacket[]>("SELECT name FROM pool");
  const existing = new Set(pools.map((p) => p.name as string));
  const missing: string[] = [];
  let after: string | undefined;
  for (let i = 0; i < maxNames; i++) {
    const [[row]] = await db.query<RowDataPacket[]>(
      `SELECT MIN(pool) AS pool FROM task_instance WHERE state = 'queued'${after === undefined ? "" : " AND pool > ?"}`,
      after === undefined ? [] : [after],
    );
    if (row?.pool === null || row?.pool === undefined) break;
    after = row.pool as string;
    if (!existing.has(after)) missing.push(after);
  }
  return missing;
}

/** How many task instances wait queued in a pool, and one of them (undefined when none does); on ix_ti_pool_queue. */
export async function queuedInPool(
  db: Queryable,
  pool: string,
): Promise<{ queued: number; sample: { dagId: string; runId: string; taskId: string; poolSlots: number } } | undefined> {
  const [[one]] = await db.query<RowDataPacket[]>("SELECT dag_id, run_id, task_id, pool_slots FROM task_instance WHERE state = 'queued' AND pool = ? LIMIT 1", [
    pool,
  ]);
  if (!one) return undefined;
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM task_instance WHERE state = 'queued' AND pool = ?", [pool]);
  return { queued: Number(count!.n), sample: { dagId: one.dag_id, runId: one.run_id, taskId: one.task_id, poolSlots: Number(one.pool_slots) } };
}

/** Statements changing occupied_slots by per-pool deltas (zero deltas are skipped). */
export function occupancyStatements(deltas: Map<string, number>): Statement[] {
  return [...deltas]
    .filter(([, delta]) => delta !== 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, delta]) => ({ sql: "UPDATE pool SET occupied_slots = GREATEST(0, occupied_slots + ?) WHERE name = ?", params: [delta, name], prepare: true }));
}

/**
 * Pool slots held by running task instances, per pool (of the names given, or every pool): what
 * occupied_slots counts. Pools with none are absent. On ix_ti_pool_queue (state, pool, …).
 */
export async function runningSlots(db: Queryable, names?: string[]): Promise<Map<string, number>> {
  const only = names === undefined ? "" : names.length === 0 ? " AND 1 = 0" : ` AND pool IN (${inList(names)})`;
  const [used] = await db.query<RowDataPacket[]>(
    `SELECT pool, COALESCE(SUM(pool_slots), 0) AS n FROM task_instance WHERE state = 'running'${only} GROUP BY pool`,
    names ?? [],
  );
  return new Map(used.map((r) => [r.pool as string, Number(r.n)]));
}

/**
 * Recomputes occupied_slots from the running task instances, under the pool row locks, so
 * a slot lost by a crashed process comes back.
 */
export async function reconcilePools(db: Db): Promise<number> {
  return db.tx(async (tx) => {
    const [pools] = await tx.query<RowDataPacket[]>("SELECT name, occupied_slots FROM pool ORDER BY name FOR UPDATE");
    const actual = await runningSlots(tx);
    let fixed = 0;
    for (const p of pools) {
      const want = actual.get(p.name) ?? 0;
      if (Number(p.occupied_slots) !== want) {
        await tx.query("UPDATE pool SET occupied_slots = ? WHERE name = ?", [want, p.name]);
        fixed++;
      }
    }
    return fixed;
  });
}
