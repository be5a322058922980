// Baton's Db over MariaDB's Unix socket: ?socket= and the localhost rule against the real server.
// Skipped, saying why, on a machine whose server has no socket at the usual place.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { databaseUrlOn, dropDatabase, ensureDatabase, openDb, type Db, type RowDataPacket } from "../../store/db.ts";

const SOCKET = "/run/mysqld/mysqld.sock";
const SERVER = process.env.BATON_TEST_DATABASE_SERVER ?? "mysql://root@127.0.0.1:3306";
const present = existsSync(SOCKET);
if (!present) process.stderr.write(`test/integration/dbSocket.test.ts: skipped, ${SOCKET} does not exist (no local MariaDB/MySQL socket)\n`);

/** The test server's user and password on the given host, optionally over a named socket. */
function urlOf(name: string, host: string, socket?: string): string {
  const url = new URL(databaseUrlOn(SERVER, name));
  url.hostname = host;
  url.search = socket === undefined ? "" : `?socket=${encodeURIComponent(socket)}`;
  return url.toString();
}

/** PROCESSLIST's host for this connection: "localhost" over a socket, "address:port" over TCP. */
async function clientHost(db: Db): Promise<string> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()");
  return String(rows[0]!.host);
}

(present ? describe : describe.skip)(present ? `Db over the Unix socket ${SOCKET}` : `Db over a Unix socket (skipped: ${SOCKET} does not exist)`, () => {
  const name = `baton_test_socket_${process.env.JEST_WORKER_ID ?? "0"}_${randomBytes(4).toString("hex")}`;
  const socketUrl = urlOf(name, "localhost", SOCKET);
  const opened: Db[] = [];
  const open = (url: string) => {
    const db = openDb(url, { connectionLimit: 2 });
    opened.push(db);
    return db;
  };

  beforeAll(async () => {
    await ensureDatabase(socketUrl);
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()));
  });

  afterAll(async () => {
    await dropDatabase(socketUrl);
  });

  it("?socket= connects over that socket and runs queries and transactions", async () => {
    const db = open(socketUrl);
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT 1 + 1 AS two, DATABASE() AS db");
    expect(rows[0]).toEqual({ two: 2, db: name });
    expect(await clientHost(db)).toBe("localhost");
    expect(await db.batchTx(async (btx) => (await btx.commit([{ sql: "SELECT ? AS v", params: [7] }]))[0])).toEqual([{ v: 7 }]);
  });

  it("host localhost without ?socket= finds the socket by itself", async () => {
    const db = open(urlOf(name, "localhost"));
    expect(await clientHost(db)).toBe("localhost");
  });

  it("127.0.0.1 stays on TCP", async () => {
    const db = open(urlOf(name, "127.0.0.1"));
    expect(await clientHost(db)).toMatch(/:\d+$/);
  });
});
