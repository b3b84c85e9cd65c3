/**
 * The exactly-once consumer against the real RabbitMQ: redeliveries forced by nack/requeue, by a
 * publisher sending twice, and by a consumer that dies with committed but unacked messages.
 * Skipped with a message when no broker answers; TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../adapters/postgres.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { type BarrierStore, type OutcomeEvent, postgresDialect } from '../src/index.js';
import { consumeExactlyOnce, type ConsumerChannel, type Settlement } from '../examples/consumer/consumer.js';
import { postgresPool, waitUntil } from './server-harness.js';
import { hasServer } from './servers.js';
import { openTempDb } from './sqlite-harness.js';

const AMQP_URL = process.env.TXBARRIER_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

async function probeBroker(): Promise<boolean> {
  try {
    const connection = await amqp.connect(AMQP_URL, { timeout: 3000 });
    await connection.close();
    return true;
  } catch (error) {
    const problem = `RabbitMQ at ${AMQP_URL} (${error instanceof Error ? error.message : String(error)}); set TXBARRIER_AMQP_URL to test it`;
    if (process.env.TXBARRIER_REQUIRE_BROKER === '1') throw new Error(`TXBARRIER_REQUIRE_BROKER=1 but the broker is unreachable: ${problem}`);
    console.warn(`\ntxbarrier: SKIPPING the consumer tests: ${problem}\n`);
    return false;
  }
}
const hasBroker = await probeBroker();

/** A business table where each applied message adds one row: a message applied twice shows as two. */
interface Ledger<Tx> {
  store: BarrierStore<Tx>;
  credit(tx: Tx, messageId: string, amount: number): Promise<void>;
  /** Rows per message id. */
  rows(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

async function sqliteLedger(onOutcome: (e: OutcomeEvent) => void): Promise<Ledger<ReturnType<typeof openTempDb>['db']>> {
  const { db, dir } = openTempDb();
  db.exec('CREATE TABLE ledger (message_id TEXT NOT NULL, amount INTEGER NOT NULL)');
  const store = sqliteStore(db, { onOutcome });
  await store.ensureSchema();
  return {
    store,
    credit: async (tx, id, amount) => void tx.prepare('INSERT INTO ledger VALUES (?, ?)').run(id, amount),
    rows: async () =>
      new Map((db.prepare('SELECT message_id, COUNT(*) AS n FROM ledger GROUP BY message_id').all() as { message_id: string; n: number }[]).map((r) => [r.message_id, r.n])),
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresLedger(onOutcome: (e: OutcomeEvent) => void): Promise<Ledger<unknown>> {
  const pool = postgresPool();
  const suffix = randomUUID().slice(0, 8);
  const [table, ledger] = [`consumer_barrier_${suffix}`, `consumer_ledger_${suffix}`];
  await pool.query(`CREATE TABLE ${ledger} (message_id TEXT NOT NULL, amount INTEGER NOT NULL)`);
  const store = postgresStore(pool, { table, onOutcome }) as BarrierStore<unknown>;
  await store.ensureSchema();
  return {
    store,
    credit: async (tx, id, amount) => void (await (tx as { query(sql: string, p: unknown[]): Promise<unknown> }).query(`INSERT INTO ${ledger} VALUES ($1, $2)`, [id, amount])),
    rows: async () => {
      const { rows } = await pool.query(`SELECT message_id, COUNT(*)::int AS n FROM ${ledger} GROUP BY message_id`);
      return new Map(rows.map((r: { message_id: string; n: number }) => [r.message_id, r.n]));
    },
    close: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${ledger}, ${postgresDialect.quoteTable(table)}`);
      await pool.end();
    },
  };
}

function describeConsumer<Tx>(name: string, skip: boolean, open: (onOutcome: (e: OutcomeEvent) => void) => Promise<Ledger<Tx>>) {
  describe.skipIf(skip)(`exactly-once consumer: ${name}`, () => {
    const connections: ChannelModel[] = [];
    let queue: string;
    let ledger: Ledger<Tx>;
    const outcomes: OutcomeEvent[] = [];

    beforeAll(async () => {
      ledger = await open((e) => outcomes.push(e));
    });
    afterAll(async () => {
      await ledger?.close();
    });

    /** A fresh queue and broker connections for one test; the queue is deleted afterwards. */
    async function setup() {
      queue = `txbarrier-test-${randomUUID()}`;
      const admin = await amqp.connect(AMQP_URL);
      connections.push(admin);
      const adminChannel = await admin.createConfirmChannel();
      await adminChannel.assertQueue(queue, { durable: false });
      outcomes.length = 0;
      return {
        /** Publishes with confirms: every message is on the queue before this resolves. */
        async publish(messages: { id: string; amount: number }[]) {
          for (const { id, amount } of messages) {
            adminChannel.sendToQueue(queue, Buffer.from(JSON.stringify({ amount })), { messageId: id });
          }
          await adminChannel.waitForConfirms();
        },
        async remaining() {
          return (await adminChannel.checkQueue(queue)).messageCount;
        },
        async cleanup() {
          await adminChannel.deleteQueue(queue);
          for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
        },
      };
    }

    async function channel() {
      const connection = await amqp.connect(AMQP_URL);
      connections.push(connection);
      return { connection, channel: await connection.createChannel() };
    }

    const credit = (tx: Tx, message: ConsumeMessage) =>
      ledger.credit(tx, String(message.properties.messageId), (JSON.parse(message.content.toString()) as { amount: number }).amount);
    const messagesOf = (count: number) => Array.from({ length: count }, (_, i) => ({ id: `message-${randomUUID()}`, amount: i + 1 }));
    const outcomeCount = (outcome: string) => outcomes.filter((e) => e.outcome === outcome).length;

    it('applies each message once when its ack is lost, its transaction fails, or it is published twice', async () => {
      const broker = await setup();
      try {
        const messages = messagesOf(20);
        const flaky = messages.slice(0, 4).map((m) => m.id);
        const failOnce = new Set(flaky);
        const { channel: raw } = await channel();
        // The ack of each first delivery is lost: the broker gets a requeue instead, after the commit.
        const lossy: ConsumerChannel = {
          prefetch: (n) => raw.prefetch(n),
          consume: (q, onMessage) => raw.consume(q, onMessage),
          cancel: (tag) => raw.cancel(tag),
          nack: (m, allUpTo, requeue) => raw.nack(m, allUpTo, requeue),
          ack: (m) => (m.fields.redelivered ? raw.ack(m) : raw.nack(m, false, true)),
        };
        const settled: { id: string; settlement: Settlement; redelivered: boolean }[] = [];
        const consumer = await consumeExactlyOnce({
          channel: lossy,
          queue,
          store: ledger.store,
          consumer: 'ledger-service',
          prefetch: 8,
          handle: async (tx, message) => {
            const id = String(message.properties.messageId);
            // The effect is written, then the transaction fails: it must roll back with the barrier row.
            await credit(tx, message);
            if (failOnce.delete(id)) throw new Error(`transient failure for ${id}`);
          },
          onSettled: (m, settlement) => settled.push({ id: String(m.properties.messageId), settlement, redelivered: m.fields.redelivered }),
        });
        // A publisher that retried five sends: same message ids, new deliveries.
        await broker.publish([...messages, ...messages.slice(10, 15)]);

        // Each of the 25 deliveries ends in one ack of a redelivery: its first delivery either failed or lost its ack.
        await waitUntil('every delivery acked', async () => settled.filter((s) => s.redelivered && s.settlement !== 'requeued').length === 25);
        await consumer.stop();

        const rows = await ledger.rows();
        for (const { id } of messages) expect(rows.get(id), id).toBe(1);
        expect(rows.size).toBe(messages.length);
        expect(outcomeCount('applied')).toBe(messages.length);
        expect(settled.filter((s) => s.settlement === 'requeued').map((s) => s.id).sort()).toEqual([...flaky].sort());
        // Every message whose first delivery committed came back after the commit, and was recognised.
        for (const { id } of messages.slice(4)) expect(settled.some((s) => s.id === id && s.settlement === 'duplicate'), id).toBe(true);
        expect(await broker.remaining()).toBe(0);
      } finally {
        await broker.cleanup();
      }
    });

    it('applies once the messages a consumer committed but never acked before it died', async () => {
      const broker = await setup();
      try {
        const messages = messagesOf(30);
        await broker.publish(messages);

        // The first consumer commits every message, then dies before a single ack goes out.
        const first = await channel();
        const dying: ConsumerChannel = {
          prefetch: (n) => first.channel.prefetch(n),
          consume: (q, onMessage) => first.channel.consume(q, onMessage),
          cancel: (tag) => first.channel.cancel(tag),
          nack: (m, allUpTo, requeue) => first.channel.nack(m, allUpTo, requeue),
          ack: () => undefined,
        };
        await consumeExactlyOnce({ channel: dying, queue, store: ledger.store, consumer: 'ledger-service', prefetch: 50, handle: credit });
        await waitUntil('the first consumer committed everything', async () => outcomeCount('applied') === messages.length);
        expect(await broker.remaining()).toBe(0);
        await first.connection.close();

        // Its replacement receives all of them again.
        const second = await channel();
        const settled: [Settlement, boolean][] = [];
        const consumer = await consumeExactlyOnce({
          channel: second.channel,
          queue,
          store: ledger.store,
          consumer: 'ledger-service',
          handle: credit,
          onSettled: (m, settlement) => settled.push([settlement, m.fields.redelivered]),
        });
        await waitUntil('the replacement settled every redelivery', async () => settled.length === messages.length);
        await consumer.stop();
        await second.channel.close();

        expect(settled.every(([settlement, redelivered]) => settlement === 'duplicate' && redelivered)).toBe(true);
        const rows = await ledger.rows();
        for (const { id } of messages) expect(rows.get(id), id).toBe(1);
        expect(await broker.remaining()).toBe(0);
      } finally {
        await broker.cleanup();
      }
    });

    it('rejects a message without an id instead of applying it unguarded', async () => {
      const broker = await setup();
      try {
        const { channel: raw } = await channel();
        const settled: [Settlement, unknown][] = [];
        const consumer = await consumeExactlyOnce({
          channel: raw,
          queue,
          store: ledger.store,
          consumer: 'ledger-service',
          handle: credit,
          onSettled: (_, settlement, error) => settled.push([settlement, error]),
        });
        raw.sendToQueue(queue, Buffer.from('{"amount":1}'));
        await waitUntil('the message was settled', async () => settled.length === 1);
        await consumer.stop();
        expect(settled[0]![0]).toBe('rejected');
        expect(String(settled[0]![1])).toMatch(/no messageId/);
        expect(outcomes).toEqual([]);
        expect(await broker.remaining()).toBe(0);
      } finally {
        await broker.cleanup();
      }
    });
  });
}

describeConsumer('sqlite', !hasBroker, sqliteLedger);
describeConsumer('postgres', !hasBroker || !hasServer('postgres'), postgresLedger);
