/** Opens a benchmark engine by name; each engine's module is loaded only when it is used. */
import { ensureDatabase, MYSQL_URL, POSTGRES_URL } from '../servers/index.js';
import type { BenchEngine, EngineName } from './engine.js';

export interface EngineOptions {
  /** SQLite only: the database file (default: a fresh temporary file, deleted on close). */
  file?: string;
  /** Table name prefix (default `bench_`): a run with its own prefix cannot collide with another run on the same server. */
  prefix?: string;
}

/**
 * Connects to an engine (the servers' URLs come from servers/index.ts, as the tests' do; a server's
 * database is created if missing) and creates a fresh accounts table, which `close` drops.
 */
export async function openEngine(name: EngineName, options: EngineOptions = {}): Promise<BenchEngine<unknown>> {
  const prefix = options.prefix ?? 'bench_';
  switch (name) {
    case 'sqlite':
      return (await import('./engine-sqlite.js')).sqliteEngine(prefix, options.file) as Promise<BenchEngine<unknown>>;
    case 'mysql':
      await ensureDatabase('mysql', MYSQL_URL);
      return (await import('./engine-mysql.js')).mysqlEngine(prefix) as Promise<BenchEngine<unknown>>;
    case 'postgres':
      await ensureDatabase('postgres', POSTGRES_URL);
      return (await import('./engine-postgres.js')).postgresEngine(prefix) as Promise<BenchEngine<unknown>>;
  }
}
