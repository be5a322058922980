import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import os from "node:os";
import mysql from "mysql2/promise";
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { BatonError } from "../core/errors.ts";
import { PreparedStatements } from "./preparedStatements.ts";
import { LOCAL_SOCKETS, meansLocalSocket, parseMysqlUrl, redactUrl, type SocketLookup } from "../core/mysqlUrl.ts";

export { redactUrl };

export type { Pool, PoolConnection, ResultSetHeader, RowDataPacket };

/** A connection inside a transaction; store functions that change state take one. */
export type Tx = PoolConnection;
/** Anything that can run a statement: the pool (autocommit) or a transaction. */
export type Queryable = Pool | PoolConnection;

export interface Db {
  readonly pool: Pool;
  readonly url: string;
  readonly database: string;
  /** Runs fn in one READ COMMITTED transaction, retried whole on deadlock or lock-wait timeout. */
  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Like tx, for hot paths that count round trips: statements are sent in batches (one round
   * trip each), BEGIN rides on the first batch and COMMIT on the last.
   */
  batchTx<T>(fn: (btx: BatchTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** This database acting as `actor` (an API token): the event log names it for what it changes. */
  actingAs(actor: string): Db;
  /** Who changes state through this Db, as the event log's `actor` (owner) names it. */
  readonly actor: string;
  /**
   * This database annotating the events its statements cause: every event log row a trigger
   * writes from a statement sent through it has `detail` = `detail` (the first EVENT_DETAIL_CHARS
   * characters), e.g. why a transition was made ("cleared by token:ops"). Set on the connection
   * with @baton_actor when it is taken from the pool and reset as it goes back (see openDb), so no
   * other caller's events inherit it. Statements through a Db without one write NULL;
   * eventDetailStatement() sets one within a transaction without a round trip of its own.
   */
  withEventDetail(detail: string): Db;
  /** The detail set by withEventDetail, else null. */
  readonly eventDetail: string | null;
  /**
   * This database with another statement timeout (see openDb's statementTimeoutMs; 0: none): a
   * shorter one for a health check, a longer one for a statement that may legitimately run long.
   */
  withStatementTimeout(ms: number): Db;
  /** How long a statement through this Db may wait for the server (0: no limit). */
  readonly statementTimeoutMs: number;
}

/**
 * The timeout for work that may legitimately run longer than usual: at least `wanted`, and no
 * limit when the operator chose none (BATON_DB_STATEMENT_TIMEOUT=0).
 */
export function longerStatementTimeout(current: number, wanted: number): number {
  return current === 0 ? 0 : Math.max(current, wanted);
}

export interface Statement {
  sql: string;
  params?: unknown[];
  /**
   * batchTx may send it as a server-side prepared statement once it is hot on a connection
   * (store/preparedStatements.ts). Only for statements without derived tables: MariaDB 10.11
   * prepares some of those wrongly (a correlated column of a derived table was "unknown", and
   * claims with derived tables chose other rows than as text). Set by the hot paths' builders.
   */
  prepare?: boolean;
}

export interface BatchTx {
  /** The transaction's connection, for statements whose shape depends on earlier results. */
  readonly conn: Tx;
  /** Sends statements in one round trip (opening the transaction with the first batch); one result each. */
  run(statements: Statement[]): Promise<unknown[]>;
  /** Sends statements and COMMIT in one round trip. */
  commit(statements?: Statement[]): Promise<unknown[]>;
  /**
   * Whether runCommittingIf() can commit in its own round trip: MariaDB runs an anonymous
   * compound statement (`BEGIN NOT ATOMIC … END`); MySQL has none.
   */
  readonly conditionalCommit: boolean;
  /**
   * Sends statements, then, in the same round trip, runs `thenStatements` and COMMITs only if
   * `condition` (an SQL boolean evaluated after them, e.g. on session variables they set)
   * holds. When it does not, `thenStatements` did not run and the transaction stays open for
   * more statements, a commit() or a rollback(). Answers one result per statement (not per
   * thenStatement). Only where conditionalCommit is true. `otherwise`, a SELECT, runs in the same
   * round trip when the condition does not hold, its rows answered as `otherwise` (what the caller
   * would read next in that case only).
   */
  runCommittingIf(
    statements: Statement[],
    condition: Statement,
    thenStatements?: Statement[],
    otherwise?: Statement,
  ): Promise<{ results: unknown[]; committed: boolean; otherwise?: unknown }>;
  /** Undoes everything so far; the next run() opens a new transaction. */
  rollback(): Promise<void>;
}

/** event_log.detail's length (characters): a longer event detail is cut to it. */
export const EVENT_DETAIL_CHARS = 1000;

/**
 * What each connection's @baton_event_detail holds (read by the event-log triggers, migration
 * 0031): the text, null (unset), or UNKNOWN_DETAIL after eventDetailStatement(), which may or may
 * not have run. A connection not in the map holds null.
 */
const UNKNOWN_DETAIL = Symbol("baton.unknownEventDetail");
const eventDetailOf = new WeakMap<object, string | null | typeof UNKNOWN_DETAIL>();

/** The core (callback) connection of a promise connection (a Tx). */
function coreOf(conn: Tx): CoreConnection {
  return (conn as unknown as { connection: CoreConnection }).connection;
}

/**
 * A statement that sets the detail of the events caused by the statements after it in `tx` (as
 * Db.withEventDetail does for a whole transaction), e.g. a different one per row of a batch; null
 * unsets it. Send it in the same batch as those statements: it costs no round trip. The
 * connection's detail is reset when it goes back to the pool, so it lasts at most to the end of
 * the transaction.
 */
export function eventDetailStatement(tx: Tx, detail: string | null): Statement {
  eventDetailOf.set(coreOf(tx), UNKNOWN_DETAIL);
  return { sql: "SET @baton_event_detail = ?", params: [detail === null ? null : detail.slice(0, EVENT_DETAIL_CHARS)] };
}

/** Sends `statements` on `tx` in one round trip (multipleStatements); one result each. */
export async function runAll(tx: Tx, statements: Statement[]): Promise<unknown[]> {
  const [raw] = await tx.query(statements.map((s) => s.sql).join(";\n"), statements.flatMap((s) => s.params ?? []));
  return statements.length === 1 ? [raw] : (raw as unknown[]);
}

/**
 * Unsets the detail of a connection going back to the pool, if it may hold one: queued on the
 * connection as it goes back, so it runs before anything its next user sends, and that user's
 * events never inherit it (nor does its checkout send a SET for it). A connection that holds none
 * (every one the hot paths used) sends nothing.
 */
function clearEventDetail(core: CoreConnection): void {
  if ((eventDetailOf.get(core) ?? null) === null) return;
  core.query("SET @baton_event_detail = NULL", [], () => undefined);
  eventDetailOf.set(core, null);
}

/** The protocol's status flag "a transaction is open" (MySQL and MariaDB). */
const SERVER_STATUS_IN_TRANS = 0x0001;

/** Where a COMMIT's outcome is unknown: the connection it was sent on (its server thread id). */
export interface UnknownCommit {
  threadId: number;
}

const UNKNOWN_COMMIT = Symbol("baton.unknownCommit");

/**
 * The error of a transaction whose COMMIT was sent and whose connection failed before the
 * answer came back (the server may have committed it, or not): where it was sent, else
 * undefined. Only Db.tx and Db.batchTx mark errors so; a caller that must know what its call
 * did reads the database again (executor/worker.ts: recoverUnknownCommits).
 */
export function unknownCommitOf(err: unknown): UnknownCommit | undefined {
  return (err as { [UNKNOWN_COMMIT]?: UnknownCommit } | null)?.[UNKNOWN_COMMIT];
}

function markUnknownCommit(err: unknown, conn: Tx): void {
  if (err && typeof err === "object" && isConnectionError(err)) (err as { [UNKNOWN_COMMIT]?: UnknownCommit })[UNKNOWN_COMMIT] = { threadId: conn.threadId };
}

const preparedOf = new WeakMap<object, PreparedStatements>();
/** The prepared statements of a connection (they live as long as its server session). */
function preparedOn(core: CoreConnection): PreparedStatements {
  let prepared = preparedOf.get(core);
  if (!prepared) preparedOf.set(core, (prepared = new PreparedStatements()));
  return prepared;
}

class BatchTransaction implements BatchTx {
  begun = false;
  committed = false;
  /**
   * A batch that may COMMIT was sent and its answer did not come back: whether it committed is
   * unknown. Cleared by any answer, a server's error included (the batch stopped at the failing
   * statement, before its COMMIT), so a transaction that goes on after it and then loses its
   * connection is not taken for an unknown commit.
   */
  commitSent = false;
  /** The connection's prepared statements, when it prepares them (MariaDB). */
  private readonly prepared: PreparedStatements | undefined;
  constructor(readonly conn: Tx, preparedStatements: boolean) {
    this.prepared = preparedStatements && this.conditionalCommit ? preparedOn(coreOf(conn)) : undefined;
  }

  async run(statements: Statement[], commit = false): Promise<unknown[]> {
    const all = [...statements];
    if (!this.begun) all.unshift({ sql: "START TRANSACTION" });
    if (commit) all.push({ sql: "COMMIT" });
    if (all.length === 0) return [];
    // Marked before sending: if the batch fails midway, the caller must still roll back.
    this.begun = true;
    if (commit) this.commitSent = true;
    const prepared = this.prepared?.plan(all);
    let sent = prepared?.statements ?? all;
    let results: unknown[];
    try {
      try {
        results = await runAll(this.conn, sent);
        prepared?.answered();
      } catch (err) {
        if (!prepared?.failed(err)) throw err;
        // The server refused a PREPARE, which runs first: nothing else was sent to it. As text.
        sent = all;
        results = await runAll(this.conn, sent);
      }
    } catch (err) {
      // The server answered (an error of a statement, not of the link): nothing was committed.
      if (!isConnectionError(err)) this.commitSent = false;
      throw err;
    }
    if (commit) this.committed = true;
    const first = sent.length - statements.length - (commit ? 1 : 0);
    // To the end but COMMIT's: one result per statement, and a compound block's own result sets
    // ahead of its OK packet (runCommittingIf's otherwise).
    return results.slice(first, results.length - (commit ? 1 : 0));
  }

  commit(statements: Statement[] = []): Promise<unknown[]> {
    return this.run(statements, true);
  }

  get conditionalCommit(): boolean {
    // mysql2 reads the server's flavour from its handshake; an unknown one gets the portable path.
    return (this.conn as unknown as { connection?: { _isMariaDB?: boolean } }).connection?._isMariaDB === true;
  }

  async runCommittingIf(
    statements: Statement[],
    condition: Statement,
    thenStatements: Statement[] = [],
    otherwise?: Statement,
  ): Promise<{ results: unknown[]; committed: boolean; otherwise?: unknown }> {
    if (!this.conditionalCommit) throw new Error("runCommittingIf needs MariaDB (anonymous compound statements)");
    // NO CHAIN: with a server's completion_type = CHAIN a COMMIT would open the next transaction
    // at once, and its status would then read as not committed.
    const then = [...thenStatements.map((s) => `${s.sql};`), "COMMIT AND NO CHAIN;"].join(" ");
    this.commitSent = true;
    const results = await this.run([
      ...statements,
      {
        sql: `BEGIN NOT ATOMIC IF ${condition.sql} THEN ${then}${otherwise ? ` ELSE ${otherwise.sql};` : ""} END IF; END`,
        params: [...(condition.params ?? []), ...thenStatements.flatMap((s) => s.params ?? []), ...(otherwise?.params ?? [])],
      },
    ]);
    // The block's OK packet carries the server's status after it: SERVER_STATUS_IN_TRANS (bit 0)
    // is clear once it committed (asking with SELECT @@in_transaction cost a statement more).
    const status = (results[results.length - 1] as ResultSetHeader | undefined)?.serverStatus;
    // One statement alone (no statements, in a transaction already open) comes back unwrapped: its
    // result sets are not told from a batch's. Never a guess at whether it committed.
    if (typeof status !== "number") throw new Error("runCommittingIf: the block's answer carries no server status (send it with at least one statement)");
    const committed = (status & SERVER_STATUS_IN_TRANS) === 0;
    if (committed) this.committed = true;
    // Answered: it committed, or it did not and the transaction goes on with nothing in doubt.
    else this.commitSent = false;
    // A SELECT in the block answers a result set of its own, ahead of the block's OK packet.
    if (!committed && otherwise) return { results: results.slice(0, statements.length), committed, otherwise: results[results.length - 2] };
    return { results: results.slice(0, statements.length), committed };
  }

  async rollback(): Promise<void> {
    if (this.begun) await this.conn.query("ROLLBACK");
    this.begun = false;
  }
}

const RETRYABLE_TX_ERRORS = new Set(["ER_LOCK_DEADLOCK", "ER_LOCK_WAIT_TIMEOUT"]);
/**
 * The code of a statement that got no answer within the statement timeout: mysql2's own code for
 * its per-query timeout, which means the same thing (but leaves the connection in the pool).
 */
export const STATEMENT_TIMEOUT_CODE = "PROTOCOL_SEQUENCE_TIMEOUT";
const CONNECTION_ERRORS = new Set([
  STATEMENT_TIMEOUT_CODE,
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "PROTOCOL_CONNECTION_LOST",
  "ER_ACCESS_DENIED_ERROR",
  // MariaDB's answer to the same wrong login, depending on its authentication plugins.
  "ER_ACCESS_DENIED_NO_PASSWORD_ERROR",
  "ER_CON_COUNT_ERROR",
  "ER_SERVER_SHUTDOWN",
]);

export function isConnectionError(err: unknown): boolean {
  const { code, syscall, fatal } = (err as { code?: string; syscall?: string; fatal?: boolean }) ?? {};
  // mysql2 marks every error that leaves the connection unusable fatal: a write to a socket the
  // server closed (KILL CONNECTION, a restart) is EPIPE, and each statement after it a code-less
  // "closed state" error. Sending again on another connection is the way on, as for a lost one.
  if (fatal === true) return true;
  if (!code) return false;
  // A Unix socket that is missing or not ours fails connect() with a file error.
  return CONNECTION_ERRORS.has(code) || (syscall === "connect" && (code === "ENOENT" || code === "EACCES"));
}

/** A login the server refused: a wrong user or password, or a user without rights to the database. */
const LOGIN_ERRORS = new Set(["ER_ACCESS_DENIED_ERROR", "ER_ACCESS_DENIED_NO_PASSWORD_ERROR", "ER_DBACCESS_DENIED_ERROR", "ER_NOT_SUPPORTED_AUTH_MODE"]);

export function isLoginError(err: unknown): boolean {
  return LOGIN_ERRORS.has((err as { code?: string })?.code ?? "");
}

/**
 * Errors the server raises for a value of the statement (a date or number out of its
 * column's range, a string too long): sending the same statement again fails the same way,
 * unlike a connection, lock or timeout error.
 */
const DATA_ERRORS = new Set([
  "ER_TRUNCATED_WRONG_VALUE",
  "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD",
  "ER_DATA_TOO_LONG",
  "ER_WARN_DATA_OUT_OF_RANGE",
  "ER_DATETIME_FUNCTION_OVERFLOW",
  "ER_WRONG_VALUE",
  "ER_WRONG_VALUE_FOR_TYPE",
  "ER_DATA_OUT_OF_RANGE",
  "ER_WARN_DATA_TRUNCATED",
  "ER_INVALID_JSON_TEXT",
  "ER_CHECK_CONSTRAINT_VIOLATED",
  "ER_CONSTRAINT_FAILED",
]);

export function isDataError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code !== undefined && DATA_ERRORS.has(code);
}

function invalidUrl(url: string, problem: string): never {
  throw new BatonError("BATON_CONFIG_INVALID", `BATON_DATABASE_URL ${problem}, got "${redactUrl(url)}"`);
}

export function databaseNameOf(url: string): string {
  // No socket lookup: only the path is read here.
  const name = parseMysqlUrl(url, (problem) => invalidUrl(url, problem), () => undefined).database;
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(name)) {
    throw new BatonError("BATON_CONFIG_INVALID", `BATON_DATABASE_URL must name a database (letters, digits, _), got "${redactUrl(url)}"`);
  }
  return name;
}

/** MySQL 8 refuses a user-level lock name over 64 characters (ER_USER_LOCK_WRONG_NAME); MariaDB allows 192. */
const MAX_LOCK_NAME = 64;

/**
 * The name of a server-wide lock (GET_LOCK) a purpose takes per database: `<purpose>:<database>`,
 * as processes of earlier releases name it, when that fits; a longer one (a database name may have
 * 64 characters on its own) keeps the database name's start and ends with a hash of all of it.
 */
export function userLockName(purpose: string, database: string): string {
  const name = `${purpose}:${database}`;
  if (name.length <= MAX_LOCK_NAME) return name;
  const hash = createHash("sha256").update(database, "utf8").digest("hex").slice(0, 16);
  return `${name.slice(0, MAX_LOCK_NAME - hash.length - 1)}#${hash}`;
}

/**
 * mysql2 options for the server a URL names (not its database: callers add that). Every
 * connection to Baton's database is opened with these. `?socket=/path` goes over that Unix
 * socket; host `localhost` with no port or port 3306 over the local server's socket when one
 * exists (findSocket, looked up once per process), else over TCP; `localhost` on another port
 * and any other host over TCP.
 */
export function connectionOptions(url: string, findSocket?: SocketLookup) {
  const { host, port, socketPath, user, password } = parseMysqlUrl(url, (problem) => invalidUrl(url, problem), findSocket);
  return {
    host,
    port,
    ...(socketPath === undefined ? {} : { socketPath }),
    user,
    password,
    timezone: "Z",
    dateStrings: false as const,
    supportBigNumbers: true,
    bigNumberStrings: false,
    connectTimeout: 5000,
  };
}

/**
 * The URL, safe to print, and how connections reach the server: "mysql://root@localhost:3306/baton
 * via /run/mysqld/mysqld.sock" or "mysql://root@127.0.0.1:3306/baton over TCP".
 */
export function describeDatabaseUrl(url: string, findSocket?: SocketLookup): string {
  let options: ReturnType<typeof connectionOptions>;
  try {
    options = connectionOptions(url, findSocket);
  } catch {
    return redactUrl(url);
  }
  if (options.socketPath !== undefined) return `${redactUrl(url)} via ${options.socketPath}`;
  const why = meansLocalSocket(options.host, options.port) ? ` (no MySQL socket at ${LOCAL_SOCKETS.join(", ")})` : "";
  return `${redactUrl(url)} over TCP${why}`;
}

/** The URL of database `name` on the server `serverUrl` names, keeping its user, password and ?socket=. */
export function databaseUrlOn(serverUrl: string, name: string): string {
  const parsed = new URL(serverUrl);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Creates the database named in the URL if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseNameOf(url);
  const conn = await mysql.createConnection(connectionOptions(url));
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await conn.end();
  }
}

/**
 * Fails with BATON_DATABASE_MISSING when the server has no database of the URL's name. For the
 * commands that read or change Baton's state: a misspelt name must not become a new, empty
 * Baton that answers "no DAGs". Only the commands that set Baton up call ensureDatabase.
 */
export async function requireDatabase(url: string): Promise<void> {
  const name = databaseNameOf(url);
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ ...connectionOptions(url), database: name });
  } catch (err) {
    if ((err as { code?: string }).code !== "ER_BAD_DB_ERROR") throw err;
    throw new BatonError(
      "BATON_DATABASE_MISSING",
      `database "${name}" does not exist at ${redactUrl(url)} (BATON_DATABASE_URL); check its name, or create it with \`baton db migrate\` (\`baton standalone\`, \`npm start\` and the other services create it on start)`,
    );
  }
  await conn.end();
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseNameOf(url);
  const conn = await mysql.createConnection(connectionOptions(url));
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

/** The core (callback) connection under mysql2's promise wrapper. */
interface CoreConnection {
  query(sql: string, values: unknown[], cb: () => void): void;
}

/**
 * The actor of the pool call being made right now, set by a Db view (Db.actingAs) around its
 * call into mysql2, which asks its core pool for a connection synchronously: read there.
 */
let callerActor: string | undefined;
/** The event detail of the pool call being made right now (Db.withEventDetail), read likewise. */
let callerDetail: string | undefined;
/** The statement timeout of the pool call being made right now (Db.withStatementTimeout), read likewise. */
let callerTimeout: number | undefined;

/** Who changes state through this process's connections, as the event log records it. */
export function defaultActor(): string {
  return `${process.argv[2] ?? "baton"}@${os.hostname()}:${process.pid}`.slice(0, MAX_ACTOR_LENGTH);
}

/** event_log.actor's length: an API token's "token:<name>", its name up to 250 characters, fits whole. */
export const MAX_ACTOR_LENGTH = 256;

/** BATON_DB_STATEMENT_TIMEOUT's default. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

/** The core (callback) pooled connection, as far as the statement timeout reads it. */
interface CoreSocketConnection {
  stream: Socket;
  /** The command in flight; null or undefined when the connection is idle. */
  _command?: unknown;
}

/**
 * Fails what waits on `conn` once the server has sent nothing for the socket's timeout while a
 * statement was in flight. A stalled server or network (a partition, a hung server, a proxy that
 * stops forwarding but keeps the socket) never closes the socket, and MariaDB's own
 * max_statement_time cannot help when its answer does not arrive. mysql2's per-query `timeout`
 * option is no cure either: it fails the query but leaves the command in flight and the
 * connection in the pool (mysql2 3.x), so the next caller queues behind it.
 *
 * Destroying the socket with an error goes through mysql2's network-error path: every command
 * on the connection fails with the error, the connection leaves the pool, and a transaction it
 * held is abandoned — the server rolls it back when it sees the connection die, so nothing is
 * half-applied. (A COMMIT that timed out may or may not have been applied, as with any lost
 * connection; state changes are fenced for that.) The timer is Node's socket idle timer, re-armed
 * by every byte in either direction: no timer per statement, and a long result that keeps
 * streaming rows is not cut off. An idle pooled connection is never failed by it. Measured
 * (SELECT 1 over loopback TCP, 20,000 in a row, one connection): 60–66 µs of CPU each with the
 * timeout or without, no difference beyond noise.
 */
function guardStatements(conn: CoreSocketConnection): void {
  const stream = conn.stream;
  stream.on("timeout", () => {
    if (!conn._command || stream.destroyed) return;
    const err = Object.assign(
      new Error(`the database sent nothing for ${stream.timeout} ms while a statement waited (BATON_DB_STATEMENT_TIMEOUT); the connection was closed`),
      { code: STATEMENT_TIMEOUT_CODE, fatal: true },
    );
    stream.destroy(err);
  });
}

/** Whether mysql2's pool would queue a getConnection now: none free and no room for another (false when its internals are unknown). */
function mustQueue(core: unknown): boolean {
  const pool = core as { _freeConnections?: { length?: unknown }; _allConnections?: { length?: unknown }; config?: { connectionLimit?: unknown } };
  const free = pool._freeConnections?.length;
  const all = pool._allConnections?.length;
  const limit = pool.config?.connectionLimit;
  if (typeof free !== "number" || typeof all !== "number" || typeof limit !== "number") return false;
  return free === 0 && limit > 0 && all >= limit;
}

export interface DbOptions {
  connectionLimit?: number;
  actor?: string;
  traceQueries?: boolean;
  /**
   * How long a statement may wait without a byte from the server before it fails with
   * STATEMENT_TIMEOUT_CODE and its connection is destroyed (BATON_DB_STATEMENT_TIMEOUT, default
   * DEFAULT_STATEMENT_TIMEOUT_MS; 0: no limit). Opening a connection is bounded by the smaller of
   * this and 5 s.
   */
  statementTimeoutMs?: number;
  /**
   * Whether batchTx prepares the statements a connection sends repeatedly, on MariaDB
   * (store/preparedStatements.ts). Default: on (BATON_DB_PREPARED_STATEMENTS).
   */
  preparedStatements?: boolean;
}

export function openDb(url: string, options: DbOptions = {}): Db {
  const actor = options.actor ?? defaultActor();
  const database = databaseNameOf(url);
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const preparedStatements = options.preparedStatements ?? true;
  const connOptions = connectionOptions(url);
  const pool = mysql.createPool({
    ...connOptions,
    connectTimeout: statementTimeoutMs > 0 ? Math.min(connOptions.connectTimeout, statementTimeoutMs) : connOptions.connectTimeout,
    database,
    connectionLimit: options.connectionLimit ?? 10,
    waitForConnections: true,
    // Probes an idle connection after 30 s of silence (the OS default waits 2 hours), so a
    // connection a partition killed is found and dropped, not handed to the next statement to
    // wait out the statement timeout. A stall on a live path (a hung server or proxy answers the
    // probes) is the statement timeout's job.
    enableKeepAlive: true,
    keepAliveInitialDelay: 30_000,
    // Hot paths send several statements per round trip (batchTx). Every value still goes
    // through placeholders; only validated integers are ever inlined.
    multipleStatements: true,
    // Prepared statements (store/preparedStatements.ts) and session variables live as long as the
    // server session: a connection going back to the pool keeps its session (mysql2's default,
    // stated here because the prepared statements' cache relies on it).
    resetOnRelease: false,
    // mysql2's default captures the caller's stack for every statement so that an SQL error
    // names it: 0.13 ms of CPU per statement here (SELECT 1: 0.26 against 0.12 ms), a third of a
    // 100-row page's cost. Off unless BATON_DB_TRACE asks for it while debugging.
    trace: options.traceQueries ?? false,
  });
  // READ COMMITTED: each statement sees the latest commits, so two transactions settling
  // sibling upstreams of one task serialize on its row lock and the second sees the first.
  // @baton_actor (read by the event-log triggers) per connection: this process, or the request
  // that takes the connection. Read when the connection is asked for, in the asker's context, and
  // set only when it changes: the SET is queued on the connection ahead of the asker's statements.
  // @baton_event_detail likewise (Db.withEventDetail), in the same SET: a caller that wants none
  // gets NULL. A connection is also reset when it goes back to the pool (clearEventDetail, from a
  // transaction or a pool.query alike), so the hot paths, which set none, find NULL at checkout
  // and send nothing for it.
  const actorOf = new WeakMap<object, string>();
  pool.on("connection", (conn) => {
    guardStatements(conn as unknown as CoreSocketConnection);
    (conn as unknown as CoreSocketConnection).stream.setTimeout(statementTimeoutMs);
    conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    conn.query("SET SESSION innodb_lock_wait_timeout = 10");
    conn.query("SET @baton_actor = ?", [actor]);
    actorOf.set(conn, actor);
  });
  const core = pool.pool as unknown as {
    getConnection(cb: (err: Error | null, conn: CoreConnection) => void): void;
    releaseConnection(conn: CoreConnection): void;
  };
  const releaseConnection = core.releaseConnection.bind(core);
  core.releaseConnection = (conn) => {
    clearEventDetail(conn);
    releaseConnection(conn);
  };
  const getConnection = core.getConnection.bind(core);
  core.getConnection = (cb) => {
    const wanted = callerActor ?? actor;
    const wantedDetail = callerDetail ?? null;
    const timeout = callerTimeout ?? statementTimeoutMs;
    // A caller that must queue for a connection (all are checked out) waits at most the statement
    // timeout too: while the database stalls, the pool frees a connection only when a statement
    // times out, and each connection opened then for the next in line waits out the connect
    // timeout, so the queue would drain one connect timeout at a time.
    let gaveUp = false;
    const queueTimer = timeout > 0 && mustQueue(core) ? setTimeout(() => {
      gaveUp = true;
      const err = Object.assign(new Error(`no database connection was free within ${timeout} ms (BATON_DB_STATEMENT_TIMEOUT)`), { code: STATEMENT_TIMEOUT_CODE });
      cb(err, undefined as unknown as CoreConnection);
    }, timeout) : undefined;
    getConnection((err, conn) => {
      if (queueTimer) clearTimeout(queueTimer);
      if (gaveUp) {
        // Its caller has gone: hand it to the next in line.
        if (!err) (conn as unknown as { release(): void }).release();
        return;
      }
      if (!err) {
        // Set on every checkout: a view's timeout lasts while it holds the connection.
        const stream = (conn as unknown as CoreSocketConnection).stream;
        if (stream.timeout !== timeout) stream.setTimeout(timeout);
        const sets: string[] = [];
        const values: unknown[] = [];
        if (actorOf.get(conn) !== wanted) {
          sets.push("@baton_actor = ?");
          values.push(wanted);
          actorOf.set(conn, wanted);
        }
        if ((eventDetailOf.get(conn) ?? null) !== wantedDetail) {
          sets.push("@baton_event_detail = ?");
          values.push(wantedDetail);
          eventDetailOf.set(conn, wantedDetail);
        }
        if (sets.length > 0) conn.query(`SET ${sets.join(", ")}`, values, () => undefined);
      }
      cb(err, conn);
    });
  };

  const txOn = (txPool: Pool) =>
    async function tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        const conn = await txPool.getConnection();
        let commitSent = false;
        try {
          await conn.query("START TRANSACTION");
          const result = await fn(conn);
          commitSent = true;
          await conn.query("COMMIT");
          return result;
        } catch (err) {
          if (commitSent) markUnknownCommit(err, conn);
          await conn.query("ROLLBACK").catch(() => undefined);
          const code = (err as { code?: string }).code;
          if (code && RETRYABLE_TX_ERRORS.has(code) && attempt < 8) {
            await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
            continue;
          }
          throw err;
        } finally {
          conn.release();
        }
      }
    };

  const batchTxOn = (txPool: Pool) =>
    async function batchTx<T>(fn: (btx: BatchTx) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        const conn = await txPool.getConnection();
        const btx = new BatchTransaction(conn, preparedStatements);
        try {
          const result = await fn(btx);
          if (!btx.committed) await btx.commit();
          return result;
        } catch (err) {
          if (btx.commitSent && !btx.committed) markUnknownCommit(err, conn);
          if (btx.begun && !btx.committed) await conn.query("ROLLBACK").catch(() => undefined);
          const code = (err as { code?: string }).code;
          if (code && RETRYABLE_TX_ERRORS.has(code) && attempt < 8 && !btx.committed) {
            await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
            continue;
          }
          throw err;
        } finally {
          conn.release();
        }
      }
    };

  const close = () => pool.end();
  /**
   * A view of the same pool: its statements act as `who` (the event log rows they write, through
   * @baton_actor, name it instead of this process: a request's token, for what it changes) and
   * wait at most `timeout` for the server, and the events they cause carry `detail`
   * (Db.withEventDetail). Undefined: this process's actor, openDb's timeout, no detail.
   */
  const view = (who: string | undefined, timeout: number | undefined, detail: string | undefined): Db => {
    const viewPool =
      who === undefined && timeout === undefined && detail === undefined
        ? pool
        : new Proxy(pool, {
            get(target, prop) {
              const value = Reflect.get(target, prop, target) as unknown;
              if (typeof value !== "function") return value;
              if (prop !== "query" && prop !== "execute" && prop !== "getConnection") return value.bind(target);
              return (...args: unknown[]) => {
                const outerActor = callerActor;
                const outerTimeout = callerTimeout;
                const outerDetail = callerDetail;
                callerActor = who;
                callerTimeout = timeout;
                callerDetail = detail;
                try {
                  return (value as (...a: unknown[]) => unknown).apply(target, args);
                } finally {
                  callerActor = outerActor;
                  callerTimeout = outerTimeout;
                  callerDetail = outerDetail;
                }
              };
            },
          });
    return {
      pool: viewPool,
      url,
      database,
      tx: txOn(viewPool),
      batchTx: batchTxOn(viewPool),
      close,
      actingAs: (name) => view(name.slice(0, MAX_ACTOR_LENGTH), timeout, detail),
      actor: who ?? actor,
      withEventDetail: (text) => view(who, timeout, text.slice(0, EVENT_DETAIL_CHARS)),
      eventDetail: detail ?? null,
      withStatementTimeout: (ms) => view(who, ms, detail),
      statementTimeoutMs: timeout ?? statementTimeoutMs,
    };
  };
  return view(undefined, undefined, undefined);
}

export interface PoolStats {
  /** Connections checked out. */
  used: number;
  /** Open connections idle in the pool. */
  free: number;
  /** Callers waiting for a connection (the pool is at connectionLimit). */
  queued: number;
}

/**
 * The pool's connection counts, read from mysql2's internals (`_allConnections`,
 * `_freeConnections`, `_connectionQueue`); null when a mysql2 version no longer has them.
 */
export function poolStats(pool: Pool): PoolStats | null {
  const core = (pool as unknown as { pool?: Record<string, { length?: unknown } | undefined> }).pool;
  const size = (name: string) => {
    const n = core?.[name]?.length;
    return typeof n === "number" ? n : null;
  };
  const all = size("_allConnections");
  const free = size("_freeConnections");
  const queued = size("_connectionQueue");
  if (all === null || free === null || queued === null) return null;
  return { used: Math.max(0, all - free), free, queued };
}

/** `IN (?, ?, …)` placeholders for a non-empty list. */
export function inList(values: readonly unknown[]): string {
  if (values.length === 0) throw new Error("inList: empty list");
  return values.map(() => "?").join(", ");
}

/**
 * The items grouped by the value each is given (compared as JSON; an item given undefined is left
 * out), in the order each value first comes: for one UPDATE per distinct set of values to write,
 * over the ids of its group (`WHERE id IN (…)`), rather than one per row.
 */
export function groupByValue<T, V>(items: Iterable<T>, valueOf: (item: T) => V | undefined): { value: V; items: T[] }[] {
  const groups = new Map<string, { value: V; items: T[] }>();
  for (const item of items) {
    const value = valueOf(item);
    if (value === undefined) continue;
    const key = JSON.stringify(value);
    const group = groups.get(key);
    if (group) group.items.push(item);
    else groups.set(key, { value, items: [item] });
  }
  return [...groups.values()];
}
