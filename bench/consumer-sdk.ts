/**
 * The SDK's exactly-once consumer of one broker (`consumeAmqp`, `consumeNats`, `bullmqConsumer`,
 * `consumeKafka`) on `postgresStore`, default options but `legacyKeyCheck` as the parent asks;
 * its handler inserts the ledger row. `onSettled` counts the acknowledged messages (BullMQ: the
 * worker's 'completed', as for the hand-written one).
 */
import amqp from 'amqplib';
import { type Job, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { connect, type JsMsg } from 'nats';
import { consumeAmqp } from '../adapters/brokers/amqp/consumer.js';
import { bullmqConsumer } from '../adapters/brokers/bullmq/consumer.js';
import { consumeKafka } from '../adapters/brokers/kafka/consumer.js';
import { consumeNats } from '../adapters/brokers/nats/consumer.js';
import type { SettledEvent } from '../src/messaging/consumer.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { amountOf, CONSUMER_NAME, consumerWorkerMain, ledgerInsert, type Running } from './consumer-worker.js';

await consumerWorkerMain(async (args, pool, settled): Promise<Running> => {
  const store = postgresStore(pool, { table: args.barrierTable });
  const business = ledgerInsert(args.ledger);
  // Only an acknowledged message counts, as for the hand-written consumer: a retry (a database error, such
  // as a server out of connections) comes back and is counted when it applies.
  const onSettled = ({ settlement }: SettledEvent<unknown>) => (settlement === 'applied' || settlement === 'duplicate') && settled();
  const common = { store, consumer: CONSUMER_NAME, legacyKeyCheck: args.legacyKeyCheck, onSettled };

  if (args.broker === 'amqp') {
    const connection = await amqp.connect(args.amqpUrl);
    const channel = await connection.createConfirmChannel();
    const consumer = await consumeAmqp({
      ...common,
      channel,
      queue: args.name,
      prefetch: args.clients,
      handle: (tx, m) => tx.query(business, [m.properties.messageId, amountOf(m.content)]),
    });
    return {
      stop: async () => {
        await consumer.stop();
        await connection.close();
      },
    };
  }

  if (args.broker === 'nats') {
    const nc = await connect({ servers: args.natsUrl });
    const consumer = await consumeNats({
      ...common,
      jetStreamConsumer: await nc.jetstream().consumers.get(args.name, CONSUMER_NAME),
      concurrency: args.clients,
      handle: (tx, m: JsMsg) => tx.query(business, [m.headers!.get('Nats-Msg-Id'), amountOf(m.data)]),
    });
    return {
      stop: async () => {
        await consumer.stop();
        await nc.close();
      },
    };
  }

  if (args.broker === 'kafka') {
    const kafka = new Kafka({ clientId: 'txbarrier-bench', brokers: args.kafkaBrokers!, logLevel: logLevel.NOTHING });
    const client = kafka.consumer({ groupId: args.name, maxWaitTimeInMs: 50 });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([client.connect(), producer.connect()]);
    await client.subscribe({ topic: args.name, fromBeginning: true });
    const consumer = await consumeKafka({
      ...common,
      kafkaConsumer: client,
      deadLetterProducer: producer,
      concurrency: args.clients,
      handle: (tx, { message }) => tx.query(business, [String(message.headers!['message-id']), amountOf(message.value!)]),
    });
    return {
      stop: async () => {
        await consumer.stop();
        await Promise.all([client.disconnect(), producer.disconnect()]);
      },
    };
  }

  // Counted on BullMQ's 'completed', as the hand-written worker counts: after the job is recorded done.
  const { onSettled: _counted, ...bullmqOptions } = common;
  const consumer = bullmqConsumer({ ...bullmqOptions, handle: (tx, job: Job<{ amount: number }>) => tx.query(business, [job.id, job.data.amount]) });
  // maxStalledCount covers the consumer's five attempts, as watch() requires.
  const worker = new Worker(args.name, consumer.processor, {
    connection: args.redis,
    prefix: `txb-bench:${args.name}`,
    concurrency: args.clients,
    maxStalledCount: 4,
  });
  consumer.watch(worker);
  worker.on('completed', settled);
  return { stop: () => consumer.stop(worker) };
});
