// redriveDeadLetters — clears dead-letter task instances (and their downstream tasks) so they run
// again, one clearTasks transaction per run, each run on its pinned version. A run whose saga's
// compensation failed has two kinds of dead letters: the task that failed the run and the failed
// compensation. Chosen together, the compensation is resumed (preferCompensation) and the task
// stays a dead letter: a saga owes its compensations first, and a new attempt would delete them.
// (A run's own tasks are no dead letters once its saga started, store/queries/deadLetters.ts, so
// only a run that started compensating after the list was read meets this.) Naming by id such a
// task, whose failure its run's saga handles, is refused (BATON_DAG_RUN_COMPENSATING, nothing
// re-driven, a dry run included): its work was undone, and running the attempt again is a
// deliberate choice, made by clearing it. Naming by id a failed task of a run a backfill replaced
// is refused likewise (BATON_DAG_RUN_REPLACED): that run is history, and its date's current run
// is the backfill's; re-driving the old one would run the date twice.
// race: the saga checks here (sagaHandledFailures, listDeadLetters) are reads before the clears.
//   A run's saga may start, and even end, before its clear takes the run's lock; clearTasks
//   decides again under that lock (ClearRequest.redrive): by dag_id, such a run's own tasks are
//   skipped (not re-driven, not counted) and the other runs go on; by id, they are refused
//   (BATON_DAG_RUN_COMPENSATING). So is a run a backfill replaced after the list was read
//   (BATON_DAG_RUN_REPLACED by id). Each run is its own transaction, so a by-id re-drive refused
//   at a later run keeps the runs re-driven before it: the error names them.
// answer: every dead letter chosen, each with skipped: null when it was (or, on a dry run, would
//   be) re-driven, else why not (RedriveSkip); redriven counts those with null; and every id named
//   that was no dead letter, with why not (notDeadLetters: not found, another DAG, not failed, …),
//   so a re-drive by id that chose none still says what each id was; and how many dead letters of
//   the filter were left for another call (remaining: a call takes at most REDRIVE_BATCH).
import type { DagShape } from "../../core/dagStructure.ts";
import type { Db, RowDataPacket } from "../db.ts";
import { BatonError } from "../../core/errors.ts";
import { listDeadLetters, notDeadLetters, replacedRunFailures, sagaHandledFailures, type DeadLetterFilter, type NotDeadLetter } from "../queries/deadLetters.ts";
import { clearTasks } from "./clearTasks.ts";

/**
 * Why a dead letter chosen by a re-drive by dag_id was not re-driven, decided from its run's row
 * as its clear read it under the run's lock: "replaced", a backfill replaced the run; "compensating",
 * its saga started (its own tasks are no dead letters any more); "changed", it was no longer a
 * failed task to clear (cleared or marked by someone else since it was listed).
 */
export type RedriveSkip = "replaced" | "compensating" | "changed";

export function redriveSkip(letterId: number, cleared: readonly { id: number }[], run: Record<string, unknown>): RedriveSkip | null {
  if (cleared.some((c) => Number(c.id) === letterId)) return null;
  if (run.replaced_by_backfill_id != null) return "replaced";
  if (run.compensation != null) return "compensating";
  return "changed";
}

/** Dead letters one re-drive takes at most (the most recent first); the answer's remaining says how many it left. */
export const REDRIVE_BATCH = 10_000;

export async function redriveDeadLetters(
  db: Db,
  now: Date,
  filter: DeadLetterFilter,
  dryRun: boolean,
  shapeOf: (versionHash: string) => Promise<DagShape>,
  /** Test seam: runs before each run's clear (after the dead letters were read). */
  beforeClear?: (run: { dagId: string; runId: string }) => Promise<void>,
  batch = REDRIVE_BATCH,
): Promise<{ letters: (RowDataPacket & { skipped: RedriveSkip | null })[]; redriven: number; notDeadLetters: NotDeadLetter[]; remaining: number }> {
  const handled = await sagaHandledFailures(db.pool, filter);
  if (handled.length > 0) {
    throw new BatonError(
      "BATON_DAG_RUN_COMPENSATING",
      `${handled.map((r) => `task instance ${r.id} ("${r.task_id}" of run "${r.run_id}" of DAG "${r.dag_id}")`).join(", ")} ` +
        `${handled.length === 1 ? "is no dead letter: its run's" : "are no dead letters: their runs'"} saga undoes or undid the attempt that failed; ` +
        "re-drive the failed compensations (<task>__compensate) to finish undoing it, or clear the task once the saga ended to start a new attempt",
    );
  }
  const replaced = await replacedRunFailures(db.pool, filter);
  if (replaced.length > 0) {
    const one = replaced.length === 1;
    throw new BatonError(
      "BATON_DAG_RUN_REPLACED",
      `${replaced
        .map(
          (r) =>
            `task instance ${r.id} ("${r.task_id}" of run "${r.run_id}" of DAG "${r.dag_id}", replaced by backfill ${r.replaced_by_backfill_id}` +
            `${r.current_run_id ? `'s run "${r.current_run_id}"` : ", whose run was deleted since"})`,
        )
        .join(", ")} ${one ? "is no dead letter: its run is" : "are no dead letters: their runs are"} kept as history; ` +
        `re-driving ${one ? "it" : "them"} would run ${one ? "its date" : "their dates"} twice. Re-drive or clear ${one ? "the run that replaced it" : "the runs that replaced them"} instead`,
    );
  }
  const { rows, total } = await listDeadLetters(db.pool, filter, { limit: batch, offset: 0 });
  const others = await notDeadLetters(db.pool, filter, new Set(rows.map((r) => Number(r.id))));
  const byRun = new Map<string, { dagId: string; runId: string; taskIds: string[]; letters: RowDataPacket[] }>();
  for (const r of rows) {
    const key = `${r.dag_id}\u0000${r.run_id}`;
    const entry = byRun.get(key) ?? { dagId: r.dag_id as string, runId: r.run_id as string, taskIds: [] as string[], letters: [] as RowDataPacket[] };
    entry.taskIds.push(r.task_id as string);
    entry.letters.push(r);
    byRun.set(key, entry);
  }
  let redriven = 0;
  const skipped = new Map<number, RedriveSkip | null>();
  const done: string[] = [];
  const redrive = filter.ids?.length ? "refuse" : "skip";
  for (const run of byRun.values()) {
    await beforeClear?.({ dagId: run.dagId, runId: run.runId });
    let result;
    try {
      result = await clearTasks(
        dryRun ? db : db.withEventDetail(`re-driven as a dead letter by ${db.actor}`),
        now,
        { dagId: run.dagId, runId: run.runId, taskIds: run.taskIds, onlyFailed: true, includeDownstream: true, dryRun, preferCompensation: true, keepSteps: true, keepSignals: true, redrive },
        shapeOf,
      );
    } catch (err) {
      if (err instanceof BatonError && done.length > 0 && !dryRun) {
        throw new BatonError(err.code, `${err.message} (the re-drive stopped here; already re-driven: ${done.join(", ")})`, err.details);
      }
      throw err;
    }
    let mine = 0;
    for (const letter of run.letters) {
      const why = redriveSkip(Number(letter.id), result.cleared, result.run);
      skipped.set(Number(letter.id), why);
      if (why === null) mine++;
    }
    redriven += mine;
    if (mine > 0) done.push(`run "${run.runId}" of DAG "${run.dagId}"`);
  }
  return { letters: rows.map((r) => Object.assign(r, { skipped: skipped.get(Number(r.id)) ?? null })), redriven, notDeadLetters: others, remaining: Math.max(0, total - rows.length) };
}
