// startRuns — moves queued runs to running: creates their task instances and queues the
// tasks whose trigger rule already holds (roots, `always`).
// locks: queued dag_run rows (ix_dag_run_state, SKIP LOCKED, so several schedulers split the
//   work), then their dag rows (PK) so maxActiveRuns is counted under a lock.
// backfill runs start even when their DAG is paused (Airflow's get_queued_dag_runs_to_set_running
//   asks for it unpaused, and apache/airflow#60768 asks to lift that: a DAG paused so that its
//   schedule rests can still replay history) and neither count against
//   nor wait for the DAG's maxActiveRuns: their backfill's max_active_runs already bounded how
//   many were created (advanceBackfills).
// inactive DAGs (their file removed, or no longer defining them): no run of theirs starts, a
//   backfill's neither, as Airflow starts no queued run of one (get_queued_dag_runs_to_set_running
//   joins on an active DAG): it stays queued, and starts once the file defines the DAG again
//   (cancel or delete it to give up). Read with is_paused, in the same locked read of the dag rows.
// outcomes: the runs started and the ids of task instances queued; each started run gets
//   start_date = the later of now and its queued_at (a tick takes now before it reads the runs: one
//   triggered meanwhile must not start before it was queued), its first tries that queued_at, and
//   timeout_at = start_date + its version's dagrunTimeout (or NULL). A run whose version the database
//   cannot hold as task instances (a value out of a column's range: a version stored before
//   core/dagLimits.ts checked it) is failed at once, the reason in its note, instead of failing
//   the whole batch, and with it every other DAG's runs, at every tick for ever (it is pinned).
//   Likewise a run whose version cannot be read (isUnusableVersion: BATON_DAG_VERSION_UNUSABLE,
//   its tasks cannot be known): failed at once, the code and reason in its note.
import { clampPriorityWeight } from "../../core/dagLimits.ts";
import { runTimeoutAt, type DagShape, type SerializedTask } from "../../core/dagStructure.ts";
import { RunState, RunType, TaskState } from "../../core/states.ts";
import { evaluateTriggerRule, zeroCounts } from "../../scheduler/triggerRules.ts";
import { inList, type Db, type RowDataPacket } from "../db.ts";
import { isDataError } from "../db.ts";
import type { PageEnd, PageOptions } from "../paging.ts";
import { isUnusableVersion, unusableVersionNote } from "../versions.ts";

/** Subtracted from the priority of backfill runs' tasks (priorities stay ordered among themselves). */
export const BACKFILL_PRIORITY_OFFSET = 1_000_000_000;

/**
 * A task instance's priority_weight in a run of this type: a backfill run's tasks (its
 * compensations too) yield to everything else, so history never delays today's runs; claims tell
 * them by it (BACKFILL_PRIORITY_FLOOR), e.g. to run them while their DAG is paused. The weight is
 * clamped into the effective range (core/dagLimits.ts) so the two kinds never overlap, a DAG
 * version serialized when weights could reach ±1e9 and more included.
 */
export function taskPriority(runType: string, priorityWeight: number): number {
  const weight = clampPriorityWeight(priorityWeight);
  return runType === RunType.Backfill ? weight - BACKFILL_PRIORITY_OFFSET : weight;
}

/**
 * The columns a task instance copies from its task's definition, each with its value in a run of
 * this type: startRuns and settle's startCompensation insert them, and a clear that moves a run to
 * its DAG's latest version sets them again on the cleared instances (clearTasks specStatements), so
 * a column added here reaches all three. max_tries (from retries: try_number + retries on a clear),
 * trigger_rule and upstream_total are copied too, but apart: a clear may only move a run to a
 * version with the same rules and edges.
 */
const SPEC_COLUMNS: readonly [column: string, value: (spec: SerializedTask, runType: string) => unknown][] = [
  ["priority_weight", (spec, runType) => taskPriority(runType, spec.priorityWeight)],
  ["pool", (spec) => spec.pool],
  ["pool_slots", (spec) => spec.poolSlots],
  ["queue", (spec) => spec.queue],
  ["max_active_tis_per_dag", (spec) => spec.maxActiveTisPerDag ?? null],
];

/** SPEC_COLUMNS' names, in the order specValues gives their values. */
export const specColumnNames: readonly string[] = SPEC_COLUMNS.map(([column]) => column);
/** A placeholder per SPEC_COLUMNS column, for an INSERT's row. */
export const specPlaceholders = specColumnNames.map(() => "?").join(", ");

/** A task instance's SPEC_COLUMNS values for this task in a run of this type. */
export function specValues(spec: SerializedTask, runType: string): unknown[] {
  return SPEC_COLUMNS.map(([, value]) => value(spec, runType));
}

/** A page of queued runs (PageEnd: the caller pages on with afterId, so runs held by a paused or
 *  inactive DAG or one at maxActiveRuns never starve the runs behind them). */
export interface StartedRuns extends PageEnd {
  started: number;
  queued: number;
  /** Runs failed because their version cannot be read, or its task instances cannot be stored, with the reason. */
  failed: { dagId: string; runId: string; reason: string }[];
}

/** More task instances than this are inserted in several statements (under max_allowed_packet). */
const INSERT_CHUNK = 1000;
/** A task instance's row of placeholders in startRuns' INSERT (map_index -1 and try_number 0 written out). */
const ROW_PLACEHOLDERS = `(?, ?, ?, ?, -1, ?, 0, ?, ${specPlaceholders}, ?, ?, ?)`;
/** The last instant a DATETIME holds. */
const DATETIME_END = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export async function startRuns(
  db: Db,
  now: Date,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  options: PageOptions = {},
): Promise<StartedRuns> {
  return db.tx(async (tx) => {
    const [candidates] = await tx.query<RowDataPacket[]>(
      `SELECT id, dag_id, run_id, run_type, version_hash, queued_at FROM dag_run WHERE state = 'queued' AND id > ?
        ORDER BY id LIMIT ${Math.floor(options.limit ?? 50)} FOR UPDATE SKIP LOCKED`,
      [options.afterId ?? 0],
    );
    if (candidates.length === 0) return { started: 0, queued: 0, failed: [], scanned: 0, lastId: options.afterId ?? 0 };
    const dagIds = [...new Set(candidates.map((c) => c.dag_id as string))].sort();
    const [dags] = await tx.query<RowDataPacket[]>(
      `SELECT dag_id, is_paused, is_active, max_active_runs FROM dag WHERE dag_id IN (${inList(dagIds)}) FOR UPDATE`,
      dagIds,
    );
    const [active] = await tx.query<RowDataPacket[]>(
      `SELECT dag_id, COUNT(*) AS n FROM dag_run WHERE state = 'running' AND run_type <> 'backfill' AND dag_id IN (${inList(dagIds)}) GROUP BY dag_id`,
      dagIds,
    );
    const room = new Map<string, number>();
    /** DAGs whose runs may start: active ones (a backfill's runs start while the DAG is paused). */
    const startable = new Set<string>();
    for (const d of dags) {
      if (!d.is_active) continue;
      startable.add(d.dag_id);
      if (d.is_paused) continue;
      const running = Number(active.find((a) => a.dag_id === d.dag_id)?.n ?? 0);
      room.set(d.dag_id, Math.max(0, d.max_active_runs - running));
    }

    let started = 0;
    let queued = 0;
    const failed: StartedRuns["failed"] = [];
    /** Now, or the run's queued_at if it was queued after the tick took its now. */
    const startOf = (run: RowDataPacket): Date => (run.queued_at && run.queued_at.getTime() > now.getTime() ? run.queued_at : now);
    /** Fails a run that cannot start, the reason in its note; its place under maxActiveRuns goes to the next. */
    const fail = async (run: RowDataPacket, reason: string) => {
      if (run.run_type !== RunType.Backfill) room.set(run.dag_id, (room.get(run.dag_id) ?? 0) + 1);
      await tx.query("UPDATE dag_run SET state = ?, start_date = ?, end_date = ?, note = CONCAT_WS('\\n', note, ?) WHERE id = ?", [
        RunState.Failed,
        startOf(run),
        startOf(run),
        reason,
        run.id,
      ]);
      failed.push({ dagId: run.dag_id, runId: run.run_id, reason });
    };
    for (const run of candidates) {
      if (!startable.has(run.dag_id)) continue;
      if (run.run_type !== RunType.Backfill) {
        const left = room.get(run.dag_id) ?? 0;
        if (left <= 0) continue;
        room.set(run.dag_id, left - 1);
      }
      let shape: DagShape;
      try {
        shape = await shapeOf(run.version_hash);
      } catch (err) {
        if (!isUnusableVersion(err)) throw err;
        await fail(run, `this run could not start: ${unusableVersionNote(err)}`);
        continue;
      }
      // Compensation tasks are created only if the run fails (settle.ts startCompensation).
      const tasks = shape.dag.tasks.filter((t) => t.kind !== "compensate");
      const startedAt = startOf(run);
      const rows: unknown[][] = [];
      let runQueued = 0;
      for (const task of tasks) {
        const ready = evaluateTriggerRule(task.triggerRule, zeroCounts(task.upstream.length)) === "ready";
        // Ready tasks that depend on the previous run wait in `scheduled` (see releaseScheduled).
        const state = !ready ? TaskState.None : task.dependsOnPast ? TaskState.Scheduled : TaskState.Queued;
        rows.push([
          run.id,
          run.dag_id,
          run.run_id,
          task.taskId,
          state,
          task.retries,
          ...specValues(task, run.run_type),
          task.triggerRule,
          task.upstream.length,
          state === TaskState.Queued ? startedAt : null,
        ]);
        if (state === TaskState.Queued) runQueued++;
      }
      // The run's deadline comes from its pinned version (timeoutRuns fails it after that).
      const timeoutAt = runTimeoutAt(shape.dag, startedAt);
      let cannotStore =
        timeoutAt && !(timeoutAt.getTime() <= DATETIME_END) ? `its dagrunTimeout puts timeout_at past the year 9999` : null;
      // A failed INSERT leaves nothing behind (statement rollback); several need a savepoint.
      const chunked = rows.length > INSERT_CHUNK && !cannotStore;
      if (chunked) await tx.query("SAVEPOINT start_run");
      try {
        // Chunked so a 10,000-task DAG stays under max_allowed_packet.
        for (let i = 0; i < rows.length && !cannotStore; i += INSERT_CHUNK) {
          const chunk = rows.slice(i, i + INSERT_CHUNK);
          await tx.query(
            `INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, try_number, max_tries,
                                        ${specColumnNames.join(", ")}, trigger_rule, upstream_total, queued_at)
             VALUES ${chunk.map(() => ROW_PLACEHOLDERS).join(", ")}`,
            chunk.flat(),
          );
        }
      } catch (err) {
        if (!isDataError(err)) throw err;
        if (chunked) await tx.query("ROLLBACK TO SAVEPOINT start_run");
        cannotStore = (err as Error).message;
      }
      if (cannotStore) {
        await fail(
          run,
          `this run could not start: its DAG version cannot be stored (${cannotStore}); ` +
            "fix the DAG file (an option out of range is an import error now) and trigger a new run",
        );
        continue;
      }
      if (chunked) await tx.query("RELEASE SAVEPOINT start_run");
      queued += runQueued;
      await tx.query("UPDATE dag_run SET state = ?, start_date = ?, unfinished_tasks = ?, timeout_at = ? WHERE id = ?", [
        RunState.Running,
        startedAt,
        tasks.length,
        timeoutAt,
        run.id,
      ]);
      started++;
    }
    return { started, queued, failed, scanned: candidates.length, lastId: Number(candidates[candidates.length - 1]!.id) };
  });
}
