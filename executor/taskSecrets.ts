// The task process's side of ctx.variables and ctx.connection(): each lookup asks the worker
// over IPC (executor/secrets.ts answers from MySQL), and every secret fetched is handed to the
// try's masker so the task's log shows "***" in its place.
import { isSensitiveKey, sensitiveLeaves, type SecretMasker } from "../core/sensitive.ts";
import type { Connection, TaskVariables } from "../sdk/types.ts";
import type { SecretGet, SecretReply, TaskConnectionFields } from "./protocol.ts";

const waiting = new Map<number, (reply: SecretReply) => void>();
let nextRequest = 1;
process.on("message", (raw) => {
  const reply = raw as SecretReply;
  if (reply?.type === "secretReply") {
    waiting.get(reply.reqId)?.(reply);
    waiting.delete(reply.reqId);
  }
});

function request(kind: SecretGet["kind"], key: string): Promise<SecretReply | { error: string; code?: undefined }> {
  return new Promise((resolve) => {
    const reqId = nextRequest++;
    waiting.set(reqId, resolve);
    const get: SecretGet = { type: "secretGet", reqId, kind, key };
    process.send?.(get, (err: Error | null) => {
      if (err && waiting.delete(reqId)) resolve({ error: `the worker is gone (${err.message})` });
    });
  });
}

async function ask(kind: SecretGet["kind"], key: string): Promise<SecretReply["value"]> {
  const reply = await request(kind, key);
  if (reply.error === undefined) return (reply as SecretReply).value;
  // Thrown here, after the await, so its stack runs through the task's own call (not the IPC
  // handler), with the worker's code (BATON_CONFIG_INVALID for a value sealed with another key).
  const err = new Error(`could not read ${kind} "${key}": ${reply.error}`);
  throw reply.code === undefined ? err : Object.assign(err, { code: reply.code });
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function checkKey(what: string, key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > 250) {
    throw Object.assign(new Error(`${what}: the key must be a string of 1-250 characters, got ${JSON.stringify(key)}`), { nonRetryable: true });
  }
  // Keys compare with PAD SPACE: "key " would read the variable or connection "key".
  if (key.endsWith(" ")) throw Object.assign(new Error(`${what}: the key must not end with a space, got ${JSON.stringify(key)}`), { nonRetryable: true });
}

/** ctx.variables and ctx.connection for one try; fetched secrets are added to `masker`. */
export function taskSecrets(masker: SecretMasker): { variables: TaskVariables; connection: (id: string) => Promise<Connection> } {
  const readVariable = async (key: string): Promise<string | undefined> => {
    checkKey("ctx.variables.get(key)", key);
    const value = (await ask("variable", key)) as string | undefined;
    if (value === undefined) return undefined;
    const json = parseJson(value);
    if (isSensitiveKey(key)) {
      masker.add(value);
      if (json.ok) for (const leaf of sensitiveLeaves(json.value, true)) masker.add(leaf);
    } else if (json.ok) {
      for (const leaf of sensitiveLeaves(json.value)) masker.add(leaf);
    }
    return value;
  };

  const variables: TaskVariables = {
    async get(key: string, fallback?: string) {
      return (await readVariable(key)) ?? fallback;
    },
    async getJson(key: string, fallback?: unknown) {
      const text = await readVariable(key);
      if (text === undefined) return fallback;
      const json = parseJson(text);
      // JSON.parse's message quotes the text's first characters ("[1, hunter2-"...), a piece of a
      // sensitive value that the masker, which hides whole secrets, would let through.
      if (!json.ok) throw new Error(`variable "${key}" is not valid JSON${isSensitiveKey(key) ? " (its value is not shown: the key is sensitive)" : `: ${json.error}`}`);
      return json.value;
    },
  } as TaskVariables;

  const connection = async (connectionId: string): Promise<Connection> => {
    checkKey("ctx.connection(id)", connectionId);
    const fields = (await ask("connection", connectionId)) as TaskConnectionFields | undefined;
    if (!fields) {
      throw Object.assign(
        new Error(`connection "${connectionId}" is not defined: add it with POST /api/v1/connections or \`baton connections add ${connectionId}\``),
        { code: "BATON_CONNECTION_NOT_FOUND" },
      );
    }
    masker.add(fields.password);
    let extra: Record<string, unknown> = {};
    if (fields.extra !== null) {
      const json = parseJson(fields.extra);
      if (json.ok && json.value && typeof json.value === "object" && !Array.isArray(json.value)) extra = json.value as Record<string, unknown>;
      for (const leaf of sensitiveLeaves(extra)) masker.add(leaf);
    }
    return Object.freeze({ ...fields, extra });
  };

  return { variables, connection };
}
