/**
 * `txbarrier/amqp` against the real RabbitMQ. Skipped with a message when no broker answers;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { consumeAmqp } from '../adapters/amqp.js';
import { AMQP_URL, amqpHarness, probeAmqp } from './consumer-amqp-harness.js';
import { probeBroker } from './consumer-harness.js';
import { describeConsumerSuite } from './consumer-suite.js';
import { openTempDb } from './sqlite-harness.js';
import { sqliteStore } from '../adapters/sqlite.js';

const reachable = await probeBroker(`RabbitMQ at ${AMQP_URL}`, 'TXBARRIER_AMQP_URL', probeAmqp);

describeConsumerSuite(amqpHarness, reachable, { reconnects: false, keepsDeadLetters: true });

describe.skipIf(!reachable)('txbarrier/amqp set-up', () => {
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
      await admin.deleteQueue(queue);
      await admin.deleteQueue(`${queue}.dead-letter`);
      await admin.deleteExchange(`${queue}.dead-letter`);
    } finally {
      db.close();
      await connection.close();
    }
  });
});
