// BATON_DB_TRACE: SQL errors name the code that sent the statement only when asked (a stack capture
// per statement costs about 0.1 ms of CPU, so it is off by default).
import { openDb, type Db } from "../../store/db.ts";
import { createTestDb, dropTestDb } from "../helpers/db.ts";

let db: Db;
let traced: Db;

beforeAll(async () => {
  db = await createTestDb();
  traced = openDb(db.url, { connectionLimit: 1, traceQueries: true });
});

afterAll(async () => {
  await traced.close();
  await dropTestDb(db);
});

async function readMissingTableFromHere(target: Db): Promise<Error> {
  return target.pool.query("SELECT * FROM no_such_table").then(
    () => new Error("the query succeeded"),
    (err: Error) => err,
  );
}

it("names the calling function in an SQL error's stack with traceQueries", async () => {
  const err = await readMissingTableFromHere(traced);
  expect((err as { code?: string }).code).toBe("ER_NO_SUCH_TABLE");
  expect(err.stack).toContain("readMissingTableFromHere");
});

it("does not capture the caller's stack by default", async () => {
  const err = await readMissingTableFromHere(db);
  expect((err as { code?: string }).code).toBe("ER_NO_SUCH_TABLE");
  expect(err.stack).not.toContain("readMissingTableFromHere");
});
