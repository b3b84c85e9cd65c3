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
 */
import {
  type ConsumerOptions,
  type Decision,
  BarrierConsumerConfigError,
  messageConsumer,
} from '../../../src/messaging/consumer.js';
import { BarrierConfigError } from '../../../src/errors.js';

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

export interface AmqpConsumerOptions<Tx, M extends AmqpMessage> extends ConsumerOptions<Tx, M> {
  /** A confirm channel (`connection.createConfirmChannel()`), used by this consumer alone. Required. */
  channel: AmqpChannel<M>;
  /** The queue to consume. Declared if missing, with the dead-letter exchange below. Required. */
  queue: string;
  /**
   * The queue's declaration as it is (or will be): `durable` and further arguments such as
   * `{ 'x-queue-type': 'quorum' }`. RabbitMQ refuses a declaration that differs from the existing
   * queue's. Defaults to `{ durable: true }`.
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
   * settlements, then resolves; rejects with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT` at the deadline. Close
   * the channel afterwards: what was not acked is delivered again.
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
 * the process comes back forever, so prefer quorum queues. The channel is not reopened after the
 * connection drops: consume again on a new one; the barrier recognises what had committed.
 */
export async function consumeAmqp<Tx, M extends AmqpMessage>(options: AmqpConsumerOptions<Tx, M>): Promise<AmqpConsumer> {
  const { channel, queue, prefetch = 16, messageId = (m: M) => m.properties.messageId } = options;
  if (typeof channel?.waitForConfirms !== 'function') {
    throw new BarrierConsumerConfigError('ERR_TXBARRIER_CONSUMER_CONFIG', 'channel must be a confirm channel (connection.createConfirmChannel()): a retry copy must be confirmed before its original is acked');
  }
  const core = messageConsumer(options);
  if (typeof queue !== 'string' || queue === '') throw new BarrierConfigError('queue must be the name of the queue to consume, a non-empty string', { code: 'ERR_TXBARRIER_OPTION' });
  // The queue is the message's source in its barrier key: retries come back to it, so every delivery names it.
  const source = [queue];
  const durable = options.queueOptions?.durable ?? true;
  const deadLetterExchange = options.deadLetterExchange ?? `${queue}.dead-letter`;
  const deadLetterQueue = options.deadLetterQueue ?? `${queue}.dead-letter`;
  const delays = [...new Set(Array.from({ length: core.policy.maxAttempts - 1 }, (_, i) => core.policy.delayAfter(i + 1)))];
  const retryQueue = (delayMs: number) => `${queue}.retry.${delayMs}ms`;

  let stopped = false;
  // Without a listener an amqplib channel error becomes the connection's, and crashes the process.
  channel.on('error', (error) => core.warn(`channel error on ${queue}`, error));
  channel.on('close', () => stopped || core.warn(`the channel of ${queue} closed; consume again on a new channel (committed messages are recognised)`));

  await channel.assertExchange(deadLetterExchange, 'fanout', { durable: true });
  await channel.assertQueue(deadLetterQueue, { durable: true });
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
    await channel.assertQueue(retryQueue(delayMs), {
      durable: true,
      arguments: { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
    });
  }
  await channel.prefetch(prefetch);

  const settle = (message: M) => async (decision: Decision) => {
    switch (decision.settlement) {
      case 'applied':
      case 'duplicate':
        return channel.ack(message);
      case 'dead-letter':
        return channel.nack(message, false, false);
      case 'released':
        return channel.nack(message, false, true);
      case 'retry': {
        // The attempt already counts a quorum queue's redeliveries; the copy starts a count of its own there.
        const { 'x-delivery-count': _counted, ...kept } = message.properties.headers ?? {};
        const headers = { ...kept, [ATTEMPT_HEADER]: decision.attempt + 1 };
        const properties: Record<string, unknown> = { headers, persistent: true };
        const original = message.properties as Record<string, unknown>;
        for (const name of KEPT_PROPERTIES) if (original[name] !== undefined) properties[name] = original[name];
        await new Promise<void>((resolve, reject) =>
          channel.sendToQueue(retryQueue(decision.delayMs), message.content, properties, (error) => (error ? reject(error) : resolve())),
        );
        // If the process dies here, the original is delivered again too: a duplicate, which the barrier absorbs.
        return channel.ack(message);
      }
    }
  };

  const { consumerTag } = await channel.consume(queue, (message) => {
    if (!message) return core.warn(`RabbitMQ cancelled the consumer of ${queue} (the queue was deleted?)`);
    void core.deliver({ message, id: messageId(message), source, attempt: attemptOf(message), header: (name) => headerOf(message, name) }, settle(message));
  });

  return {
    topology: { queue, deadLetterExchange, deadLetterQueue, retryQueues: delays.map(retryQueue) },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await channel.cancel(consumerTag).catch((error: unknown) => core.warn(`cancelling the consumer of ${queue} failed`, error));
      await core.drain();
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
