// Connections (Airflow's): where and how tasks reach outside systems, for the API, the CLI and
// tasks (ctx.connection). Password and extra are returned in plain text here; the API never
// returns the password and masks sensitive extra values.
import { BatonError } from "../core/errors.ts";
import type { Queryable, ResultSetHeader, RowDataPacket } from "./db.ts";
import { orderBy } from "./queries/read.ts";
import { seal, unseal } from "./secretBox.ts";
import { limitOffset } from "./queries/paging.ts";

export interface Connection {
  connection_id: string;
  conn_type: string;
  description: string | null;
  host: string | null;
  login: string | null;
  schema: string | null;
  port: number | null;
  password: string | null;
  /** JSON object text, or null. */
  extra: string | null;
}

export type ConnectionFields = Omit<Connection, "connection_id">;
export const CONNECTION_FIELDS = ["conn_type", "description", "host", "login", "schema", "port", "password", "extra"] as const satisfies readonly (keyof ConnectionFields)[];

const COLUMNS = "connection_id, conn_type, description, host, login, `schema`, port, password, extra, is_encrypted, is_extra_encrypted";

function fromRow(r: RowDataPacket): Connection {
  const what = `connection "${r.connection_id}"`;
  return {
    connection_id: r.connection_id,
    conn_type: r.conn_type,
    description: r.description ?? null,
    host: r.host ?? null,
    login: r.login ?? null,
    schema: r.schema ?? null,
    port: r.port === null || r.port === undefined ? null : Number(r.port),
    password: r.password === null ? null : unseal(r.password, !!r.is_encrypted, `the password of ${what}`),
    extra: r.extra === null ? null : unseal(r.extra, !!r.is_extra_encrypted, `the extra of ${what}`),
  };
}

/** Column assignments for the given fields, sealing password and extra. */
function assignments(fields: Partial<ConnectionFields>): { columns: string[]; params: unknown[] } {
  const columns: string[] = [];
  const params: unknown[] = [];
  for (const name of CONNECTION_FIELDS) {
    const value = fields[name];
    if (value === undefined) continue;
    if ((name === "password" || name === "extra") && value !== null) {
      const sealed = seal(String(value));
      columns.push(name, name === "password" ? "is_encrypted" : "is_extra_encrypted");
      params.push(sealed.text, sealed.encrypted);
    } else {
      columns.push(name === "schema" ? "`schema`" : name);
      params.push(value);
    }
  }
  return { columns, params };
}

/** Airflow's order_by fields of get_connections; ties are broken by connection_id. */
export const CONNECTION_ORDER_FIELDS = { connection_id: "connection_id", conn_type: "conn_type", host: "host", port: "port" } as const;

export async function listConnections(db: Queryable, page: { limit: number; offset: number; orderBy?: string }): Promise<{ rows: Connection[]; total: number }> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT ${COLUMNS} FROM connection ${orderBy(page.orderBy, CONNECTION_ORDER_FIELDS, "connection_id", "connection_id")} ${limitOffset(page)}`,
  );
  const [[count]] = await db.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM connection");
  return { rows: rows.map(fromRow), total: Number(count!.n) };
}

export async function getConnection(db: Queryable, connectionId: string): Promise<Connection | undefined> {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM connection WHERE connection_id = ?`, [connectionId]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function createConnection(db: Queryable, c: Pick<Connection, "connection_id" | "conn_type"> & Partial<ConnectionFields>): Promise<void> {
  const { columns, params } = assignments(c);
  try {
    await db.query(`INSERT INTO connection (connection_id, ${columns.join(", ")}) VALUES (?, ${columns.map(() => "?").join(", ")})`, [c.connection_id, ...params]);
  } catch (err) {
    if ((err as { code?: string }).code === "ER_DUP_ENTRY") throw new BatonError("BATON_CONNECTION_EXISTS", `connection "${c.connection_id}" already exists`);
    throw err;
  }
}

/** Changes the given fields (null clears one); false when there is no such connection. */
export async function updateConnection(db: Queryable, connectionId: string, change: Partial<ConnectionFields>): Promise<boolean> {
  const { columns, params } = assignments(change);
  if (columns.length === 0) return !!(await getConnection(db, connectionId));
  const [result] = await db.query<ResultSetHeader>(`UPDATE connection SET ${columns.map((c) => `${c} = ?`).join(", ")} WHERE connection_id = ?`, [
    ...params,
    connectionId,
  ]);
  return result.affectedRows > 0 || !!(await getConnection(db, connectionId));
}

export async function deleteConnection(db: Queryable, connectionId: string): Promise<boolean> {
  const [result] = await db.query<ResultSetHeader>("DELETE FROM connection WHERE connection_id = ?", [connectionId]);
  return result.affectedRows > 0;
}
