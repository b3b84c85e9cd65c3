/**
 * The engine suites' database (Temporal, Restate): accounts with balances and a ledger where every
 * applied step adds one row (a step applied twice shows as two), beside a barrier table, on
 * PostgreSQL or MariaDB. Described by a plain spec, so a worker in a child process opens the same one.
 */
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';
import { type Barrier, type BarrierStore, mysqlDialect, type Outcome, postgresDialect, type StoreOptions } from '../../src/index.js';

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
  /** The business transaction the step belongs to: a Temporal workflow id, a Restate invocation id. */
  gid: string;
  step: string;
  op: string;
  account: string;
  delta: number;
}

/** Ledger rows per (gid, step): how many times each step applied. */
export function applications(entries: Entry[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of entries) counts.set(`${e.gid}/${e.step}`, (counts.get(`${e.gid}/${e.step}`) ?? 0) + 1);
  return counts;
}

export interface Bank {
  /**
   * Applies `entry` (balance and ledger row) in one transaction, guarded by `barrier` when given;
   * `hold` runs inside the transaction after the business work, before the commit.
   */
  apply(barrier: Barrier | undefined, entry: Entry, hold?: () => Promise<void>): Promise<Outcome>;
  balances(): Promise<Record<string, number>>;
  entries(): Promise<Entry[]>;
  /** How many statements on the barrier table wait for a lock now (one waits while another transaction holds its key). */
  lockWaits(): Promise<number>;
  close(): Promise<void>;
}

/** A new bank's spec: tables of its own (`<suite>_barrier_<random>`, …) on the engine's test database (servers/index.ts). */
export function bankSpec(engine: BankEngine, suite: string): BankSpec {
  const url = engine === 'mysql' ? MYSQL_URL : POSTGRES_URL;
  const suffix = randomUUID().slice(0, 8);
  return { engine, url, barrier: `${suite}_barrier_${suffix}`, accounts: `${suite}_accounts_${suffix}`, ledger: `${suite}_ledger_${suffix}` };
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
    `CREATE TABLE IF NOT EXISTS ${ledger} (seq BIGSERIAL PRIMARY KEY, gid TEXT NOT NULL, step TEXT NOT NULL, op TEXT NOT NULL, account TEXT NOT NULL, delta BIGINT NOT NULL)`,
  );
  const store = postgresStore(pool, { ...hooks, table: spec.barrier });
  await store.ensureSchema();
  const move = async (tx: pg.PoolClient, e: Entry) => {
    await tx.query(`UPDATE ${accounts} SET balance = balance + $1 WHERE id = $2`, [e.delta, e.account]);
    await tx.query(`INSERT INTO ${ledger} (gid, step, op, account, delta) VALUES ($1, $2, $3, $4, $5)`, [e.gid, e.step, e.op, e.account, e.delta]);
  };
  return bankOver(store, move, {
    balances: async () => (await pool.query<{ id: string; balance: string }>(`SELECT id, balance FROM ${accounts}`)).rows,
    entries: async () => (await pool.query<LedgerRow>(`SELECT gid, step, op, account, delta FROM ${ledger} ORDER BY seq`)).rows,
    lockWaits: async () =>
      (await pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${spec.barrier}%`])).rows[0]!.n,
    close: () => pool.end(),
  });
}

async function openMysqlBank(spec: BankSpec, hooks: StoreOptions): Promise<Bank> {
  const pool = mysql.createPool({ uri: spec.url, connectionLimit: 8 });
  const [accounts, ledger] = [mysqlDialect.quoteTable(spec.accounts), mysqlDialect.quoteTable(spec.ledger)];
  await pool.query(`CREATE TABLE IF NOT EXISTS ${accounts} (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL)`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${ledger} (seq BIGINT AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(255) NOT NULL, step VARCHAR(64) NOT NULL, op VARCHAR(16) NOT NULL, account VARCHAR(64) NOT NULL, delta BIGINT NOT NULL)`,
  );
  const store = mysqlStore(pool, { ...hooks, table: spec.barrier });
  await store.ensureSchema();
  const move = async (tx: mysql.PoolConnection, e: Entry) => {
    await tx.query(`UPDATE ${accounts} SET balance = balance + ? WHERE id = ?`, [e.delta, e.account]);
    await tx.query(`INSERT INTO ${ledger} (gid, step, op, account, delta) VALUES (?, ?, ?, ?, ?)`, [e.gid, e.step, e.op, e.account, e.delta]);
  };
  const select = async <R>(sql: string) => (await pool.query<(R & mysql.RowDataPacket)[]>(sql))[0];
  return bankOver(store, move, {
    balances: () => select<{ id: string; balance: string }>(`SELECT id, balance FROM ${accounts}`),
    entries: () => select<LedgerRow>(`SELECT gid, step, op, account, delta FROM ${ledger} ORDER BY seq`),
    // InnoDB refreshes this view at most every 100 ms: poll it no faster.
    lockWaits: async () =>
      Number((await pool.query<({ n: number } & mysql.RowDataPacket)[]>(`SELECT COUNT(*) AS n FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE ?`, [`%${spec.barrier}%`]))[0][0]!.n),
    close: () => pool.end(),
  });
}

interface LedgerRow {
  gid: string;
  step: string;
  op: string;
  account: string;
  delta: string | number;
}

function bankOver<Tx>(
  store: BarrierStore<Tx>,
  move: (tx: Tx, entry: Entry) => Promise<void>,
  read: { balances(): Promise<{ id: string; balance: string }[]>; entries(): Promise<LedgerRow[]>; lockWaits(): Promise<number>; close(): Promise<void> },
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
      (await read.entries()).map((r) => ({ gid: r.gid, step: r.step, op: r.op, account: r.account, delta: Number(r.delta) })),
    lockWaits: read.lockWaits,
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
