/**
 * `txbarrier/kafka` against the test broker (servers/kafka.ts): the consumer suite every broker
 * passes, then what only Kafka has: a rebalance mid-stream between two consumers of one group,
 * ids from message positions, and the set-up checks.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { consumeKafka, type KafkaConsumer, type SettledEvent } from '../../../adapters/brokers/kafka/consumer.js';
import { sqliteStore } from '../../../adapters/stores/sqlite.js';
import { describeConsumerSuite } from '../../consumers/suite.js';
import { waitUntil } from '../../support/server-harness.js';
import { openTempDb } from '../../stores/sqlite-harness.js';
import { GROUP_TIMING, kafkaClient, kafkaHarness } from './harness.js';

describeConsumerSuite(kafkaHarness, true, { reconnects: true, keepsDeadLetters: true });

/** A topic of its own (3 partitions), an admin, a producer and an SQLite ledger; all removed afterwards. */
async function scratch(test: (t: { topic: string; publish: (ids: (string | null)[]) => Promise<void>; store: ReturnType<typeof sqliteStore>; applied: () => Map<string, number>; kafka: ReturnType<typeof kafkaClient> }) => Promise<void>) {
  const topic = `txb-kafka-${randomUUID()}`;
  const kafka = kafkaClient();
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([admin.connect(), producer.connect()]);
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  const { db } = openTempDb();
  db.exec('CREATE TABLE applied (id TEXT PRIMARY KEY, n INTEGER NOT NULL)');
  const store = sqliteStore(db);
  await store.ensureSchema();
  try {
    await test({
      topic,
      kafka,
      store,
      publish: async (ids) => {
        for (const id of ids) {
          await producer.send({ topic, acks: -1, messages: [{ key: id ?? randomUUID(), value: id ?? 'no-id', headers: id === null ? {} : { 'message-id': id } }] });
        }
      },
      applied: () => new Map((db.prepare('SELECT id, n FROM applied').all() as { id: string; n: number }[]).map((r) => [r.id, r.n])),
    });
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await Promise.all([admin.disconnect(), producer.disconnect()]);
    db.close();
  }
}

type Tx = { prepare(sql: string): { run(...args: unknown[]): unknown } };

describe('txbarrier/kafka: a rebalance mid-stream', () => {
  it('applies every message once while a second consumer joins the group and takes partitions over', () =>
    scratch(async ({ topic, kafka, publish, store, applied }) => {
      const settled = new Map<string, SettledEvent<unknown>[]>();
      const running: { consumer: KafkaConsumer; close: () => Promise<void> }[] = [];
      const start = async (name: string) => {
        const consumer = kafka.consumer({ groupId: `g-${topic}`, ...GROUP_TIMING });
        const deadLetterProducer = kafka.producer();
        await Promise.all([consumer.connect(), deadLetterProducer.connect()]);
        await consumer.subscribe({ topic, fromBeginning: true });
        settled.set(name, []);
        const handle = await consumeKafka({
          kafkaConsumer: consumer,
          deadLetterProducer,
          store,
          consumer: 'ledger-service',
          handle: async (tx: Tx, { message }) => {
            tx.prepare('INSERT INTO applied VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1').run(message.value!.toString());
            await new Promise((resolve) => setTimeout(resolve, 5));
          },
          onSettled: (event) => settled.get(name)!.push(event),
        });
        running.push({ consumer: handle, close: () => Promise.all([consumer.disconnect(), deadLetterProducer.disconnect()]).then(() => undefined) });
      };
      const ids = Array.from({ length: 150 }, (_, i) => `m-${i}-${randomUUID()}`);
      try {
        await start('first');
        await publish(ids.slice(0, 100));
        await waitUntil('the first consumer is under way', async () => settled.get('first')!.length >= 10);
        await start('second');
        await publish(ids.slice(100));
        await waitUntil('every message applied', async () => applied().size === ids.length, { timeoutMs: 30_000 });
        await waitUntil('the second consumer took partitions over', async () => settled.get('second')!.length > 0, { timeoutMs: 15_000 });
      } finally {
        for (const { consumer, close } of running) {
          await consumer.stop();
          await close();
        }
      }
      expect([...applied().values()].every((n) => n === 1)).toBe(true);
      const all = [...settled.values()].flat();
      expect(all.filter((e) => e.settlement === 'applied')).toHaveLength(ids.length);
      // A message redelivered because its offset commit was lost to the rebalance is recognised, never applied again.
      expect(all.filter((e) => e.settlement !== 'applied' && e.settlement !== 'duplicate')).toEqual([]);
    }));
});

describe('txbarrier/kafka: ids from positions', () => {
  it('keys an id-less message on topic, partition, offset and timestamp, and recognises its redelivery', () =>
    scratch(async ({ topic, kafka, publish, store, applied }) => {
      const events: SettledEvent<unknown>[] = [];
      const consumeOnce = async (until: () => boolean) => {
        const consumer = kafka.consumer({ groupId: `g-${topic}-${events.length}`, ...GROUP_TIMING });
        const deadLetterProducer = kafka.producer();
        await Promise.all([consumer.connect(), deadLetterProducer.connect()]);
        await consumer.subscribe({ topic, fromBeginning: true });
        const running = await consumeKafka({
          kafkaConsumer: consumer,
          deadLetterProducer,
          store,
          consumer: 'ledger-service',
          handle: (tx: Tx, { message }) => void tx.prepare('INSERT INTO applied VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1').run(`offset-${message.offset}-${message.key}`),
          onSettled: (event) => events.push(event),
        });
        await waitUntil('settled', async () => until());
        await running.stop();
        await Promise.all([consumer.disconnect(), deadLetterProducer.disconnect()]);
      };
      await publish([null, null]);
      await consumeOnce(() => events.length === 2);
      expect(events.map((e) => e.settlement)).toEqual(['applied', 'applied']);
      for (const event of events) expect(event.messageId).toMatch(new RegExp(`^${topic}:\\d:\\d:\\d+$`));
      // A second group (as a reset of the group's offsets would) reads both again: the barrier recognises them.
      await consumeOnce(() => events.length === 4);
      expect(events.slice(2).map((e) => e.settlement)).toEqual(['duplicate', 'duplicate']);
      expect([...applied().values()]).toEqual([1, 1]);
    }));
});

describe('txbarrier/kafka set-up', () => {
  it('refuses to start without a dead-letter producer, and bad options', async () => {
    const { db } = openTempDb();
    const store = sqliteStore(db);
    const client = { run: async () => undefined, commitOffsets: async () => undefined, seek: () => undefined, stop: async () => undefined };
    const options = { store, consumer: 'ledger-service', handle: () => undefined, kafkaConsumer: client, deadLetterProducer: { send: async () => undefined } };
    try {
      await expect(consumeKafka({ ...options, deadLetterProducer: undefined as never })).rejects.toMatchObject({ code: 'ERR_TXBARRIER_NO_DEAD_LETTER' });
      for (const bad of [{ maxAttempts: 0 }, { retryBackoff: 0.5 }, { concurrency: 0 }, { consumer: 'trailing ' }]) {
        await expect(consumeKafka({ ...options, ...bad }), JSON.stringify(bad)).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_TXBARRIER_(OPTION|INPUT)$/) });
      }
    } finally {
      db.close();
    }
  });
});
