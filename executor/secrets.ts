// The worker's side of ctx.variables and ctx.connection(): task processes never touch the
// database, so they ask their worker over IPC and it answers from MySQL (decrypted).
import type { Child } from "../core/childProcess.ts";
import { BatonError } from "../core/errors.ts";
import type { Queryable } from "../store/db.ts";
import { getConnection } from "../store/connections.ts";
import { getVariable } from "../store/variables.ts";
import type { SecretGet, SecretReply } from "./protocol.ts";

export function isSecretGet(message: Record<string, unknown>): message is Record<string, unknown> & SecretGet {
  return message.type === "secretGet" && typeof message.reqId === "number" && typeof message.key === "string";
}

export async function lookUpSecret(db: Queryable, get: SecretGet): Promise<SecretReply> {
  try {
    if (get.kind === "variable") {
      return { type: "secretReply", reqId: get.reqId, value: (await getVariable(db, get.key))?.value };
    }
    const c = await getConnection(db, get.key);
    return {
      type: "secretReply",
      reqId: get.reqId,
      value: c && {
        connectionId: c.connection_id,
        connType: c.conn_type,
        description: c.description,
        host: c.host,
        login: c.login,
        password: c.password,
        schema: c.schema,
        port: c.port,
        extra: c.extra,
      },
    };
  } catch (err) {
    return { type: "secretReply", reqId: get.reqId, error: (err as Error).message, ...(err instanceof BatonError ? { code: err.code } : {}) };
  }
}

/** Answers a child's lookup; a child that died meanwhile is simply not answered. */
export async function answerSecret(db: Queryable, child: Child, get: SecretGet): Promise<void> {
  child.send((await lookUpSecret(db, get)) as unknown as Record<string, unknown>);
}
