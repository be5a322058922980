/**
 * Where a transition that works through rows in id order, a page per transaction, left off: the
 * rows it looked at (locked and read, before any filtering) and the last one's id. The next
 * page starts after lastId; a page shorter than asked for was the last.
 */
export interface PageEnd {
  scanned: number;
  lastId: number;
}

/** Options of such a transition: the page size and where the page starts. */
export interface PageOptions {
  limit?: number;
  afterId?: number;
}
