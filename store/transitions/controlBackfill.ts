// controlBackfill — pause, unpause and cancel a backfill.
// pause: running → paused (no new runs; its active runs go on). unpause: paused → running.
// cancel: running | paused → cancelling, its dates not yet handled skipped as `cancelled`; the
//   runs it created go on, and the scheduler (finishCancelledBackfills) marks it cancelled once
//   none is active. With force, its queued and running runs are failed now through endRuns
//   (running tasks failed with BATON_DAG_RUN_CANCELLED, the others skipped) and it is cancelled
//   at once.
// locks: the backfill row (PK, FOR UPDATE: waits for a scheduler advancing it, so no run is
//   created after the cancel commits), its pending backfill_date rows (PK range), then as endRuns.
// outcomes: the new state; BATON_BACKFILL_NOT_FOUND; BATON_BACKFILL_FINISHED. Pausing a paused
//   backfill, unpausing a running one, or cancelling a cancelling one without force is a no-op.
import { BatonError } from "../../core/errors.ts";
import type { Db, RowDataPacket, Tx } from "../db.ts";
import { endRuns } from "./timeoutRuns.ts";

export type BackfillAction = "pause" | "unpause" | "cancel";

async function lockBackfill(tx: Tx, id: number): Promise<RowDataPacket> {
  const [[row]] = await tx.query<RowDataPacket[]>("SELECT id, state, total_dates, next_ordinal FROM backfill WHERE id = ? FOR UPDATE", [id]);
  if (!row) throw new BatonError("BATON_BACKFILL_NOT_FOUND", `backfill ${id} not found`);
  return row;
}

const finished = (id: number, state: string) => new BatonError("BATON_BACKFILL_FINISHED", `backfill ${id} is ${state}`);

export async function controlBackfill(
  db: Db,
  now: Date,
  id: number,
  action: BackfillAction,
  options: { force?: boolean } = {},
): Promise<{ state: string; runsFailed: number }> {
  return db.tx(async (tx) => {
    const b = await lockBackfill(tx, id);
    const state = b.state as string;
    const set = async (to: string, completed = false) => {
      await tx.query(`UPDATE backfill SET state = ?, updated_at = ?${completed ? ", completed_at = ?" : ""} WHERE id = ?`, [
        to,
        now,
        ...(completed ? [now] : []),
        id,
      ]);
      return { state: to, runsFailed: 0 };
    };
    if (state === "completed" || state === "cancelled") throw finished(id, state);
    if (action === "pause") {
      if (state === "cancelling") throw finished(id, state);
      return state === "paused" ? { state, runsFailed: 0 } : set("paused");
    }
    if (action === "unpause") {
      if (state === "cancelling") throw finished(id, state);
      return state === "running" ? { state, runsFailed: 0 } : set("running");
    }
    // cancel
    if (Number(b.next_ordinal) < Number(b.total_dates)) {
      await tx.query("UPDATE backfill_date SET state = 'skipped', reason = 'cancelled' WHERE backfill_id = ? AND sort_ordinal >= ?", [id, b.next_ordinal]);
      await tx.query("UPDATE backfill SET next_ordinal = total_dates WHERE id = ?", [id]);
    }
    const [active] = await tx.query<RowDataPacket[]>(
      "SELECT id FROM dag_run WHERE backfill_id = ? AND state IN ('queued', 'running') ORDER BY id",
      [id],
    );
    if (active.length > 0 && !options.force) return set("cancelling");
    let runsFailed = 0;
    if (active.length > 0) {
      const ended = await endRuns(
        tx,
        now,
        active.map((r) => Number(r.id)),
        {
          recheck: { sql: "state IN ('queued', 'running')", params: [] },
          errorFor: (r) => ({
            name: "DagRunCancelledError",
            code: "BATON_DAG_RUN_CANCELLED",
            message: `dag run "${r.run_id}" of "${r.dag_id}" was cancelled with its backfill ${id}`,
            nonRetryable: true,
          }),
        },
      );
      runsFailed = ended.runs.length;
    }
    await set("cancelled", true);
    return { state: "cancelled", runsFailed };
  });
}
