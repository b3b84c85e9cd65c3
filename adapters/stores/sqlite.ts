import type { StoreOptions } from '../../src/index.js';
import { type SqliteStatement, type SqliteStore, synchronousStore } from './synchronous-sqlite.js';

export type { SqliteStatement, SqliteStore } from './synchronous-sqlite.js';

/** The part of a better-sqlite3 `Database` the store uses (the driver is never imported here). */
export interface SqliteDatabase {
  readonly name: string;
  readonly memory: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

/**
 * A barrier store on a better-sqlite3 `Database`. Default table `barrier`.
 *
 * better-sqlite3 is synchronous while business code is async, so the store queues transactions
 * per database file: one at a time in this process (waiting at most `lockTimeout` for its turn),
 * `BEGIN IMMEDIATE` so a writer holds the lock from the start, and the connection's busy timeout
 * (better-sqlite3's `timeout`, 5 s by default) for other processes on the same file.
 */
export function sqliteStore<Db extends SqliteDatabase>(db: Db, options: StoreOptions = {}): SqliteStore<Db> {
  return synchronousStore(db, db.memory ? null : db.name, () => db.inTransaction, options);
}
