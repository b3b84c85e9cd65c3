/**
 * What the consumer benchmark's workers share, and none of it txbarrier: the broker clients, the
 * ledger insert (the business work), the round protocol and the per-thread CPU reading.
 * `consumer-hand.ts` and `consumer-sdk.ts` each start one consumer of one broker, for the life of
 * the process.
 *
 *   node consumer-<hand|sdk>.mjs '<ConsumerArgs as JSON>'   (with an IPC channel)
 *
 * A round: the parent sends `arm` with the round's message count (the worker takes a CPU reading and
 * answers), publishes that many messages to the worker's own queue, then sends `collect`: the worker
 * answers once it has settled them all, with the time from `arm` and its CPU per thread.
 */
import pg from 'pg';
import { join } from 'node:path';
import { profiled, threadCpuSince, threadTimes } from './worker-common.js';

export type Broker = 'amqp' | 'nats' | 'bullmq' | 'kafka';

export interface ConsumerArgs {
  broker: Broker;
  /** This worker's own queue, stream (its durable consumer is `CONSUMER_NAME`), BullMQ queue or Kafka topic. */
  name: string;
  /** Its own barrier table and ledger, created by the parent. */
  barrierTable: string;
  ledger: string;
  /** The SDK's `legacyKeyCheck` (one more barrier insert per message); the hand-written consumer ignores it. */
  legacyKeyCheck: boolean;
  /** As the cost workers name them: the engine of the barrier table, and the messages in flight. */
  engine: 'postgres';
  clients: number;
  postgresUrl: string;
  amqpUrl: string;
  natsUrl: string;
  redis: { host: string; port: number };
  /** Kafka's brokers, when the broker is Kafka. */
  kafkaBrokers?: string[];
}

export type ConsumerCommand = { type: 'arm'; messages: number } | { type: 'collect' } | { type: 'exit' };

export interface ConsumerRound {
  messages: number;
  seconds: number;
  mainMicros: number;
  backgroundMicros: number;
}

/** The consumer name in every barrier row, and the JetStream durable consumer's. */
export const CONSUMER_NAME = 'bench-ledger';
/** The Kafka message header carrying the id, as `consumeKafka` reads it. */
export const KAFKA_ID_HEADER = 'message-id';

/** A worker's consumer, running until the parent says `exit`. */
export interface Running {
  stop(): Promise<void>;
}

/** The business work of one message, inside its transaction: one ledger row. */
export const ledgerInsert = (ledger: string) => `INSERT INTO ${ledger} (message_id, amount) VALUES ($1, $2)`;
export const amountOf = (bytes: Uint8Array) => (JSON.parse(Buffer.from(bytes).toString()) as { amount: number }).amount;

/**
 * Starts the worker: `start` makes the consumer (once), then rounds are answered until `exit`.
 * `settled` must be called by the consumer once per message it acknowledged.
 */
export async function consumerWorkerMain(start: (args: ConsumerArgs, pool: pg.Pool, settled: () => void) => Promise<Running>): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as ConsumerArgs;
  // Idle connections close after 1 s: while the other processes take their turns, this one holds none
  // (four pools of 16 would hold most of a default server's 100 connections). Each round opens its
  // connections again, the same for every variant.
  const pool = new pg.Pool({ connectionString: args.postgresUrl, max: args.clients, idleTimeoutMillis: 1000 });
  let count = 0;
  let wanted = Infinity;
  let done: () => void = () => {};
  const settled = () => {
    if (++count === wanted) done();
  };
  const running = await start(args, pool, settled);
  let armed: { before: Map<string, number>; start: number; all: Promise<void> } | undefined;
  process.on('message', async (command: ConsumerCommand) => {
    try {
      if (command.type === 'exit') {
        await running.stop();
        await pool.end();
        process.disconnect();
        return;
      }
      if (command.type === 'arm') {
        count = 0;
        wanted = command.messages;
        const all = new Promise<void>((resolve) => (done = resolve));
        armed = { before: threadTimes(), start: performance.now(), all };
        process.send!('armed');
        return;
      }
      const { before, start: began, all } = armed!;
      // TXBARRIER_CONSUMER_PROFILE=<dir>: a CPU profile of each round from its publish to its end (the last round's is kept).
      const dir = process.env.TXBARRIER_CONSUMER_PROFILE;
      await (dir ? profiled(join(dir, `${args.broker}-${process.argv[1]!.includes('hand') ? 'hand' : 'sdk'}-${process.pid}.cpuprofile`), () => all) : all);
      const seconds = (performance.now() - began) / 1000;
      const cpu = threadCpuSince(before);
      process.send!({ messages: wanted, seconds, mainMicros: cpu.main, backgroundMicros: cpu.background } satisfies ConsumerRound);
    } catch (error) {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    }
  });
  process.send!('ready');
}
