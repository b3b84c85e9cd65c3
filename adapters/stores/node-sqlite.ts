import type { StoreOptions } from '../../src/index.js';
import { requireShape, type SqliteStatement, type SqliteStore, synchronousStore } from './synchronous-sqlite.js';

/**
 * The part of a `node:sqlite` `DatabaseSync` the store uses. `node:sqlite` is never imported here,
 * so this subpath loads on runtimes without it.
 */
export interface NodeSqliteDatabase {
  /** Since Node 22.16 / 24.0. */
  readonly isTransaction: boolean;
  /** The file's full path, or `null` for an in-memory database. Since Node 22.16 / 24.0. */
  location(): string | null;
  prepare(sql: string): SqliteStatement;
}

/**
 * A barrier store on a `node:sqlite` `DatabaseSync` (Node ≥ 22.16 or 24, Deno 2): no native module
 * to install. Default table `barrier`.
 *
 * The same store as `sqliteStore`: transactions queue per database file, one at a time in this
 * process (waiting at most `lockTimeout` for their turn), `BEGIN IMMEDIATE` so a writer holds the
 * lock from the start, and the connection's busy timeout for other processes on the same file:
 * node:sqlite's `timeout` option, which is 0 unless you set it (a busy file then fails at once
 * with `BarrierOngoing`).
 *
 * Throws `BarrierConfigError` (`ERR_TXBARRIER_NODE_SQLITE`) when `db` is not such a database,
 * naming what this runtime lacks.
 */
export function nodeSqliteStore<Db extends NodeSqliteDatabase>(db: Db, options: StoreOptions = {}): SqliteStore<Db> {
  requireShape(
    db,
    { prepare: 'function', location: 'function', isTransaction: 'boolean' },
    { needs: 'nodeSqliteStore needs a node:sqlite DatabaseSync', code: 'ERR_TXBARRIER_NODE_SQLITE', advice: runtimeAdvice },
  );
  return synchronousStore(db, db.location() || null, () => db.isTransaction, options);
}

/** What this runtime's node:sqlite lacks, for the error above. */
function runtimeAdvice(): string {
  const elsewhere = 'use Node 22.16 or later, or sqliteStore from txbarrier/sqlite with better-sqlite3';
  const sqlite = process.getBuiltinModule?.('node:sqlite') as { DatabaseSync: { prototype: object } } | undefined;
  if (!sqlite) return `Node ${process.version} has no node:sqlite (built in from 22.13; 22.5–22.12 need --experimental-sqlite): ${elsewhere}.`;
  if (!('location' in sqlite.DatabaseSync.prototype)) {
    return `Node ${process.version}'s DatabaseSync has no isTransaction or location() (they came in 22.16 and 24.0): ${elsewhere}.`;
  }
  return 'Pass a DatabaseSync from node:sqlite; for better-sqlite3 use sqliteStore from txbarrier/sqlite.';
}
