// BatchTx.runCommittingIf: statements and a COMMIT guarded by an SQL condition in one round
// trip (finishTries records a chain's hop that way). A false condition must leave everything
// uncommitted and the transaction usable; a true one must make it durable at once.
import { isConnectionError, unknownCommitOf, type BatchTx, type Db, type RowDataPacket } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

let db: Db;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query("CREATE TABLE cc_probe (id INT PRIMARY KEY, n INT NOT NULL)");
  await db.pool.query("INSERT INTO cc_probe VALUES (1, 0), (2, 0)");
});

afterAll(async () => {
  await dropTestDb(db);
});

/** The row as another connection sees it: only committed changes. */
async function committedN(id: number): Promise<number> {
  const [rows] = await db.pool.query<RowDataPacket[]>("SELECT n FROM cc_probe WHERE id = ?", [id]);
  return Number(rows[0]!.n);
}

const bump = (id: number) => ({ sql: "UPDATE cc_probe SET n = n + 1 WHERE id = ?", params: [id] });

it("is available on MariaDB", async () => {
  expect(await db.batchTx(async (btx) => btx.conditionalCommit)).toBe(true);
});

it("commits in the same round trip when the condition holds, and answers each statement", async () => {
  const before = await committedN(1);
  const answer = await db.batchTx(async (btx) => {
    const { results, committed } = await btx.runCommittingIf([bump(1), { sql: "SET @cc_rows = ROW_COUNT()" }], { sql: "@cc_rows = ?", params: [1] });
    // Visible to another connection before the callback even returns: it is committed.
    return { affected: (results[0] as { affectedRows: number }).affectedRows, statements: results.length, committed, seen: await committedN(1) };
  });
  expect(answer).toEqual({ affected: 1, statements: 2, committed: true, seen: before + 1 });
  expect(await committedN(1)).toBe(before + 1);
});

it("leaves the transaction open when the condition fails: a rollback undoes it all", async () => {
  const before = await committedN(2);
  const answer = await db.batchTx(async (btx) => {
    const { committed } = await btx.runCommittingIf([bump(2), { sql: "SET @cc_rows = ROW_COUNT()" }], { sql: "@cc_rows = ?", params: [5] });
    const seenMeanwhile = await committedN(2);
    await btx.rollback();
    return { committed, seenMeanwhile };
  });
  expect(answer).toEqual({ committed: false, seenMeanwhile: before });
  expect(await committedN(2)).toBe(before);
});

it("leaves the transaction open when the condition fails: more statements and a commit() still land", async () => {
  const before = await committedN(2);
  const committed = await db.batchTx(async (btx) => {
    const first = await btx.runCommittingIf([bump(2)], { sql: "EXISTS (SELECT 1 FROM cc_probe WHERE n < 0)" });
    await btx.commit([bump(2)]);
    return first.committed;
  });
  expect(committed).toBe(false);
  expect(await committedN(2)).toBe(before + 2);
});

it("runs the statements that come with the COMMIT only when the condition holds", async () => {
  const before = { one: await committedN(1), two: await committedN(2) };
  for (const holds of [false, true]) {
    const committed = await db.batchTx(async (btx) => {
      const answer = await btx.runCommittingIf([bump(1)], { sql: "?", params: [holds] }, [bump(2), bump(2)]);
      if (!answer.committed) await btx.commit();
      return answer.committed;
    });
    expect(committed).toBe(holds);
  }
  expect({ one: await committedN(1), two: await committedN(2) }).toEqual({ one: before.one + 2, two: before.two + 2 });
});

it("answers `otherwise`'s rows, read in the same round trip and transaction, only when the condition does not hold", async () => {
  for (const holds of [true, false]) {
    const before = await committedN(1);
    const answer = await db.batchTx(async (btx) => {
      const { results, committed, otherwise } = await btx.runCommittingIf([bump(1)], { sql: "?", params: [holds] }, [], {
        sql: "SELECT id, n FROM cc_probe WHERE id = ?",
        params: [1],
      });
      if (!committed) await btx.rollback();
      return { statements: results.length, committed, otherwise };
    });
    expect(answer).toEqual(
      holds
        ? { statements: 1, committed: true, otherwise: undefined }
        : // The rows as this transaction saw them: its own UPDATE included (then rolled back).
          { statements: 1, committed: false, otherwise: [{ id: 1, n: before + 1 }] },
    );
    expect(await committedN(1)).toBe(holds ? before + 1 : before);
  }
});

it("refuses to guess when the block alone comes back unwrapped (no statements, in an open transaction, with otherwise)", async () => {
  const before = await committedN(1);
  await expect(
    db.batchTx(async (btx) => {
      await btx.run([bump(1)]);
      return btx.runCommittingIf([], { sql: "FALSE" }, [], { sql: "SELECT n FROM cc_probe WHERE id = ?", params: [1] });
    }),
  ).rejects.toThrow(/no server status/);
  expect(await committedN(1)).toBe(before);
});

it("knows it committed even where the server chains a new transaction after each COMMIT (completion_type = CHAIN)", async () => {
  const before = await committedN(1);
  const committed = await db.batchTx(async (btx) => {
    await btx.conn.query("SET SESSION completion_type = 'CHAIN'");
    try {
      return (await btx.runCommittingIf([bump(1)], { sql: "TRUE" })).committed;
    } finally {
      await btx.conn.query("SET SESSION completion_type = 'NO_CHAIN'");
    }
  });
  expect(committed).toBe(true);
  expect(await committedN(1)).toBe(before + 1);
});

it("a failing statement before the condition commits nothing", async () => {
  const before = await committedN(1);
  await expect(
    db.batchTx((btx) => btx.runCommittingIf([bump(1), { sql: "SELECT * FROM cc_no_such_table" }], { sql: "TRUE" })),
  ).rejects.toMatchObject({ code: "ER_NO_SUCH_TABLE" });
  expect(await committedN(1)).toBe(before);
});

// A batch that may COMMIT and fails on a statement before it (a value the server refuses) was
// answered: the COMMIT never ran. The transaction may go on (claimTasks claims the rest alone after
// a refused value); if its connection then dropped, the error was marked as an unknown commit,
// and the worker waited and read the database again for a COMMIT that was never sent.
describe("a commit batch refused by the server before its COMMIT", () => {
  const refusedValue = { sql: "UPDATE cc_probe SET n = ? WHERE id = 1", params: ["not a number"] };

  /** The next statement on `btx`'s connection fails as over a dropped link, without reaching the server. */
  function loseNext(btx: BatchTx): void {
    const conn = btx.conn as unknown as { query: (...args: unknown[]) => Promise<unknown> };
    const query = conn.query;
    conn.query = async () => {
      conn.query = query;
      throw Object.assign(new Error("Connection lost: The server closed the connection."), { code: "PROTOCOL_CONNECTION_LOST", fatal: true });
    };
  }

  /** Runs `first` (refused by the server), then loses the connection on the next statement: the error that comes out. */
  function lostAfter(first: (btx: BatchTx) => Promise<unknown>): Promise<unknown> {
    return db
      .batchTx(async (btx) => {
        await expect(first(btx)).rejects.toMatchObject({ code: expect.stringMatching(/^(ER_|WARN_)/) });
        loseNext(btx);
        await btx.run([bump(2)]);
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
  }

  it("commit(): the lost connection afterwards is not an unknown commit", async () => {
    const err = await lostAfter((btx) => btx.commit([bump(2), refusedValue]));
    expect(isConnectionError(err)).toBe(true);
    expect(unknownCommitOf(err)).toBeUndefined();
  });

  it("runCommittingIf(): likewise, and so when its condition did not hold", async () => {
    const refused = await lostAfter((btx) => btx.runCommittingIf([bump(2), refusedValue], { sql: "TRUE" }));
    expect(isConnectionError(refused)).toBe(true);
    expect(unknownCommitOf(refused)).toBeUndefined();
    const notCommitted = await lostAfter(async (btx) => {
      expect((await btx.runCommittingIf([bump(2)], { sql: "FALSE" })).committed).toBe(false);
      await btx.run([refusedValue]);
    });
    expect(isConnectionError(notCommitted)).toBe(true);
    expect(unknownCommitOf(notCommitted)).toBeUndefined();
  });

  it("a commit batch that loses its connection itself is still an unknown commit", async () => {
    const err = await db
      .batchTx(async (btx) => {
        await btx.run([bump(2)]);
        loseNext(btx);
        await btx.commit([bump(2)]);
      })
      .catch((e: unknown) => e);
    expect(isConnectionError(err)).toBe(true);
    expect(unknownCommitOf(err)).toEqual({ threadId: expect.any(Number) });
  });
});

it("a statement on a connection the server killed (KILL CONNECTION) is a connection error, then and after", async () => {
  const errors: unknown[] = [];
  await db
    .batchTx(async (btx) => {
      const [[row]] = (await btx.run([{ sql: "SELECT CONNECTION_ID() AS id" }])) as RowDataPacket[][];
      await db.pool.query(`KILL CONNECTION ${Number(row!.id)}`);
      // mysql2 answers the first write with EPIPE, later ones with a code-less "closed state" error.
      for (let i = 0; i < 2; i++) await btx.run([bump(1)]).catch((err: unknown) => errors.push(err));
      throw new Error("stop");
    })
    .catch(() => undefined);
  expect(errors).toHaveLength(2);
  expect(errors.map((err) => isConnectionError(err))).toEqual([true, true]);
});
