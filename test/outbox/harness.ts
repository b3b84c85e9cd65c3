/**
 * Engines and brokers for the outbox tests: each engine an outbox on a table of its own, each broker
 * a publisher plus a way to read back what reached it. Names carry a random prefix, so parallel
 * runs never share a table, queue or stream; `close()` removes them.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import amqp from 'amqplib';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { amqpPublisher } from '../../adapters/brokers/amqp/publisher.js';
import { natsPublisher } from '../../adapters/brokers/nats/publisher.js';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import type { BarrierStore } from '../../src/index.js';
import { createOutbox, type Outbox, type OutboxOptions, type OutboxPublisher } from '../../src/messaging/outbox/index.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer, testsEngine } from '../support/servers.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { AMQP_URL, NATS_URL } from '../../servers/index.js';


export type EngineName = 'sqlite' | 'postgres' | 'mysql';

export interface EngineHarness {
  name: EngineName;
  outbox: Outbox<unknown>;
  store: BarrierStore<unknown>;
  /** Runs one statement outside any outbox transaction, for checks and setup. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Writes one business row on `tx` (a table `business(id)`), to prove enqueue shares its transaction. */
  writeBusiness(tx: unknown, id: string): Promise<void>;
  /** The server's pool (pg or mysql2), for tests that need a store or connection of their own. */
  pool?: unknown;
  close(): Promise<void>;
}

const suffix = () => randomUUID().replaceAll('-', '').slice(0, 10);

export async function openEngine(name: EngineName, options: OutboxOptions = {}): Promise<EngineHarness> {
  const table = `outbox_${suffix()}`;
  const business = `business_${suffix()}`;
  if (name === 'sqlite') {
    const { db, dir } = openTempDb();
    db.exec(`CREATE TABLE ${business} (id TEXT PRIMARY KEY)`);
    const store = sqliteStore(db) as BarrierStore<unknown>;
    const outbox = createOutbox(store, { table, ...options });
    await outbox.ensureSchema();
    await outbox.store.ensureSchema();
    return {
      name,
      outbox,
      store,
      query: async (sql, params = []) => {
        const statement = db.prepare(sql);
        return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
      },
      writeBusiness: async (tx, id) => void (tx as typeof db).prepare(`INSERT INTO ${business} VALUES (?)`).run(id),
      close: async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (name === 'postgres') {
    const pool = postgresPool();
    const query = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as Record<string, unknown>[];
    const harness = await serverEngine(name, table, business, query, () => pool.end(), (options) => postgresStore(pool, options), options);
    return { ...harness, pool, writeBusiness: async (tx, id) => void (await (tx as Queryable).query(`INSERT INTO ${business} VALUES ($1)`, [id])) };
  }
  const pool = mysqlPool();
  const query = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[];
  const harness = await serverEngine(name, table, business, query, () => pool.end(), (options) => mysqlStore(pool, options), options);
  return { ...harness, pool, writeBusiness: async (tx, id) => void (await (tx as Queryable).query(`INSERT INTO ${business} VALUES (?)`, [id])) };
}

/** The part both servers share: a business table, a barrier table and an outbox of the run's own, dropped by `close`. */
async function serverEngine(
  name: EngineName,
  table: string,
  business: string,
  query: EngineHarness['query'],
  end: () => Promise<void>,
  makeStore: (options: { table: string }) => BarrierStore<any>,
  options: OutboxOptions,
): Promise<Omit<EngineHarness, 'writeBusiness'>> {
  await query(`CREATE TABLE ${business} (id VARCHAR(64) PRIMARY KEY)`);
  const store = makeStore({ table: `barrier_${suffix()}` }) as BarrierStore<unknown>;
  const outbox = createOutbox(store, { table, ...options });
  await outbox.ensureSchema();
  await store.ensureSchema();
  return {
    name,
    outbox,
    store,
    query,
    close: async () => {
      await query(`DROP TABLE IF EXISTS ${business}, ${table}, ${store.table}`);
      await end();
    },
  };
}

type Queryable = { query(sql: string, params: unknown[]): Promise<unknown> };
/** The engines this run tests (`testsEngine`), each skipped when its server is missing; SQLite always runs. */
export const ENGINES: { name: EngineName; skip: boolean }[] = (
  [
    { name: 'sqlite', skip: false },
    { name: 'postgres', skip: !hasServer('postgres') },
    { name: 'mysql', skip: !hasServer('mysql') },
  ] as const
).filter((engine) => testsEngine(engine.name));

/** What reached the broker: one entry per delivery, duplicates included. */
export interface Received {
  id: string;
  topic: string;
  payload: string;
  headers: Record<string, string>;
}

export interface BrokerHarness {
  name: 'amqp' | 'nats' | 'kafka';
  /** A topic the broker accepts (a queue, or a subject the stream captures). */
  topic(name?: string): string;
  /** A topic nothing receives: the broker refuses it. */
  deadTopic(): string;
  /** Makes `topic` accepted from now on (AMQP: declares its queue); NATS topics are always accepted. */
  accept(topic: string): Promise<void>;
  publisher(): OutboxPublisher;
  /** Everything received so far on the harness's topics, in arrival order per topic. */
  received(): Promise<Received[]>;
  close(): Promise<void>;
}

export async function openAmqp(): Promise<BrokerHarness> {
  const prefix = `txb-outbox-${suffix()}`;
  const connection = await amqp.connect(AMQP_URL);
  const channel = await connection.createChannel();
  const queues = new Set<string>();
  const received: Received[] = [];
  const accept = async (queue: string) => {
    if (queues.has(queue)) return;
    queues.add(queue);
    await channel.assertQueue(queue, { durable: false });
    await channel.consume(queue, (message) => {
      if (!message) return;
      received.push({
        id: String(message.properties.messageId),
        topic: queue,
        payload: message.content.toString(),
        headers: {
          ...Object.fromEntries(Object.entries(message.properties.headers ?? {}).map(([k, v]) => [k, String(v)])),
          ...(message.properties.contentType ? { 'content-type': String(message.properties.contentType) } : {}),
        },
      });
      channel.ack(message);
    });
  };
  const publishers: OutboxPublisher[] = [];
  return {
    name: 'amqp',
    topic: (name = 'main') => `${prefix}-${name}`,
    deadTopic: () => `${prefix}-nobody-${suffix()}`,
    async accept(topic) {
      await accept(topic);
    },
    publisher() {
      const publisher = amqpPublisher({ connect: () => amqp.connect(AMQP_URL) });
      publishers.push(publisher);
      return publisher;
    },
    async received() {
      return [...received];
    },
    async close() {
      for (const publisher of publishers) await publisher.close?.();
      for (const queue of queues) await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close();
    },
  };
}

export async function openNats(): Promise<BrokerHarness> {
  const prefix = `txb_outbox_${suffix()}`;
  const nc: NatsConnection = await natsConnect({ servers: NATS_URL });
  const jsm = await nc.jetstreamManager();
  const stream = prefix.toUpperCase();
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.live.>`], duplicate_window: 60_000_000_000 });
  return {
    name: 'nats',
    topic: (name = 'main') => `${prefix}.live.${name}`,
    deadTopic: () => `${prefix}.nobody.${suffix()}`,
    accept: async () => undefined,
    publisher: () => natsPublisher({ jetstream: nc.jetstream(), timeout: 2000 }),
    async received() {
      const { state } = await jsm.streams.info(stream);
      const out: Received[] = [];
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
        const message = await jsm.streams.getMessage(stream, { seq });
        const headers: Record<string, string> = {};
        for (const [name, values] of message.header ?? []) headers[name.toLowerCase()] = values[0]!;
        out.push({ id: headers['nats-msg-id'] ?? '', topic: message.subject, payload: new TextDecoder().decode(message.data), headers });
      }
      return out;
    },
    async close() {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    },
  };
}

async function probe(name: string, open: () => Promise<{ close(): Promise<void> }>): Promise<boolean> {
  try {
    await (await open()).close();
    return true;
  } catch (error) {
    const problem = `${name} (${error instanceof Error ? error.message : String(error)})`;
    if (process.env.TXBARRIER_REQUIRE_BROKER === '1') throw new Error(`TXBARRIER_REQUIRE_BROKER=1 but the broker is unreachable: ${problem}`);
    console.warn(`\ntxbarrier: SKIPPING the outbox tests on ${problem}\n`);
    return false;
  }
}

export interface OutboxBroker {
  name: BrokerHarness['name'];
  open: () => Promise<BrokerHarness>;
  skip: boolean;
  /**
   * A topic refused now can be accepted later, and one reader sees every topic's messages in the
   * order they arrived (AMQP: one consumer of several queues), so the suite can check that a
   * requeued message goes out ahead of the rest of its key. Kafka orders a partition, not a set of
   * topics; JetStream keeps refusing a subject no stream captures.
   */
  requeueInOrder: boolean;
}

export const BROKERS: OutboxBroker[] = [
  { name: 'amqp', open: openAmqp, skip: !(await probe(`RabbitMQ at ${AMQP_URL}`, () => amqp.connect(AMQP_URL, { timeout: 3000 }))), requeueInOrder: true },
  { name: 'nats', open: openNats, skip: !(await probe(`NATS at ${NATS_URL}`, () => natsConnect({ servers: NATS_URL, timeout: 3000 }))), requeueInOrder: false },
];
