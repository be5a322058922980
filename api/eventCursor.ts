// Where a live event stream stands, and which events it may still owe its client.
//
// An event's id is handed out when its row is inserted, but transactions commit in their own
// order: id 12 can become visible after id 13 was read and sent. A stream that only asked for
// `id > last sent` would never send 12. So the cursor remembers the ids it stepped over (its
// gaps) and asks for them again on every poll until they appear, or until they are too old to
// belong to a transaction still open (a rolled-back insert leaves a gap for good).

export interface EventCursorOptions {
  /** How long a missing id is asked for: longer than any transaction that writes events stays open. */
  gapTtlMs: number;
  /** At most this many missing ids are kept (the oldest go first), so odd id sequences stay cheap. */
  maxGaps: number;
}

const DEFAULTS: EventCursorOptions = { gapTtlMs: 120_000, maxGaps: 5_000 };

export class EventCursor {
  /** Missing id → when it was first found missing (ms); insertion order is age order. */
  private readonly gaps = new Map<number, number>();
  private readonly options: EventCursorOptions;
  private highest: number;

  /**
   * A cursor after `afterId`. `presentBelow` lists the ids that existed at or below it within
   * (`windowStart`, `afterId`): the others in that window may be open transactions' events, still
   * to be sent when they commit.
   */
  constructor(afterId: number, presentBelow: readonly number[] = [], windowStart = afterId, nowMs = 0, options: Partial<EventCursorOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.highest = Math.max(windowStart, 0);
    this.advance([...presentBelow.filter((id) => id > windowStart && id < afterId), afterId].filter((id) => id > 0), nowMs);
    this.highest = Math.max(this.highest, afterId);
  }

  /** The highest id read so far: the next read asks for every id above it. */
  get afterId(): number {
    return this.highest;
  }

  /** Ids stepped over and not seen since, to ask for again. */
  get missing(): number[] {
    return [...this.gaps.keys()];
  }

  /**
   * Takes one read's ids in ascending order: every id above afterId up to the read's last one,
   * plus any missing ids that have appeared.
   */
  advance(ids: readonly number[], nowMs: number): void {
    for (const id of ids) {
      if (id <= this.highest) {
        this.gaps.delete(id);
        continue;
      }
      // A jump wider than maxGaps keeps only the ids just below the new one: the others would be
      // dropped as the oldest at once.
      for (let gap = Math.max(this.highest + 1, id - this.options.maxGaps); gap < id; gap++) this.gaps.set(gap, nowMs);
      this.highest = id;
    }
    for (const [id, since] of this.gaps) {
      if (this.gaps.size <= this.options.maxGaps && nowMs - since < this.options.gapTtlMs) break;
      this.gaps.delete(id);
    }
  }
}
