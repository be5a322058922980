/**
 * How a mysql:// (or mariadb://) URL names a server, read one way by Baton's store
 * (store/db.ts connectionOptions) and by the SDK's SQL sensors, which reach Baton's own
 * database too. The SDK bundles this file into DAG files: node built-ins only.
 *
 *   mysql://user:password@host:port/database?socket=/path/to/mysqld.sock
 *
 * Host `localhost` with no port or port 3306 means the local Unix socket, and `127.0.0.1`
 * forces TCP. The socket halves a round trip, and the hot path counts them (measured on the
 * 2-core dev machine, MariaDB 10.11, p50: SELECT 1 0.09 ms vs 0.19 ms over loopback TCP;
 * BEGIN + UPDATE + COMMIT 0.53 vs 0.82 ms). Unlike the mysql client, `localhost` with any
 * other port stays TCP: the socket belongs to the server on 3306, and `localhost:3307` names
 * another one (a second server, a tunnel, a container's published port).
 */
import { existsSync } from "node:fs";

/** Where MariaDB and MySQL packages put the server's socket, in the order they are tried. */
export const LOCAL_SOCKETS: readonly string[] = ["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"];

export interface MysqlTarget {
  host: string;
  port: number;
  /** Connections go over this Unix socket; host and port are then unused. */
  socketPath?: string;
  user: string;
  password: string;
  /** The database the path names, decoded; "" when it names none. */
  database: string;
}

/** The port the local socket stands for: `localhost` on any other port is another server. */
export const DEFAULT_PORT = 3306;

/** Whether host and port name the local server, which the local socket (if any) reaches. */
export function meansLocalSocket(host: string, port: number): boolean {
  return host === "localhost" && port === DEFAULT_PORT;
}

/** Finds the local server's socket: a path, or undefined for none (then localhost means TCP). */
export type SocketLookup = () => string | undefined;

/** The first candidate that exists, or undefined. */
export function firstExisting(candidates: readonly string[], exists: (path: string) => boolean = existsSync): string | undefined {
  return candidates.find((p) => exists(p));
}

let found: { path: string | undefined } | undefined;

/**
 * The first of LOCAL_SOCKETS that exists, looked up once per process: every connection of a
 * pool must go the same way, and a pool opens connections long after start-up.
 */
export const localSocket: SocketLookup = () => {
  found ??= { path: firstExisting(LOCAL_SOCKETS) };
  return found.path;
};

export interface ParseOptions {
  /**
   * What a query parameter other than socket does: "reject" (BATON_DATABASE_URL, where a
   * parameter Baton would silently drop is a mistake to report) or "ignore" (the SDK's sensor
   * URLs, written for other clients and read leniently before socket= existed).
   */
  unknownParameters?: "reject" | "ignore";
}

/**
 * Reads a URL; `invalid` is called with what is wrong (a phrase such as `has an unknown
 * parameter "ssl"`) and must throw, so each caller words its own error.
 */
export function parseMysqlUrl(
  url: string,
  invalid: (problem: string) => never,
  findSocket: SocketLookup = localSocket,
  options: ParseOptions = {},
): MysqlTarget {
  const lenient = options.unknownParameters === "ignore";
  if (atAfterHost(url)) {
    // The URL parser reads such a URL, but not as meant: the password's tail becomes the database
    // name, a parameter or a fragment, and the error would blame that.
    return invalid(`has an "@" after its host: URL-encode a user name or password that holds "/", "?", "#" or "@" (as %2F, %3F, %23, %40)`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return invalid("is not a URL");
  }
  if (parsed.protocol !== "mysql:" && parsed.protocol !== "mariadb:") invalid("must start with mysql://");
  const decode = (text: string, what: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return invalid(`has a badly encoded ${what}`);
    }
  };

  let socket: string | undefined;
  // Read by hand rather than with URLSearchParams, which turns "+" into a space: a socket path may hold a "+".
  for (const pair of parsed.search.replace(/^\?/, "").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    if (lenient && !isSocketName(rawName)) continue;
    const name = decode(rawName, "parameter name");
    if (name !== "socket") invalid(`has an unknown parameter "${name}" (the only one is socket=/path/to/mysqld.sock)`);
    if (socket !== undefined) invalid("gives socket twice");
    socket = eq < 0 ? "" : decode(pair.slice(eq + 1), "socket path");
    if (socket === "") invalid("has an empty socket parameter (give socket=/path/to/mysqld.sock, or leave it out)");
  }

  const host = parsed.hostname || "127.0.0.1";
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORT;
  const socketPath = socket ?? (meansLocalSocket(host, port) ? findSocket() : undefined);
  return {
    host,
    port,
    ...(socketPath === undefined ? {} : { socketPath }),
    user: decode(parsed.username || "root", "user name"),
    password: decode(parsed.password || "", "password"),
    database: decode(parsed.pathname.replace(/^\//, ""), "database name"),
  };
}

/**
 * Whether an "@" follows the host (the socket path aside): the URL parser ends the host at the
 * first "/", "?" or "#", so a password holding one of those and an "@" (or digits and then one of
 * those: "2024/secret" reads as port 2024) is split there, and part of it lands after the host.
 */
function atAfterHost(url: string): boolean {
  const start = url.indexOf("//");
  if (start < 0) return false;
  const rest = url.slice(start + 2);
  const end = rest.search(/[/?#]/);
  return end >= 0 && rest.slice(end).replace(/([?&])socket=[^&#]*/g, "$1").includes("@");
}

/** Whether a raw (still encoded) parameter name decodes to "socket"; a badly encoded one does not. */
function isSocketName(raw: string): boolean {
  try {
    return decodeURIComponent(raw) === "socket";
  } catch {
    return false;
  }
}

/**
 * The URL without its password (nor the value of any query parameter but socket), safe to print
 * in messages and logs: Baton's database URL and the SQL sensors' connection URLs alike.
 */
export function redactUrl(url: string): string {
  const maskQuery = (search: string) => search.replace(/([?&])([^=&]*)=([^&]*)/g, (pair, sep: string, name: string) => (name === "socket" ? pair : `${sep}${name}=***`));
  try {
    // Parsed, such a URL would leave the password's tail after the host, printed as it is.
    if (atAfterHost(url)) throw new Error("ambiguous");
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    // Rebuilt by hand: URLSearchParams would re-encode the socket path ("/" as %2F).
    parsed.search = maskQuery(parsed.search);
    return parsed.toString();
  } catch {
    // Unparsable or misread, often because of the password itself (an unencoded "/", "#" or "@"):
    // everything between the user's ":" and the last "@" is taken for the password, since the URL
    // is quoted in the very error that says it is wrong.
    const masked = url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):.*@/is, "$1:***@");
    const at = masked.indexOf("?");
    return at < 0 ? masked : masked.slice(0, at) + maskQuery(masked.slice(at));
  }
}
