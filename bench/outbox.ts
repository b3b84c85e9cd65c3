/**
 * `npx tsx bench/outbox.ts [--engines sqlite,postgres,mysql] [--brokers amqp,nats] [--messages N] [--rounds R]`:
 * the outbox's two figures, printed as markdown.
 *
 * - Enqueue's cost: the business transaction (one UPDATE of a random account) alone and with one
 *   `enqueue`, interleaved round by round on one store (16 clients; SQLite: its one connection),
 *   median of per-round ratios.
 * - End to end: N messages enqueued by 16 clients while one relay publishes them and one consumer
 *   applies each with the barrier in its own transaction; messages per second from the first enqueue
 *   to the last commit of the consumer.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { AckPolicy, connect as natsConnect } from 'nats';
import pg from 'pg';
import { mysqlStore } from '../adapters/stores/mysql.js';
import { amqpPublisher } from '../adapters/brokers/amqp/publisher.js';
import { natsPublisher } from '../adapters/brokers/nats/publisher.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import { Barrier, type BarrierStore } from '../src/index.js';
import { createOutbox, createRelay, type OutboxPublisher } from '../src/messaging/outbox/index.js';
import { AMQP_URL, MYSQL_URL, NATS_URL, POSTGRES_URL } from '../servers/index.js';

type Engine = 'sqlite' | 'postgres' | 'mysql';
type Broker = 'amqp' | 'nats';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'sqlite,postgres,mysql' },
    brokers: { type: 'string', default: 'amqp,nats' },
    messages: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '10' },
  },
});
const ACCOUNTS = 1000;
const CLIENTS = 16;
const tag = randomUUID().slice(0, 8);

interface Db {
  store: BarrierStore<unknown>;
  /** Runs `sql` (`?` placeholders) on the tx. */
  run(tx: unknown, sql: string, params: unknown[]): Promise<void>;
  exec(sql: string): Promise<void>;
  clients: number;
  close(): Promise<void>;
}

function openDb(engine: Engine, options: { readCommitted?: boolean } = {}): Db {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'txbarrier-outbox-bench-'));
    const db = new Database(join(dir, 'bench.db'), { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    return {
      store: sqliteStore(db) as BarrierStore<unknown>,
      run: async (tx, sql, params) => void (tx as typeof db).prepare(sql).run(...params),
      exec: async (sql) => void db.exec(sql),
      clients: 1,
      close: async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (engine === 'postgres') {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: CLIENTS });
    const dollars = (sql: string) => {
      let n = 0;
      return sql.replace(/\?/g, () => `$${++n}`);
    };
    return {
      store: postgresStore(pool, { table: `bench_outbox_${tag}_barrier` }) as BarrierStore<unknown>,
      run: async (tx, sql, params) => void (await (tx as pg.PoolClient).query(dollars(sql), params)),
      exec: async (sql) => void (await pool.query(sql)),
      clients: CLIENTS,
      close: () => pool.end(),
    };
  }
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: CLIENTS });
  return {
    store: mysqlStore(pool, {
      table: `bench_outbox_${tag}_barrier`,
      ...(options.readCommitted ? { isolationLevel: 'read committed' as const } : {}),
    }) as BarrierStore<unknown>,
    run: async (tx, sql, params) => void (await (tx as mysql.PoolConnection).query(sql, params)),
    exec: async (sql) => void (await pool.query(sql)),
    clients: CLIENTS,
    close: () => pool.end(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs `op` `count` times over `clients` concurrent loops; resolves to ops per second. */
async function rate(count: number, clients: number, op: () => Promise<unknown>): Promise<number> {
  let left = count;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left-- > 0) await op();
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function enqueueCost(engine: Engine, notify?: boolean): Promise<string> {
  const db = openDb(engine);
  const accounts = `bench_outbox_${tag}_accounts`;
  const outbox = createOutbox(db.store, { table: `bench_outbox_${tag}_outbox`, ...(notify === undefined ? {} : { notify }) });
  try {
    await outbox.ensureSchema();
    await db.exec(`CREATE TABLE ${accounts} (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)`);
    await db.exec(`INSERT INTO ${accounts} (id, balance) VALUES ${Array.from({ length: ACCOUNTS }, (_, i) => `(${i}, 0)`).join(', ')}`);
    const update = (tx: unknown) => db.run(tx, `UPDATE ${accounts} SET balance = balance + 1 WHERE id = ?`, [Math.floor(Math.random() * ACCOUNTS)]);
    const bare = () => outbox.store.transaction(({ tx }) => update(tx));
    const withEnqueue = () =>
      outbox.store.transaction(async ({ tx }) => {
        await update(tx);
        await outbox.enqueue(tx, { topic: 'bench', payload: { amount: 1 } });
      });
    const perRound = engine === 'sqlite' ? 300 : 600;
    await rate(100, db.clients, withEnqueue); // warm-up
    const ratios: number[] = [];
    const bareRates: number[] = [];
    const enqueueRates: number[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      const order = round % 2 === 0 ? [bare, withEnqueue] : [withEnqueue, bare];
      const [first, second] = [await rate(perRound, db.clients, order[0]!), await rate(perRound, db.clients, order[1]!)];
      const [b, e] = round % 2 === 0 ? [first, second] : [second, first];
      bareRates.push(b);
      enqueueRates.push(e);
      ratios.push(e / b);
    }
    return `| ${engine}${notify === false ? ' (notify: false)' : ''} | ${median(bareRates).toFixed(0)} | ${median(enqueueRates).toFixed(0)} | ${median(ratios).toFixed(2)} |`;
  } finally {
    await db.exec(`DROP TABLE IF EXISTS ${accounts}`).catch(() => undefined);
    await db.exec(`DROP TABLE IF EXISTS bench_outbox_${tag}_outbox`).catch(() => undefined);
    await db.close();
  }
}

async function endToEnd(engine: Engine, broker: Broker): Promise<string> {
  const count = Number(values.messages);
  const db = openDb(engine);
  const relayDb = engine === 'mysql' ? openDb(engine, { readCommitted: true }) : db;
  const effects = `bench_outbox_${tag}_effects`;
  const outbox = createOutbox(db.store, { table: `bench_outbox_${tag}_e2e` });
  const topic = broker === 'amqp' ? `txb-outbox-bench-${tag}` : `txb_outbox_bench_${tag}.orders`;
  const cleanups: (() => Promise<unknown>)[] = [];
  let applied = 0;
  let done!: () => void;
  const allApplied = new Promise<void>((resolve) => (done = resolve));
  const apply = async (id: string) => {
    const result = await Barrier.from({ transType: 'saga', gid: id, branchId: 'bench', op: 'action' }).call(db.store, (tx) =>
      db.run(tx, `INSERT INTO ${effects} (message_id) VALUES (?)`, [id]),
    );
    if (result.outcome === 'applied' && ++applied === count) done();
  };
  try {
    await outbox.ensureSchema();
    await db.store.ensureSchema();
    await db.exec(`CREATE TABLE ${effects} (message_id VARCHAR(64) NOT NULL)`);
    let publisher: OutboxPublisher;
    if (broker === 'amqp') {
      const url = AMQP_URL;
      const connection = await amqp.connect(url);
      const channel = await connection.createChannel();
      await channel.assertQueue(topic, { durable: true });
      await channel.prefetch(CLIENTS);
      await channel.consume(topic, (message) => {
        if (message) void apply(String(message.properties.messageId)).then(() => channel.ack(message));
      });
      cleanups.push(async () => {
        await channel.deleteQueue(topic);
        await connection.close();
      });
      publisher = amqpPublisher({ connect: () => amqp.connect(url) });
    } else {
      const nc = await natsConnect({ servers: NATS_URL });
      const jsm = await nc.jetstreamManager();
      const stream = `TXB_OUTBOX_BENCH_${tag.toUpperCase()}`;
      await jsm.streams.add({ name: stream, subjects: [topic] });
      await jsm.consumers.add(stream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit });
      const messages = await (await nc.jetstream().consumers.get(stream, 'bench')).consume({ max_messages: CLIENTS * 4 });
      void (async () => {
        for await (const message of messages) void apply(message.headers!.get('Nats-Msg-Id')).then(() => message.ack());
      })();
      cleanups.push(async () => {
        await messages.close();
        await jsm.streams.delete(stream);
        await nc.close();
      });
      publisher = natsPublisher({ jetstream: nc.jetstream() });
    }
    const relay = createRelay(outbox, { publisher, store: relayDb.store, pollInterval: 20, batchSize: 100 });
    const started = performance.now();
    relay.start();
    const enqueued = rate(count, db.clients, () => outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic, payload: { amount: 1 } })));
    const enqueueRate = await enqueued;
    await allApplied;
    const seconds = (performance.now() - started) / 1000;
    await relay.stop();
    return `| ${broker} | ${engine} | ${count} | ${enqueueRate.toFixed(0)} | ${(count / seconds).toFixed(0)} |`;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    for (const table of [effects, outbox.table, db.store.table]) await db.exec(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    if (relayDb !== db) await relayDb.close();
    await db.close();
  }
}

const engines = values.engines.split(',') as Engine[];
const brokers = values.brokers.split(',') as Broker[];
const lines = [
  `Load average at start: ${loadavg().map((l) => l.toFixed(2)).join(', ')}; Node ${process.version}.`,
  '',
  '| engine | business tx/s | with enqueue tx/s | ratio (median of rounds) |',
  '|---|---|---|---|',
];
for (const engine of engines) {
  lines.push(await enqueueCost(engine));
  // PostgreSQL serialises the commits of transactions that NOTIFY: the same without it.
  if (engine === 'postgres') lines.push(await enqueueCost(engine, false));
}
lines.push('', '| broker | engine | messages | enqueued/s | end to end msg/s |', '|---|---|---|---|---|');
for (const broker of brokers) for (const engine of engines) lines.push(await endToEnd(engine, broker));
console.log(lines.join('\n'));
process.exit(0);
