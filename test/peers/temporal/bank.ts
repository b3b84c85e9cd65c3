/**
 * The Temporal suite's database: accounts with balances and a ledger where every applied step adds
 * one row (a step applied twice shows as two), beside a barrier table, on PostgreSQL or MariaDB.
 * Described by a plain spec, so a worker in a child process opens the same one.
 */
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlStore } from '../../../adapters/stores/mysql.js';
import { postgresStore } from '../../../adapters/stores/postgres.js';
import { MYSQL_URL, POSTGRES_URL } from '../../../servers/index.js';
import { type Barrier, type BarrierStore, mysqlDialect, type Outcome, postgresDialect, type StoreOptions } from '../../../src/index.js';

export type BankEngine = 'postgres' | 'mysql';

export interface BankSpec {
  engine: BankEngine;
  url: string;
  barrier: string;
  accounts: string;
  ledger: string;
}

/** One ledger row: what one applied step did. */
export interface Entry {
  workflowId: string;
  step: string;
  op: string;
  account: string;
  delta: number;
}

export interface Bank {
  /**
   * Applies `entry` (balance and ledger row) in one transaction, guarded by `barrier` when given;
   * `hold` runs inside the transaction after the business work, before the commit.
   */
  apply(barrier: Barrier | undefined, entry: Entry, hold?: () => Promise<void>): Promise<Outcome>;
  balances(): Promise<Record<string, number>>;
  entries(): Promise<Entry[]>;
  close(): Promise<void>;
}

/** A new bank's spec: tables of its own on the engine's test database (servers/index.ts). */
export function bankSpec(engine: BankEngine): BankSpec {
  const url = engine === 'mysql' ? MYSQL_URL : POSTGRES_URL;
  const suffix = randomUUID().slice(0, 8);
  return { engine, url, barrier: `temporal_barrier_${suffix}`, accounts: `temporal_accounts_${suffix}`, ledger: `temporal_ledger_${suffix}` };
}

/** Creates the tables and the accounts with their opening balances. */
export async function createBank(spec: BankSpec, balances: Record<string, number>): Promise<void> {
  const bank = await openBank(spec);
  await bank.close();
  const rows = Object.entries(balances);
  if (spec.engine === 'mysql') {
    const connection = await mysql.createConnection({ uri: spec.url });
    await connection.query(`INSERT INTO ${mysqlDialect.quoteTable(spec.accounts)} (id, balance) VALUES ?`, [rows]);
    return connection.end();
  }
  const client = new pg.Client({ connectionString: spec.url });
  await client.connect();
  const values = rows.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
  await client.query(`INSERT INTO ${postgresDialect.quoteTable(spec.accounts)} (id, balance) VALUES ${values}`, rows.flat());
  await client.end();
}

export async function openBank(spec: BankSpec, hooks: StoreOptions = {}): Promise<Bank> {
  return spec.engine === 'mysql' ? openMysqlBank(spec, hooks) : openPostgresBank(spec, hooks);
}

async function openPostgresBank(spec: BankSpec, hooks: StoreOptions): Promise<Bank> {
  const pool = new pg.Pool({ connectionString: spec.url, max: 8 });
  const [accounts, ledger] = [postgresDialect.quoteTable(spec.accounts), postgresDialect.quoteTable(spec.ledger)];
  await pool.query(`CREATE TABLE IF NOT EXISTS ${accounts} (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${ledger} (seq BIGSERIAL PRIMARY KEY, workflow_id TEXT NOT NULL, step TEXT NOT NULL, op TEXT NOT NULL, account TEXT NOT NULL, delta BIGINT NOT NULL)`,
  );
  const store = postgresStore(pool, { ...hooks, table: spec.barrier });
  await store.ensureSchema();
  const move = async (tx: pg.PoolClient, e: Entry) => {
    await tx.query(`UPDATE ${accounts} SET balance = balance + $1 WHERE id = $2`, [e.delta, e.account]);
    await tx.query(`INSERT INTO ${ledger} (workflow_id, step, op, account, delta) VALUES ($1, $2, $3, $4, $5)`, [e.workflowId, e.step, e.op, e.account, e.delta]);
  };
  return bankOver(store, move, {
    balances: async () => (await pool.query<{ id: string; balance: string }>(`SELECT id, balance FROM ${accounts}`)).rows,
    entries: async () => (await pool.query<LedgerRow>(`SELECT workflow_id, step, op, account, delta FROM ${ledger} ORDER BY seq`)).rows,
    close: () => pool.end(),
  });
}

async function openMysqlBank(spec: BankSpec, hooks: StoreOptions): Promise<Bank> {
  const pool = mysql.createPool({ uri: spec.url, connectionLimit: 8 });
  const [accounts, ledger] = [mysqlDialect.quoteTable(spec.accounts), mysqlDialect.quoteTable(spec.ledger)];
  await pool.query(`CREATE TABLE IF NOT EXISTS ${accounts} (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL)`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${ledger} (seq BIGINT AUTO_INCREMENT PRIMARY KEY, workflow_id VARCHAR(255) NOT NULL, step VARCHAR(64) NOT NULL, op VARCHAR(16) NOT NULL, account VARCHAR(64) NOT NULL, delta BIGINT NOT NULL)`,
  );
  const store = mysqlStore(pool, { ...hooks, table: spec.barrier });
  await store.ensureSchema();
  const move = async (tx: mysql.PoolConnection, e: Entry) => {
    await tx.query(`UPDATE ${accounts} SET balance = balance + ? WHERE id = ?`, [e.delta, e.account]);
    await tx.query(`INSERT INTO ${ledger} (workflow_id, step, op, account, delta) VALUES (?, ?, ?, ?, ?)`, [e.workflowId, e.step, e.op, e.account, e.delta]);
  };
  const select = async <R>(sql: string) => (await pool.query<(R & mysql.RowDataPacket)[]>(sql))[0];
  return bankOver(store, move, {
    balances: () => select<{ id: string; balance: string }>(`SELECT id, balance FROM ${accounts}`),
    entries: () => select<LedgerRow>(`SELECT workflow_id, step, op, account, delta FROM ${ledger} ORDER BY seq`),
    close: () => pool.end(),
  });
}

interface LedgerRow {
  workflow_id: string;
  step: string;
  op: string;
  account: string;
  delta: string | number;
}

function bankOver<Tx>(
  store: BarrierStore<Tx>,
  move: (tx: Tx, entry: Entry) => Promise<void>,
  read: { balances(): Promise<{ id: string; balance: string }[]>; entries(): Promise<LedgerRow[]>; close(): Promise<void> },
): Bank {
  const work = (entry: Entry, hold?: () => Promise<void>) => async (tx: Tx) => {
    await move(tx, entry);
    await hold?.();
  };
  return {
    async apply(barrier, entry, hold) {
      if (barrier) return (await barrier.call(store, work(entry, hold))).outcome;
      // The control: the same work without the barrier.
      await store.transaction((connection) => work(entry, hold)(connection.tx));
      return 'applied';
    },
    balances: async () => Object.fromEntries((await read.balances()).map((r) => [r.id, Number(r.balance)])),
    entries: async () =>
      (await read.entries()).map((r) => ({ workflowId: r.workflow_id, step: r.step, op: r.op, account: r.account, delta: Number(r.delta) })),
    close: read.close,
  };
}

/** Drops the spec's tables. */
export async function destroyBank(spec: BankSpec): Promise<void> {
  if (spec.engine === 'mysql') {
    const connection = await mysql.createConnection({ uri: spec.url });
    const tables = [spec.accounts, spec.ledger, spec.barrier].map((t) => mysqlDialect.quoteTable(t)).join(', ');
    await connection.query(`DROP TABLE IF EXISTS ${tables}`);
    return connection.end();
  }
  const client = new pg.Client({ connectionString: spec.url });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${[spec.accounts, spec.ledger, spec.barrier].map((t) => postgresDialect.quoteTable(t)).join(', ')}`);
  await client.end();
}
