// API tokens: created, listed, revoked, and looked up by hash on every authenticated request.
import { BatonError } from "../core/errors.ts";
import type { Role } from "../core/roles.ts";
import { MAX_ACTOR_LENGTH, type Queryable, type ResultSetHeader, type RowDataPacket } from "./db.ts";
import { limitOffset } from "./queries/paging.ts";

export interface ApiTokenRow {
  id: number;
  name: string;
  role: Role;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = "id, name, role, prefix, created_at, expires_at, last_used_at, revoked_at";

export async function insertToken(
  db: Queryable,
  token: { name: string; role: Role; hash: string; prefix: string; now: Date; expiresAt?: Date | null },
  options: { ignoreDuplicate?: boolean } = {},
): Promise<boolean> {
  try {
    const [result] = await db.query<ResultSetHeader>(
      `INSERT ${options.ignoreDuplicate ? "IGNORE " : ""}INTO api_token (name, role, token_hash, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
      [token.name, token.role, token.hash, token.prefix, token.now, token.expiresAt ?? null],
    );
    return result.affectedRows === 1;
  } catch (err) {
    if ((err as { code?: string }).code === "ER_DUP_ENTRY") throw new BatonError("BATON_TOKEN_EXISTS", `a token named "${token.name}" already exists`);
    throw err;
  }
}

/** The live token with this hash (not revoked, not expired at `now`). */
export async function findLiveToken(db: Queryable, hash: string, now: Date): Promise<ApiTokenRow | undefined> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ${COLUMNS} FROM api_token WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
    [hash, now],
  );
  return rows[0] as ApiTokenRow | undefined;
}

export async function hasTokenWithHash(db: Queryable, hash: string): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT 1 FROM api_token WHERE token_hash = ?", [hash]);
  return rows.length > 0;
}

export async function countLiveAdminTokens(db: Queryable, now: Date): Promise<number> {
  const [[row]] = await db.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM api_token WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
    [now],
  );
  return Number(row!.n);
}

export async function listTokens(db: Queryable, page: { limit: number; offset: number }): Promise<{ rows: ApiTokenRow[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM api_token ORDER BY id ${limitOffset(page)}`);
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM api_token");
  return { rows: rows as ApiTokenRow[], total: Number(count!.n) };
}

export async function getTokenByName(db: Queryable, name: string): Promise<ApiTokenRow | undefined> {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM api_token WHERE name = ?`, [name]);
  return rows[0] as ApiTokenRow | undefined;
}

/** Revokes a token, expired or not; false when there is no such name, or it was revoked already. */
export async function revokeToken(db: Queryable, name: string, now: Date): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("UPDATE api_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [now, name]);
  return result.affectedRows === 1;
}

/** Marks use at most once a minute per token, so authentication stays read-only on hot paths. */
export async function touchToken(db: Queryable, id: number, now: Date): Promise<void> {
  await db.query("UPDATE api_token SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ? - INTERVAL 1 MINUTE)", [now, id, now]);
}

/**
 * A refused request, in the event log: who (`token:<name>` or "anonymous"), what, and why; never
 * the token. It concerns no DAG or run: their columns (NOT NULL) hold "" and 0, answered as null.
 */
export async function recordAuthEvent(db: Queryable, event: { at: Date; outcome: "unauthenticated" | "forbidden"; actor: string; detail: string }): Promise<void> {
  await db.query(
    "INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, to_state, actor, detail) VALUES (?, 'auth', '', '', 0, ?, ?, ?)",
    [event.at, event.outcome, event.actor.slice(0, MAX_ACTOR_LENGTH), event.detail.slice(0, 1000)],
  );
}
