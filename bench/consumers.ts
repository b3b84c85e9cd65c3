/**
 * npx tsx bench/consumers.ts [--brokers amqp,nats,bullmq,kafka] [--messages 2000] [--rounds 3]
 *
 * Each exactly-once consumer against a hand-written consumer of the same broker running the same
 * transaction (one INSERT into a PostgreSQL ledger, then the ack) without the barrier. Every round
 * publishes `--messages` messages to a fresh queue, then one child process per variant consumes
 * them, the variants' order rotating from round to round; a child reports messages/s from the
 * start of its consumer to its last settlement. Prints a markdown table: median rates and the
 * median of the per-round ratios. Server URLs: TXBARRIER_POSTGRES_URL, TXBARRIER_AMQP_URL,
 * TXBARRIER_NATS_URL, TXBARRIER_REDIS_URL; Kafka (asked for by name) at TXBARRIER_KAFKA_BROKERS, else
 * the test broker of servers/kafka.ts, started for the run. A Kafka topic has CONCURRENCY partitions,
 * one message in flight on each.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import amqp from 'amqplib';
import { type Job as BullJob, Queue, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { AckPolicy, connect, type JsMsg, nanos } from 'nats';
import pg from 'pg';
import { consumeAmqp } from '../adapters/brokers/amqp/consumer.js';
import { bullmqConsumer } from '../adapters/brokers/bullmq/consumer.js';
import { consumeKafka } from '../adapters/brokers/kafka/consumer.js';
import { consumeNats } from '../adapters/brokers/nats/consumer.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { AMQP_URL, NATS_URL, POSTGRES_URL, REDIS_URL } from '../servers/index.js';
import { startKafkaBroker } from '../servers/kafka.js';

const REDIS = new URL(REDIS_URL);
const REDIS_CONNECTION = { host: REDIS.hostname, port: Number(REDIS.port || 6379) };
/** Messages in flight per consumer, the same for every variant. */
const CONCURRENCY = 16;
const CONSUMER = 'bench-ledger';

type Broker = 'amqp' | 'nats' | 'bullmq' | 'kafka';
type Variant = 'barrier' | 'hand-written';
/** The default brokers; Kafka needs its test broker built, so it runs when asked for. */
const BROKERS: Broker[] = ['amqp', 'nats', 'bullmq'];
const kafka = () => new Kafka({ clientId: 'txbarrier-bench', brokers: process.env.TXBARRIER_KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
const VARIANTS: Variant[] = ['barrier', 'hand-written'];

/** What a child needs: where the messages wait and where the ledger is. */
interface Job {
  broker: Broker;
  variant: Variant;
  /** Queue, stream or BullMQ queue name. */
  name: string;
  messages: number;
  ledger: string;
  barrierTable: string;
}

// ---- the child: one variant consuming one round's messages ----

async function consume(job: Job): Promise<number> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: CONCURRENCY });
  const insert = `INSERT INTO ${job.ledger} (message_id, amount) VALUES ($1, $2)`;
  const store = postgresStore(pool, { table: job.barrierTable });
  // The hand-written transaction: what the barrier's store does, minus the barrier row.
  const bare = async (id: string, amount: number) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(insert, [id, amount]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
  let settled = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const count = () => ++settled === job.messages && finish();
  const amountOf = (bytes: Uint8Array) => (JSON.parse(Buffer.from(bytes).toString()) as { amount: number }).amount;
  const started = performance.now();

  if (job.broker === 'amqp') {
    const connection = await amqp.connect(AMQP_URL);
    const channel = await connection.createConfirmChannel();
    if (job.variant === 'barrier') {
      await consumeAmqp({
        channel,
        queue: job.name,
        store,
        consumer: CONSUMER,
        prefetch: CONCURRENCY,
        onSettled: count,
        handle: (tx, m) => tx.query(insert, [m.properties.messageId, amountOf(m.content)]),
      });
    } else {
      await channel.prefetch(CONCURRENCY);
      await channel.consume(job.name, (m) => {
        if (!m) return;
        bare(m.properties.messageId, amountOf(m.content)).then(
          () => (channel.ack(m), count()),
          () => channel.nack(m, false, true),
        );
      });
    }
    await done;
    const rate = job.messages / ((performance.now() - started) / 1000);
    await connection.close();
    await pool.end();
    return rate;
  }

  if (job.broker === 'nats') {
    const nc = await connect({ servers: NATS_URL });
    const source = await nc.jetstream().consumers.get(job.name, CONSUMER);
    if (job.variant === 'barrier') {
      const consumer = await consumeNats({
        jetStreamConsumer: source,
        store,
        consumer: CONSUMER,
        concurrency: CONCURRENCY,
        onSettled: count,
        handle: (tx, m: JsMsg) => tx.query(insert, [m.headers!.get('Nats-Msg-Id'), amountOf(m.data)]),
      });
      await done;
      await consumer.stop();
    } else {
      const messages = await source.consume({ max_messages: CONCURRENCY });
      const running = new Set<Promise<void>>();
      void (async () => {
        for await (const m of messages) {
          const one = bare(m.headers!.get('Nats-Msg-Id'), amountOf(m.data)).then(
            async () => void ((await m.ackAck()) && count()),
            () => m.nak(),
          );
          running.add(one);
          void one.finally(() => running.delete(one));
          while (running.size >= CONCURRENCY) await Promise.race(running);
        }
      })();
      await done;
      await messages.close();
    }
    const rate = job.messages / ((performance.now() - started) / 1000);
    await nc.close();
    await pool.end();
    return rate;
  }

  if (job.broker === 'kafka') {
    const client = kafka();
    const consumer = client.consumer({ groupId: job.name, maxWaitTimeInMs: 50 });
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([consumer.connect(), producer.connect()]);
    await consumer.subscribe({ topic: job.name, fromBeginning: true });
    const id = (headers: Record<string, unknown> | undefined) => String(headers!['message-id']);
    if (job.variant === 'barrier') {
      const running = await consumeKafka({
        kafkaConsumer: consumer,
        deadLetterProducer: producer,
        store,
        consumer: CONSUMER,
        concurrency: CONCURRENCY,
        onSettled: count,
        handle: (tx, { message }) => tx.query(insert, [id(message.headers), amountOf(message.value!)]),
      });
      await done;
      await running.stop();
    } else {
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: CONCURRENCY,
        eachMessage: async ({ topic, partition, message }) => {
          await bare(id(message.headers), amountOf(message.value!));
          await consumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
          count();
        },
      });
      await done;
      await consumer.stop();
    }
    const rate = job.messages / ((performance.now() - started) / 1000);
    await Promise.all([consumer.disconnect(), producer.disconnect()]);
    await pool.end();
    return rate;
  }

  const prefix = `txb-bench:${job.name}`;
  const consumer =
    job.variant === 'barrier'
      ? bullmqConsumer({ store, consumer: CONSUMER, handle: (tx, j: BullJob<{ amount: number }>) => tx.query(insert, [j.id, j.data.amount]) })
      : undefined;
  const processor: (j: BullJob<{ amount: number }>, token?: string) => Promise<unknown> = consumer?.processor ?? ((j) => bare(j.id!, j.data.amount));
  // maxStalledCount covers the consumer's five attempts, as watch() requires.
  const worker = new Worker(job.name, processor, { connection: REDIS_CONNECTION, prefix, concurrency: CONCURRENCY, autorun: false, maxStalledCount: 4 });
  consumer?.watch(worker);
  void worker.run();
  worker.on('completed', count);
  await done;
  const rate = job.messages / ((performance.now() - started) / 1000);
  await worker.close();
  await pool.end();
  return rate;
}

// ---- the parent: fresh queues, interleaved child processes, the table ----

/** Publishes one round's messages where `broker` keeps them; resolves to a function removing them. */
async function publish(broker: Broker, name: string, count: number): Promise<() => Promise<void>> {
  const body = (i: number) => Buffer.from(JSON.stringify({ amount: i + 1 }));
  const id = (i: number) => `${name}-${i}`;
  if (broker === 'amqp') {
    const connection = await amqp.connect(AMQP_URL);
    const channel = await connection.createConfirmChannel();
    // The barrier consumer's declaration, so both variants consume the same kind of queue.
    await channel.assertQueue(name, { durable: true, deadLetterExchange: `${name}.dead-letter` });
    for (let i = 0; i < count; i++) channel.sendToQueue(name, body(i), { messageId: id(i), persistent: true });
    await channel.waitForConfirms();
    return async () => {
      for (const queue of [name, `${name}.dead-letter`]) await channel.deleteQueue(queue);
      for (let ms = 1000; ms <= 8000; ms *= 2) await channel.deleteQueue(`${name}.retry.${ms}ms`);
      await channel.deleteExchange(`${name}.dead-letter`);
      await connection.close();
    };
  }
  if (broker === 'nats') {
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name, subjects: [`${name}.>`] });
    await jsm.consumers.add(name, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: nanos(30_000) });
    const js = nc.jetstream();
    await Promise.all(Array.from({ length: count }, (_, i) => js.publish(`${name}.payments`, body(i), { msgID: id(i) })));
    return async () => {
      await jsm.streams.delete(name);
      await nc.close();
    };
  }
  if (broker === 'kafka') {
    const client = kafka();
    const admin = client.admin();
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([admin.connect(), producer.connect()]);
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: name, numPartitions: CONCURRENCY }] });
    // Keyed by id, so the messages spread over the partitions.
    await producer.send({ topic: name, acks: -1, messages: Array.from({ length: count }, (_, i) => ({ key: id(i), value: body(i), headers: { 'message-id': id(i) } })) });
    await producer.disconnect();
    return async () => {
      await admin.deleteTopics({ topics: [name] });
      await admin.disconnect();
    };
  }
  const queue = new Queue(name, { connection: REDIS_CONNECTION, prefix: `txb-bench:${name}` });
  await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'payment', data: { amount: i + 1 }, opts: { jobId: id(i), removeOnComplete: true } })));
  return async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  };
}

const run = promisify(execFile);
const self = fileURLToPath(import.meta.url);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      brokers: { type: 'string', default: BROKERS.join(',') },
      messages: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  if (values.child) {
    const rate = await consume(JSON.parse(values.child) as Job);
    process.stdout.write(JSON.stringify({ rate }));
    return;
  }
  const brokers = values.brokers.split(',') as Broker[];
  const messages = Number(values.messages);
  const rounds = Number(values.rounds);
  const broker = brokers.includes('kafka') ? await startKafkaBroker() : undefined;
  // The children inherit it.
  if (broker) process.env.TXBARRIER_KAFKA_BROKERS = broker.brokers.join(',');
  const pool = new pg.Pool({ connectionString: POSTGRES_URL });
  const loadBefore = loadavg()[0]!;
  const rates: Record<string, number[]> = {};
  const ratios: Record<string, number[]> = {};
  try {
    for (let round = 0; round < rounds; round++) {
      for (const broker of brokers) {
        const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
        const byVariant: Partial<Record<Variant, number>> = {};
        for (const variant of order) {
          const suffix = randomBytes(4).toString('hex');
          const job: Job = { broker, variant, name: `txb_bench_${suffix}`, messages, ledger: `bench_ledger_${suffix}`, barrierTable: `bench_barrier_${suffix}` };
          await pool.query(`CREATE TABLE ${job.ledger} (message_id TEXT NOT NULL, amount INTEGER NOT NULL)`);
          await postgresStore(pool, { table: job.barrierTable }).ensureSchema();
          const remove = await publish(broker, job.name, messages);
          try {
            const { stdout } = await run(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(job)], { timeout: 300_000 });
            const { rate } = JSON.parse(stdout) as { rate: number };
            const { rows } = await pool.query(`SELECT COUNT(*)::int AS n, COUNT(DISTINCT message_id)::int AS d FROM ${job.ledger}`);
            if (rows[0].n !== messages || rows[0].d !== messages) throw new Error(`${broker}/${variant}: ${rows[0].n} rows for ${messages} messages`);
            byVariant[variant] = rate;
            (rates[`${broker} ${variant}`] ??= []).push(rate);
            process.stderr.write(`round ${round + 1} ${broker} ${variant}: ${rate.toFixed(0)} messages/s\n`);
          } finally {
            await remove();
            await pool.query(`DROP TABLE IF EXISTS ${job.ledger}, ${job.barrierTable}`);
          }
        }
        (ratios[broker] ??= []).push(byVariant.barrier! / byVariant['hand-written']!);
      }
    }
  } finally {
    await pool.end();
    await broker?.stop();
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  // The figures mean little on a loaded machine: say how loaded it was.
  console.log(`${messages} messages per run, ${rounds} rounds, ${CONCURRENCY} in flight; 1-minute load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after.\n`);
  console.log(`| broker | barrier consumer (messages/s) | hand-written, no barrier (messages/s) | ratio (median of ${rounds} rounds) |`);
  console.log('|---|---|---|---|');
  for (const broker of brokers) {
    console.log(`| ${broker} | ${median(rates[`${broker} barrier`]!).toFixed(0)} | ${median(rates[`${broker} hand-written`]!).toFixed(0)} | ${median(ratios[broker]!).toFixed(2)} |`);
  }
}

await main();
