/**
 * A consumer's database for the consumer tests: a ledger table where each applied message adds one
 * row (a message applied twice shows as two), beside the barrier table, on SQLite, MariaDB or
 * PostgreSQL. Described by a plain spec so a child process can open the same one.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { type BarrierStore, mysqlDialect, postgresDialect, type StoreOptions } from '../../src/index.js';

export type LedgerEngine = 'sqlite' | 'mysql' | 'postgres';

export type LedgerSpec =
  | { engine: 'sqlite'; dir: string }
  | { engine: 'mysql' | 'postgres'; url: string; table: string; ledger: string };

export interface Ledger {
  store: BarrierStore<unknown>;
  credit(tx: unknown, messageId: string, amount: number): Promise<void>;
  /** Rows per message id. */
  rows(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** A new, empty ledger's spec; `create` it once, `open` it in each process, `destroy` it at the end. */
export function ledgerSpec(engine: LedgerEngine, urls: { mysql: string; postgres: string }): LedgerSpec {
  if (engine === 'sqlite') return { engine, dir: mkdtempSync(join(tmpdir(), 'txbarrier-consumer-')) };
  const suffix = randomUUID().slice(0, 8);
  return { engine, url: urls[engine], table: `consumer_barrier_${suffix}`, ledger: `consumer_ledger_${suffix}` };
}

export async function openLedger(spec: LedgerSpec, hooks: StoreOptions = {}): Promise<Ledger> {
  if (spec.engine === 'sqlite') {
    const db = new Database(join(spec.dir, 'ledger.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS ledger (message_id TEXT NOT NULL, amount INTEGER NOT NULL)');
    const store = sqliteStore(db, hooks);
    await store.ensureSchema();
    return {
      store: store as BarrierStore<unknown>,
      credit: async (tx, id, amount) => void (tx as typeof db).prepare('INSERT INTO ledger VALUES (?, ?)').run(id, amount),
      rows: async () => counted(db.prepare('SELECT message_id, COUNT(*) AS n FROM ledger GROUP BY message_id').all()),
      close: async () => void db.close(),
    };
  }
  if (spec.engine === 'mysql') {
    const pool = mysql.createPool({ uri: spec.url, connectionLimit: 8 });
    const ledger = mysqlDialect.quoteTable(spec.ledger);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${ledger} (message_id VARCHAR(128) NOT NULL, amount INT NOT NULL)`);
    const store = mysqlStore(pool, { ...hooks, table: spec.table });
    await store.ensureSchema();
    return {
      store: store as BarrierStore<unknown>,
      credit: async (tx, id, amount) => void (await (tx as mysql.PoolConnection).query(`INSERT INTO ${ledger} VALUES (?, ?)`, [id, amount])),
      rows: async () => counted((await pool.query(`SELECT message_id, COUNT(*) AS n FROM ${ledger} GROUP BY message_id`))[0] as unknown[]),
      close: () => pool.end(),
    };
  }
  const pool = new pg.Pool({ connectionString: spec.url, max: 8 });
  const ledger = postgresDialect.quoteTable(spec.ledger);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${ledger} (message_id TEXT NOT NULL, amount INTEGER NOT NULL)`);
  const store = postgresStore(pool, { ...hooks, table: spec.table });
  await store.ensureSchema();
  return {
    store: store as BarrierStore<unknown>,
    credit: async (tx, id, amount) => void (await (tx as pg.PoolClient).query(`INSERT INTO ${ledger} VALUES ($1, $2)`, [id, amount])),
    rows: async () => counted((await pool.query(`SELECT message_id, COUNT(*)::int AS n FROM ${ledger} GROUP BY message_id`)).rows),
    close: () => pool.end(),
  };
}

/** Drops what `ledgerSpec` and `openLedger` created. */
export async function destroyLedger(spec: LedgerSpec): Promise<void> {
  if (spec.engine === 'sqlite') return rmSync(spec.dir, { recursive: true, force: true });
  if (spec.engine === 'mysql') {
    const connection = await mysql.createConnection({ uri: spec.url });
    await connection.query(`DROP TABLE IF EXISTS ${mysqlDialect.quoteTable(spec.ledger)}, ${mysqlDialect.quoteTable(spec.table)}`);
    return connection.end();
  }
  const client = new pg.Client({ connectionString: spec.url });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${postgresDialect.quoteTable(spec.ledger)}, ${postgresDialect.quoteTable(spec.table)}`);
  await client.end();
}

function counted(rows: unknown[]): Map<string, number> {
  return new Map((rows as { message_id: string; n: number }[]).map((r) => [r.message_id, Number(r.n)]));
}
