/**
 * The hand-written exactly-once consumer: the broker's raw client and pg, never txbarrier. Each
 * message runs the statements the SDK's consumer sends for it with `legacyKeyCheck: false` (the
 * same BEGIN with its SET LOCALs, the same barrier-row insert with the same key, the ledger insert,
 * COMMIT with its ROLLBACK check), then the same settlement: `ack` on a confirm channel (RabbitMQ),
 * `ackAck` (JetStream), the processor resolving (BullMQ), `commitOffsets` (Kafka). A duplicate (the
 * row was there) commits and is acknowledged without the ledger insert.
 */
import amqp from 'amqplib';
import { type Job, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { connect } from 'nats';
import type pg from 'pg';
import { amountOf, CONSUMER_NAME, type ConsumerArgs, consumerWorkerMain, KAFKA_ID_HEADER, ledgerInsert, type Running } from './consumer-worker.js';

const BEGIN = 'BEGIN; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 11000; SET LOCAL statement_timeout = 11000';

/** The message's transaction; `source` as the SDK keys it (`[queue]`, `[stream, subject]`, `[topic]`). */
function transaction(pool: pg.Pool, args: ConsumerArgs): (id: string, source: string, amount: number) => Promise<void> {
  const claim =
    `INSERT INTO "${args.barrierTable}" (trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time) ` +
    'VALUES ($1, $2, $3, $4, $5, $6, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) ON CONFLICT (gid, branch_id, op, barrier_id) DO NOTHING';
  const business = ledgerInsert(args.ledger);
  return async (id, source, amount) => {
    const client = await pool.connect();
    try {
      await client.query(BEGIN);
      const { rowCount } = await client.query(claim, ['saga', id, `${CONSUMER_NAME}/${source}`, 'action', '01', 'action']);
      if (rowCount === 1) await client.query(business, [id, amount]);
      if ((await client.query('COMMIT')).command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw error;
    }
  };
}

/** `/` and `%` escaped, as the SDK joins the parts of a branch id. */
const part = (value: string) => value.replace(/%/g, '%25').replace(/\//g, '%2F');

await consumerWorkerMain(async (args, pool, settled): Promise<Running> => {
  const run = transaction(pool, args);
  const fail = (error: unknown) => process.stderr.write(`hand-written consumer: ${String(error)}\n`);

  if (args.broker === 'amqp') {
    const connection = await amqp.connect(args.amqpUrl);
    const channel = await connection.createConfirmChannel();
    await channel.prefetch(args.clients);
    const source = part(args.name);
    const { consumerTag } = await channel.consume(args.name, (m) => {
      if (!m) return;
      run(m.properties.messageId, source, amountOf(m.content)).then(
        () => (channel.ack(m), settled()),
        (error) => (fail(error), channel.nack(m, false, true)),
      );
    });
    return {
      stop: async () => {
        await channel.cancel(consumerTag);
        await connection.close();
      },
    };
  }

  if (args.broker === 'nats') {
    const nc = await connect({ servers: args.natsUrl });
    const source = await nc.jetstream().consumers.get(args.name, CONSUMER_NAME);
    const messages = await source.consume({ max_messages: args.clients });
    const running = new Set<Promise<void>>();
    const loop = (async () => {
      for await (const m of messages) {
        const one = run(m.headers!.get('Nats-Msg-Id'), `${part(m.info.stream)}/${part(m.subject)}`, amountOf(m.data)).then(
          async () => {
            if (!(await m.ackAck())) throw new Error('the server did not confirm the ack');
            settled();
          },
          (error) => (fail(error), m.nak()),
        );
        running.add(one);
        void one.finally(() => running.delete(one));
        while (running.size >= args.clients) await Promise.race(running);
      }
    })();
    return {
      stop: async () => {
        await messages.close();
        await loop;
        await nc.close();
      },
    };
  }

  if (args.broker === 'kafka') {
    const kafka = new Kafka({ clientId: 'txbarrier-bench', brokers: args.kafkaBrokers!, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: args.name, maxWaitTimeInMs: 50 });
    await consumer.connect();
    await consumer.subscribe({ topic: args.name, fromBeginning: true });
    const source = part(args.name);
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: args.clients,
      eachMessage: async ({ topic, partition, message }) => {
        await run(String(message.headers![KAFKA_ID_HEADER]), source, amountOf(message.value!));
        await consumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
        settled();
      },
    });
    return {
      stop: async () => {
        await consumer.stop();
        await consumer.disconnect();
      },
    };
  }

  const source = part(args.name);
  const worker = new Worker(args.name, (job: Job<{ amount: number }>) => run(job.id!, source, job.data.amount), {
    connection: args.redis,
    prefix: `txb-bench:${args.name}`,
    concurrency: args.clients,
    maxStalledCount: 4,
  });
  worker.on('completed', settled);
  return { stop: () => worker.close() };
});
