// handBack — a stopping worker returns tries it will not finish: back to queued with the
// try not counted, so another worker runs them as the same try number.
// locks: the given task_instance rows (PK), then their pool rows; reads the task_step rows of
//   each (PK prefix, a plain read: a step recorded after it is fenced by this UPDATE).
// fence: try_number + claim token.
// keeps: what the try made durable, for the try that runs again under its number —
//   - steps_kept = whether the task instance has durable steps: a try numbered 1 loads its
//     steps only when it is set (tries after the first always do), so a handed-back first
//     try's re-run reuses the steps it recorded instead of running them again (migration 0027);
//   - first_poke_at: a sensor's first poke, kept, or set from the worker's memory when it did not
//     reach the row yet (recordFirstPoke), so its timeout still counts from that poke.
// events: running → queued with the try not counted (the row's hostname is cleared with the
//   claim), so each carries `why` as its detail: which worker handed it back and for what.
import { eventDetailStatement, runAll, type Db, type ResultSetHeader } from "../db.ts";
import { occupancyStatements } from "../pools.ts";

export interface HeldTry {
  id: number;
  tryNumber: number;
  token: string;
  pool: string;
  poolSlots: number;
  /** A sensor's first poke, made by this try (or read with its claim). */
  firstPokeAt?: Date | null;
}

/**
 * Hands `tries` back; `why` annotates their events (eventDetailStatement, sent with the first
 * UPDATE), e.g. `handed back by worker <host>:<pid> (shutdown)`.
 */
export async function handBack(db: Db, now: Date, tries: HeldTry[], why: string): Promise<number> {
  if (tries.length === 0) return 0;
  return db.tx(async (tx) => {
    const freed = new Map<string, number>();
    let returned = 0;
    for (const [i, t] of [...tries].sort((a, b) => a.id - b.id).entries()) {
      const update = {
        sql: `UPDATE task_instance SET state = 'queued', try_number = try_number - 1, claim_token = NULL, hostname = NULL, pid = NULL,
                heartbeat_at = NULL, start_date = NULL, queued_at = ?, first_poke_at = COALESCE(first_poke_at, ?),
                steps_kept = EXISTS (SELECT 1 FROM task_step s WHERE s.task_instance_id = task_instance.id)
          WHERE id = ? AND state = 'running' AND try_number = ? AND claim_token = ?`,
        params: [now, t.firstPokeAt ?? null, t.id, t.tryNumber, t.token],
      };
      const results = await runAll(tx, i === 0 ? [eventDetailStatement(tx, why), update] : [update]);
      const result = results[results.length - 1] as ResultSetHeader;
      if (result.affectedRows === 1) {
        returned++;
        freed.set(t.pool, (freed.get(t.pool) ?? 0) - t.poolSlots);
      }
    }
    for (const s of occupancyStatements(freed)) await tx.query(s.sql, s.params);
    return returned;
  });
}
