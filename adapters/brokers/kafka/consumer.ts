/**
 * `txbarrier/kafka`: an exactly-once Kafka consumer on a `kafkajs` 2.x consumer (`eachMessage`).
 *
 * Kafka has no acknowledgement per message and no delivery count: a group commits an offset per
 * partition, and everything after the committed offset comes again after a crash or a rebalance.
 * So each partition runs one message at a time, in order; a message's offset is committed only
 * after its transaction committed (or after its dead-letter publish was acknowledged), and a retry
 * waits in place, holding its partition, so no later offset can be committed past it. Attempts are
 * counted per partition in this process's memory: a crash or a rebalance that moves the partition
 * starts the count again.
 */
import { BarrierConsumerConfigError, type ConsumerOptions, type Decision, messageConsumer } from '../../../src/messaging/consumer.js';
import { BarrierConfigError } from '../../../src/index.js';
import { deadline } from './deadline.js';

export * from '../consumer-exports.js';

/** A header value as kafkajs gives it. */
export type KafkaHeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** The part of a kafkajs `KafkaMessage` the consumer uses (kafkajs is never imported here). */
export interface KafkaMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** A decimal string, as kafkajs gives it. */
  readonly offset: string;
  /** Milliseconds since the epoch, a decimal string: the producer's CreateTime or the broker's LogAppendTime. */
  readonly timestamp: string;
  readonly headers?: Readonly<Record<string, KafkaHeaderValue>>;
}

/** One consumed message with where it came from: what `handle` receives. */
export interface KafkaRecord<M extends KafkaMessage = KafkaMessage> {
  readonly topic: string;
  readonly partition: number;
  readonly message: M;
}

/** The part of kafkajs's `eachMessage` payload the consumer uses. */
export interface KafkaEachMessagePayload<M extends KafkaMessage> {
  topic: string;
  partition: number;
  message: M;
  /** Keeps the group membership alive while a retry waits; rejects when the group is rebalancing. */
  heartbeat(): Promise<void>;
}

export interface KafkaTopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** The part of a kafkajs `Consumer` (`kafka.consumer({ groupId })`, connected and subscribed) the consumer uses. */
export interface KafkaConsumerClient<M extends KafkaMessage = KafkaMessage> {
  run(config: { autoCommit: boolean; partitionsConsumedConcurrently: number; eachMessage(payload: KafkaEachMessagePayload<M>): Promise<void> }): Promise<void>;
  commitOffsets(offsets: KafkaTopicPartitionOffset[]): Promise<void>;
  /** Fetches the partition again from `offset`: a message left unsettled comes back. */
  seek(position: KafkaTopicPartitionOffset): void;
  stop(): Promise<void>;
}

/** The part of a kafkajs `Producer` (connected) the dead-letter publish uses. */
export interface KafkaProducerClient {
  send(record: {
    topic: string;
    acks: number;
    timeout?: number;
    messages: Array<{ key: Buffer | string | null; value: Buffer | string | null; headers: Record<string, Buffer | string> }>;
  }): Promise<unknown>;
}

export interface KafkaConsumerOptions<Tx, M extends KafkaMessage> extends ConsumerOptions<Tx, KafkaRecord<M>> {
  /**
   * A connected kafkajs consumer, subscribed to its topics, not yet running. Its `sessionTimeout`
   * must exceed the longest transaction: heartbeats go out between messages and while a retry
   * waits, not during a transaction. Required.
   */
  kafkaConsumer: KafkaConsumerClient<M>;
  /**
   * A connected producer for the dead-letter topic, ideally created with `idempotent: true`. A
   * message is dead-lettered with acks from all in-sync replicas before its offset is committed; a
   * consumer without one refuses to start (`ERR_TXBARRIER_NO_DEAD_LETTER`): Kafka has nowhere else
   * to keep a message it skips. Required.
   */
  deadLetterProducer: KafkaProducerClient;
  /**
   * As for the other consumers (also recognise a message committed under the source-less key of
   * the consumers of 0.1), but off unless asked for: no earlier Kafka consumer wrote that key.
   * Defaults to `false`.
   */
  legacyKeyCheck?: boolean;
  /** The dead-letter topic of a source topic. Defaults to `<topic>.DLT`. */
  deadLetterTopic?: (topic: string) => string;
  /** How long a dead-letter publish may take before it counts as failed (and is tried again): ms. Defaults to `30000`. */
  deadLetterTimeout?: number;
  /**
   * Partitions worked on at once, each one message at a time in offset order (kafkajs's
   * `partitionsConsumedConcurrently`). Defaults to `1`.
   */
  concurrency?: number;
  /**
   * Reads the message's id, the barrier's gid. Defaults to the `message-id` header (which
   * `txbarrier/outbox/kafka` sets), else the message's position: topic, partition, offset and
   * timestamp (the barrier's gid is `keyPart` of the id: hashed when longer than 128 characters). A position repeats when a topic is deleted and created again (offsets restart at 0);
   * the timestamp tells the two apart unless a producer sets timestamps itself and repeats one at
   * the same offset (a replay of the old topic, which is then the same message). Return `undefined`
   * to dead-letter id-less messages instead.
   */
  messageId?: (record: KafkaRecord<M>) => unknown;
}

export interface KafkaConsumer {
  /**
   * Stops fetching, waits for the transactions in flight (up to `shutdownTimeout`) and their
   * offset commits, then resolves; rejects with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT` at the deadline.
   * A message waiting for its retry is left uncommitted and comes again. Disconnect the client
   * afterwards.
   */
  stop(): Promise<void>;
}

/** The header `txbarrier/outbox/kafka` writes the outbox message id into, and the consumer reads by default. */
export const MESSAGE_ID_HEADER = 'message-id';

const firstValue = (value: KafkaHeaderValue): string | undefined => {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
};

/** The default id: the `message-id` header, else the message's position (see `messageId`). */
export function kafkaMessageId(record: KafkaRecord): string {
  const header = firstValue(record.message.headers?.[MESSAGE_ID_HEADER]);
  if (header) return header;
  const { topic, partition, message } = record;
  return `${topic}:${partition}:${message.offset}:${message.timestamp}`;
}

/**
 * Consumes with a kafkajs consumer, running `handle` once per message id, consumer and topic, and
 * committing the next offset after the commit. A redelivery is committed without running.
 * `BarrierFailure`, a message without a usable id and a message failing `maxAttempts` times go to
 * the dead-letter topic (with `txbarrier-dlt-*` headers saying why and from where), and only then is
 * their offset committed; any other error rolls back, and the message is tried again after a
 * growing delay while its partition waits.
 */
export async function consumeKafka<Tx, M extends KafkaMessage>(options: KafkaConsumerOptions<Tx, M>): Promise<KafkaConsumer> {
  const {
    kafkaConsumer,
    deadLetterProducer,
    deadLetterTopic = (topic: string) => `${topic}.DLT`,
    deadLetterTimeout = 30_000,
    concurrency = 1,
    messageId = kafkaMessageId as (record: KafkaRecord<M>) => unknown,
  } = options;
  // No Kafka consumer ever wrote the source-less key, so there is nothing earlier to recognise.
  const core = messageConsumer({ ...options, legacyKeyCheck: options.legacyKeyCheck ?? false });
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new BarrierConfigError(`concurrency must be a whole number ≥ 1; got ${concurrency}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  if (typeof deadLetterProducer?.send !== 'function') {
    throw new BarrierConsumerConfigError(
      'ERR_TXBARRIER_NO_DEAD_LETTER',
      'deadLetterProducer is required: a Kafka consumer can only skip a poison message by committing past it, so it must be kept on a dead-letter topic first',
    );
  }

  /** Per partition: the offset being worked on and the deliveries it has had. In memory only. */
  const attempts = new Map<string, { offset: string; count: number }>();
  const sleepers = new Set<() => void>();
  let stopping = false;

  /** Waits `ms`, heartbeating; false when stopping or the group started rebalancing meanwhile. */
  const wait = async (ms: number, heartbeat: () => Promise<void>): Promise<boolean> => {
    const until = Date.now() + ms;
    while (!stopping) {
      const left = until - Date.now();
      if (left <= 0) return true;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          sleepers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 500));
        sleepers.add(wake);
      });
      try {
        await heartbeat();
      } catch {
        // The partition may be moving to another member: leave the message uncommitted for its next owner.
        return false;
      }
    }
    return false;
  };

  const eachMessage = async ({ topic, partition, message, heartbeat }: KafkaEachMessagePayload<M>): Promise<void> => {
    const record: KafkaRecord<M> = { topic, partition, message };
    const position = { topic, partition, offset: message.offset };
    const slot = `${topic}\u0000${partition}`;
    const id = messageId(record);
    const header = (name: string) => firstValue(message.headers?.[name]);
    for (;;) {
      const seen = attempts.get(slot);
      const attempt = seen?.offset === message.offset ? seen.count + 1 : 1;
      attempts.set(slot, { offset: message.offset, count: attempt });
      let settled = false;
      const commit = () => {
        settled = true;
        return kafkaConsumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
      };
      // Not async: the commit's own promise is what the core awaits.
      const settlement = await core.deliver({ message: record, id, source: [topic], attempt, header }, (decision: Decision) => {
        if (decision.settlement === 'retry' || decision.settlement === 'released') return;
        if (decision.settlement === 'dead-letter') return deadLetter(record, decision).then(commit);
        return commit();
      });
      if (settled) {
        // Committed, or its commit failed after the effect committed: a later commit covers it either way.
        attempts.delete(slot);
        return;
      }
      // Unsettled: a retry, a release while stopping, or a dead-letter publish that failed.
      const delay = settlement === 'released' ? 0 : core.policy.delayAfter(attempt);
      if (settlement === 'released' || !(await wait(delay, heartbeat))) {
        // Fetch from this message again, so no later offset of the partition is committed past it.
        kafkaConsumer.seek(position);
        return;
      }
    }
  };

  const deadLetter = async ({ topic, partition, message }: KafkaRecord<M>, decision: Extract<Decision, { settlement: 'dead-letter' }>) => {
    const headers: Record<string, Buffer | string> = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      const first = Array.isArray(value) ? value[0] : value;
      if (first !== undefined) headers[name] = first;
    }
    Object.assign(headers, {
      'txbarrier-dlt-reason': decision.reason,
      'txbarrier-dlt-error': String(decision.error).slice(0, 1000),
      'txbarrier-dlt-topic': topic,
      'txbarrier-dlt-partition': String(partition),
      'txbarrier-dlt-offset': message.offset,
    });
    await deadline(
      deadLetterProducer.send({ topic: deadLetterTopic(topic), acks: -1, timeout: deadLetterTimeout, messages: [{ key: message.key, value: message.value, headers }] }),
      deadLetterTimeout,
      `the dead-letter publish to ${deadLetterTopic(topic)}`,
    );
  };

  await kafkaConsumer.run({ autoCommit: false, partitionsConsumedConcurrently: concurrency, eachMessage });

  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        for (const wake of sleepers) wake();
        // kafkajs's stop waits for the message in flight however long it takes; the deadline is drain's.
        const clientStopped = kafkaConsumer.stop().catch((error: unknown) => core.warn('stopping the Kafka consumer failed', error));
        await core.drain();
        await clientStopped;
      })()),
  };
}
