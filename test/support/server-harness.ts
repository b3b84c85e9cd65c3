/**
 * Pools, conformance harnesses and race helpers for the MySQL/MariaDB and PostgreSQL servers.
 * Tables are named by the caller: tests running at the same time must not share them.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { type BarrierStore, mysqlDialect, postgresDialect } from '../../src/index.js';
import type { BarrierRowRead, Harness } from '../barrier/conformance.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

export type MysqlPool = mysql.Pool;
export type MysqlConnection = mysql.PoolConnection;
export type PostgresPool = pg.Pool;
export type PostgresClient = pg.PoolClient;

export function mysqlPool(options: mysql.PoolOptions = {}): MysqlPool {
  return mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8, ...options });
}

export function postgresPool(options: pg.PoolConfig = {}): PostgresPool {
  return new pg.Pool({ connectionString: POSTGRES_URL, max: 8, ...options });
}

/** A business table `notes(seq, gid, note)` the harness and race tests write inside barrier transactions. */
export async function createMysqlNotes(pool: MysqlPool, notes: string): Promise<void> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${mysqlDialect.quoteTable(notes)} ` +
      '(seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(200) NOT NULL, note VARCHAR(64) NOT NULL, KEY (gid))',
  );
}

export async function createPostgresNotes(pool: PostgresPool, notes: string): Promise<void> {
  const quoted = postgresDialect.quoteTable(notes);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${quoted} (seq BIGSERIAL PRIMARY KEY, gid TEXT NOT NULL, note TEXT NOT NULL)`);
}

export async function mysqlNotes(pool: MysqlPool, notes: string, gid: string): Promise<string[]> {
  const [rows] = await pool.query(`SELECT note FROM ${mysqlDialect.quoteTable(notes)} WHERE gid = ? ORDER BY seq`, [gid]);
  return (rows as { note: string }[]).map((r) => r.note);
}

export async function postgresNotes(pool: PostgresPool, notes: string, gid: string): Promise<string[]> {
  const { rows } = await pool.query(`SELECT note FROM ${postgresDialect.quoteTable(notes)} WHERE gid = $1 ORDER BY seq`, [gid]);
  return rows.map((r: { note: string }) => r.note);
}

export interface ServerTables {
  /** The barrier table (`table` or `schema.table`); `ensureSchema` creates it unless it exists. */
  table: string;
  /** The business table. */
  notes: string;
}

/** The conformance harness for `mysqlStore` on a pool of its own. */
export async function mysqlHarness({ table, notes, returning }: ServerTables & { returning?: boolean }): Promise<Harness<MysqlConnection>> {
  const pool = mysqlPool();
  const store = mysqlStore(pool, { table, ...(returning === undefined ? {} : { returning }) });
  await store.ensureSchema();
  await createMysqlNotes(pool, notes);
  return {
    store,
    makeStore: (options) => mysqlStore(pool, options),
    record: async (tx, gid, note) => {
      await tx.query(`INSERT INTO ${mysqlDialect.quoteTable(notes)} (gid, note) VALUES (?, ?)`, [gid, note]);
    },
    notes: (gid) => mysqlNotes(pool, notes, gid),
    barrierRows: async (gid) => {
      const [rows] = await pool.query(`SELECT * FROM ${mysqlDialect.quoteTable(table)} WHERE gid = ?`, [gid]);
      return rows as BarrierRowRead[];
    },
    close: () => pool.end(),
  };
}

/** The conformance harness for `postgresStore` on a pool of its own. */
export async function postgresHarness({ table, notes }: ServerTables): Promise<Harness<PostgresClient>> {
  const pool = postgresPool();
  const store = postgresStore(pool, { table });
  await store.ensureSchema();
  await createPostgresNotes(pool, notes);
  return {
    store,
    makeStore: (options) => postgresStore(pool, options),
    record: async (tx, gid, note) => {
      await tx.query(`INSERT INTO ${postgresDialect.quoteTable(notes)} (gid, note) VALUES ($1, $2)`, [gid, note]);
    },
    notes: (gid) => postgresNotes(pool, notes, gid),
    barrierRows: async (gid) => {
      const { rows } = await pool.query(`SELECT * FROM ${postgresDialect.quoteTable(table)} WHERE gid = $1`, [gid]);
      return rows as BarrierRowRead[];
    },
    close: () => pool.end(),
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A promise settled from outside: business code awaits one to hold its transaction open. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Polls `condition` every `intervalMs` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => Promise<boolean>, { timeoutMs = 10_000, intervalMs = 10 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Resolves once `count` InnoDB transactions wait for a lock in a statement containing `text`
 * (the request's gid: unique, so a match is this test's statement). InnoDB refreshes this view
 * only when nobody read it for 100 ms, so faster polling would read a frozen snapshot forever.
 */
/** The thread id of a MySQL pool's next connection, and whether that connection is inside a transaction. */
export async function mysqlNextConnection(pool: MysqlPool): Promise<{ threadId: number; inTransaction: number }> {
  const connection = await pool.getConnection();
  try {
    const [rows] = await connection.query('SELECT CONNECTION_ID() AS id, @@in_transaction AS open');
    const [row] = rows as { id: number; open: number }[];
    return { threadId: Number(row!.id), inTransaction: Number(row!.open) };
  } finally {
    connection.release();
  }
}

export function mysqlLockWaits(pool: MysqlPool, text: string, count: number): Promise<void> {
  const waits = async () => {
    const [rows] = await pool.query(
      "SELECT COUNT(*) AS n FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE ?",
      [`%${text}%`],
    );
    return Number((rows as { n: number }[])[0]!.n) >= count;
  };
  return waitUntil(`${count} statement(s) with ${text} wait for a lock`, waits, { intervalMs: 150 });
}

/** Resolves once `count` PostgreSQL sessions wait for a lock held by the session `holderPid`. */
export function postgresLockWaits(pool: PostgresPool, holderPid: number, count: number): Promise<void> {
  return waitUntil(`${count} session(s) wait for backend ${holderPid}`, async () => {
    const { rows } = await pool.query('SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holderPid]);
    return rows[0].n >= count;
  });
}

/** What a held transaction throws to roll back when told to. */
export class HeldRollback extends Error {}

export interface Held<Tx> {
  /** The store whose next transaction is held. */
  store: BarrierStore<Tx>;
  /** Resolves with the connection once the barrier's statements (and `fn`, if it ran) are done, before COMMIT. */
  entered: Promise<Tx>;
  commit(): void;
  /** Ends the held transaction by throwing `HeldRollback` from it. */
  rollback(): void;
}

/**
 * `store`, with each transaction held open after its work, locks and all, until `commit()` or
 * `rollback()`. Holding the store rather than `fn` also holds outcomes where `fn` never runs.
 */
export function holdOpen<Tx>(store: BarrierStore<Tx>): Held<Tx> {
  const entered = deferred<Tx>();
  entered.promise.catch(() => undefined);
  const end = deferred<'commit' | 'rollback'>();
  return {
    store: {
      ...store,
      transaction: (work) =>
        store.transaction(async (connection) => {
          let result;
          try {
            result = await work(connection);
          } catch (error) {
            entered.reject(error);
            throw error;
          }
          entered.resolve(connection.tx);
          if ((await end.promise) === 'rollback') throw new HeldRollback('held transaction rolled back');
          return result;
        }),
    },
    entered: entered.promise,
    commit: () => end.resolve('commit'),
    rollback: () => end.resolve('rollback'),
  };
}
