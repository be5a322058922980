import { describe, expect, it } from "@jest/globals";
import { PREPARE_AFTER_USES, PreparedStatements } from "../../store/preparedStatements.ts";
import type { Statement } from "../../store/db.ts";

const update: Statement = { sql: "UPDATE t SET n = n + 1 WHERE id = ?", params: [1], prepare: true };
const read: Statement = { sql: "SELECT n FROM t WHERE id = ?", params: [1], prepare: true };
const rowCount: Statement = { sql: "SET @rows = ROW_COUNT()" };

/** Plans and reports the batch answered, as BatchTransaction does on success. */
function send(cache: PreparedStatements, statements: Statement[]) {
  const batch = cache.plan(statements);
  batch.answered();
  return batch;
}

/** How many PREPAREs a batch sends (they go first). */
function prepares(batch: { statements: Statement[] }): number {
  return batch.statements.filter((s) => s.sql.startsWith("PREPARE ")).length;
}

describe("PreparedStatements", () => {
  it("sends a text as is until its PREPARE_AFTER_USES-th use, then prepares it first and executes it with the same values", () => {
    const cache = new PreparedStatements();
    for (let i = 1; i < PREPARE_AFTER_USES; i++) expect(send(cache, [update]).statements).toEqual([update]);
    const batch = send(cache, [{ sql: "START TRANSACTION" }, update, rowCount]);
    expect(batch.statements).toEqual([
      { sql: "PREPARE baton_ps_0 FROM ?", params: [update.sql] },
      { sql: "START TRANSACTION" },
      { sql: "EXECUTE baton_ps_0 USING ?", params: [1] },
      rowCount,
    ]);
    // Prepared now: executed without a PREPARE.
    const next = send(cache, [{ ...update, params: [7] }]);
    expect(next.statements).toEqual([{ sql: "EXECUTE baton_ps_0 USING ?", params: [7] }]);
  });

  it("leaves as text what its builder did not mark, and SET, transaction control, compound blocks and list- or object-valued parameters even when marked", () => {
    const cache = new PreparedStatements();
    const statements: Statement[] = [
      { sql: "SELECT n FROM (SELECT n FROM t) d WHERE n = ?", params: [1] },
      { sql: "SET @rows = ROW_COUNT()", prepare: true },
      { sql: "START TRANSACTION", prepare: true },
      { sql: "BEGIN NOT ATOMIC IF @ok THEN COMMIT; END IF; END", prepare: true },
      { sql: "SELECT * FROM t WHERE id IN (?)", params: [[1, 2]], prepare: true },
      { sql: "UPDATE t SET ? WHERE id = 1", params: [{ n: 1 }], prepare: true },
      { sql: "COMMIT", prepare: true },
    ];
    // Past PREPARE_AFTER_USES, and still no PREPARE nor EXECUTE: nothing was prepared.
    for (let i = 0; i < PREPARE_AFTER_USES + 2; i++) expect(send(cache, statements).statements).toEqual(statements);
  });

  it("executes dates, buffers and nulls as values of a prepared statement", () => {
    const cache = new PreparedStatements();
    const at = new Date("2026-11-27T00:00:00Z");
    const s: Statement = { sql: "UPDATE t SET at = ?, b = ?, c = ? WHERE id = ?", params: [at, Buffer.from("x"), null, 1], prepare: true };
    for (let i = 1; i < PREPARE_AFTER_USES; i++) send(cache, [s]);
    expect(send(cache, [s]).statements[1]).toEqual({ sql: "EXECUTE baton_ps_0 USING ?, ?, ?, ?", params: [at, Buffer.from("x"), null, 1] });
  });

  it("prepares a text once when a batch sends it twice", () => {
    const cache = new PreparedStatements();
    send(cache, [update]);
    const batch = send(cache, [update, update]);
    expect(prepares(batch)).toBe(1);
    expect(batch.statements.slice(1)).toEqual([
      { sql: "EXECUTE baton_ps_0 USING ?", params: [1] },
      { sql: "EXECUTE baton_ps_0 USING ?", params: [1] },
    ]);
  });

  it("reuses the least recently used slot past its capacity, never one the same batch executes", () => {
    const cache = new PreparedStatements(2);
    const a: Statement = { sql: "SELECT 'a'", prepare: true };
    const b: Statement = { sql: "SELECT 'b'", prepare: true };
    const c: Statement = { sql: "SELECT 'c'", prepare: true };
    for (let i = 1; i < PREPARE_AFTER_USES; i++) send(cache, [a, b]);
    expect(send(cache, [a, b]).statements).toEqual([
      { sql: "PREPARE baton_ps_0 FROM ?", params: [a.sql] },
      { sql: "PREPARE baton_ps_1 FROM ?", params: [b.sql] },
      { sql: "EXECUTE baton_ps_0" },
      { sql: "EXECUTE baton_ps_1" },
    ]);
    expect(send(cache, [a]).statements).toEqual([{ sql: "EXECUTE baton_ps_0" }]); // b is now the least recently used
    send(cache, [c]);
    const batch = send(cache, [c]);
    // c took b's slot (1), the least recently used; b is text until it has been used twice as often again.
    expect(batch.statements).toEqual([{ sql: "PREPARE baton_ps_1 FROM ?", params: [c.sql] }, { sql: "EXECUTE baton_ps_1" }]);
    for (let i = 1; i < 2 * PREPARE_AFTER_USES; i++) expect(send(cache, [b]).statements).toEqual([b]);
    expect(send(cache, [b]).statements).toEqual([{ sql: "PREPARE baton_ps_0 FROM ?", params: [b.sql] }, { sql: "EXECUTE baton_ps_0" }]);
    // A batch executing both slots cannot prepare a third text into either of them: a goes as text.
    const both = send(cache, [b, c, a]);
    expect(both.statements).toEqual([{ sql: "EXECUTE baton_ps_0" }, { sql: "EXECUTE baton_ps_1" }, a]);
  });

  it("prepares less and less often a text evicted again and again (more hot texts than slots)", () => {
    const cache = new PreparedStatements(1);
    const a: Statement = { sql: "SELECT 'a'", prepare: true };
    const b: Statement = { sql: "SELECT 'b'", prepare: true };
    let prepareCount = 0;
    for (let i = 0; i < 200; i++) prepareCount += prepares(send(cache, [i % 2 === 0 ? a : b]));
    // Alternating two hot texts over one slot: re-prepared at every other use, this would be ~100.
    expect(prepareCount).toBeLessThan(20);
  });

  it("trusts a slot only once the batch that prepared it was answered", () => {
    const cache = new PreparedStatements();
    send(cache, [update]);
    const failing = cache.plan([update]);
    expect(prepares(failing)).toBe(1);
    expect(failing.failed(Object.assign(new Error("Deadlock found"), { errno: 1213 }))).toBe(false);
    // Not trusted: prepared again by the next batch, not executed unprepared.
    expect(prepares(send(cache, [update]))).toBe(1);
  });

  it("asks for the batch again as text when the server refuses a PREPARE, and stops preparing what it refused", () => {
    const cache = new PreparedStatements();
    send(cache, [update]);
    const refused = cache.plan([update]);
    expect(refused.failed(Object.assign(new Error("This command is not supported in the prepared statement protocol yet"), { errno: 1295 }))).toBe(true);
    expect(send(cache, [update]).statements).toEqual([update]);
    // Another text still gets prepared.
    send(cache, [read]);
    expect(prepares(send(cache, [read]))).toBe(1);
  });

  it("prepares nothing more on a connection once the server's statement limit was reached", () => {
    const cache = new PreparedStatements();
    send(cache, [update]);
    const limited = cache.plan([update]);
    expect(limited.failed(Object.assign(new Error("Can't create more than max_prepared_stmt_count statements"), { errno: 1461 }))).toBe(true);
    for (let i = 0; i < PREPARE_AFTER_USES + 1; i++) expect(send(cache, [read]).statements).toEqual([read]);
  });

  it("forgets every prepared statement once the server says it holds one no more (a session reset), without a resend", () => {
    const cache = new PreparedStatements();
    send(cache, [update, read]);
    expect(prepares(send(cache, [update, read]))).toBe(2);
    const lost = cache.plan([update]);
    expect(lost.statements).toEqual([{ sql: "EXECUTE baton_ps_0 USING ?", params: [1] }]);
    expect(lost.failed(Object.assign(new Error("Unknown prepared statement handler (baton_ps_0) given to EXECUTE"), { errno: 1243 }))).toBe(false);
    // Neither is trusted any more: both prepared again.
    expect(prepares(send(cache, [read, update]))).toBe(2);
  });

  it("leaves as text a statement with more values than MariaDB prepares (65,535)", () => {
    const cache = new PreparedStatements();
    const wide: Statement = { sql: `SELECT 1 FROM t WHERE id IN (${Array(65_536).fill("?").join(", ")})`, params: Array(65_536).fill(1), prepare: true };
    for (let i = 0; i < PREPARE_AFTER_USES + 1; i++) expect(send(cache, [wide]).statements).toEqual([wide]);
  });

  it("does not ask for a text resend when the failing batch prepared nothing", () => {
    const cache = new PreparedStatements();
    expect(cache.plan([update]).failed(Object.assign(new Error("refused"), { errno: 1461 }))).toBe(false);
  });
});
