// Variables (Airflow's): string values by key, for the API, the CLI and tasks (ctx.variables).
// Values are returned in plain text here; hiding sensitive ones is the API's job.
import { BatonError } from "../core/errors.ts";
import type { Queryable, ResultSetHeader, RowDataPacket } from "./db.ts";
import { orderBy } from "./queries/read.ts";
import { seal, unseal } from "./secretBox.ts";
import { limitOffset } from "./queries/paging.ts";

export interface Variable {
  key: string;
  value: string;
  description: string | null;
}

function fromRow(r: RowDataPacket): Variable {
  return { key: r.key as string, value: unseal(r.val as string, !!r.is_encrypted, `variable "${r.key}"`), description: (r.description as string | null) ?? null };
}

/** Airflow's order_by fields of get_variables. */
export const VARIABLE_ORDER_FIELDS = { key: "`key`" } as const;

export async function listVariables(db: Queryable, page: { limit: number; offset: number; orderBy?: string }): Promise<{ rows: Variable[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT \`key\`, val, description, is_encrypted FROM variable ${orderBy(page.orderBy, VARIABLE_ORDER_FIELDS, "key", "`key`")} ${limitOffset(page)}`,
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM variable");
  return { rows: rows.map(fromRow), total: Number(count!.n) };
}

export async function getVariable(db: Queryable, key: string): Promise<Variable | undefined> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT `key`, val, description, is_encrypted FROM variable WHERE `key` = ?", [key]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function createVariable(db: Queryable, v: { key: string; value: string; description?: string | null }): Promise<void> {
  const sealed = seal(v.value);
  try {
    await db.query("INSERT INTO variable (`key`, val, description, is_encrypted) VALUES (?, ?, ?, ?)", [v.key, sealed.text, v.description ?? null, sealed.encrypted]);
  } catch (err) {
    if ((err as { code?: string }).code === "ER_DUP_ENTRY") throw new BatonError("BATON_VARIABLE_EXISTS", `variable "${v.key}" already exists`);
    throw err;
  }
}

/** Changes the given fields; false when there is no such variable. */
export async function updateVariable(db: Queryable, key: string, change: { value?: string; description?: string | null }): Promise<boolean> {
  const sets: string[] = [];
  const params: unknown[] = [];
  if (change.value !== undefined) {
    const sealed = seal(change.value);
    sets.push("val = ?", "is_encrypted = ?");
    params.push(sealed.text, sealed.encrypted);
  }
  if (change.description !== undefined) {
    sets.push("description = ?");
    params.push(change.description);
  }
  if (sets.length === 0) return !!(await getVariable(db, key));
  const [result] = await db.query<ResultSetHeader>(`UPDATE variable SET ${sets.join(", ")} WHERE \`key\` = ?`, [...params, key]);
  // affectedRows counts matched rows only when something changed: check existence otherwise.
  return result.affectedRows > 0 || !!(await getVariable(db, key));
}

export async function deleteVariable(db: Queryable, key: string): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("DELETE FROM variable WHERE `key` = ?", [key]);
  return result.affectedRows > 0;
}
