/**
 * One service's own database for the examples: SQLite (a file per service) by default, or its own
 * MySQL database / PostgreSQL schema on the server named by TXBARRIER_MYSQL_URL or
 * TXBARRIER_POSTGRES_URL. Business SQL is written once with `?` placeholders.
 */
import { join } from 'node:path';
import type { PoolConnection } from 'mysql2/promise';
import type { PoolClient } from 'pg';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import type { BarrierHooks, BarrierStore } from '../../src/index.js';

export type Engine = 'sqlite' | 'mysql' | 'postgres';

export interface DatabaseConfig {
  engine: Engine;
  /** Server URL (mysql, postgres). */
  url?: string;
  /** Directory of the database files (sqlite). */
  dir?: string;
}

export interface ServiceDatabase {
  readonly engine: Engine;
  readonly store: BarrierStore<unknown>;
  /** A table of this service: schema-qualified on a server, plain in the service's own SQLite file. */
  table(name: string): string;
  /** One statement inside the barrier's transaction (`tx` is what the barrier handed the handler); resolves to the rows it changed. */
  run(tx: unknown, sql: string, params?: unknown[]): Promise<number>;
  /** One statement on its own, outside any barrier transaction. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Closes the connections; `drop` first removes the service's schema (tests clean up after themselves). */
  close(options?: { drop?: boolean }): Promise<void>;
}

/** SQLite unless a server URL is in the environment. */
export function configFromEnv(dir: string): DatabaseConfig {
  if (process.env.TXBARRIER_MYSQL_URL) return { engine: 'mysql', url: process.env.TXBARRIER_MYSQL_URL };
  if (process.env.TXBARRIER_POSTGRES_URL) return { engine: 'postgres', url: process.env.TXBARRIER_POSTGRES_URL };
  return { engine: 'sqlite', dir };
}

/** Opens the database of service `schema` (an identifier) and creates its barrier table; `hooks` see every barrier outcome. */
export async function openDatabase(config: DatabaseConfig, schema: string, hooks: BarrierHooks = {}): Promise<ServiceDatabase> {
  const database = await connect(config, schema, hooks);
  await database.store.ensureSchema();
  return database;
}

async function connect({ engine, url, dir }: DatabaseConfig, schema: string, hooks: BarrierHooks): Promise<ServiceDatabase> {
  if (engine === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir ?? '.', `${schema}.db`));
    db.pragma('journal_mode = WAL');
    const store = sqliteStore(db, hooks);
    type Db = typeof db;
    return {
      engine,
      store: store as BarrierStore<unknown>,
      table: (name) => name,
      run: async (tx, sql, params = []) => (tx as Db).prepare(sql).run(...params).changes,
      // Through the store's queue: a statement run while a barrier transaction awaits would join it.
      query: (sql, params = []) =>
        store.exclusive((conn) => {
          const statement = conn.prepare(sql);
          return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
        }),
      close: async () => {
        db.close();
      },
    };
  }
  if (engine === 'mysql') {
    const { default: mysql } = await import('mysql2/promise');
    const pool = mysql.createPool({ uri: url, connectionLimit: 8 });
    return {
      engine,
      store: mysqlStore(pool, { table: `${schema}.barrier`, ...hooks }) as BarrierStore<unknown>,
      table: (name) => `${schema}.${name}`,
      run: async (tx, sql, params = []) => {
        const [result] = await (tx as PoolConnection).query(sql, params);
        return (result as { affectedRows: number }).affectedRows;
      },
      query: async (sql, params = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[],
      close: async ({ drop = false } = {}) => {
        if (drop) await pool.query(`DROP DATABASE IF EXISTS ${schema}`);
        await pool.end();
      },
    };
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  return {
    engine,
    store: postgresStore(pool, { table: `${schema}.barrier`, ...hooks }) as BarrierStore<unknown>,
    table: (name) => `${schema}.${name}`,
    run: async (tx, sql, params = []) => (await (tx as PoolClient).query(numbered(sql), params)).rowCount ?? 0,
    query: async (sql, params = []) => (await pool.query(numbered(sql), params)).rows,
    close: async ({ drop = false } = {}) => {
      if (drop) await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}

/** `?` placeholders as PostgreSQL's `$1, $2, …`. */
function numbered(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
}
