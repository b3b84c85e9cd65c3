/**
 * `txbarrier/nats`: an exactly-once NATS JetStream consumer on a `nats` (nats.js 2.x) pull consumer.
 *
 * JetStream does what RabbitMQ needs queues for: it counts deliveries (`deliveryCount`), delays a
 * redelivery (`nak(ms)`) and ends one's deliveries for good (`term`). It keeps no dead-letter
 * queue: `onDeadLetter` is where to archive or alert. Its own deduplication (`Nats-Msg-Id` within the stream's
 * duplicate window) drops a republished message only for a while; the barrier keeps recognising
 * it after that, and recognises every redelivery.
 */
import { BarrierConsumerConfigError, type ConsumerOptions, type Decision, messageConsumer } from '../../../src/messaging/consumer.js';
import { BarrierConfigError } from '../../../src/index.js';

export * from '../consumer-exports.js';

/** The part of a nats.js `JsMsg` the consumer uses (the library is never imported here). */
export interface JetStreamMessage {
  readonly data: Uint8Array;
  /** The subject it was published on: with the stream, the message's source in its barrier key. */
  readonly subject: string;
  /** nats.js answers `''` for an absent header. */
  readonly headers?: { get(name: string): string } | undefined;
  readonly info: { readonly deliveryCount: number; readonly stream: string };
  ackAck(options?: { timeout?: number }): Promise<boolean>;
  nak(millis?: number): void;
  term(reason?: string): void;
}

/** What `consumer.consume()` resolves to: an async iterable of messages that can be closed. */
export interface JetStreamMessages<M extends JetStreamMessage> extends AsyncIterable<M> {
  close(): Promise<void | Error>;
}

/** The part of a nats.js JetStream `Consumer` (`js.consumers.get(stream, name)`) the consumer uses. */
export interface JetStreamConsumer<M extends JetStreamMessage = JetStreamMessage> {
  info(cached?: boolean): Promise<{ config: { ack_policy?: string; max_deliver?: number; durable_name?: string; name?: string } }>;
  consume(options?: { max_messages?: number; expires?: number }): Promise<JetStreamMessages<M>>;
}

export interface NatsConsumerOptions<Tx, M extends JetStreamMessage> extends ConsumerOptions<Tx, M> {
  /**
   * A durable pull consumer with `ack_policy: 'explicit'` and a `max_deliver` of at least
   * `maxAttempts` (or unlimited), from `js.consumers.get(stream, name)`. Its `ack_wait` should
   * exceed the longest transaction: a message not acked in time is delivered again meanwhile (the
   * barrier makes that copy wait for, then recognise, the first). Required.
   */
  jetStreamConsumer: JetStreamConsumer<M>;
  /** Messages in flight at once (also how many are pulled ahead). Defaults to 16. */
  concurrency?: number;
  /**
   * How long one pull request lasts on the server, in ms, before nats.js renews it. After a
   * reconnect nats.js checks the consumer before pulling again, and when that fails (a cluster
   * electing a new leader) it waits this long before trying again: on a cluster, 5000 resumes
   * within seconds of a failover. Defaults to nats.js's 30 000.
   */
  expires?: number;
  /**
   * Reads the message's id, the barrier's gid. Defaults to the `Nats-Msg-Id` header, which
   * publishers set (`js.publish(subject, data, { msgID })`) and keep across their own retries.
   */
  messageId?: (message: M) => unknown;
}

export interface NatsConsumer {
  /**
   * Stops pulling, waits for the in-flight transactions (up to `shutdownTimeout`) and their acks,
   * then resolves; rejects with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT` at the deadline. Messages pulled
   * but not started are redelivered after `ack_wait`. Close the connection afterwards.
   */
  stop(): Promise<void>;
}

/**
 * Consumes from a JetStream consumer, running `handle` once per message id, consumer, stream and subject, and
 * acking (`ackAck`, confirmed by the server within the JetStream context's `timeout`) after the commit. A redelivery is acked without
 * running. `BarrierFailure`, a message without a usable id and a message failing `maxAttempts`
 * deliveries are terminated (`term`); any other error rolls back and is `nak`ed with a growing
 * delay. The client reconnects by itself after a dropped connection, and the loop goes on.
 */
export async function consumeNats<Tx, M extends JetStreamMessage>(options: NatsConsumerOptions<Tx, M>): Promise<NatsConsumer> {
  const { jetStreamConsumer, concurrency = 16, messageId = (m: M) => m.headers?.get('Nats-Msg-Id') || undefined } = options;
  const core = messageConsumer(options);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new BarrierConfigError(`concurrency must be a whole number ≥ 1; got ${concurrency}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  // nats.js refuses a pull shorter than 1 s.
  if (options.expires !== undefined && !(Number.isInteger(options.expires) && options.expires >= 1000)) {
    throw new BarrierConfigError(`expires must be a whole number of ms ≥ 1000; got ${options.expires}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  const { config } = await jetStreamConsumer.info();
  const name = config.durable_name ?? config.name ?? 'the JetStream consumer';
  if (config.ack_policy !== 'explicit') {
    throw new BarrierConsumerConfigError(
      'ERR_TXBARRIER_CONSUMER_CONFIG',
      `${name} has ack_policy ${JSON.stringify(config.ack_policy)}: each message must be acked on its own after its commit, so use ack_policy 'explicit'`,
    );
  }
  const maxDeliver = config.max_deliver ?? -1;
  if (maxDeliver > 0 && maxDeliver < core.policy.maxAttempts) {
    throw new BarrierConsumerConfigError(
      'ERR_TXBARRIER_DELIVERY_LIMIT',
      `${name} has max_deliver ${maxDeliver} < maxAttempts ${core.policy.maxAttempts}: JetStream would stop delivering a failing message ` +
        'before the consumer terminates it, and no hook would hear of it. Raise max_deliver (or -1), or lower maxAttempts.',
    );
  }

  const settle = (message: M) => async (decision: Decision) => {
    switch (decision.settlement) {
      case 'applied':
      case 'duplicate':
        if (!(await message.ackAck())) throw new Error('the server did not confirm the ack');
        return;
      case 'retry':
        return message.nak(decision.delayMs);
      case 'dead-letter':
        // No reason text: NATS 2.9 does not parse `+TERM <reason>`, ignores the term, and redelivers.
        return message.term();
      case 'released':
        return message.nak();
    }
  };

  const messages = await jetStreamConsumer.consume({ max_messages: concurrency, ...(options.expires === undefined ? {} : { expires: options.expires }) });
  const running = new Set<Promise<unknown>>();
  const loop = (async () => {
    for await (const message of messages) {
      const header = (name: string) => message.headers?.get(name) || undefined;
      const delivery = core.deliver({ message, id: messageId(message), source: [message.info.stream, message.subject], attempt: message.info.deliveryCount, header }, settle(message));
      running.add(delivery);
      void delivery.finally(() => running.delete(delivery));
      while (running.size >= concurrency) await Promise.race(running);
    }
  })().catch((error: unknown) => core.warn(`the JetStream consume loop of ${name} ended`, error));

  let stopped = false;
  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const closed = await messages.close();
      if (closed instanceof Error) core.warn(`closing the JetStream consumer ${name} failed`, closed);
      await loop;
      await core.drain();
    },
  };
}
