/**
 * `txbarrier/outbox/kafka`: an outbox publisher for Kafka on kafkajs 2.x. It makes its own
 * idempotent producer (one in-flight request per broker, so the broker drops a batch the producer
 * retried and keeps the order), publishes with `acks: -1` (every in-sync replica has the message),
 * and sends the outbox key as the Kafka key, so the partitioner puts one key's messages on one
 * partition in the relay's order. The outbox id goes out in the `message-id` header, which
 * `txbarrier/kafka` keys its barrier on: a message the relay publishes twice (it died between the
 * broker's ack and recording it) is applied once.
 */
import { BarrierConfigError } from '../../../src/errors.js';
import type { OutboxDelivery, OutboxPublisher } from '../../../src/messaging/outbox/index.js';
import { MESSAGE_ID_HEADER } from './consumer.js';
import { deadline } from './deadline.js';

/** The part of a kafkajs `Producer` the publisher uses (kafkajs is never imported here). */
export interface KafkaOutboxProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: {
    topic: string;
    acks: number;
    timeout: number;
    messages: Array<{ key: string | null; value: Buffer; headers: Record<string, string> }>;
  }): Promise<unknown>;
}

/** The part of a kafkajs `Kafka` instance the publisher uses. */
export interface KafkaClient {
  producer(config: { idempotent: true; maxInFlightRequests: 1 }): KafkaOutboxProducer;
}

export interface KafkaPublisherOptions {
  /** `new Kafka({ clientId, brokers })`: the publisher makes, connects and closes its own idempotent producer on it. Required. */
  kafka: KafkaClient;
  /**
   * How long one publish may take, connecting and kafkajs's own retries included, before it counts
   * as failed and the relay tries it again later: ms. Defaults to `10000`.
   */
  timeout?: number;
  /** How long `close()` waits for the producer to disconnect before it rejects, leaving it behind: ms. Defaults to `5000`. */
  closeTimeout?: number;
}

/**
 * An outbox publisher for Kafka: a message counts as sent once every in-sync replica has it.
 * A publish that times out may still land; the relay then publishes it again with the same id,
 * which the exactly-once consumer recognises.
 */
export function kafkaPublisher(options: KafkaPublisherOptions): OutboxPublisher {
  const { kafka, timeout = 10_000, closeTimeout = 5000 } = options;
  if (typeof kafka?.producer !== 'function') throw new BarrierConfigError('kafka must be a kafkajs Kafka instance (new Kafka({ brokers }))', { code: 'ERR_TXBARRIER_OPTION' });
  for (const [name, value] of Object.entries({ timeout, closeTimeout })) {
    if (!Number.isInteger(value) || value < 1) throw new BarrierConfigError(`${name} must be a whole number of milliseconds ≥ 1; got ${value}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  let connected: Promise<void> | undefined;
  const connect = () => {
    // A failed connect is forgotten, so the next publish tries again.
    connected ??= producer.connect().catch((error: unknown) => {
      connected = undefined;
      throw error;
    });
    return connected;
  };

  return {
    system: 'kafka',
    async publish(message: OutboxDelivery) {
      const sending = (async () => {
        await connect();
        await producer.send({
          topic: message.topic,
          acks: -1,
          timeout,
          messages: [{ key: message.key, value: message.payload, headers: { ...message.headers, [MESSAGE_ID_HEADER]: message.id } }],
        });
      })();
      await deadline(sending, timeout, `publishing ${message.id} to ${message.topic}`);
    },
    async close() {
      if (!connected) return;
      // A stalled connection must not hold the relay's stop(): past the deadline the producer is abandoned, and stop() says so.
      await deadline(producer.disconnect(), closeTimeout, 'closing the Kafka producer');
    },
  };
}
