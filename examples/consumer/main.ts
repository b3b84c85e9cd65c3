/**
 * `npx tsx examples/consumer/main.ts [amqp-url]`: publishes ten payments (three of them twice, as a
 * publisher retrying after a lost confirm would), consumes them into a SQLite ledger with the
 * exactly-once consumer of `txbarrier/amqp`, and prints the ledger: ten rows whatever the broker
 * redelivered. The consumer declares the queue with a dead-letter exchange and its retry queues.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import Database from 'better-sqlite3';
import { consumeAmqp } from '../../adapters/brokers/amqp/consumer.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';

const url = process.argv[2] ?? 'amqp://guest:guest@127.0.0.1:5672';
const dir = mkdtempSync(join(tmpdir(), 'txbarrier-consumer-'));
const db = new Database(join(dir, 'ledger.db'));
db.exec('CREATE TABLE ledger (message_id TEXT NOT NULL, amount INTEGER NOT NULL)');
const store = sqliteStore(db);
await store.ensureSchema();

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
const queue = `payments-${randomUUID()}`;

const payments = Array.from({ length: 10 }, (_, i) => ({ id: `payment-${i + 1}`, amount: (i + 1) * 10 }));
let settled = 0;
let allSettled!: () => void;
const done = new Promise<void>((resolve) => (allSettled = resolve));
const consumer = await consumeAmqp({
  channel,
  queue,
  queueOptions: { durable: false },
  store,
  consumer: 'ledger',
  handle: (tx, message) => {
    const { amount } = JSON.parse(message.content.toString()) as { amount: number };
    tx.prepare('INSERT INTO ledger VALUES (?, ?)').run(message.properties.messageId, amount);
  },
  onSettled: ({ messageId, settlement, error }) => {
    console.log(`${messageId}: ${settlement}${error ? ` (${String(error)})` : ''}`);
    if (++settled === payments.length + 3) allSettled();
  },
});

const publisher = await connection.createConfirmChannel();
for (const { id, amount } of [...payments, ...payments.slice(0, 3)]) {
  publisher.sendToQueue(queue, Buffer.from(JSON.stringify({ amount })), { messageId: id });
}
await publisher.waitForConfirms();

await done;
await consumer.stop();
const { deadLetterExchange, deadLetterQueue, retryQueues } = consumer.topology;
for (const name of [queue, deadLetterQueue, ...retryQueues]) await publisher.deleteQueue(name);
await publisher.deleteExchange(deadLetterExchange);
await connection.close();

console.table(db.prepare('SELECT message_id, COUNT(*) AS times, SUM(amount) AS amount FROM ledger GROUP BY message_id ORDER BY rowid').all());
db.close();
rmSync(dir, { recursive: true, force: true });
