// Why recording a parsed file failed: because of the file (a value its columns cannot hold, a
// bundle over max_allowed_packet), which no retry fixes and must become that file's import error,
// or because of the database (connection lost, lock wait, server gone), which the next scan retries
// and must not be blamed on the file.
import { isDataError, type Db, type RowDataPacket } from "./db.ts";

/** Why a file cannot be recorded: the import error to record for it. */
export interface RecordFailure {
  code: "BATON_DAG_TOO_LARGE" | "BATON_INVALID_DAG";
  message: string;
}

/** The sizes a too-large message names: the bundled code and the largest DAG structure (JSON). */
export function textSizes(texts: { code: string; structures: string[] }): { codeBytes: number; structureBytes: number } {
  return { codeBytes: Buffer.byteLength(texts.code), structureBytes: Math.max(0, ...texts.structures.map((s) => Buffer.byteLength(s))) };
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function tooLargeMessage(sizes: { codeBytes: number; structureBytes: number }, limitBytes: number | null): string {
  return (
    `the bundled file is ${megabytes(sizes.codeBytes)} (its largest DAG structure ${megabytes(sizes.structureBytes)}), ` +
    `over the database's max_allowed_packet${limitBytes === null ? "" : ` (${megabytes(limitBytes)})`}: import less into the DAG file (read big data at run time), or raise max_allowed_packet`
  );
}

/** The server's max_allowed_packet, in bytes. */
async function maxAllowedPacket(db: Db): Promise<number> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT @@GLOBAL.max_allowed_packet AS n");
  return Number(rows[0]!.n);
}

/** Room for the rest of a statement that carries a file's code or a structure (its SQL and other values). */
const STATEMENT_OVERHEAD_BYTES = 64 * 1024;
/** Below this no server's max_allowed_packet is near (MariaDB's default is 16 MB): not looked at. */
const SMALL_TEXT_BYTES = 512 * 1024;

/**
 * The import error for a file whose code or DAG structure, escaped into its statement, would not
 * fit in one packet; null when it fits. Checked before sending: the server ends the connection
 * on such a packet, and the client sees either ER_NET_PACKET_TOO_LARGE or only a reset
 * (ECONNRESET, which is no proof the file was at fault).
 */
export async function oversizedFileFailure(db: Db, texts: { code: string; structures: string[] }): Promise<RecordFailure | null> {
  const sizes = textSizes(texts);
  if (Math.max(sizes.codeBytes, sizes.structureBytes) < SMALL_TEXT_BYTES) return null;
  const limit = await maxAllowedPacket(db);
  // Escaping (quotes, backslashes, newlines) can make the text in the statement longer.
  const escapedBytes = (text: string) => Buffer.byteLength(db.pool.escape(text));
  const largest = Math.max(escapedBytes(texts.code), ...texts.structures.map(escapedBytes));
  return largest + STATEMENT_OVERHEAD_BYTES > limit ? { code: "BATON_DAG_TOO_LARGE", message: tooLargeMessage(sizes, limit) } : null;
}

/**
 * The import error for a file whose recording failed because of its content; null when the
 * database is to blame (the caller leaves the file to the next scan).
 */
export async function fileRecordFailure(
  db: Db,
  err: unknown,
  sizes: { codeBytes: number; structureBytes: number },
): Promise<RecordFailure | null> {
  const code = (err as { code?: string })?.code;
  if (code === "ER_NET_PACKET_TOO_LARGE") {
    // The server closes the connection after such a packet; the pool opens another for this read.
    let limit: number | null = null;
    try {
      limit = await maxAllowedPacket(db);
    } catch {
      // The limit only makes the message more precise.
    }
    return { code: "BATON_DAG_TOO_LARGE", message: tooLargeMessage(sizes, limit) };
  }
  if (isDataError(err)) {
    return { code: "BATON_INVALID_DAG", message: `the DAG cannot be stored: ${(err as Error).message}` };
  }
  return null;
}
