/**
 * The consumer suite's Kafka harness (kafkajs against the test broker of servers/kafka.ts, whose
 * address the suite's global setup puts in TXBARRIER_KAFKA_BROKERS). Each run has topics and a
 * group of its own; a run's proxy carries every connection of a `viaProxy` client, since a Kafka
 * client connects to the address the broker advertises, not the one it was given.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { type Consumer, Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { consumeKafka, type KafkaConsumerClient, type KafkaMessage, MESSAGE_ID_HEADER } from '../../../adapters/brokers/kafka/consumer.js';
import { kafkaPublisher } from '../../../adapters/brokers/kafka/publisher.js';
import type { OutboxPublisher } from '../../../src/messaging/outbox/index.js';
import { amountOf, type BrokerHarness, type BrokerRun, payload } from '../../consumers/harness.js';
import type { BrokerHarness as OutboxBrokerHarness, Received } from '../../outbox/harness.js';
import { tcpProxy } from '../../support/tcp-proxy.js';

export function kafkaBrokers(): string[] {
  const brokers = process.env.TXBARRIER_KAFKA_BROKERS;
  if (!brokers) throw new Error('TXBARRIER_KAFKA_BROKERS is not set: run the Kafka tests with npm run test:kafka, which starts the test broker');
  return brokers.split(',');
}

/** A kafkajs client that says nothing (a green run is quiet); `viaPort` sends every connection to that local port. */
export function kafkaClient(config: Partial<KafkaConfig> & { viaPort?: number } = {}): Kafka {
  const { viaPort, ...rest } = config;
  return new Kafka({
    clientId: 'txbarrier-test',
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 50, retries: 8 },
    ...(viaPort === undefined ? {} : { socketFactory: ({ onConnect }) => connect({ host: '127.0.0.1', port: viaPort }, onConnect) }),
    ...rest,
  });
}

const CONSUMER = 'ledger-service';
/** Short sessions: the suite kills consumers and waits for the group to hand their partitions on. */
export const GROUP_TIMING = { sessionTimeout: 4000, rebalanceTimeout: 4000, heartbeatInterval: 300, maxWaitTimeInMs: 100 };

async function run(topic: string, create: boolean): Promise<BrokerRun> {
  const [host, port] = kafkaBrokers()[0]!.split(':') as [string, string];
  const proxy = await tcpProxy(Number(port), host);
  const kafka = kafkaClient();
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `g-${topic}`;
  const deadLetters = `${topic}.DLT`;
  if (create) await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }, { topic: deadLetters, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const closers = new Set<() => Promise<void>>();
  const sum = (offsets: { offset: string }[]) => offsets.reduce((total, { offset }) => total + Number(offset), 0);

  return {
    params: { topic },
    async publish(messages) {
      for (const message of messages) {
        const headers = message.id === undefined ? {} : { [MESSAGE_ID_HEADER]: message.id };
        await producer.send({ topic, acks: -1, messages: [{ key: null, value: payload(message), headers }] });
      }
    },
    async consume({ ledger, effect, loseFirstAck, viaProxy, legacyKeyCheck = true, ...policy }) {
      const client = viaProxy ? kafkaClient({ viaPort: proxy.port, brokers: [`127.0.0.1:${proxy.port}`] }) : kafka;
      const consumer = client.consumer({ groupId, ...GROUP_TIMING });
      const deadLetterProducer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
      await Promise.all([consumer.connect(), deadLetterProducer.connect()]);
      await consumer.subscribe({ topic, fromBeginning: true });
      const running = await consumeKafka({
        ...policy,
        // On, unlike consumeKafka's default, so the suite's upgrade cases exercise the check on Kafka too.
        legacyKeyCheck,
        kafkaConsumer: loseFirstAck ? lossy(consumer) : consumer,
        deadLetterProducer,
        store: ledger.store,
        consumer: CONSUMER,
        // Header ids only: the suite's id-less message must be dead-lettered (positions are tested on their own).
        messageId: ({ message }) => message.headers?.[MESSAGE_ID_HEADER]?.toString(),
        handle: async (tx, { message }) => {
          const id = message.headers![MESSAGE_ID_HEADER]!.toString();
          await ledger.credit(tx, id, amountOf(message.value!));
          await effect?.(id);
        },
      });
      const close = async () => {
        closers.delete(close);
        await Promise.all([consumer.disconnect(), deadLetterProducer.disconnect()]);
      };
      closers.add(close);
      return {
        async stop() {
          try {
            await running.stop();
          } finally {
            await close();
          }
        },
      };
    },
    dropConnections: () => proxy.drop(),
    async unsettled() {
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
      // An offset never committed reads -1: everything from the start is unsettled.
      const starts = committed!.partitions.map(({ partition, offset }) => ({ offset: offset === '-1' ? ends.find((e) => e.partition === partition)!.low : offset }));
      return sum(ends.map(({ high }) => ({ offset: high }))) - sum(starts);
    },
    async deadLettered() {
      const offsets = await admin.fetchTopicOffsets(deadLetters);
      return sum(offsets.map(({ high }) => ({ offset: high }))) - sum(offsets.map(({ low }) => ({ offset: low })));
    },
    async cleanup() {
      for (const close of closers) await close();
      await admin.deleteTopics({ topics: [topic, deadLetters] });
      await producer.disconnect();
      await admin.disconnect();
      await proxy.close();
    },
  };
}

/** The consumer, with each message's first offset commit turned into a seek back to it: Kafka delivers the committed message again. */
function lossy(consumer: Consumer): KafkaConsumerClient<KafkaMessage> {
  const requeued = new Set<string>();
  return {
    run: (config) => consumer.run(config),
    seek: (position) => consumer.seek(position),
    stop: () => consumer.stop(),
    async commitOffsets(offsets) {
      for (const { topic, partition, offset } of offsets) {
        const at = String(BigInt(offset) - 1n);
        if (requeued.has(`${partition}:${at}`)) continue;
        requeued.add(`${partition}:${at}`);
        consumer.seek({ topic, partition, offset: at });
        return;
      }
      await consumer.commitOffsets(offsets);
    },
  };
}

export const kafkaHarness: BrokerHarness = {
  name: 'Kafka',
  open: () => run(`txb-consumers-${randomBytes(6).toString('hex')}`, true),
  attach: (params) => run(params.topic as string, false),
};

/** The outbox tests' view of Kafka: topics of the run's own, created on `accept`, read back by a consumer of its own. */
export async function openKafkaOutbox(): Promise<OutboxBrokerHarness> {
  const prefix = `txb-outbox-${randomBytes(5).toString('hex')}`;
  // Few retries: a publish to a topic that does not exist fails within the relay's fast retry policy.
  const kafka = kafkaClient({ retry: { initialRetryTime: 20, retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  const topics: string[] = [];
  const seen = new Map<string, Received>();
  const publishers: OutboxPublisher[] = [];
  let reader: Consumer | undefined;
  // A new topic needs a new subscription: a fresh reader reads every topic from the start again, and `seen` keeps one entry per position.
  const read = async () => {
    await reader?.disconnect();
    reader = kafka.consumer({ groupId: `${prefix}-reader-${topics.length}`, maxWaitTimeInMs: 50 });
    await reader.connect();
    await reader.subscribe({ topics, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ topic, partition, message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]));
        seen.set(`${topic}/${partition}/${message.offset}`, { id: headers[MESSAGE_ID_HEADER] ?? '', topic, payload: message.value?.toString() ?? '', headers });
      },
    });
  };
  return {
    name: 'kafka',
    topic: (name = 'main') => `${prefix}-${name}`,
    deadTopic: () => `${prefix}-nobody-${randomBytes(3).toString('hex')}`,
    async accept(topic) {
      if (topics.includes(topic)) return;
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
      topics.push(topic);
      await read();
    },
    publisher() {
      const publisher = kafkaPublisher({ kafka, timeout: 2000 });
      publishers.push(publisher);
      return publisher;
    },
    // In the order first read: per partition, the order the broker appended them.
    received: async () => [...seen.values()],
    async close() {
      for (const publisher of publishers) await publisher.close?.();
      await reader?.disconnect();
      if (topics.length > 0) await admin.deleteTopics({ topics });
      await admin.disconnect();
    },
  };
}
