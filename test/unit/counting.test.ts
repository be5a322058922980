import type { Queryable } from "../../store/db.ts";
import { countRows, pageTotal, REUSE_MIN_ROWS, REUSE_MS, SLOW_COUNT_MS } from "../../store/queries/counting.ts";

/** A Queryable whose COUNT answers `value` after `delayMs`, recording each query it receives. */
function fakeDb(answer: () => { value: number; delayMs: number }) {
  const calls: string[] = [];
  const db = {
    query: async (sql: string) => {
      calls.push(sql);
      const { value, delayMs } = answer();
      await new Promise((r) => setTimeout(r, delayMs));
      return [[{ n: value }], []];
    },
  } as unknown as Queryable;
  return { db, calls };
}

describe("countRows", () => {
  it("shares one query among identical counts in flight", async () => {
    const { db, calls } = fakeDb(() => ({ value: 7, delayMs: 1 }));
    const counts = await Promise.all(Array.from({ length: 20 }, () => countRows(db, "SELECT COUNT(*) AS n FROM t WHERE a = ?", [1])));
    expect(counts).toEqual(Array(20).fill(7));
    expect(calls).toHaveLength(1);
  });

  it("keeps cheap counts exact: the next call counts again", async () => {
    let value = 1;
    const { db, calls } = fakeDb(() => ({ value: value++, delayMs: 0 }));
    expect(await countRows(db, "SELECT COUNT(*) AS n FROM t", [])).toBe(1);
    expect(await countRows(db, "SELECT COUNT(*) AS n FROM t", [])).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it("keeps short lists exact even when their count was slow", async () => {
    let value = 1;
    const { db, calls } = fakeDb(() => ({ value: value++, delayMs: SLOW_COUNT_MS + 5 }));
    expect(await countRows(db, "SELECT COUNT(*) AS n FROM t", [])).toBe(1);
    expect(await countRows(db, "SELECT COUNT(*) AS n FROM t", [])).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it("reuses a slow count of a long list for REUSE_MS, per statement and parameters, then counts again", async () => {
    let value = REUSE_MIN_ROWS;
    let clock = 1_000_000;
    const now = () => clock;
    const { db, calls } = fakeDb(() => ({ value: value++, delayMs: SLOW_COUNT_MS + 5 }));
    const sql = "SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = ?";
    expect(await countRows(db, sql, ["a"], now)).toBe(REUSE_MIN_ROWS);
    clock += REUSE_MS - 1;
    expect(await countRows(db, sql, ["a"], now)).toBe(REUSE_MIN_ROWS);
    expect(await countRows(db, sql, ["b"], now)).toBe(REUSE_MIN_ROWS + 1);
    clock += 2;
    expect(await countRows(db, sql, ["a"], now)).toBe(REUSE_MIN_ROWS + 2);
    expect(calls).toHaveLength(3);
  });

  it("keeps each database's counts apart", async () => {
    const one = fakeDb(() => ({ value: REUSE_MIN_ROWS, delayMs: SLOW_COUNT_MS + 5 }));
    const two = fakeDb(() => ({ value: REUSE_MIN_ROWS + 1, delayMs: SLOW_COUNT_MS + 5 }));
    expect(await countRows(one.db, "SELECT COUNT(*) AS n FROM t", [])).toBe(REUSE_MIN_ROWS);
    expect(await countRows(two.db, "SELECT COUNT(*) AS n FROM t", [])).toBe(REUSE_MIN_ROWS + 1);
  });
});

describe("pageTotal", () => {
  const sql = "SELECT COUNT(*) AS n FROM t WHERE a = ?";

  it.each([
    ["a short first page", { offset: 0, asked: 101, fetched: 10 }, 10],
    ["an empty first page", { offset: 0, asked: 101, fetched: 0 }, 0],
    ["a short page further on", { offset: 200, asked: 101, fetched: 37 }, 237],
    ["a page of exactly limit rows (the extra row missing)", { offset: 100, asked: 101, fetched: 100 }, 200],
  ])("knows the total of %s without counting", async (_what, page, total) => {
    const { db, calls } = fakeDb(() => ({ value: -1, delayMs: 0 }));
    expect(await pageTotal(db, sql, [1], page)).toBe(total);
    expect(calls).toEqual([]);
  });

  it.each([
    ["a full page (more rows follow)", { offset: 0, asked: 101, fetched: 101 }],
    ["an empty page past the end", { offset: 500, asked: 101, fetched: 0 }],
  ])("counts for %s", async (_what, page) => {
    const { db, calls } = fakeDb(() => ({ value: 321, delayMs: 0 }));
    expect(await pageTotal(db, sql, [2], page)).toBe(321);
    expect(calls).toEqual([sql]);
  });
});
