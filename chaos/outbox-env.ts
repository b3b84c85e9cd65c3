/**
 * What every process of the outbox chaos run shares: the settings passed down in the environment,
 * and opening a store and a broker connection from them.
 */
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlStore } from '../adapters/stores/mysql.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import type { BarrierStore } from '../src/index.js';

export type ChaosEngine = 'sqlite' | 'postgres' | 'mysql';
export type ChaosBroker = 'amqp' | 'nats' | 'kafka';

/** Everything a child process needs; passed as one JSON environment variable. */
export interface ChaosSettings {
  engine: ChaosEngine;
  broker: ChaosBroker;
  /** A database URL, or a SQLite file for the producer's database. */
  database: string;
  /** SQLite: the consumer's own file (a service of its own); the servers share the database. */
  consumerDatabase: string;
  /** Each relay's database URL, by relay index (nodes of a multi-primary cluster); `database` when absent. */
  relayDatabases?: string[];
  outboxTable: string;
  barrierTable: string;
  ordersTable: string;
  effectsTable: string;
  deadTable: string;
  /** The broker, through the run's proxy (which drops connections). */
  brokerUrl: string;
  /** AMQP queue, NATS subject or Kafka topic the orders go to. */
  topic: string;
  /** NATS: the stream and durable consumer (Kafka: the consumer group). */
  stream: string;
  durable: string;
}

export const SETTINGS_VARIABLE = 'TXBARRIER_OUTBOX_CHAOS';

export function settingsFromEnv(): ChaosSettings {
  const text = process.env[SETTINGS_VARIABLE];
  if (!text) throw new Error(`${SETTINGS_VARIABLE} is not set: this file is started by chaos/outbox-run.ts`);
  return JSON.parse(text) as ChaosSettings;
}

/** A SQL statement with `?` placeholders, in the engine's own style. */
export function placeholders(engine: ChaosEngine, sql: string): string {
  if (engine !== 'postgres') return sql;
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export interface OpenedStore {
  store: BarrierStore<unknown>;
  /** Runs a statement on the tx the store handed out. */
  run(tx: unknown, sql: string, params: unknown[]): Promise<void>;
  /** Runs a query outside any transaction. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/**
 * A store on the producer's database, or (`consumer`) the consumer's. `readCommitted` on MySQL is
 * what a relay should run at (see RelayOptions.store).
 */
export function openStore(settings: ChaosSettings, options: { consumer?: boolean; table?: string; readCommitted?: boolean; database?: string } = {}): OpenedStore {
  const { engine } = settings;
  const table = options.table;
  if (engine === 'sqlite') {
    const db = new Database(options.consumer ? settings.consumerDatabase : settings.database, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    return {
      store: sqliteStore(db, table ? { table } : {}) as BarrierStore<unknown>,
      run: async (tx, sql, params) => void (tx as typeof db).prepare(sql).run(...params),
      query: async (sql, params = []) => {
        const statement = db.prepare(sql);
        return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
      },
      close: async () => void db.close(),
    };
  }
  if (engine === 'postgres') {
    const pool = new pg.Pool({ connectionString: settings.database, max: 6 });
    // A killed peer or a dropped server connection must not crash this process.
    pool.on('error', () => undefined);
    return {
      store: postgresStore(pool, table ? { table } : {}) as BarrierStore<unknown>,
      run: async (tx, sql, params) => void (await (tx as pg.PoolClient).query(placeholders(engine, sql), params)),
      query: async (sql, params = []) => (await pool.query(placeholders(engine, sql), params)).rows,
      close: () => pool.end(),
    };
  }
  const pool = mysql.createPool({ uri: options.database ?? settings.database, connectionLimit: 6 });
  return {
    store: mysqlStore(pool, { ...(table ? { table } : {}), ...(options.readCommitted ? { isolationLevel: 'read committed' as const } : {}) }) as BarrierStore<unknown>,
    run: async (tx, sql, params) => void (await (tx as mysql.PoolConnection).query(sql, params)),
    query: async (sql, params = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[],
    close: () => pool.end(),
  };
}

/** One line on stdout the run reads: how a child tells what happened to it. */
export function tell(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/**
 * A kafkajs client whose every connection goes to `address` (the run's proxy): a Kafka client
 * connects to the address the broker advertises, which would bypass the proxy. Quiet, and quick to
 * give up a request, so the run's faults show as failed publishes rather than long stalls.
 */
export async function kafkaThroughProxy(address: string) {
  const { Kafka, logLevel } = await import('kafkajs');
  const { connect } = await import('node:net');
  const [host, port] = address.split(':') as [string, string];
  return new Kafka({
    clientId: 'txbarrier-outbox-chaos',
    brokers: [address],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 50, retries: 3 },
    socketFactory: ({ onConnect }) => connect({ host, port: Number(port) }, onConnect),
  });
}

// What the broker clients throw when the run's proxy cuts or refuses their connection (amqplib's
// handshake error has no code).
const CONNECTION_LOST = new Set(['TIMEOUT', 'CONNECTION_REFUSED', 'DISCONNECT', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE']);
const CONNECTION_LOST_MESSAGE = /^Socket closed abruptly during opening handshake$/;

/**
 * A child whose broker connection the run cut while it was connecting dies of the client's error
 * (as a service would, to be restarted by its supervisor). It says so on stdout and exits with 3
 * instead of printing a crash; any other uncaught error still crashes it loudly (the run reports
 * what a child printed as a violation).
 */
export function exitOnConnectionLoss(): void {
  const lost = (error: unknown) => {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    const known = typeof code === 'string' ? CONNECTION_LOST.has(code) : typeof message === 'string' && CONNECTION_LOST_MESSAGE.test(message);
    if (!known) throw error;
    tell({ event: 'connection-lost', reason: String(code ?? message) });
    process.exit(3);
  };
  process.on('uncaughtException', lost);
  process.on('unhandledRejection', lost);
}
