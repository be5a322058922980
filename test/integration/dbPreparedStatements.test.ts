// batchTx's server-side prepared statements (store/preparedStatements.ts) against the real
// MariaDB: a statement marked `prepare` is executed prepared once hot on its connection, and
// answers exactly as its text does (rows, types, affected rows, ROW_COUNT() for the next
// statement, early commits); a failed batch, a slot reused and a lost connection leave nothing
// stale behind.
import { openDb, type Db, type RowDataPacket, type Statement } from "../../store/db.ts";
import { PREPARED_PER_CONNECTION } from "../../store/preparedStatements.ts";
import { createTestDb, dropTestDb, waitFor } from "../helpers/db.ts";

let db: Db;
/** One connection, so that its session's statement counters are the batches'. */
let one: Db;
/** The same database with everything as text: what the prepared answers must equal. */
let text: Db;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query("CREATE TABLE ps_probe (id INT PRIMARY KEY, n INT NOT NULL, at DATETIME(3) NULL, label VARCHAR(20) NULL, blob_value VARBINARY(10) NULL)");
  await db.pool.query("INSERT INTO ps_probe (id, n) VALUES (1, 0), (2, 0), (3, 0)");
  one = openDb(db.url, { connectionLimit: 1 });
  text = openDb(db.url, { connectionLimit: 1, preparedStatements: false });
});

afterAll(async () => {
  await one.close();
  await text.close();
  await dropTestDb(db);
});

/** This connection's SQL-level PREPAREs and EXECUTEs so far (its session's counters). */
async function counters(on: Db): Promise<{ prepared: number; executed: number }> {
  const [rows] = await on.pool.query<RowDataPacket[]>("SHOW SESSION STATUS WHERE Variable_name IN ('Com_prepare_sql', 'Com_execute_sql')");
  const value = (name: string) => Number(rows.find((r) => r.Variable_name === name)!.Value);
  return { prepared: value("Com_prepare_sql"), executed: value("Com_execute_sql") };
}

const bump = (id: number, by = 1): Statement => ({ sql: "UPDATE ps_probe SET n = n + ? WHERE id = ?", params: [by, id], prepare: true });
const read = (id: number): Statement => ({ sql: "SELECT id, n, at, label, blob_value FROM ps_probe WHERE id = ?", params: [id], prepare: true });

it("prepares a marked statement at its second use on a connection and executes it from then on, with the answers of its text", async () => {
  const before = await counters(one);
  const answers = [];
  for (let i = 0; i < 4; i++) {
    answers.push(await one.batchTx((btx) => btx.commit([bump(1), { sql: "SET @ps_rows = ROW_COUNT()" }, { sql: "SELECT @ps_rows AS r" }, read(1)])));
  }
  const after = await counters(one);
  // Two statements, prepared once each (at the second batch), executed in the last three.
  expect(after.prepared - before.prepared).toBe(2);
  expect(after.executed - before.executed).toBe(6);
  answers.forEach(([update, , rowCount, rows], i) => {
    expect((update as { affectedRows: number }).affectedRows).toBe(1);
    // ROW_COUNT() is the UPDATE's though a PREPARE ran in the same batch (PREPAREs go first).
    expect((rowCount as RowDataPacket[])[0]!.r).toBe(1);
    expect(Number((rows as RowDataPacket[])[0]!.n)).toBe(i + 1);
  });
});

it("answers dates, nulls, buffers and strings as the text statement does", async () => {
  const at = new Date("2026-11-27T12:34:56.789Z");
  const write = (label: string | null): Statement => ({ sql: "UPDATE ps_probe SET at = ?, label = ?, blob_value = ? WHERE id = ?", params: [at, label, Buffer.from([0, 1, 255]), 2], prepare: true });
  const before = await counters(one);
  for (const label of ["it's", null, "ü ?"]) {
    const prepared = await one.batchTx((btx) => btx.commit([write(label), read(2)]));
    const asText = await text.batchTx((btx) => btx.run([read(2)]));
    expect((prepared[1] as RowDataPacket[])[0]).toEqual((asText[0] as RowDataPacket[])[0]);
    expect((prepared[1] as RowDataPacket[])[0]).toEqual({ id: 2, n: 0, at, label, blob_value: Buffer.from([0, 1, 255]) });
  }
  expect((await counters(one)).executed - before.executed).toBeGreaterThanOrEqual(2);
});

it("keeps a prepared statement's early commit and a failed condition's rollback as they are as text", async () => {
  const committedN = async (id: number) => Number((await db.pool.query<RowDataPacket[]>("SELECT n FROM ps_probe WHERE id = ?", [id]))[0][0]!.n);
  for (let i = 0; i < 3; i++) {
    const before = await committedN(3);
    const committed = await one.batchTx(async (btx) => {
      const answer = await btx.runCommittingIf([bump(3), { sql: "SET @ps_rows = ROW_COUNT()" }], { sql: "@ps_rows = ?", params: [1] });
      return answer.committed;
    });
    expect(committed).toBe(true);
    expect(await committedN(3)).toBe(before + 1);
    const refused = await one.batchTx(async (btx) => {
      const answer = await btx.runCommittingIf([bump(3), { sql: "SET @ps_rows = ROW_COUNT()" }], { sql: "@ps_rows = ?", params: [2] });
      await btx.rollback();
      return answer.committed;
    });
    expect(refused).toBe(false);
    expect(await committedN(3)).toBe(before + 1);
  }
});

it("prepares again what a failed batch was preparing, and runs correctly past its capacity", async () => {
  // A batch that fails after its PREPARE (a duplicate key): the slot is not trusted afterwards.
  const insert = (id: number): Statement => ({ sql: "INSERT INTO ps_probe (id, n) VALUES (?, 0)", params: [id], prepare: true });
  await one.batchTx((btx) => btx.commit([insert(100)]));
  await expect(one.batchTx((btx) => btx.commit([insert(101), insert(100)]))).rejects.toMatchObject({ code: "ER_DUP_ENTRY" });
  const before = await counters(one);
  await one.batchTx((btx) => btx.commit([insert(102)]));
  expect((await counters(one)).prepared - before.prepared).toBe(1);
  // 101 was rolled back with its batch.
  const [ids] = await db.pool.query<RowDataPacket[]>("SELECT id FROM ps_probe WHERE id >= 100 ORDER BY id");
  expect(ids.map((r) => r.id)).toEqual([100, 102]);

  // More hot texts than slots, in rotation: every answer is its own statement's.
  const texts = PREPARED_PER_CONNECTION + 5;
  const probe = (k: number): Statement => ({ sql: `SELECT ? + ${k} AS v, '${k}' AS k`, params: [1000], prepare: true });
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < texts; k += 7) {
      const batch = Array.from({ length: 7 }, (_, j) => probe((k + j) % texts));
      const results = await one.batchTx((btx) => btx.run(batch));
      results.forEach((rows, j) => expect((rows as RowDataPacket[])[0]).toEqual({ v: 1000 + ((k + j) % texts), k: String((k + j) % texts) }));
    }
  }
  // One batch of them all: it executes every slot, so the texts beyond them cannot be prepared into one.
  for (let round = 0; round < 2; round++) {
    const results = await one.batchTx((btx) => btx.run(Array.from({ length: texts }, (_, k) => probe(k))));
    results.forEach((rows, k) => expect((rows as RowDataPacket[])[0]).toEqual({ v: 1000 + k, k: String(k) }));
  }
});

it("starts afresh on a new connection after its connection was lost", async () => {
  const local = openDb(db.url, { connectionLimit: 1 });
  try {
    for (let i = 0; i < 3; i++) await local.batchTx((btx) => btx.run([read(1)]));
    const [[{ id }]] = (await local.pool.query("SELECT CONNECTION_ID() AS id")) as unknown as [{ id: number }[]];
    await db.pool.query(`KILL ${Number(id)}`);
    // The killed connection fails its next use; the pool opens another, which prepares anew.
    await waitFor("a batch on a new connection", async () => {
      try {
        const [rows] = await local.batchTx((btx) => btx.run([read(1)]));
        return (rows as RowDataPacket[])[0]!.id === 1;
      } catch {
        return false;
      }
    });
    const before = await counters(local);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await local.batchTx((btx) => btx.run([read(1)])))[0]);
    expect(answers.map((rows) => (rows as RowDataPacket[])[0]!.id)).toEqual([1, 1, 1]);
    expect((await counters(local)).prepared - before.prepared).toBeLessThanOrEqual(1);
  } finally {
    await local.close();
  }
});

it("sends everything as text when turned off", async () => {
  const before = await counters(text);
  for (let i = 0; i < 4; i++) await text.batchTx((btx) => btx.commit([bump(1), read(1)]));
  const after = await counters(text);
  expect(after).toEqual(before);
});
