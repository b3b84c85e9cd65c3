import { BarrierTimeout } from '../errors.js';

/** One transaction's bound: the work it waits for and how to give up on it. */
interface Deadline {
  readonly at: number;
  /** Cleared once the deadline is settled (the work ended, or it expired), so the queue holds no result. */
  work: Promise<unknown> | undefined;
  reject: ((error: unknown) => void) | undefined;
}

/**
 * The transaction bound of one store: one timer for all its open transactions rather than a
 * `setTimeout`/`clearTimeout` pair each (a timer object, two trips into the timer lists and an
 * async resource per transaction). Every transaction of a store has the same bound, so deadlines
 * fall due in the order they were set and the queue stays ordered by itself. The timer is armed for
 * the oldest open deadline; when it fires it expires what is due and re-arms for the next, so a
 * store under steady load sets a timer about once per bound, not once per transaction.
 *
 * The timer is unref'd: it never keeps the process alive by itself. Each open transaction holds a
 * server connection (a socket, which does), and a bound pending after the last one ended would
 * otherwise keep a finished script waiting for it.
 */
export class Deadlines {
  readonly #ms: number;
  /** Oldest first. Settled entries are dropped from the front as soon as they reach it. */
  readonly #queue: Deadline[] = [];
  /** Armed for the oldest open deadline; a newer one is never due sooner (the bound is the same for all). */
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /**
   * Resolves as `work` does, or rejects with `BarrierTimeout` once the bound has passed. The caller
   * is told of the timeout; whatever the abandoned work does later is only reported, as a
   * `TxbarrierLateError` process warning.
   */
  bound<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline: Deadline = { at: performance.now() + this.#ms, work, reject };
      this.#queue.push(deadline);
      if (this.#timer === undefined) this.#arm(this.#ms);
      work.then(
        (value) => {
          if (this.#settle(deadline)) resolve(value);
        },
        (error: unknown) => {
          if (this.#settle(deadline)) reject(error);
        },
      );
    });
  }

  /** Marks `deadline` settled by its work; false if it had already expired. */
  #settle(deadline: Deadline): boolean {
    if (deadline.reject === undefined) return false;
    deadline.work = deadline.reject = undefined;
    const queue = this.#queue;
    while (queue.length > 0 && queue[0]!.reject === undefined) queue.shift();
    return true;
  }

  #arm(delayMs: number): void {
    // A timer may fire up to a millisecond early by performance.now(): the sweep re-arms for the rest.
    this.#timer = setTimeout(this.#sweep, Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref();
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const queue = this.#queue;
    while (queue.length > 0) {
      const deadline = queue[0]!;
      if (deadline.reject !== undefined && deadline.at > now) break;
      queue.shift();
      const { work, reject } = deadline;
      if (reject === undefined) continue;
      deadline.work = deadline.reject = undefined;
      work!.catch((error: unknown) =>
        process.emitWarning(`txbarrier: a timed-out business function failed later: ${String(error)}`, 'TxbarrierLateError'),
      );
      reject(new BarrierTimeout(this.#ms));
    }
    if (queue.length > 0) this.#arm(queue[0]!.at - now);
  };
}
