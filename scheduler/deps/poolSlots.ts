import type { DepStatus } from "./dependsOnPast.ts";

/** A try waiting for its pool, as the claim and the API see it. */
export interface PoolSlotsInput {
  dagId: string;
  runId: string;
  taskId: string;
  pool: string;
  poolSlots: number;
}

/**
 * Pool size: a try that asks for more slots than its pool has in all can never be claimed, and
 * stays queued until the pool grows (Airflow's scheduler logs "Not executing … Requested pool
 * slots (N) are greater than total pool slots: M for pool: P" and leaves it too). Slots merely in
 * use by other tries pass here: they free up. `pool` is undefined when no such pool exists; its
 * slots are as the API shows them (store/pools.ts shownSlots): -1 for a pool without limit.
 */
export function poolSlotsDep(ti: PoolSlotsInput, pool: { slots: number } | undefined): DepStatus {
  const dep = "pool_slots";
  const which = `task "${ti.taskId}" of DAG "${ti.dagId}", run "${ti.runId}"`;
  if (!pool) return { dep, passed: false, reason: `Not executing ${which}: its pool ${ti.pool} does not exist; create it (POST /api/v1/pools)` };
  if (pool.slots < 0) return { dep, passed: true, reason: `pool ${ti.pool} has no slot limit, the try needs ${ti.poolSlots}` };
  if (ti.poolSlots > pool.slots) {
    return {
      dep,
      passed: false,
      reason:
        `Not executing ${which}: Requested pool slots (${ti.poolSlots}) are greater than total pool slots: ${pool.slots} for pool: ${ti.pool}. ` +
        `It stays queued until the pool has ${ti.poolSlots} slots (PATCH /api/v1/pools/${ti.pool}) or the task asks for fewer.`,
    };
  }
  return { dep, passed: true, reason: `pool ${ti.pool} has ${pool.slots} slots in all, the try needs ${ti.poolSlots}` };
}
