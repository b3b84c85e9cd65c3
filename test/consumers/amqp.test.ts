/**
 * `txbarrier/amqp` against the real RabbitMQ. Skipped with a message when no broker answers;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import amqp, { type ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { consumeAmqp, type SettledEvent } from '../../adapters/brokers/amqp/consumer.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { amqpHarness, probeAmqp } from './amqp-harness.js';
import { probeBroker } from './harness.js';
import { tracingFromHeaders } from './tracing.js';
import { describeConsumerSuite } from './suite.js';
import { waitUntil } from '../support/server-harness.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { AMQP_URL, freePort } from '../../servers/index.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { awaitWarnings } from '../support/warnings.js';

const reachable = await probeBroker(`RabbitMQ at ${AMQP_URL}`, 'TXBARRIER_AMQP_URL', probeAmqp);

describeConsumerSuite(amqpHarness, reachable, { reconnects: false, keepsDeadLetters: true });

describe.skipIf(!reachable)('txbarrier/amqp set-up', () => {
  it('runs the example: ten payments in the ledger once each, three of them published twice', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/consumer/main.ts', AMQP_URL], { timeout: 30_000 });
    expect(stdout.match(/payment-\d+: applied/g)).toHaveLength(10);
    expect(stdout.match(/payment-\d+: duplicate/g)).toHaveLength(3);
    expect(stdout.match(/│ 'payment-\d+'\s+│ 1 /g)).toHaveLength(10);
  });

  it('refuses to start on a queue without its dead-letter exchange, where a reject would drop the message', async () => {
    const queue = `txb-consumers-${randomUUID()}`;
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    const { db } = openTempDb();
    try {
      const admin = await connection.createChannel();
      await admin.assertQueue(queue, { durable: false });
      const channel = await connection.createConfirmChannel();
      const consuming = consumeAmqp({ channel, queue, queueOptions: { durable: false }, store: sqliteStore(db), consumer: 'ledger-service', handle: () => undefined });
      await expect(consuming).rejects.toMatchObject({ code: 'ERR_TXBARRIER_NO_DEAD_LETTER' });
      await expect(consumeAmqp({ channel: admin as never, queue, store: sqliteStore(db), consumer: 'x', handle: () => undefined })).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_CONSUMER_CONFIG',
      });
      // The broker closed the channel of the refused declaration, and the consumer said so.
      expect(await awaitWarnings(/TxbarrierConsumerWarning/, 2)).toEqual([
        expect.stringMatching(/channel error .*406 \(PRECONDITION-FAILED\)/),
        expect.stringMatching(/the channel of .* closed; consume again/),
      ]);
      await admin.deleteQueue(queue);
      await admin.deleteQueue(`${queue}.dead-letter`);
      await admin.deleteExchange(`${queue}.dead-letter`);
    } finally {
      db.close();
      await connection.close();
    }
  });
});

/** A queue (with the consumer's topology) on a connection of its own, and an SQLite store; all removed afterwards. */
async function scratch(test: (t: { queue: string; connection: amqp.ChannelModel; store: ReturnType<typeof sqliteStore> }) => Promise<void>) {
  const queue = `txb-consumers-${randomUUID()}`;
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', () => undefined);
  const { db } = openTempDb();
  const store = sqliteStore(db);
  await store.ensureSchema();
  try {
    await test({ queue, connection, store });
  } finally {
    const admin = await connection.createChannel();
    // The retry queues of retryDelay 20 and up to five attempts; deleting an absent queue is fine.
    for (const name of [queue, `${queue}.dead-letter`, ...[20, 40, 80, 160].map((ms) => `${queue}.retry.${ms}ms`)]) await admin.deleteQueue(name);
    await admin.deleteExchange(`${queue}.dead-letter`);
    db.close();
    await connection.close();
  }
}

describe.skipIf(!reachable)('txbarrier/amqp on a quorum queue', () => {
  it("counts the broker's redeliveries (a consumer that crashed mid-transaction) as attempts, across retries", () =>
    scratch(async ({ queue, connection, store }) => {
      const queueOptions = { durable: true, arguments: { 'x-queue-type': 'quorum' } };
      const channel = await connection.createConfirmChannel();
      const deadLetters: SettledEvent<ConsumeMessage>[] = [];
      const options = {
        queue,
        queueOptions,
        store,
        consumer: 'ledger-service',
        maxAttempts: 3,
        retryDelay: 20,
        onDeadLetter: (event: SettledEvent<ConsumeMessage>) => deadLetters.push(event),
        handle: () => {
          throw new Error('crashes the process, in real life');
        },
      };
      // Declares the topology, then goes away before anything is published.
      await (await consumeAmqp({ ...options, channel })).stop();
      channel.sendToQueue(queue, Buffer.from('{}'), { messageId: `message-${randomUUID()}` });
      await channel.waitForConfirms();

      // A delivery that never settles, as a process killed mid-transaction leaves it: the broker requeues it.
      const crashing = await connection.createChannel();
      for (let i = 0; i < 1; i++) {
        const message = await crashing.get(queue);
        expect(message).not.toBe(false);
        crashing.nack(message as amqp.GetMessage, false, true);
      }
      await crashing.close();

      const settled: SettledEvent<ConsumeMessage>[] = [];
      const consumer = await consumeAmqp({ ...options, channel: await connection.createConfirmChannel(), onSettled: (event) => settled.push(event) });
      await waitUntil('dead-lettered', async () => deadLetters.length === 1);
      await consumer.stop();
      // The crash spent the first attempt; the retry's copy went on counting from there, and the third one was the last.
      expect(settled.map((e) => [e.attempt, e.settlement])).toEqual([
        [2, 'retry'],
        [3, 'dead-letter'],
      ]);
      expect(deadLetters[0]).toMatchObject({ attempt: 3, reason: 'attempts' });
      const admin = await connection.createChannel();
      await waitUntil('in the dead-letter queue', async () => (await admin.checkQueue(`${queue}.dead-letter`)).messageCount === 1);
      expect((await admin.checkQueue(`${queue}.retry.20ms`)).messageCount).toBe(0);
    }));
});

describe.skipIf(!reachable)('txbarrier/amqp beside a quorum queue', () => {
  it('declares its retry and dead-letter queues as quorum queues, and refuses to start beside classic ones', () =>
    scratch(async ({ queue, connection, store }) => {
      const queueOptions = { durable: true, arguments: { 'x-queue-type': 'quorum' } };
      const options = { queue, queueOptions, store, consumer: 'ledger-service', retryDelay: 20, maxAttempts: 2, handle: () => undefined };
      await (await consumeAmqp({ ...options, channel: await connection.createConfirmChannel() })).stop();
      // Each is a quorum queue (the retry queue dead-letters at least once): declared so it is accepted, as a classic queue refused.
      const retryArguments = { 'x-message-ttl': 20, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue, 'x-queue-type': 'quorum', 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
      for (const [name, args] of [[`${queue}.retry.20ms`, retryArguments], [`${queue}.dead-letter`, { 'x-queue-type': 'quorum' }]] as const) {
        const probe = await connection.createChannel();
        probe.on('error', () => undefined);
        await probe.assertQueue(name, { durable: true, arguments: args });
        await expect(probe.assertQueue(name, { durable: true, arguments: { ...args, 'x-queue-type': 'classic' } })).rejects.toThrow(/inequivalent arg 'x-queue-type'/);
      }
      // A retry queue left classic by an earlier version: the consumer says which and why, and does not start.
      const admin = await connection.createChannel();
      await admin.deleteQueue(`${queue}.retry.20ms`);
      await admin.assertQueue(`${queue}.retry.20ms`, { durable: true, arguments: { 'x-message-ttl': 20, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue } });
      const channel = await connection.createConfirmChannel();
      await expect(consumeAmqp({ ...options, channel })).rejects.toMatchObject({ code: 'ERR_TXBARRIER_CONSUMER_CONFIG', message: expect.stringMatching(/retry\.20ms exists with other arguments/) });
      expect(await awaitWarnings(/TxbarrierConsumerWarning/, 2)).toEqual([
        expect.stringMatching(/channel error .*406 \(PRECONDITION-FAILED\)/),
        expect.stringMatching(/the channel of .* closed; consume again/),
      ]);
    }));
});

describe.skipIf(!reachable)('txbarrier/amqp with connect and urls', () => {
  it('skips a node that refuses, and connects again by itself after its connection dropped', () =>
    scratch(async ({ queue, connection, store }) => {
      const target = new URL(AMQP_URL);
      const proxy = await tcpProxy(Number(target.port || 5672), target.hostname);
      const proxied = new URL(AMQP_URL);
      proxied.port = String(proxy.port);
      const refused = `amqp://127.0.0.1:${await freePort()}`;
      const warnings: string[] = [];
      const applied: string[] = [];
      const tried: string[] = [];
      const consumer = await consumeAmqp({
        connect: (url) => (tried.push(url), amqp.connect(url)),
        urls: [proxied.href, refused],
        queue,
        store,
        consumer: 'ledger-service',
        retryDelay: 20,
        logger: { warn: (_fields, message) => void warnings.push(String(message)) },
        onSettled: (event) => event.settlement === 'applied' && applied.push(event.messageId!),
        handle: () => undefined,
      });
      const publisher = await connection.createConfirmChannel();
      const publish = async (count: number) => {
        for (let i = 0; i < count; i++) publisher.sendToQueue(queue, Buffer.from('{}'), { messageId: `message-${randomUUID()}` });
        await publisher.waitForConfirms();
      };
      try {
        await publish(3);
        await waitUntil('the first three applied', async () => applied.length === 3);
        proxy.drop();
        // The next node refuses; the one after it (the first again, through the proxy) takes the consumer back.
        await waitUntil('connecting again', async () => warnings.some((w) => /the connection of .* closed; connecting again/.test(w)));
        await publish(3);
        await waitUntil('the next three applied', async () => applied.length === 6, { timeoutMs: 15_000 });
        expect(tried).toEqual([proxied.href, refused, proxied.href]);
      } finally {
        await consumer.stop();
        await proxy.close();
      }
      expect(new Set(applied).size).toBe(6);
    }));

  it('refuses a channel and connect together, and urls that name no node, before touching the broker', async () => {
    const { db } = openTempDb();
    try {
      const base = { queue: 'never-declared', store: sqliteStore(db), consumer: 'ledger-service', handle: () => undefined };
      const connect = () => Promise.reject(new Error('must not be called'));
      await expect(consumeAmqp({ ...base, connect, channel: {} as never })).rejects.toMatchObject({ code: 'ERR_TXBARRIER_CONSUMER_CONFIG' });
      await expect(consumeAmqp({ ...base, connect, urls: [] })).rejects.toMatchObject({ code: 'ERR_TXBARRIER_OPTION' });
      await expect(consumeAmqp({ ...base, connect, urls: ['amqp://a', ''] })).rejects.toMatchObject({ code: 'ERR_TXBARRIER_OPTION' });
    } finally {
      db.close();
    }
  });
});

describe.skipIf(!reachable)('txbarrier/amqp visibility', () => {
  const spans = tracingFromHeaders();

  it('continues the trace of the message\'s traceparent header, and logs each settlement', () =>
    scratch(async ({ queue, connection, store }) => {
      const lines: [string, string][] = [];
      const log = (level: string) => (_: unknown, message?: string) => void lines.push([level, message ?? '']);
      const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
      const settled: SettledEvent<ConsumeMessage>[] = [];
      const consumer = await consumeAmqp({
        channel: await connection.createConfirmChannel(),
        queue,
        store,
        consumer: 'ledger-service',
        retryDelay: 20,
        logger,
        onSettled: (event) => {
          settled.push(event);
          throw new Error('a broken hook must not stop the consumer');
        },
        handle: () => undefined,
      });
      const traceId = randomUUID().replace(/-/g, '');
      const parentSpanId = traceId.slice(0, 16);
      const publisher = await connection.createConfirmChannel();
      const id = `message-${randomUUID()}`;
      for (let i = 0; i < 2; i++) {
        publisher.sendToQueue(queue, Buffer.from('{}'), { messageId: id, headers: { traceparent: `00-${traceId}-${parentSpanId}-01` } });
      }
      publisher.sendToQueue(queue, Buffer.from('{}'));
      await publisher.waitForConfirms();
      await waitUntil('all three settled', async () => settled.length === 3);
      await consumer.stop();

      expect(spans.of(traceId)).toEqual([
        ['txbarrier saga action', 'applied', parentSpanId],
        ['txbarrier saga action', 'duplicate', parentSpanId],
      ]);
      expect(lines.filter(([, message]) => message.startsWith('txbarrier consumer ')).sort()).toEqual([
        ['debug', 'txbarrier consumer applied'],
        ['error', 'txbarrier consumer dead-letter'],
        ['info', 'txbarrier consumer duplicate'],
      ]);
      // Each throw of the hook reached the logger instead of the consumer.
      expect(lines.filter(([level, message]) => level === 'warn' && message.includes('onSettled hook threw'))).toHaveLength(3);
    }));
});
