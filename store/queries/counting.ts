// total_entries for list endpoints. Counting a DAG's 100,000 runs costs tens of milliseconds,
// and a page of the same list asked by 50 clients at once would count 50 times.
import type { Queryable, RowDataPacket } from "../db.ts";

/** Counts of at least REUSE_MIN_ROWS that took SLOW_COUNT_MS or more are reused for up to REUSE_MS; others are always exact. */
export const SLOW_COUNT_MS = 5;
export const REUSE_MIN_ROWS = 10_000;
export const REUSE_MS = 1_000;
const MAX_ENTRIES = 500;

interface Entry {
  value: number;
  at: number;
}

// Per pool (or connection): each database has its own counts.
const reused = new WeakMap<object, Map<string, Entry>>();
const running = new WeakMap<object, Map<string, Promise<number>>>();

function mapFor<V>(store: WeakMap<object, Map<string, V>>, db: Queryable): Map<string, V> {
  let map = store.get(db);
  if (!map) store.set(db, (map = new Map()));
  return map;
}

/**
 * `SELECT COUNT(*) AS n …` with two economies: identical counts in flight at once share one
 * query, and a large count (10,000+) that was slow to compute is reused for up to a second. A
 * list's total_entries may therefore lag a second behind its rows when it is that long, never
 * when it is short enough to page through by hand (nor in tests that insert and then count).
 */
export async function countRows(db: Queryable, sql: string, params: unknown[], now: () => number = Date.now): Promise<number> {
  const key = `${sql}\u0000${JSON.stringify(params)}`;
  const cache = mapFor(reused, db);
  const hit = cache.get(key);
  if (hit && now() - hit.at < REUSE_MS) return hit.value;
  const inFlight = mapFor(running, db);
  const pending = inFlight.get(key);
  if (pending) return pending;
  const started = performance.now();
  const query = db
    .query<RowDataPacket[]>(sql, params)
    .then(([rows]) => Number(rows[0]!.n))
    .finally(() => inFlight.delete(key));
  inFlight.set(key, query);
  const value = await query;
  if (value >= REUSE_MIN_ROWS && performance.now() - started >= SLOW_COUNT_MS) {
    if (cache.size >= MAX_ENTRIES) cache.clear();
    cache.set(key, { value, at: now() });
  } else {
    cache.delete(key);
  }
  return value;
}

/**
 * total_entries of a page whose rows came from `LIMIT asked OFFSET offset` (`fetched` of them).
 * A page that came back short is the last one, so the total is its offset plus its rows and no
 * COUNT runs (a run's task instances, most filtered lists); a full page, or an empty one past the
 * end, is counted by countRows. The short page's total is exact: it comes from the page's own read.
 */
export async function pageTotal(
  db: Queryable,
  countSql: string,
  params: unknown[],
  page: { offset: number; asked: number; fetched: number },
): Promise<number> {
  if (page.fetched < page.asked && (page.fetched > 0 || page.offset === 0)) return page.offset + page.fetched;
  return countRows(db, countSql, params);
}
