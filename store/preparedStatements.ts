// Server-side prepared statements for the statements a connection sends again and again
// (batchTx's hot paths: finishing a try, claiming, counting a run down), on MariaDB.
//
// Why: a batch is one round trip of text statements, and MariaDB parses each one every time. A
// chain hop sends ~10 statements of 200–900 characters; as `EXECUTE name USING <values>` of
// statements prepared once per connection, the same round trip took ≈ 0.2 ms less (1.29 against
// 1.50 ms p50, interleaved, on a 2-core machine; bench/README "twentieth session"). MariaDB accepts
// any expression in USING (MySQL only user variables), so values keep travelling as the same
// escaped literals they are in the text path, in the same round trip.
//
// Which: only statements their builder marks `prepare` (Statement.prepare: none with derived
// tables, which MariaDB 10.11 prepares wrongly in cases seen here).
// How, per connection (server-side prepared statements belong to the session):
//   - a statement is prepared the PREPARE_AFTER_USES-th time its text is sent, so a text sent once
//     (an IN list of an unusual length, a one-off read) never costs a PREPARE;
//   - at most `capacity` are prepared, in named slots baton_ps_0…: preparing into a slot replaces
//     whatever the slot held (PREPARE's own rule), so the least recently used one makes room without
//     a DEALLOCATE, and a connection never holds more than `capacity` statements on the server;
//   - the batch's PREPAREs go first, before its other statements (a PREPARE between an UPDATE and
//     its `SET @x = ROW_COUNT()` would reset ROW_COUNT()): when one fails, nothing else of the batch
//     ran, so a refusal the server gives only to PREPARE (a statement it cannot prepare, its
//     max_prepared_stmt_count reached) is answered by sending the batch again as plain text;
//   - a slot is trusted only after the batch that prepared it was answered without an error:
//     after any error the slots it was preparing are forgotten (prepared again if still hot), and
//     after "unknown prepared statement" (a session reset under it) all of them.
import type { Statement } from "./db.ts";

/** How many times a connection sends a statement's text before it is prepared. */
export const PREPARE_AFTER_USES = 2;
/**
 * Prepared statements per connection. Each holds its parse tree on the server (≈ 32 KB for
 * finishTries' UPDATE, measured), and the server counts them all against max_prepared_stmt_count
 * (default 16,382, shared with every other client): 24 per connection × 10 connections per pool
 * is 240 per Baton process. A chain's hop uses 9; the rest is room for IN lists of other lengths.
 */
export const PREPARED_PER_CONNECTION = 24;
/** MariaDB refuses to prepare a statement with more placeholders (ER_PS_MANY_PARAM); as text it has no such limit. */
const MAX_PREPARED_PARAMS = 65_535;
/** Texts whose uses are counted per connection before the least recently seen is forgotten. */
const COUNTED_PER_CONNECTION = 256;

/** MariaDB's errors that only a PREPARE raises and that say nothing about the statement's meaning. */
const ER_UNSUPPORTED_PS = 1295;
const ER_MAX_PREPARED_STMT_COUNT_REACHED = 1461;
/** The session no longer holds a statement this cache trusts (something reset the session). */
const ER_UNKNOWN_STMT_HANDLER = 1243;

/** Only data statements are prepared, whatever a builder asks: SET, transaction control and compound blocks stay text. */
const PREPARABLE = /^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b/i;

interface Seen {
  uses: number;
  /**
   * How many times its slot went to another text. Each doubles the uses it needs before it is
   * prepared again: when more texts are hot than there are slots, a text evicted and prepared
   * again at its next use would pay a PREPARE at nearly every use (more than its text costs).
   */
  evictions: number;
  /** The slot it is prepared in (trusted), if it is. */
  slot?: number;
}

/** One batch as sent: its statements with the PREPAREs first, and how to settle the cache after. */
export interface PreparedBatch {
  statements: Statement[];
  /** The server answered without an error: the slots prepared by this batch are trusted. */
  answered(): void;
  /**
   * The batch failed with `err`: whether it should be sent again as text (the server refused a
   * PREPARE for a reason of its own; nothing else of the batch ran). Forgets this batch's slots.
   */
  failed(err: unknown): boolean;
}

/** Whether each parameter travels as a single literal (an array expands to a list, an object to `k = v` pairs). */
function scalarParams(params: readonly unknown[]): boolean {
  return params.every((p) => p === null || typeof p !== "object" || p instanceof Date || Buffer.isBuffer(p));
}

export class PreparedStatements {
  private readonly seen = new Map<string, Seen>();
  /** Slot → the text it holds (trusted or being prepared). */
  private readonly slots: (string | undefined)[] = [];
  /** Slots in least-recently-used order (first: the next to reuse). */
  private readonly slotOrder: number[] = [];
  private refusedTexts = new Set<string>();
  /** The server's statement limit was reached: this connection prepares nothing more. */
  private exhausted = false;

  constructor(private readonly capacity = PREPARED_PER_CONNECTION) {}

  plan(statements: Statement[]): PreparedBatch {
    const prepares: Statement[] = [];
    const preparing: { text: string; slot: number }[] = [];
    // Slots this batch executes: preparing another text into one of them (the PREPAREs run first)
    // would make its EXECUTE run the other statement.
    const used = new Set<number>();
    const out = statements.map((s) => {
      const params = s.params ?? [];
      if (!s.prepare || this.exhausted || params.length > MAX_PREPARED_PARAMS || !PREPARABLE.test(s.sql) || this.refusedTexts.has(s.sql) || !scalarParams(params)) return s;
      const seen = this.touch(s.sql);
      let slot = seen.slot;
      if (slot === undefined) {
        const pending = preparing.find((p) => p.text === s.sql);
        if (pending) slot = pending.slot;
        else if (seen.uses >= PREPARE_AFTER_USES * 2 ** Math.min(seen.evictions, 10)) {
          slot = this.takeSlot(s.sql, used);
          if (slot !== undefined) {
            preparing.push({ text: s.sql, slot });
            prepares.push({ sql: `PREPARE baton_ps_${slot} FROM ?`, params: [s.sql] });
          }
        }
      }
      if (slot === undefined) return s;
      used.add(slot);
      this.useSlot(slot);
      return params.length === 0 ? { sql: `EXECUTE baton_ps_${slot}` } : { sql: `EXECUTE baton_ps_${slot} USING ${params.map(() => "?").join(", ")}`, params };
    });
    return {
      statements: [...prepares, ...out],
      answered: () => {
        for (const { text, slot } of preparing) if (this.slots[slot] === text) this.seen.get(text)!.slot = slot;
      },
      failed: (err) => {
        for (const { text, slot } of preparing) this.forgetSlot(slot, text);
        const errno = (err as { errno?: number } | null)?.errno;
        // Statements of the batch before the failing EXECUTE ran: not resent, but nothing is trusted
        // any more, so the next batches prepare what they execute again.
        if (errno === ER_UNKNOWN_STMT_HANDLER) this.forgetAll();
        if (preparing.length === 0) return false;
        if (errno === ER_MAX_PREPARED_STMT_COUNT_REACHED) this.exhausted = true;
        else if (errno === ER_UNSUPPORTED_PS) for (const { text } of preparing) this.refusedTexts.add(text);
        else return false;
        return true;
      },
    };
  }

  /** Counts a use of `text`, keeping it the most recently seen. */
  private touch(text: string): Seen {
    let seen = this.seen.get(text);
    if (seen) this.seen.delete(text);
    else seen = { uses: 0, evictions: 0 };
    seen.uses++;
    this.seen.set(text, seen);
    if (this.seen.size > COUNTED_PER_CONNECTION) {
      // Forget the least recently seen text that holds no slot (a slot is freed by takeSlot only).
      for (const [old, s] of this.seen) {
        if (s.slot === undefined && !this.slots.includes(old)) {
          this.seen.delete(old);
          break;
        }
      }
    }
    return seen;
  }

  /** A slot for `text`: a new one, else the least recently used one this batch does not execute; none when it executes all. */
  private takeSlot(text: string, used: ReadonlySet<number>): number | undefined {
    let slot: number | undefined;
    if (this.slots.length < this.capacity) {
      slot = this.slots.length;
      this.slots.push(undefined);
      this.slotOrder.push(slot);
    } else {
      slot = this.slotOrder.find((s) => !used.has(s));
      if (slot === undefined) return undefined;
      const old = this.slots[slot];
      if (old !== undefined) {
        const seen = this.seen.get(old);
        if (seen) {
          seen.slot = undefined;
          seen.uses = 0;
          seen.evictions++;
        }
      }
    }
    this.slots[slot] = text;
    return slot;
  }

  private useSlot(slot: number): void {
    const at = this.slotOrder.indexOf(slot);
    if (at >= 0) this.slotOrder.splice(at, 1);
    this.slotOrder.push(slot);
  }

  private forgetAll(): void {
    for (const seen of this.seen.values()) seen.slot = undefined;
    this.slots.fill(undefined);
  }

  private forgetSlot(slot: number, text: string): void {
    if (this.slots[slot] === text) this.slots[slot] = undefined;
    const seen = this.seen.get(text);
    if (seen?.slot === slot) seen.slot = undefined;
  }
}
