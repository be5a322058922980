import type { DepStatus } from "./dependsOnPast.ts";

/**
 * Why a queued try a live worker could take is not taken yet: its DAG is paused, its DAG runs
 * maxActiveTasks tries already, its task runs maxActiveTisPerDag instances already (across the
 * DAG's runs), or its pool has too few open slots (Airflow's DagUnpausedDep, DagTISlotsAvailableDep,
 * TaskConcurrencyDep and PoolSlotsAvailableDep, with their wording). Each lifts by itself as
 * running tries end, or when the DAG is unpaused; the claim (store/transitions/claimTasks.ts)
 * applies the same rules, and a backfill's tries run while their DAG is paused.
 */
export interface ClaimRoomInput {
  dagId: string;
  taskId: string;
  /** The try's task_instance.max_active_tis_per_dag; null: no limit. */
  maxActiveTisPerDag: number | null;
  /** A backfill's try: claimed while its DAG is paused. */
  backfill: boolean;
  pool: string;
  poolSlots: number;
}

export interface ClaimRoom {
  paused: boolean;
  maxActiveTasks: number;
  /** The DAG's running tries, all runs. */
  running: number;
  /** The task's running instances, all runs of the DAG (read only when it has maxActiveTisPerDag). */
  taskRunning?: number;
  /** The pool as stored: slots (negative: no limit) and slots taken by running tries. Undefined: no such pool (poolSlotsDep says so). */
  pool: { slots: number; occupied: number } | undefined;
}

export function claimRoomDeps(ti: ClaimRoomInput, room: ClaimRoom): DepStatus[] {
  const paused: DepStatus =
    room.paused && !ti.backfill
      ? { dep: "dag_paused", passed: false, reason: `Task's DAG '${ti.dagId}' is paused: its queued tasks wait until it is unpaused (PATCH /api/v1/dags/${ti.dagId} {"is_paused": false})` }
      : { dep: "dag_paused", passed: true, reason: room.paused ? `DAG '${ti.dagId}' is paused, but a backfill's tasks run` : `DAG '${ti.dagId}' is not paused` };
  const tasks: DepStatus =
    room.running >= room.maxActiveTasks
      ? {
          dep: "max_active_tasks",
          passed: false,
          reason: `The maximum number of running tasks (${room.maxActiveTasks}) for this task's DAG '${ti.dagId}' has been reached: it runs when one of them ends`,
        }
      : { dep: "max_active_tasks", passed: true, reason: `${room.running} of DAG '${ti.dagId}''s ${room.maxActiveTasks} task slots are in use` };
  const limit = ti.maxActiveTisPerDag;
  const taskRunning = room.taskRunning ?? 0;
  const tis: DepStatus[] =
    limit === null
      ? []
      : [
          taskRunning >= limit
            ? {
                dep: "max_active_tis_per_dag",
                passed: false,
                reason:
                  `The max task concurrency has been breached: ${taskRunning} instances of task '${ti.taskId}' run across DAG '${ti.dagId}''s runs, ` +
                  `its maxActiveTisPerDag is ${limit}: it runs when one of them ends`,
              }
            : { dep: "max_active_tis_per_dag", passed: true, reason: `${taskRunning} of task '${ti.taskId}''s ${limit} instance slots (maxActiveTisPerDag) are in use` },
        ];
  const pool = room.pool;
  const open = pool ? pool.slots - pool.occupied : 0;
  // Too large for the pool in all is poolSlotsDep's to say; here only slots in use that will free up.
  const poolDep: DepStatus =
    pool && pool.slots >= 0 && ti.poolSlots <= pool.slots && open < ti.poolSlots
      ? {
          dep: "pool_open_slots",
          passed: false,
          reason: `Not scheduling since there are ${Math.max(0, open)} open slots in pool ${ti.pool} and require ${ti.poolSlots} pool slots: it runs when running tasks free them`,
        }
      : { dep: "pool_open_slots", passed: true, reason: pool && pool.slots >= 0 ? `pool ${ti.pool} has ${open} open slots` : `pool ${ti.pool} has no slot limit` };
  return [paused, tasks, ...tis, poolDep];
}
