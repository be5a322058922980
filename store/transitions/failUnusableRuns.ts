// failUnusableRuns — fails runs whose pinned DAG version cannot be read (isUnusableVersion:
// BATON_DAG_VERSION_UNUSABLE), met by a scheduler step that needs it (releasing a scheduled
// task, timing out a signal's wait). Nothing of such a run can be decided (its tasks, their
// trigger rules and timeouts), and the step failed on it at every tick, holding back every other
// run it would have moved on. It is ended as a cancel ends a run (endRuns): running task
// instances fail with BATON_DAG_VERSION_UNUSABLE (their workers abort at the next heartbeat),
// the other unfinished ones are skipped, no compensation starts (which tasks declare one cannot
// be read), and the reason is added to the run's note.
// locks: as endRuns (task rows, the run rows, pool rows); each run is re-checked under its lock:
//   still queued or running, and still on the version that could not be read (a clear with
//   use_latest_version may have moved it to a readable one: left alone).
import type { Db } from "../db.ts";
import { endRuns } from "./timeoutRuns.ts";

/** A run met with an unreadable version: the version it was on, and the reason for its note. */
export interface UnusableRun {
  id: number;
  versionHash: string;
  reason: string;
}

/** Fails the runs given (one entry per run is enough; repeats are ignored); returns those it failed. */
export async function failUnusableRuns(db: Db, now: Date, runs: readonly UnusableRun[]): Promise<{ dagId: string; runId: string; reason: string }[]> {
  if (runs.length === 0) return [];
  const byId = new Map(runs.map((r) => [r.id, r]));
  return db.tx(async (tx) => {
    const ended = await endRuns(tx, now, [...byId.keys()].sort((a, b) => a - b), {
      recheck: { sql: "state IN ('queued', 'running')", params: [] },
      versions: new Map([...byId.values()].map((r) => [r.id, r.versionHash])),
      errorFor: (run) => ({ name: "DagVersionUnusableError", code: "BATON_DAG_VERSION_UNUSABLE", message: byId.get(Number(run.id))!.reason, nonRetryable: true }),
    });
    for (const r of ended.runs) {
      await tx.query("UPDATE dag_run SET start_date = COALESCE(start_date, ?), note = CONCAT_WS('\\n', note, ?) WHERE id = ?", [now, byId.get(r.id)!.reason, r.id]);
    }
    return ended.runs.map((r) => ({ dagId: r.dagId, runId: r.runId, reason: byId.get(r.id)!.reason }));
  });
}
