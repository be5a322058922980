// What a worker's callback queues share (RunCallbacks: a DAG's onSuccess / onFailure of ended
// runs; TryCallbacks: the onRetry / onFailure reaped zombie tries owe): claim what is due under a
// lease every pollMs and when woken, run each in a child, and complete it. At least once: a
// worker that stops gives back what it did not run; one that dies leaves its lease to expire.
import { settledWithin } from "../core/concurrency.ts";
import type { Logger } from "../core/logger.ts";

export abstract class LeasedCallbacks<T> {
  private timer?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private again = false;
  private stopping = false;
  /** The worker killed its children: nothing more starts, what is left goes back. */
  protected released = false;
  private readonly inFlight = new Map<string, T>();

  constructor(
    protected readonly logger: Logger,
    private readonly lifecycle: { pollMs?: number; batch?: number; what: string },
  ) {}

  /** Takes up to `limit` due callbacks under a lease. */
  protected abstract claim(limit: number): Promise<T[]>;
  /** Runs one and completes it; throws to leave it claimed (given back at stop, else run again after its lease). */
  protected abstract run(c: T): Promise<void>;
  /** Gives back claims not completed. */
  protected abstract giveBack(claims: T[]): Promise<void>;
  protected abstract key(c: T): string;

  start(): void {
    this.timer = setInterval(() => this.wake(), this.lifecycle.pollMs ?? 1000);
    this.timer.unref();
    this.wake();
  }

  /** Something may be due: look now. */
  wake(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err) => this.logger.warn(`could not run ${this.lifecycle.what}: ${(err as Error).message}`))
      .finally(() => {
        this.draining = undefined;
      });
  }

  /** Claims no more; lets the callbacks claimed run until the deadline (release() gives back the rest). */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.drainingWithin(deadline - Date.now());
  }

  /** The worker is about to kill its children: start no callback from now on. */
  halt(): void {
    this.released = true;
  }

  /** After the worker killed its children: callbacks claimed and not completed go back to other workers. */
  async release(): Promise<void> {
    this.halt();
    // A claim or a callback still in flight ends soon (its child is dead): what it claimed is known
    // then. Bounded: a database that does not answer leaves its claims to their lease.
    await this.drainingWithin(5000);
    const left = [...this.inFlight.values()];
    this.inFlight.clear();
    if (left.length > 0) await this.giveBack(left).catch((err) => this.logger.warn(`could not give back ${this.lifecycle.what}: ${(err as Error).message}`));
  }

  /** Waits for the claims and callbacks in flight, at most `ms`. */
  private drainingWithin(ms: number): Promise<void> {
    return settledWithin(this.draining, Math.max(0, ms));
  }

  private async drain(): Promise<void> {
    const batch = this.lifecycle.batch ?? 4;
    for (;;) {
      if (this.stopping) return;
      this.again = false;
      const due = await this.claim(batch);
      for (const c of due) this.inFlight.set(this.key(c), c);
      await Promise.all(
        due.map(async (c) => {
          try {
            await this.run(c);
            this.inFlight.delete(this.key(c));
          } catch (err) {
            // Left claimed: given back when the worker stops, else run again once its lease expires.
            this.logger.warn(`${this.lifecycle.what}: ${(err as Error).message}`);
          }
        }),
      );
      if (this.stopping || (!this.again && due.length < batch)) return;
    }
  }
}
