// markRunSuccess — PATCH …/dagRuns/{id} state=success (Airflow's set_dag_run_state_to_success):
// the run and every task instance of it that did not succeed become `success`, in one transaction.
// Tasks not finished (none, scheduled, queued, running, up_for_retry, up_for_reschedule, deferred)
// and those that failed or were upstream_failed are marked; `skipped` and `removed` stay (a branch
// decided them). A queued run (no task instances yet) just ends `success`. A run already `success`
// keeps its end_date (only tasks left failed under it are marked): marking it twice is a no-op.
// locks: the run's task_instance rows to mark (ix_ti_waiting: dag_run_id, state, deferred_on; read and locked in
//   that index's order, which the ORDER BY spells out: EXPLAIN range, no filesort), then the dag_run row (PK), then
//   pool rows in name order — the order endRuns, settle and finishTries lock in.
// fence: a `running` try becomes `success` here: its worker's heartbeat finds the claim gone and
//   aborts ctx.signal, and its result is discarded by finishTries as fenced (state no longer
//   `running`); its pool slots are released here.
// saga: a run whose saga started (compensating, or compensated / compensation_failed) is refused
//   with BATON_DAG_RUN_COMPENSATING, nothing changed: its work is being or was undone, so "success"
//   would contradict its compensation (and marking compensations success would claim undone what
//   was not). Its compensations are marked one by one (setTaskState) to close the saga by hand.
// replaced: a run a backfill replaced (replaced_by_backfill_id, read under the run's lock) is
//   history beside the run that re-did its date, and has finished (only a finished run is replaced,
//   and nothing reopens it). Marking it success runs no task, but is refused all the same
//   (BATON_DAG_RUN_REPLACED, nothing changed): a failed run turned success owes its DAG's onSuccess
//   callback (migration 0020's trigger), which the date's current run runs, and the history would
//   claim the date succeeded in a run that failed (the backfill that created it would count it
//   success). Even marking a succeeded one again (a no-op) is refused: one rule, like the clear's.
// outcomes: the state before (read under the run's lock), the run's row as the transaction left it (not read
//   again after the commit) and how many task instances were marked; BATON_DAG_RUN_NOT_FOUND (BATON_DAG_NOT_FOUND without the DAG);
//   BATON_DAG_RUN_COMPENSATING; BATON_DAG_RUN_REPLACED.
import { BatonError } from "../../core/errors.ts";
import { RunState, TaskState, UNFINISHED_TASK_STATES } from "../../core/states.ts";
import { inList, type Db, type RowDataPacket } from "../db.ts";
import { durationTo, endAt } from "../endDate.ts";
import { occupancyStatements } from "../pools.ts";
import { getDagRunById, runNotFoundError, runReplacedError } from "../queries/read.ts";
import { sagaEnded } from "../../scheduler/clearSelection.ts";

const TO_MARK = [...UNFINISHED_TASK_STATES, TaskState.Failed, TaskState.UpstreamFailed];

export async function markRunSuccess(db: Db, now: Date, dagId: string, runId: string): Promise<{ previousState: string; run: RowDataPacket; tasksMarked: number }> {
  const [found] = await db.pool.query<RowDataPacket[]>("SELECT id FROM dag_run WHERE dag_id = ? AND run_id = ?", [dagId, runId]);
  if (!found[0]) throw await runNotFoundError(db.pool, dagId, runId);
  const id = Number(found[0].id);
  // Every event it causes says who marked the run.
  return db.withEventDetail(`run marked success by ${db.actor}`).tx(async (tx) => {
    const [tis] = await tx.query<RowDataPacket[]>(
      `SELECT id, state, pool, pool_slots FROM task_instance WHERE dag_run_id = ? AND state IN (${inList(TO_MARK)}) ORDER BY dag_run_id, state, deferred_on, id FOR UPDATE`,
      [id, ...TO_MARK],
    );
    const [[run]] = await tx.query<RowDataPacket[]>("SELECT state, compensation, replaced_by_backfill_id, logical_date FROM dag_run WHERE id = ? FOR UPDATE", [id]);
    if (!run) throw await runNotFoundError(tx, dagId, runId);
    if (run.replaced_by_backfill_id != null) {
      throw await runReplacedError(
        tx,
        { dagId, runId, backfillId: Number(run.replaced_by_backfill_id), logicalDate: run.logical_date ?? null },
        "marking it success would owe its onSuccess callback for a date already re-run, and record as done what it did not do",
      );
    }
    if (run.compensation != null) {
      const how = sagaEnded({ state: run.state, compensation: run.compensation }) ? "has compensated" : "is compensating";
      throw new BatonError(
        "BATON_DAG_RUN_COMPENSATING",
        `DAG run "${runId}" ${how} (undoing its succeeded tasks), so it cannot be marked success; mark its compensations ` +
          "(<task>__compensate) to close the saga by hand, or clear its tasks once the saga ended to start a new attempt",
      );
    }
    if (tis.length > 0) {
      const ids = tis.map((t) => Number(t.id));
      const [end, duration] = [endAt(now), durationTo(now)];
      await tx.query(
        // Assignments run left to right: duration reads end_date and start_date before they change
        // (one not started takes 0, as its start becomes now). Tasks that had ended (failed,
        // upstream_failed) keep their times.
        `UPDATE task_instance SET state = 'success',
                duration = IF(end_date IS NULL, COALESCE(${duration.sql}, 0), duration),
                end_date = COALESCE(end_date, ${end.sql}), start_date = COALESCE(start_date, ?),
                heartbeat_at = NULL, next_retry_at = NULL, next_check_at = NULL, deferred_on = NULL
          WHERE id IN (${inList(ids)})`,
        [...duration.params, ...end.params, now, ...ids],
      );
    }
    // A run that already succeeded keeps its end_date (Airflow's set_state changes it only with the
    // state): marking it again is a no-op, not a new end with no event to say so.
    const end = endAt(now);
    const ended = run.state === RunState.Success ? `COALESCE(end_date, ${end.sql})` : end.sql;
    await tx.query(
      `UPDATE dag_run SET state = ?, start_date = COALESCE(start_date, ?), end_date = ${ended}, unfinished_tasks = 0
        WHERE id = ?`,
      [RunState.Success, run.state === RunState.Queued ? null : now, ...end.params, id],
    );
    const freed = new Map<string, number>();
    for (const t of tis) if (t.state === TaskState.Running) freed.set(t.pool, (freed.get(t.pool) ?? 0) - Number(t.pool_slots));
    for (const s of occupancyStatements(freed)) await tx.query(s.sql, s.params);
    return { previousState: run.state as string, run: (await getDagRunById(tx, id))!, tasksMarked: tis.length };
  });
}
