/**
 * How a commit that enqueued wakes the relays, without slowing the commits down.
 *
 * A NOTIFY inside the business transaction makes PostgreSQL take a database-wide lock on its
 * notification queue at commit and hold it through the commit's WAL flush, so the commits of all
 * notifying transactions run one at a time. So where the outbox sees the commit (its own store's
 * transactions, an executor that reports its transaction's end), it wakes afterwards instead:
 * relays of the same outbox in this process directly, and the others with one NOTIFY, on the same
 * channel and with the same empty payload as before (relays of earlier versions listen for that),
 * sent in a transaction of its own, at most one in flight and at most one per `NOTIFY_INTERVAL_MS`
 * per outbox: every commit meanwhile is covered by the next one.
 */

/** The shortest time between two NOTIFYs of one outbox in one process: bounds their cost; a wake-up waits at most this (plus one NOTIFY's round trips). */
export const NOTIFY_INTERVAL_MS = 20;

/** The relays of each outbox in this process, woken directly when its transaction commits. */
const localRelays = new WeakMap<object, Set<() => void>>();

/** The set a relay of `outbox` joins to be woken in-process; undefined for an object `createOutbox` did not make. */
export function localRelaysOf(outbox: object): Set<() => void> | undefined {
  return localRelays.get(outbox);
}

/**
 * What an outbox calls once a transaction that enqueued has committed. `notify` sends one NOTIFY
 * (undefined: nothing outside this process can be woken, as on MariaDB and SQLite, whose relays poll).
 */
export function commitWaker(outbox: object, notify: (() => Promise<unknown>) | undefined, intervalMs = NOTIFY_INTERVAL_MS): () => void {
  const relays = new Set<() => void>();
  localRelays.set(outbox, relays);
  const notifyLater = notify && coalesced(notify, intervalMs);
  return () => {
    for (const wake of relays) wake();
    notifyLater?.();
  };
}

/**
 * `send` at most once per `intervalMs` and never twice at once; a call while one is waiting or in
 * flight is folded into the next, which starts after the one in flight ended (its relay may have
 * looked before the later commits were visible). The first call after a quiet spell sends at once.
 */
export function coalesced(send: () => Promise<unknown>, intervalMs: number): () => void {
  let inFlight = false;
  let waiting: NodeJS.Timeout | undefined;
  let again = false;
  let last = -Infinity;
  const fire = () => {
    waiting = undefined;
    again = false;
    inFlight = true;
    last = performance.now();
    // A lost NOTIFY costs latency, not messages: the relays' poll finds them.
    send()
      .catch(() => undefined)
      .finally(() => {
        inFlight = false;
        if (again) request();
      });
  };
  const request = () => {
    if (inFlight || waiting) {
      again = true;
      return;
    }
    const wait = last + intervalMs - performance.now();
    if (wait <= 0) fire();
    else (waiting = setTimeout(fire, wait)).unref();
  };
  return request;
}
