/**
 * The broker-neutral half of the exactly-once consumers (`txbarrier/amqp`, `txbarrier/nats`,
 * `txbarrier/bullmq`). A broker delivers at least once; the barrier makes the effect happen once:
 * each message's effect commits in one local transaction with a barrier row keyed by the message
 * id, the consuming service's name and where the message came from, and the message is
 * acknowledged only after that commit, so a redelivery finds the row and is acknowledged without
 * running again.
 *
 * Here: the message → barrier mapping (and the check of the earlier, source-less key), the attempts and backoff policy, the decision from an
 * outcome to ack / retry / dead-letter, the bookkeeping for a graceful shutdown, the hooks, and the
 * W3C trace context. Each adapter only reads its broker's message and carries the decision out.
 */
import { Barrier, type BeforeApply, callWithCheck } from '../barrier/barrier.js';
import { compositeKey, keyPart } from '../barrier/key.js';
import { parseDuration } from '../duration.js';
import { BarrierConfigError, BarrierError, BarrierFailure, BarrierInputError } from '../errors.js';
import type { Logger } from '../observe/hooks.js';
import { recordSettlement } from '../observe/metrics.js';
import { otelModule } from '../observe/tracing.js';
import type { BarrierStore } from '../transaction/store.js';

/**
 * The barrier of one message for one consumer: `saga`/`action`, gid = `keyPart(messageId)`, branch
 * id = `compositeKey([consumer, ...source])` (see `txbarrier`'s `keyPart`: long values are hashed,
 * never truncated). `source` is where the message came from, as parts: `[queue]` (AMQP, BullMQ),
 * `[stream, subject]` (JetStream), `[topic]` (Kafka). A consumed message is a forward op with nothing
 * to undo, so a repeat is plainly `duplicate`; two services consuming copies of one message (a
 * fanout) each have a branch of their own, and so do two queues one service consumes, so a refund
 * whose id equals a payment's is not taken for that payment. (`msg`/`msg` is the producer's side,
 * where a repeat is an error and the coordinator's check-back reads the row.)
 */
export function messageBarrier(consumer: string, source: readonly string[], messageId: string): Barrier {
  return Barrier.from({ transType: 'saga', gid: keyPart(messageId, 'gid'), branchId: compositeKey([consumer, ...source]), op: 'action' });
}

/**
 * Where the first consumers (before the source was part of the key) kept a message's row: gid = the
 * message id, branch id = the consumer, barrier id `01`. `undefined` when the id or the name could
 * not be such a key, so those consumers never committed it.
 */
function legacyKey(consumer: string, messageId: string): string[] | undefined {
  try {
    const { gid, branchId } = Barrier.from({ transType: 'saga', gid: messageId, branchId: consumer, op: 'action' });
    return [gid, branchId, 'action', '01'];
  } catch (error) {
    if (error instanceof BarrierInputError) return undefined;
    throw error;
  }
}

/**
 * The reason this version writes into a message's source-less row. The earlier consumers wrote
 * `action` there when they applied the message; this one writes its own mark, so a row it finds
 * tells which version claimed it. Taking the row (rather than reading it) makes a delivery wait
 * for an older consumer still running the same message during a rolling deploy, and makes such
 * a consumer wait for this one.
 */
export const LEGACY_KEY_MARK = 'source-keyed';

/** The upgrade check: the message counts as a duplicate when an earlier consumer committed it under the source-less key. */
function legacyCheck(key: string[]): BeforeApply {
  return async (claim) => {
    const reason = await claim(['saga', ...key, LEGACY_KEY_MARK]);
    return reason === undefined || reason === LEGACY_KEY_MARK ? undefined : 'duplicate';
  };
}

/**
 * What became of one delivery: `applied` (the effect committed, then the ack), `duplicate` (a
 * redelivery of a message this consumer already committed: acked without running), `retry` (rolled
 * back; delivered again after a delay), `dead-letter` (given up on, see `DeadLetterReason`),
 * `released` (arrived while stopping: handed back unrun, without spending an attempt).
 */
export type Settlement = 'applied' | 'duplicate' | 'retry' | 'dead-letter' | 'released';

/**
 * Why a message was dead-lettered: `failure` = the handler threw `BarrierFailure` (it can never
 * apply); `attempts` = it failed on each of `maxAttempts` deliveries; `no-id` = it carries no usable
 * id, so a redelivery could not be recognised and it was not applied at all.
 */
export type DeadLetterReason = 'failure' | 'attempts' | 'no-id';

/** One settled delivery, for `onSettled`, `onDeadLetter` and the logger. */
export interface SettledEvent<M> {
  /** The broker's message (amqplib message, JetStream message, BullMQ job). */
  message: M;
  /** The message's id (the barrier's gid is `keyPart` of it); `undefined` when it had none usable. */
  messageId: string | undefined;
  /** The consumer's name, the first part of the barrier's branch id. */
  consumer: string;
  /** Where the message came from, the rest of the branch id: `[queue]` (AMQP, BullMQ), `[stream, subject]` (JetStream). */
  source: readonly string[];
  /** Which delivery of this message this was: 1 for the first. */
  attempt: number;
  settlement: Settlement;
  /** Set when `settlement` is `dead-letter`. */
  reason?: DeadLetterReason;
  /** Set when `settlement` is `retry`: how long until the next delivery. */
  retryDelayMs?: number;
  /** The error that made this a retry or a dead-letter. */
  error?: unknown;
  /**
   * The broker refused the settlement (the connection closed before the ack, say). The message
   * comes again; if its transaction committed, the barrier recognises it.
   */
  settleError?: unknown;
  durationMs: number;
}

/** The options every consumer takes, whatever the broker. */
export interface ConsumerOptions<Tx, M> {
  /** Where the barrier rows and the business tables live: the business work shares the barrier's transaction. Required. */
  store: BarrierStore<Tx>;
  /**
   * This consuming service's name, stored in the barrier's branch id with the message's source:
   * services consuming copies of one message each apply it once. Keep it stable across deploys;
   * renaming it applies every redelivered message again. Required.
   */
  consumer: string;
  /**
   * Also recognise a message that an earlier consumer committed under the source-less key
   * (gid = the message id, branch id = the consumer name; every consumer before the source became
   * part of the key, see the CHANGELOG). While on, each applied message also takes that row (one more insert per message, one more row until pruned), so a delivery
   * waits for an older consumer running the same message during a rolling deploy; and a message
   * the older version committed from one source blocks a message with the same id from another
   * source of this consumer (the confusion the source in the key fixes, kept for the ids committed
   * before the upgrade). Turn it off
   * once no older consumer runs and nothing it may have committed can come again (queues and
   * retry queues drained, no publisher retrying such a message, the brokers' redelivery windows
   * passed). Defaults to true for this release; a later minor version turns the default off.
   */
  legacyKeyCheck?: boolean;
  /**
   * The message's effect, inside the local transaction. Throw `BarrierFailure` for a message that
   * can never apply (it is dead-lettered at once); anything else thrown rolls back and the message
   * is retried after `retryDelay`. Required.
   */
  handle: (tx: Tx, message: M) => Promise<unknown> | unknown;
  /** Deliveries of one message, the first included, before a failing one is dead-lettered. Defaults to 5. */
  maxAttempts?: number;
  /** Delay before the second delivery, in milliseconds or a duration such as `'2s'`. Defaults to 1000 (1 s). */
  retryDelay?: number | string;
  /** Each further retry waits this many times longer than the one before. Defaults to 2. */
  retryBackoff?: number;
  /** The longest a retry waits, however many came before. Defaults to 60 000 (1 min). */
  maxRetryDelay?: number | string;
  /** How long `stop()` waits for in-flight transactions before it gives up with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT`. Defaults to 30 000 (30 s). */
  shutdownTimeout?: number | string;
  /** Called after each delivery was settled with the broker. Must not throw (a throw is logged). Defaults to none. */
  onSettled?: (event: SettledEvent<M>) => void;
  /** Called for each dead-lettered message, as well as `onSettled`: point an alert here. Defaults to none. */
  onDeadLetter?: (event: SettledEvent<M>) => void;
  /**
   * Receives one line per delivery: applied at `debug`, duplicate at `info`, retry and broker errors at
   * `warn`, dead-letter at `error`. The store's own hooks and logger still see every barrier call.
   * Defaults to none (nothing is printed).
   */
  logger?: Logger;
}

/** How the broker settles a decision: the adapter's only job besides reading the message. */
export type Decision =
  | { settlement: 'applied' | 'duplicate' }
  | { settlement: 'retry'; delayMs: number; attempt: number; error: unknown }
  | { settlement: 'dead-letter'; reason: DeadLetterReason; error: unknown }
  | { settlement: 'released' };

/** One delivery as an adapter reads it from its broker. */
export interface Delivery<M> {
  message: M;
  /** The id the message carries, checked here: a non-empty string (hashed into the gid if longer than 128 characters). */
  id: unknown;
  /**
   * Where the message came from, as parts, the same for every delivery of it: `[queue]` (AMQP,
   * BullMQ), `[stream, subject]` (JetStream), `[topic]` (Kafka). Each part non-empty.
   */
  source: readonly string[];
  /** Which delivery this is, 1 for the first, as far as the broker and the message's headers tell. */
  attempt: number;
  /** Reads a message header (`traceparent`, `tracestate`); undefined when absent. */
  header(name: string): string | undefined;
}

/**
 * The message carries no id usable as a barrier key (missing, not a string, too long, control
 * characters): a redelivery could not be recognised, so it is dead-lettered without running.
 * `code` is `ERR_TXBARRIER_MESSAGE_ID`.
 */
export class BarrierMessageIdError extends BarrierError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'ERR_TXBARRIER_MESSAGE_ID' });
  }
}

/**
 * `stop()` reached its deadline with transactions still running. They finish or roll back on their
 * own; their messages are not acknowledged after the connection closes, so the broker delivers them
 * again and the barrier recognises any that committed. `code` is `ERR_TXBARRIER_SHUTDOWN_TIMEOUT`.
 */
export class BarrierShutdownTimeout extends BarrierError {
  readonly inFlight: number;
  constructor(inFlight: number, timeoutMs: number) {
    super(`${inFlight} message(s) still in flight after the ${timeoutMs} ms shutdown deadline`, { code: 'ERR_TXBARRIER_SHUTDOWN_TIMEOUT' });
    this.inFlight = inFlight;
  }
}

/**
 * A consumer cannot start safely with the broker set up as it is: a message it rejects would be
 * dropped silently, or the broker would give up on a message before the consumer's attempts are
 * spent. `code` says which (`ERR_TXBARRIER_NO_DEAD_LETTER`, `ERR_TXBARRIER_DELIVERY_LIMIT`,
 * `ERR_TXBARRIER_CONSUMER_CONFIG`).
 */
export class BarrierConsumerConfigError extends BarrierConfigError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code });
  }
}

/** The engine-neutral consumer an adapter drives. */
export interface MessageConsumer<M> {
  /** The checked retry policy (adapters that declare retry queues need the delays up front). */
  readonly policy: RetryPolicy;
  /**
   * Applies one delivery once, decides, has `settle` carry the decision out, and reports it.
   * Never rejects: every error is mapped to a decision or reported.
   */
  deliver(delivery: Delivery<M>, settle: (decision: Decision) => Promise<void> | void): Promise<Settlement>;
  /** Stops taking deliveries (later ones are released unrun) and resolves when none is in flight, or rejects at the deadline. */
  drain(): Promise<void>;
  /** Reports a broker-side problem that settled no delivery (a closed channel) to the logger or as a process warning. */
  warn(what: string, error?: unknown): void;
  /**
   * Reports a message the broker gave up on by itself, without a delivery to decide on (BullMQ's
   * stalled-job limit), as dead-lettered for `attempts`: to `onSettled`, `onDeadLetter` and the logger.
   */
  deadLetteredByBroker(delivery: Omit<Delivery<M>, 'header'>, error: unknown): void;
}

export interface RetryPolicy {
  maxAttempts: number;
  /** The delay after the failed delivery number `attempt` (1 for the first). */
  delayAfter(attempt: number): number;
}

export function messageConsumer<Tx, M>(options: ConsumerOptions<Tx, M>): MessageConsumer<M> {
  const { store, consumer, handle, onSettled, onDeadLetter, logger, legacyKeyCheck = true } = options;
  if (typeof consumer !== 'string' || consumer === '') throw new BarrierConfigError('consumer must be the consuming service name, a non-empty string', { code: 'ERR_TXBARRIER_OPTION' });
  // The name goes into every barrier row: refuse now one that is no valid key field by itself
  // (over 128 characters, a trailing space, control characters) rather than store it hashed.
  Barrier.from({ transType: 'saga', gid: 'probe', branchId: consumer, op: 'action' });
  if (typeof legacyKeyCheck !== 'boolean') throw new BarrierConfigError(`legacyKeyCheck must be true or false; got ${String(legacyKeyCheck)}`, { code: 'ERR_TXBARRIER_OPTION' });
  if (typeof handle !== 'function') throw new BarrierConfigError('handle must be a function (tx, message) => …', { code: 'ERR_TXBARRIER_OPTION' });
  const policy = retryPolicy(options);
  const shutdownMs = parseDuration(options.shutdownTimeout ?? 30_000, 'shutdownTimeout');
  // A count, not a set of promises: tracking each delivery's promise would cost a `finally` chain
  // (two promises) per message for the sake of `drain`, which runs once.
  let inFlight = 0;
  /** While a drain waits: resolves when the count reaches 0 (shared by every drain call). */
  let idle: { reached: Promise<void>; resolve: () => void } | undefined;
  let stopping = false;

  /** Runs the message's barrier call: the only await of a delivery besides its settlement. */
  const call = (delivery: Delivery<M>, messageId: string) => {
    const barrier = messageBarrier(consumer, delivery.source, messageId);
    const legacy = legacyKeyCheck ? legacyKey(consumer, messageId) : undefined;
    const run = (tx: Tx) => handle(tx, delivery.message);
    return withTraceContext(delivery.header, () => (legacy ? callWithCheck(barrier, store, legacyCheck(legacy), run) : barrier.call(store, run)));
  };

  /** What a failed call becomes: dead-lettered at once, after the last attempt, or retried after the policy's delay. */
  const failed = (delivery: Delivery<M>, error: unknown): Decision => {
    if (error instanceof BarrierFailure) return { settlement: 'dead-letter', reason: 'failure', error };
    if (delivery.attempt >= policy.maxAttempts) return { settlement: 'dead-letter', reason: 'attempts', error };
    return { settlement: 'retry', delayMs: policy.delayAfter(delivery.attempt), attempt: delivery.attempt, error };
  };

  const deliver = async (delivery: Delivery<M>, settle: (decision: Decision) => Promise<void> | void): Promise<Settlement> => {
    inFlight++;
    try {
      const started = performance.now();
      const [messageId, idError] = checkId(delivery.id);
      let decision: Decision;
      if (stopping) decision = RELEASED;
      else if (messageId === undefined) decision = { settlement: 'dead-letter', reason: 'no-id', error: idError };
      else {
        try {
          decision = (await call(delivery, messageId)).outcome === 'applied' ? APPLIED : DUPLICATE;
        } catch (error) {
          decision = failed(delivery, error);
        }
      }
      let settleError: unknown;
      try {
        // Awaited only when the adapter's settlement is asynchronous (an ack is often a plain call).
        const settling = settle(decision);
        if (settling) await settling;
      } catch (error) {
        settleError = error;
      }
      const event: SettledEvent<M> = {
        message: delivery.message,
        messageId,
        consumer,
        source: delivery.source,
        attempt: delivery.attempt,
        settlement: decision.settlement,
        durationMs: performance.now() - started,
      };
      if (decision.settlement === 'dead-letter') Object.assign(event, { reason: decision.reason, error: decision.error });
      if (decision.settlement === 'retry') Object.assign(event, { retryDelayMs: decision.delayMs, error: decision.error });
      if (settleError !== undefined) event.settleError = settleError;
      report(event);
      return decision.settlement;
    } finally {
      if (--inFlight === 0 && idle) {
        idle.resolve();
        idle = undefined;
      }
    }
  };

  const report = (event: SettledEvent<M>) => {
    recordSettlement(event);
    if (logger) {
      const { message: _message, error, settleError, ...fields } = event;
      const level = settleError !== undefined ? 'warn' : LEVEL[event.settlement];
      const line = settleError !== undefined ? `txbarrier consumer: the broker refused the ${event.settlement} settlement` : `txbarrier consumer ${event.settlement}`;
      safely('logger', () => logger[level]?.call(logger, { ...fields, ...(error === undefined ? {} : { err: error }), ...(settleError === undefined ? {} : { settleErr: settleError }) }, line));
    } else if (event.settleError !== undefined) {
      warn(`the broker refused the ${event.settlement} settlement of ${event.messageId ?? 'a message'}; it will be delivered again`, event.settleError);
    }
    if (onSettled) safely('onSettled hook', () => onSettled(event));
    if (onDeadLetter && event.settlement === 'dead-letter') safely('onDeadLetter hook', () => onDeadLetter(event));
  };

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      warn(`${what} threw`, error);
    }
  };

  /** To the logger's `warn` if it has one that works, else a process warning: never lost, never thrown. */
  const warn = (what: string, error?: unknown) => {
    try {
      if (logger?.warn) return logger.warn(error === undefined ? {} : { err: error }, `txbarrier consumer: ${what}`);
    } catch {
      // The logger is broken too: the warning below always works.
    }
    process.emitWarning(`txbarrier consumer: ${what}${error === undefined ? '' : `: ${String(error)}`}`, 'TxbarrierConsumerWarning');
  };

  return {
    policy,
    deliver,
    drain: async () => {
      stopping = true;
      if (inFlight === 0) return;
      if (!idle) {
        let resolve!: () => void;
        const reached = new Promise<void>((done) => (resolve = done));
        idle = { reached, resolve };
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          idle.reached,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new BarrierShutdownTimeout(inFlight, shutdownMs)), shutdownMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    warn,
    deadLetteredByBroker: (delivery, error) =>
      report({
        message: delivery.message,
        messageId: checkId(delivery.id)[0],
        consumer,
        source: delivery.source,
        attempt: delivery.attempt,
        settlement: 'dead-letter',
        reason: 'attempts',
        error,
        durationMs: 0,
      }),
  };
}

// Decisions without details, shared by every delivery.
const APPLIED: Decision = { settlement: 'applied' };
const DUPLICATE: Decision = { settlement: 'duplicate' };
const RELEASED: Decision = { settlement: 'released' };

const LEVEL: Record<Settlement, keyof Logger> = {
  applied: 'debug',
  duplicate: 'info',
  retry: 'warn',
  'dead-letter': 'error',
  released: 'debug',
};

function retryPolicy(options: Pick<ConsumerOptions<unknown, unknown>, 'maxAttempts' | 'retryDelay' | 'retryBackoff' | 'maxRetryDelay'>): RetryPolicy {
  const { maxAttempts = 5, retryBackoff = 2 } = options;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new BarrierConfigError(`maxAttempts must be a whole number ≥ 1; got ${maxAttempts}`, { code: 'ERR_TXBARRIER_OPTION' });
  if (!(typeof retryBackoff === 'number' && retryBackoff >= 1)) throw new BarrierConfigError(`retryBackoff must be a number ≥ 1; got ${retryBackoff}`, { code: 'ERR_TXBARRIER_OPTION' });
  const first = parseDuration(options.retryDelay ?? 1000, 'retryDelay');
  const max = parseDuration(options.maxRetryDelay ?? 60_000, 'maxRetryDelay');
  // Whole milliseconds: AMQP names a retry queue by its delay, and brokers take integers.
  return { maxAttempts, delayAfter: (attempt) => Math.round(Math.min(max, first * retryBackoff ** (attempt - 1))) };
}

/** The id as a barrier gid, or the error saying why it cannot be one. */
function checkId(id: unknown): [string, undefined] | [undefined, BarrierMessageIdError] {
  if (typeof id !== 'string' || id === '') {
    return [undefined, new BarrierMessageIdError(`the message has no id (got ${id === '' ? 'an empty string' : typeof id}): publish it with a stable id so a redelivery can be recognised`)];
  }
  try {
    keyPart(id, 'gid');
    return [id, undefined];
  } catch (error) {
    if (!(error instanceof BarrierInputError)) throw error;
    return [undefined, new BarrierMessageIdError(`the message id cannot be a barrier key: ${error.problems.map((p) => `it ${p.problem}`).join('; ')}`, { cause: error })];
  }
}

/** Runs `fn` in the trace context of the message's `traceparent`/`tracestate`, when both it and the API are there. */
function withTraceContext<T>(header: (name: string) => string | undefined, fn: () => T): T {
  // `@opentelemetry/api` as src/observe/tracing.ts loads it (at import, so a delivery need not wait).
  const otel = otelModule();
  const traceparent = otel ? header('traceparent') : undefined;
  if (!otel || traceparent === undefined) return fn();
  const tracestate = header('tracestate');
  const carrier: Record<string, string> = tracestate === undefined ? { traceparent } : { traceparent, tracestate };
  return otel.context.with(otel.propagation.extract(otel.ROOT_CONTEXT, carrier), fn);
}
