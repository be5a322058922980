// handBack — a stopping worker returns tries it will not finish: back to queued with the
// try not counted, so another worker runs them as the same try number.
// locks: the given task_instance rows (PK); fence: try_number + claim token.
import { inList, type Db, type ResultSetHeader } from "../db.ts";

export interface HeldTry {
  id: number;
  tryNumber: number;
  token: string;
}

export async function handBack(db: Db, now: Date, tries: HeldTry[]): Promise<number> {
  if (tries.length === 0) return 0;
  let returned = 0;
  for (const token of new Set(tries.map((t) => t.token))) {
    const mine = tries.filter((t) => t.token === token);
    const [result] = await db.pool.query<ResultSetHeader>(
      `UPDATE task_instance SET state = 'queued', try_number = try_number - 1, claim_token = NULL, hostname = NULL, pid = NULL,
              heartbeat_at = NULL, queued_at = ?
        WHERE id IN (${inList(mine.map((t) => t.id))}) AND state = 'running' AND claim_token = ?`,
      [now, ...mine.map((t) => t.id), token],
    );
    returned += result.affectedRows;
  }
  return returned;
}
