/**
 * txbarrier's relay in a process of its own, on the same raw driver and broker client as the
 * hand-written drainer: `createRelay` with `amqpPublisher` / `natsPublisher` and the store of the
 * engine's adapter, default options but `batchSize`. A drain is `runOnce()` back to back until a
 * round claims nothing, which is what the relay's own loop does while it finds work.
 *
 *   node drain-relay.mjs '<DrainArgs as JSON>'   (with an IPC channel: `drain` commands in, one DrainResult each out)
 */
import { amqpPublisher } from '../adapters/brokers/amqp/publisher.js';
import { natsPublisher } from '../adapters/brokers/nats/publisher.js';
import { mysqlStore } from '../adapters/stores/mysql.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import type { BarrierStore } from '../src/index.js';
import { createOutbox, createRelay, type OutboxPublisher, type RelayEvent } from '../src/messaging/outbox/index.js';
import { type DrainArgs, type Drainer, drainWorkerMain } from './drain-common.js';

async function openStore(args: DrainArgs): Promise<{ store: BarrierStore<unknown>; close(): Promise<void> }> {
  switch (args.engine) {
    case 'postgres': {
      const { default: pg } = await import('pg');
      // One connection, closed when idle: the server is shared, and only the variant draining needs one.
      const pool = new pg.Pool({ connectionString: args.target, max: 1, idleTimeoutMillis: 1000 });
      return { store: postgresStore(pool) as BarrierStore<unknown>, close: () => pool.end() };
    }
    case 'mysql': {
      const { default: mysql } = await import('mysql2/promise');
      const pool = mysql.createPool({ uri: args.target, connectionLimit: 1, idleTimeout: 3_600_000 });
      // As the relay's documentation asks on MySQL/MariaDB.
      return { store: mysqlStore(pool, { isolationLevel: 'read committed' }) as BarrierStore<unknown>, close: () => pool.end() };
    }
    case 'sqlite': {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(args.target, { timeout: 10_000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      return { store: sqliteStore(db) as BarrierStore<unknown>, close: async () => void db.close() };
    }
  }
}

async function openPublisher(args: DrainArgs): Promise<{ publisher: OutboxPublisher; close(): Promise<void> }> {
  if (args.broker === 'amqp') {
    const { default: amqp } = await import('amqplib');
    return { publisher: amqpPublisher({ connect: () => amqp.connect(args.brokerUrl) }), close: async () => {} };
  }
  const { connect } = await import('nats');
  const connection = await connect({ servers: args.brokerUrl });
  return { publisher: natsPublisher({ jetstream: connection.jetstream() }), close: () => connection.close() };
}

async function relayDrainer(args: DrainArgs): Promise<{ drain: Drainer; close(): Promise<void> }> {
  const db = await openStore(args);
  const broker = await openPublisher(args);
  let failures = 0;
  let firstFailure: unknown;
  const failed = (event: RelayEvent) => {
    failures++;
    firstFailure ??= event.error;
  };
  const relay = createRelay(createOutbox(db.store, { table: args.table }), { publisher: broker.publisher, batchSize: args.batchSize, onRetry: failed, onParked: failed });
  return {
    drain: async () => {
      failures = 0;
      let messages = 0;
      let claims = 0;
      for (let claimed = await relay.runOnce(); claimed > 0; claimed = await relay.runOnce()) {
        messages += claimed;
        claims++;
      }
      // The benchmark's broker accepts everything: a failure is the benchmark's to fix, as for the hand-written drainer.
      if (failures > 0) throw new Error(`${failures} publishes failed`, { cause: firstFailure });
      return { messages, claims, failures };
    },
    close: async () => {
      await relay.stop();
      await broker.close();
      await db.close();
    },
  };
}

await drainWorkerMain(relayDrainer);
