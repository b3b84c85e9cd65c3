import { parseDuration } from '../../duration.js';
import { BarrierConfigError } from '../../errors.js';
import type { Logger } from '../../observe/hooks.js';
import { recordPublishes, recordRelayError } from '../../observe/metrics.js';
import type { Outbox } from './outbox.js';
import { pruneSent } from './prune.js';
import { inPublishSpan } from './trace.js';
import { localRelaysOf } from './wake.js';
import type { BarrierStore, Row } from '../../transaction/store.js';

/** One message as a publisher receives it. */
export interface OutboxDelivery {
  /** The UUIDv7 given at enqueue: send it as the broker's message id / dedupe id. */
  readonly id: string;
  readonly topic: string;
  readonly key: string | null;
  /** The enqueued headers, with the trace context of the publish span. */
  readonly headers: Record<string, string>;
  readonly payload: Buffer;
  /** 1 for the first try. */
  readonly attempt: number;
}

/** Sends messages to one broker. `txbarrier/outbox/amqp` and `txbarrier/outbox/nats` make one. */
export interface OutboxPublisher {
  /** `messaging.system` for spans: `rabbitmq`, `nats`, … */
  readonly system?: string;
  /**
   * Publishes one message and resolves only once the broker has taken responsibility for it
   * (a publisher confirm, a JetStream ack); rejects otherwise. May be called for several messages
   * at once, never for two of the same key.
   */
  publish(message: OutboxDelivery): Promise<void>;
  /** Releases what the publisher opened; `relay.stop()` calls it last. */
  close?(): Promise<void>;
}

/**
 * Starts listening for the outbox's wake-ups (PostgreSQL LISTEN) and resolves to a function that
 * stops. `txbarrier/outbox/postgres` makes one from a pg pool.
 */
export type OutboxListener = (channel: string, onNotify: () => void) => Promise<() => Promise<void>>;

/** When a failed publish is tried again, and when a message is given up on. */
export interface RetryPolicy {
  /** Retries made at once, at the relay's next round, after the first failures. Defaults to `3`. */
  immediate?: number;
  /** The delay before the first retry after the immediate ones: ms or a duration such as `'1s'`. Defaults to `'1s'`. */
  interval?: number | string;
  /** Each later delay is the previous one times this. Defaults to `2`. */
  backoff?: number;
  /** No delay grows beyond this. Defaults to `'5m'`. */
  maxInterval?: number | string;
  /**
   * Attempts in all, the first included; a message whose last attempt fails is parked and
   * `onParked` fires. With the other defaults, a broker that is down for about 40 minutes parks
   * messages: requeue them with `outbox.requeue(ids)`. Defaults to `20`.
   */
  maxAttempts?: number;
}

/** What the hooks receive about one message. */
export interface RelayEvent {
  id: string;
  topic: string;
  key: string | null;
  attempt: number;
  /** How long the publish took. */
  durationMs: number;
  /** Why it failed (`onRetry`, `onParked`). */
  error?: unknown;
  /** When it will be tried again (`onRetry`). */
  retryInMs?: number;
}

export interface RelayOptions {
  /** Where messages go. Required. */
  publisher: OutboxPublisher;
  /**
   * The store the relay's own transactions (claim, record, prune) run on, on the outbox's database.
   * On MySQL/MariaDB give it one with `isolationLevel: 'read committed'`: under REPEATABLE READ a
   * claim's locking read also locks the gap after the newest pending message, so every enqueue
   * waits until that claim commits. Defaults to the outbox's store.
   */
  store?: BarrierStore<unknown>;
  /** Messages claimed per round. Defaults to `100`. */
  batchSize?: number;
  /** How often the relay looks for due messages when nothing woke it: ms or a duration. Defaults to `'1s'`. */
  pollInterval?: number | string;
  /**
   * How long a claimed message stays hidden from other relays. A relay that dies after claiming
   * leaves its messages to be published again after this, so keep it well above a publish's
   * worst time. Defaults to `'30s'`.
   */
  lease?: number | string;
  /** Retries and parking. Defaults to the defaults of each `RetryPolicy` field. */
  retry?: RetryPolicy;
  /**
   * Wakes the relay as soon as a transaction that enqueued commits, in another process (PostgreSQL's
   * NOTIFY). Relays of the same outbox object in this process are woken without it. Defaults to
   * none: polling only.
   */
  listen?: OutboxListener;
  /** Sent messages are deleted once this old: ms, a duration, or `false` to keep them. Defaults to `'1h'`. */
  retainSent?: number | string | false;
  /** How often sent messages are pruned. Defaults to `'1m'`. */
  pruneInterval?: number | string;
  /**
   * How long `stop()` waits for the round in flight to publish and record its messages. Past it
   * `stop()` resolves anyway and those messages are published again after their lease. Defaults to `'10s'`.
   */
  stopTimeout?: number | string;
  /** After each message the broker confirmed and the outbox recorded as sent. */
  onPublished?: (event: RelayEvent) => void;
  /** After each failed publish that will be retried. */
  onRetry?: (event: RelayEvent) => void;
  /** After a message was parked: it will not be retried until someone requeues it. Alert here. */
  onParked?: (event: RelayEvent) => void;
  /**
   * A round failed as a whole (the database unreachable, a failed record of outcomes): it is retried
   * at the next poll. A claim or prune that lost a conflict to another relay (a deadlock, a Galera
   * certification failure) is not a failure: it goes to the logger at debug.
   */
  onError?: (error: unknown) => void;
  /** pino- or console-shaped; published and lost claim races at debug, retries at warn, parked messages and failed rounds at error. Defaults to none. */
  logger?: Logger;
}

/** A relay: claims due messages, publishes them, records the outcome. */
export interface Relay {
  /** Starts polling (and listening): idempotent. */
  start(): void;
  /**
   * Runs one round now: claims up to `batchSize` due messages, publishes them and records each
   * outcome. Resolves to how many it claimed. Rounds never overlap: a call during one waits for it.
   */
  runOnce(): Promise<number>;
  /**
   * Stops claiming, waits for the round in flight, stops listening and closes the publisher, all
   * within `stopTimeout` (this call's, else the relay's): past it, it resolves anyway, reports what
   * did not finish to the logger (or `onError` for a failed or late close), and the round's messages
   * are published again after their lease.
   */
  stop(options?: { stopTimeout?: number | string }): Promise<void>;
}

interface Claimed {
  seq: unknown;
  delivery: OutboxDelivery;
}

/** Publishes the committed messages of `outbox`. Several relays, in one process or many, may run on one outbox. */
export function createRelay(outbox: Outbox<any, BarrierStore<any>>, options: RelayOptions): Relay {
  const settings = readOptions(options);
  const { publisher, logger, batchSize } = settings;
  const { sql } = outbox;
  const store = options.store ?? outbox.store;
  if (store.dialect.name !== outbox.store.dialect.name) {
    throw new BarrierConfigError(`createRelay: options.store is ${store.dialect.name}, but the outbox is on ${outbox.store.dialect.name}`);
  }
  const report = reporter(logger);

  let running = false;
  let looping: Promise<void> | undefined;
  let round: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  // A notification that came while a round ran: that round's claim may have missed its message.
  let woken = false;
  let unlisten: Promise<(() => Promise<void>) | undefined> | undefined;
  let lastPrune = Date.now();
  const onNotify = () => {
    woken = true;
    wake?.();
  };
  // Commits of this outbox object in this process wake the relay directly (every engine).
  const localRelays = localRelaysOf(outbox);

  /**
   * Selects due messages and commits their lease before anything is published: the lease is a
   * write, so on a multi-primary cluster (Galera), where `SKIP LOCKED` sees only the node's own
   * locks, two relays that selected the same rows on two nodes cannot both commit it.
   */
  async function claim(): Promise<Claimed[]> {
    let rows: Row[];
    try {
      rows = await store.transaction(async (connection) => {
        const found = await connection.select(sql.claim(batchSize), []);
        if (found.length > 0) await connection.execute(sql.lease(found.length), [settings.leaseMs, ...found.map((row) => row.seq)]);
        return found;
      });
    } catch (error) {
      // Another relay's claim of the same rows won (a deadlock on one server; on Galera, this
      // claim's COMMIT failing certification): nothing was claimed, nothing will be published, and
      // the next round looks again. Routine with several relays on a cluster, hence debug.
      if (!store.dialect.isRetryable(error)) throw error;
      logger?.debug?.({ err: error }, 'txbarrier outbox claim lost to another relay');
      return [];
    }
    return rows.map((row) => ({ seq: row.seq, delivery: deliveryOf(row) }));
  }

  async function publishRound(): Promise<number> {
    const claimed = await claim();
    if (claimed.length === 0) return 0;
    const outcomes = await Promise.all(claimed.map(attempt));
    const sent = outcomes.filter((o) => o.error === undefined);
    const failed = outcomes.filter((o) => o.error !== undefined);
    await store.transaction(async (connection) => {
      if (sent.length > 0) await connection.execute(sql.markSent(sent.length), [...sent.map((o) => o.seq), ...sent.map((o) => o.id)]);
      for (const o of failed) {
        const text = errorText(o.error);
        if (o.retryInMs === undefined) await connection.execute(sql.park(), [text, o.seq, o.id]);
        else await connection.execute(sql.retryLater(), [o.retryInMs, text, o.seq, o.id]);
      }
    });
    recordPublishes(publisher.system ?? 'unknown', outcomes);
    for (const o of outcomes) {
      const { seq: _seq, ...event } = o;
      if (o.error === undefined) report('debug', 'txbarrier outbox published', 'onPublished', options.onPublished, event);
      else if (o.retryInMs === undefined) report('error', 'txbarrier outbox parked a message', 'onParked', options.onParked, event);
      else report('warn', 'txbarrier outbox publish failed; will retry', 'onRetry', options.onRetry, event);
    }
    return claimed.length;
  }

  async function attempt({ seq, delivery }: Claimed): Promise<RelayEvent & { seq: unknown }> {
    const { id, topic, key } = delivery;
    const started = performance.now();
    const base = { seq, id, topic, key, attempt: delivery.attempt };
    if (delivery.attempt > settings.maxAttempts) {
      // Claimed that often with no outcome recorded: each relay that took it died or lost the
      // database mid-publish. Perhaps this very message kills it; a person should look.
      const error = new Error(`claimed ${delivery.attempt - 1} times without an outcome being recorded`);
      return { ...base, durationMs: 0, error };
    }
    try {
      const attributes = { 'messaging.system': publisher.system ?? 'unknown', 'messaging.destination.name': topic, 'messaging.message.id': id };
      await inPublishSpan(`${topic} publish`, attributes, delivery.headers, (headers) => publisher.publish({ ...delivery, headers }));
      return { ...base, durationMs: performance.now() - started };
    } catch (error) {
      const durationMs = performance.now() - started;
      const retryInMs = delivery.attempt >= settings.maxAttempts ? undefined : delayAfter(delivery.attempt, settings);
      return { ...base, durationMs, error, ...(retryInMs === undefined ? {} : { retryInMs }) };
    }
  }

  async function maybePrune(): Promise<void> {
    if (settings.retainMs === false || Date.now() - lastPrune < settings.pruneIntervalMs) return;
    lastPrune = Date.now();
    try {
      await pruneSent(store, sql, { olderThan: settings.retainMs });
    } catch (error) {
      // Another relay pruned the same sent rows at the same moment; the next interval prunes again.
      if (!store.dialect.isRetryable(error)) throw error;
      logger?.debug?.({ err: error }, 'txbarrier outbox prune lost to another relay');
    }
  }

  function runOnce(): Promise<number> {
    const previous = round ?? Promise.resolve(0);
    const next = previous.catch(() => 0).then(publishRound);
    round = next;
    void next.finally(() => {
      if (round === next) round = undefined;
    }).catch(() => undefined);
    return next;
  }

  async function loop(): Promise<void> {
    while (running) {
      let claimed = 0;
      woken = false;
      try {
        claimed = await runOnce();
        await maybePrune();
      } catch (error) {
        recordRelayError(store.dialect.name);
        report('error', 'txbarrier outbox relay round failed', 'onError', options.onError, error);
      }
      // A round that found work may have left more (a full batch, immediate retries): go again.
      if (claimed > 0 || woken || !running) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, settings.pollMs);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      localRelays?.add(onNotify);
      if (options.listen && !unlisten) {
        unlisten = options.listen(outbox.channel, onNotify).catch((error) => {
          report('error', 'txbarrier outbox relay could not listen; polling only', 'onError', options.onError, error);
          return undefined;
        });
      }
      looping = loop();
    },
    runOnce,
    async stop(stopOptions = {}) {
      const stopTimeoutMs = stopOptions.stopTimeout === undefined ? settings.stopTimeoutMs : parseDuration(stopOptions.stopTimeout, 'stopTimeout');
      running = false;
      localRelays?.delete(onNotify);
      wake?.();
      let deadline: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (deadline = setTimeout(() => resolve('expired'), stopTimeoutMs)));
      try {
        // The loop ends after its round (and prune); a round started by runOnce() is waited for too.
        const inFlight = Promise.all([looping, round?.catch(() => 0)]);
        looping = undefined;
        if ((await Promise.race([inFlight, expired])) === 'expired') {
          logger?.warn?.({ stopTimeoutMs }, 'txbarrier outbox relay stopped with a round in flight; its messages return after their lease');
        }
        // Listening and the publisher close in what is left of the same deadline: a stalled
        // connection must not hold stop() (and the process's shutdown) past it.
        const closing = (async () => {
          const stopListening = await unlisten;
          unlisten = undefined;
          await stopListening?.();
          await publisher.close?.();
        })();
        const closed = await Promise.race([closing.then(() => 'closed' as const), expired]).catch((error: unknown) => {
          report('error', 'txbarrier outbox relay: closing the publisher or the listener failed', 'onError', options.onError, error);
          return 'failed' as const;
        });
        if (closed === 'expired') {
          closing.catch(() => undefined);
          report('error', 'txbarrier outbox relay: the publisher or the listener did not close within stopTimeout', 'onError', options.onError, new Error(`not closed within ${stopTimeoutMs} ms`));
        }
      } finally {
        clearTimeout(deadline);
      }
    },
  };
}

function deliveryOf(row: Row): OutboxDelivery {
  let headers: Record<string, string>;
  try {
    headers = JSON.parse(String(row.headers)) as Record<string, string>;
  } catch {
    // Only someone editing the table by hand gets here; send the message rather than lose it.
    headers = {};
  }
  const payload = row.payload;
  return {
    id: String(row.id),
    topic: String(row.topic),
    key: row.msg_key == null ? null : String(row.msg_key),
    headers,
    payload: Buffer.isBuffer(payload) ? payload : payload instanceof Uint8Array ? Buffer.from(payload) : Buffer.from(String(payload), 'utf8'),
    attempt: Number(row.attempts) + 1,
  };
}

/** The delay after the `attempt`-th failure, when another attempt remains. */
function delayAfter(attempt: number, policy: Settings): number {
  if (attempt <= policy.immediate) return 0;
  return Math.min(policy.intervalMs * policy.backoff ** (attempt - policy.immediate - 1), policy.maxIntervalMs);
}

function errorText(error: unknown): string {
  return (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 2000);
}

type Settings = ReturnType<typeof readOptions>;

function readOptions(options: RelayOptions) {
  if (!options || typeof options.publisher?.publish !== 'function') {
    throw new BarrierConfigError('createRelay: options.publisher must have a publish(message) method');
  }
  const count = (name: string, value: number | undefined, fallback: number, min: number) => {
    const n = value ?? fallback;
    if (!Number.isInteger(n) || n < min) throw new BarrierConfigError(`${name} must be an integer of at least ${min}; got ${value}`);
    return n;
  };
  const duration = (name: string, value: number | string | undefined, fallback: string) => parseDuration(value ?? fallback, name);
  const retry = options.retry ?? {};
  const backoff = retry.backoff ?? 2;
  if (typeof backoff !== 'number' || !(backoff >= 1)) throw new BarrierConfigError(`retry.backoff must be a number of at least 1; got ${backoff}`);
  return {
    publisher: options.publisher,
    logger: options.logger,
    batchSize: count('batchSize', options.batchSize, 100, 1),
    pollMs: duration('pollInterval', options.pollInterval, '1s'),
    leaseMs: duration('lease', options.lease, '30s'),
    retainMs: options.retainSent === false ? (false as const) : duration('retainSent', options.retainSent, '1h'),
    pruneIntervalMs: duration('pruneInterval', options.pruneInterval, '1m'),
    stopTimeoutMs: duration('stopTimeout', options.stopTimeout, '10s'),
    immediate: count('retry.immediate', retry.immediate, 3, 0),
    intervalMs: duration('retry.interval', retry.interval, '1s'),
    backoff,
    maxIntervalMs: duration('retry.maxInterval', retry.maxInterval, '5m'),
    maxAttempts: count('retry.maxAttempts', retry.maxAttempts, 20, 1),
  };
}

/**
 * Logs an event and calls its hook. A hook or logger that throws is reported, never thrown into
 * the relay; an error-level event that nobody hears becomes a process warning.
 */
function reporter(logger: Logger | undefined) {
  return <E>(level: keyof Logger, message: string, hookName: string, hook: ((event: E) => void) | undefined, event: E) => {
    const fields = typeof event === 'object' && event !== null && !(event instanceof Error) ? logFields(event as unknown as RelayEvent) : { err: event };
    try {
      logger?.[level]?.call(logger, fields, message);
    } catch (error) {
      process.emitWarning(`txbarrier outbox: the logger threw: ${String(error)}`, 'TxbarrierHookWarning');
    }
    if (level === 'error' && !hook && !logger?.error) {
      process.emitWarning(`${message}: ${errorText('err' in fields ? fields.err : event)}`, 'TxbarrierOutboxWarning');
    }
    if (!hook) return;
    try {
      hook(event);
    } catch (error) {
      try {
        if (logger?.error) return logger.error({ err: error }, `txbarrier outbox: ${hookName} hook threw`);
      } catch {
        // The logger is broken too: the warning below always works.
      }
      process.emitWarning(`txbarrier outbox: ${hookName} hook threw: ${String(error)}`, 'TxbarrierHookWarning');
    }
  };
}

function logFields({ error, ...fields }: RelayEvent): Record<string, unknown> {
  return error === undefined ? fields : { ...fields, err: error };
}
