import type { StoreOptions } from '../../src/index.js';
import { requireShape, type SqliteStatement, type SqliteStore, synchronousStore } from './synchronous-sqlite.js';

/**
 * The part of a `bun:sqlite` `Database` the store uses. `bun:sqlite` is never imported here, so
 * this subpath loads on every runtime; only Bun has such a database to give it.
 */
export interface BunSqliteDatabase {
  /** The file name it was opened with; `:memory:` (or empty) for an in-memory database. */
  readonly filename: string;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

/**
 * A barrier store on a `bun:sqlite` `Database` (Bun, where better-sqlite3 does not load). Default
 * table `barrier`. The same store as `sqliteStore`, options and `exclusive()` included; other
 * processes on the file wait for SQLite's busy timeout, which bun:sqlite leaves at 0: set it with
 * `db.exec('PRAGMA busy_timeout = 5000')`, or a busy file fails at once with `BarrierOngoing`.
 *
 * Throws `BarrierConfigError` (`ERR_TXBARRIER_BUN_SQLITE`) when `db` is not such a database.
 */
export function bunSqliteStore<Db extends BunSqliteDatabase>(db: Db, options: StoreOptions = {}): SqliteStore<Db> {
  requireShape(
    db,
    { prepare: 'function', filename: 'string', inTransaction: 'boolean' },
    { needs: 'bunSqliteStore needs a bun:sqlite Database', code: 'ERR_TXBARRIER_BUN_SQLITE', advice: runtimeAdvice },
  );
  const memory = db.filename === '' || db.filename === ':memory:';
  return synchronousStore(db, memory ? null : db.filename, () => db.inTransaction, options);
}

/** Where this runtime's SQLite store is, for the error above. */
function runtimeAdvice(): string {
  if (process.versions.bun) return "Pass a Database from bun:sqlite (`new Database(file)` of `import { Database } from 'bun:sqlite'`).";
  return 'bun:sqlite exists only on Bun: use nodeSqliteStore from txbarrier/node-sqlite (Node 22.16 or later, Deno), or sqliteStore from txbarrier/sqlite with better-sqlite3.';
}
