/**
 * `txbarrier/amqp`: an exactly-once RabbitMQ consumer on an amqplib confirm channel.
 *
 * RabbitMQ has no redelivery delay, and classic queues keep no delivery count, so the consumer
 * declares the topology its guarantees rest on (idempotently, like `ensureSchema`):
 * - the consumed queue, with a dead-letter exchange: a rejected message goes there, never nowhere;
 * - that exchange (fanout) and a dead-letter queue bound to it;
 * - one retry queue per retry delay (`<queue>.retry.<ms>ms`): a failed message is republished there
 *   with its attempt number in a header, waits out the queue's TTL, and is dead-lettered back onto
 *   the consumed queue through the default exchange.
 * A queue that already exists without that dead-letter exchange makes RabbitMQ refuse the
 * declaration, and the consumer refuses to start with `ERR_TXBARRIER_NO_DEAD_LETTER`.
 * Beside a quorum queue, the dead-letter and retry queues are quorum queues too: a classic queue
 * lives on one node of a cluster, and with that node down the retries and dead letters would go
 * nowhere.
 */
import {
  type ConsumerOptions,
  type Decision,
  BarrierConsumerConfigError,
  messageConsumer,
} from '../../../src/messaging/consumer.js';
import { BarrierConfigError } from '../../../src/errors.js';
import { nodeConnector } from './nodes.js';

export * from '../consumer-exports.js';

/** The part of an amqplib message the consumer reads (amqplib's `ConsumeMessage` fits). */
export interface AmqpMessage {
  content: Buffer;
  fields: { deliveryTag: number; redelivered: boolean };
  properties: { messageId?: unknown; headers?: Record<string, unknown> | undefined };
}

/** The part of an amqplib `ConfirmChannel` the consumer uses (the library is never imported here). */
export interface AmqpChannel<M extends AmqpMessage = AmqpMessage> {
  prefetch(count: number): Promise<unknown>;
  assertQueue(queue: string, options: { durable?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  assertExchange(exchange: string, type: string, options: { durable?: boolean }): Promise<unknown>;
  bindQueue(queue: string, exchange: string, pattern: string): Promise<unknown>;
  consume(queue: string, onMessage: (message: M | null) => void): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(message: M): void;
  nack(message: M, allUpTo?: boolean, requeue?: boolean): void;
  sendToQueue(queue: string, content: Buffer, options: Record<string, unknown>, callback: (error: unknown) => void): boolean;
  /** Only a confirm channel has it: a retry is acked only once the broker confirmed its copy. */
  waitForConfirms(): Promise<void>;
  on(event: 'close' | 'error', listener: (error?: unknown) => void): unknown;
}

/** The part of an amqplib `ChannelModel` (what `amqp.connect()` resolves to) the consumer uses when it opens its own connections. */
export interface AmqpConsumerConnection<M extends AmqpMessage = AmqpMessage> {
  createConfirmChannel(): Promise<AmqpChannel<M>>;
  on(event: 'close' | 'error', listener: (error?: unknown) => void): unknown;
  close(): Promise<void>;
}

export interface AmqpConsumerOptions<Tx, M extends AmqpMessage> extends ConsumerOptions<Tx, M> {
  /**
   * A confirm channel (`connection.createConfirmChannel()`), used by this consumer alone and as it
   * is: once it closes the consumer stops taking messages (consume again on a new one). Give either
   * this or `connect`.
   */
  channel?: AmqpChannel<M>;
  /**
   * Opens a connection: `() => amqp.connect(url)`, or with `urls`, `(url) => amqp.connect(url)`.
   * The consumer opens its own confirm channel on it, and when the connection or the channel closes
   * it connects again (at once, then waiting up to 5 s between tries) and consumes again; the
   * deliveries in flight are redelivered and recognised. `stop()` closes the connection. Give
   * either this or `channel`.
   */
  connect?: (url: string) => Promise<AmqpConsumerConnection<M>>;
  /**
   * The nodes of a cluster, for `connect`: each (re)connect tries them in turn, starting after the
   * node the previous connection went to, so the consumer moves to a live node when its node dies.
   * Defaults to none: `connect` is called without a URL.
   */
  urls?: readonly string[];
  /** The queue to consume. Declared if missing, with the dead-letter exchange below. Required. */
  queue: string;
  /**
   * The queue's declaration as it is (or will be): `durable` and further arguments such as
   * `{ 'x-queue-type': 'quorum' }`. RabbitMQ refuses a declaration that differs from the existing
   * queue's. With `'x-queue-type': 'quorum'` the dead-letter and retry queues are declared as
   * quorum queues too; add `'x-dead-letter-strategy': 'at-least-once'` and
   * `'x-overflow': 'reject-publish'` so a message rejected during a leader change is not lost on its
   * way to the dead-letter queue. Defaults to `{ durable: true }`.
   */
  queueOptions?: { durable?: boolean; arguments?: Record<string, unknown> };
  /** The exchange dead-lettered messages go to, a fanout. Defaults to `<queue>.dead-letter`. */
  deadLetterExchange?: string;
  /** The queue bound to the dead-letter exchange, where dead-lettered messages wait for a person. Defaults to `<queue>.dead-letter`. */
  deadLetterQueue?: string;
  /** Unacknowledged messages in flight at once. Defaults to 16. */
  prefetch?: number;
  /**
   * Reads the message's id, the barrier's gid. Defaults to the `messageId` property: publishers set
   * it (`{ messageId }`) and keep it across their own retries.
   */
  messageId?: (message: M) => unknown;
}

export interface AmqpConsumer {
  /** The queues and exchange this consumer declared, e.g. to delete them after a test. */
  readonly topology: { queue: string; deadLetterExchange: string; deadLetterQueue: string; retryQueues: readonly string[] };
  /**
   * Stops taking messages, waits for the in-flight transactions (up to `shutdownTimeout`) and their
   * settlements, then resolves; rejects with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT` at the deadline. With
   * `channel`, close the channel afterwards; with `connect`, the consumer closes its connection.
   * What was not acked is delivered again.
   */
  stop(): Promise<void>;
}

/** Header carrying how many deliveries a message had before it went through a retry queue. */
const ATTEMPT_HEADER = 'x-txbarrier-attempt';
/** The properties a retry copy keeps (`expiration` belongs to the original's trip; `userId` is checked against the channel's user). */
const KEPT_PROPERTIES = ['contentType', 'contentEncoding', 'correlationId', 'replyTo', 'messageId', 'timestamp', 'type', 'appId', 'priority'];

/**
 * Consumes `queue`, running `handle` once per message id, consumer and queue, and acking after the
 * commit. A redelivery is acked without running. `BarrierFailure`, a message without a usable id,
 * and a message failing `maxAttempts` times are rejected to the dead-letter exchange; any other
 * error rolls back and sends the message through a retry queue, waiting longer each time.
 *
 * The attempt number is the retry header plus, on quorum queues, the broker's `x-delivery-count`
 * (a consumer that crashed mid-transaction). A classic queue counts no crash: a message that kills
 * the process comes back forever, so prefer quorum queues. With `channel`, the channel is not
 * reopened after the connection drops: consume again on a new one; with `connect` (and `urls`),
 * the consumer reconnects by itself. Either way the barrier recognises what had committed.
 */
export async function consumeAmqp<Tx, M extends AmqpMessage>(options: AmqpConsumerOptions<Tx, M>): Promise<AmqpConsumer> {
  const { channel: given, connect, queue, prefetch = 16, messageId = (m: M) => m.properties.messageId } = options;
  if ((given === undefined) === (connect === undefined)) {
    throw new BarrierConsumerConfigError('ERR_TXBARRIER_CONSUMER_CONFIG', 'give exactly one of channel (a confirm channel) and connect (a function opening a connection)');
  }
  if (given && typeof given.waitForConfirms !== 'function') {
    throw new BarrierConsumerConfigError('ERR_TXBARRIER_CONSUMER_CONFIG', 'channel must be a confirm channel (connection.createConfirmChannel()): a retry copy must be confirmed before its original is acked');
  }
  if (options.urls !== undefined && !connect) throw new BarrierConfigError('urls are for connect; a channel is used as it is', { code: 'ERR_TXBARRIER_OPTION' });
  const connectNode = connect && nodeConnector(connect, options.urls, 'consumeAmqp');
  const core = messageConsumer(options);
  if (typeof queue !== 'string' || queue === '') throw new BarrierConfigError('queue must be the name of the queue to consume, a non-empty string', { code: 'ERR_TXBARRIER_OPTION' });
  // The queue is the message's source in its barrier key: retries come back to it, so every delivery names it.
  const source = [queue];
  const durable = options.queueOptions?.durable ?? true;
  const deadLetterExchange = options.deadLetterExchange ?? `${queue}.dead-letter`;
  const deadLetterQueue = options.deadLetterQueue ?? `${queue}.dead-letter`;
  const delays = [...new Set(Array.from({ length: core.policy.maxAttempts - 1 }, (_, i) => core.policy.delayAfter(i + 1)))];
  const retryQueue = (delayMs: number) => `${queue}.retry.${delayMs}ms`;
  // A retry queue dead-letters its expired copies back onto the queue: on quorum queues, at least once.
  const quorum = options.queueOptions?.arguments?.['x-queue-type'] === 'quorum';
  const retryArguments = quorum ? { 'x-queue-type': 'quorum', 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } : {};

  let stopped = false;

  /** Declares the topology on `channel` and consumes; resolves to the consumer tag. */
  async function attach(channel: AmqpChannel<M>): Promise<string> {
    await channel.assertExchange(deadLetterExchange, 'fanout', { durable: true });
    await ours(channel, deadLetterQueue, quorum ? { 'x-queue-type': 'quorum' } : {});
    await channel.bindQueue(deadLetterQueue, deadLetterExchange, '');
    try {
      await channel.assertQueue(queue, { durable, arguments: { ...options.queueOptions?.arguments, 'x-dead-letter-exchange': deadLetterExchange } });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 406) throw error;
      throw new BarrierConsumerConfigError(
        'ERR_TXBARRIER_NO_DEAD_LETTER',
        `queue ${queue} exists with other arguments than { 'x-dead-letter-exchange': '${deadLetterExchange}' } (and queueOptions): ` +
          'a message the consumer rejects could be dropped. Declare the queue with that dead-letter exchange (a policy cannot be checked from a client), ' +
          `or pass queueOptions matching its declaration. The broker closed this channel. (${(error as Error).message})`,
        { cause: error },
      );
    }
    for (const delayMs of delays) {
      await ours(channel, retryQueue(delayMs), { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue, ...retryArguments });
    }
    await channel.prefetch(prefetch);
    const { consumerTag } = await channel.consume(queue, (message) => {
      if (!message) return core.warn(`RabbitMQ cancelled the consumer of ${queue} (the queue was deleted?)`);
      void core.deliver({ message, id: messageId(message), source, attempt: attemptOf(message), header: (name) => headerOf(message, name) }, settle(channel, message));
    });
    return consumerTag;
  }

  /** Declares a queue of the consumer's own; one declared otherwise before (a classic retry queue beside a quorum queue) is refused, saying which. */
  async function ours(channel: AmqpChannel<M>, name: string, args: Record<string, unknown>): Promise<void> {
    try {
      await channel.assertQueue(name, { durable: true, arguments: args });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 406) throw error;
      throw new BarrierConsumerConfigError(
        'ERR_TXBARRIER_CONSUMER_CONFIG',
        `queue ${name} exists with other arguments than ${JSON.stringify(args)}: once it is empty, delete it and the consumer declares it again. ` +
          `The broker closed this channel. (${(error as Error).message})`,
        { cause: error },
      );
    }
  }

  // Not async: an ack or a nack is a plain call, and the core awaits only a settlement that returns a promise.
  const settle = (channel: AmqpChannel<M>, message: M) => (decision: Decision): Promise<void> | void => {
    switch (decision.settlement) {
      case 'applied':
      case 'duplicate':
        return channel.ack(message);
      case 'dead-letter':
        return channel.nack(message, false, false);
      case 'released':
        return channel.nack(message, false, true);
      case 'retry':
        return retry(channel, message, decision.delayMs, decision.attempt);
    }
  };

  /** Publishes the copy that comes back after `delayMs`, confirmed, then acks the original. */
  async function retry(channel: AmqpChannel<M>, message: M, delayMs: number, attempt: number): Promise<void> {
    // The attempt already counts a quorum queue's redeliveries; the copy starts a count of its own there.
    const { 'x-delivery-count': _counted, ...kept } = message.properties.headers ?? {};
    const headers = { ...kept, [ATTEMPT_HEADER]: attempt + 1 };
    const properties: Record<string, unknown> = { headers, persistent: true };
    const original = message.properties as Record<string, unknown>;
    for (const name of KEPT_PROPERTIES) if (original[name] !== undefined) properties[name] = original[name];
    await new Promise<void>((resolve, reject) =>
      channel.sendToQueue(retryQueue(delayMs), message.content, properties, (error) => (error ? reject(error) : resolve())),
    );
    // If the process dies here, the original is delivered again too: a duplicate, which the barrier absorbs.
    channel.ack(message);
  }

  /** What the consumer consumes on now; replaced after a reconnect. */
  interface Session {
    channel: AmqpChannel<M>;
    consumerTag?: string;
    connection?: AmqpConsumerConnection<M>;
    dropped?: boolean;
  }
  let session: Session;

  /** Hears a session's errors (an unheard amqplib 'error' crashes the process); keeps the connection's for the warning at its close. */
  function hear(opened: Session): { cause?: unknown } {
    const heard: { cause?: unknown } = {};
    opened.channel.on('error', (error) => core.warn(`channel error on ${queue}`, error));
    opened.connection?.on('error', (error) => (heard.cause = error));
    return heard;
  }

  /** A given channel's close is a warning (heard from the start); an opened session's, once it consumes, a reconnect. */
  function watch(opened: Session, heard: { cause?: unknown }): void {
    if (!opened.connection) {
      opened.channel.on('close', () => stopped || core.warn(`the channel of ${queue} closed; consume again on a new channel (committed messages are recognised)`));
      return;
    }
    const drop = () => {
      if (opened.dropped) return;
      opened.dropped = true;
      if (stopped) return;
      // amqplib closes the channels before it emits the connection's error: take the cause after it.
      queueMicrotask(() => {
        if (stopped) return;
        core.warn(`the connection of ${queue} closed; connecting again (committed messages are recognised)`, heard.cause);
        // A channel closed alone leaves its connection open; closing a closed connection only rejects.
        opened.connection!.close().catch(() => undefined);
        reconnect();
      });
    };
    opened.channel.on('close', drop);
    opened.connection.on('close', drop);
  }

  async function open(): Promise<Session> {
    const connection = await connectNode!();
    try {
      const opened: Session = { channel: await connection.createConfirmChannel(), connection };
      const heard = hear(opened);
      opened.consumerTag = await attach(opened.channel);
      watch(opened, heard);
      return opened;
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  let reconnecting: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  function reconnect(): void {
    reconnecting ??= (async () => {
      for (let delayMs = 0; !stopped; delayMs = Math.min(Math.max(delayMs * 2, 100), 5000)) {
        if (delayMs > 0) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, delayMs)));
        if (stopped) return;
        try {
          session = await open();
          if (stopped) {
            // stop() came while this connected: it finds the session closed.
            session.dropped = true;
            await session.connection!.close().catch(() => undefined);
          }
          return;
        } catch (error) {
          // A refused declaration will be refused again: the consumer stops, loudly, rather than retry forever.
          if (error instanceof BarrierConsumerConfigError) return core.warn(`the consumer of ${queue} cannot consume again; it stopped`, error);
          core.warn(`connecting the consumer of ${queue} again failed; trying again`, error);
        }
      }
    })().finally(() => (reconnecting = undefined));
  }

  if (given) {
    session = { channel: given };
    watch(session, hear(session));
    session.consumerTag = await attach(given);
  } else {
    session = await open();
  }

  return {
    topology: { queue, deadLetterExchange, deadLetterQueue, retryQueues: delays.map(retryQueue) },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      wake?.();
      await reconnecting;
      const { channel, consumerTag, connection, dropped } = session;
      if (!dropped && consumerTag !== undefined) await channel.cancel(consumerTag).catch((error: unknown) => core.warn(`cancelling the consumer of ${queue} failed`, error));
      try {
        await core.drain();
      } finally {
        if (connection && !dropped) await connection.close().catch((error: unknown) => core.warn(`closing the connection of ${queue} failed`, error));
      }
    },
  };
}

/** Our retry header counts trips through a retry queue; a quorum queue's `x-delivery-count` counts redeliveries in between. */
function attemptOf(message: AmqpMessage): number {
  const headers = message.properties.headers ?? {};
  const retried = Number(headers[ATTEMPT_HEADER] ?? 1);
  const redelivered = Number(headers['x-delivery-count'] ?? 0);
  return (Number.isSafeInteger(retried) && retried > 0 ? retried : 1) + (Number.isSafeInteger(redelivered) && redelivered > 0 ? redelivered : 0);
}

function headerOf(message: AmqpMessage, name: string): string | undefined {
  const value = message.properties.headers?.[name];
  return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString() : undefined;
}
