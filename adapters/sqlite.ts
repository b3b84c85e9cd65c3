import { AsyncLocalStorage } from 'node:async_hooks';
import { resolve } from 'node:path';
import { BarrierConfigError, type BarrierConnection, type BarrierStore, defineStore, sqliteDialect, type StoreOptions } from '../src/index.js';

/** The part of a better-sqlite3 `Database` the store uses (the driver is never imported here). */
export interface SqliteDatabase {
  readonly name: string;
  readonly memory: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  all(...params: unknown[]): unknown[];
}

export interface SqliteStore<Db extends SqliteDatabase> extends BarrierStore<Db> {
  /**
   * Runs `fn` when no barrier transaction is open on this database file in this process. Use it
   * for any other work on the same connection: a statement run while a barrier transaction awaits
   * would silently join that transaction.
   */
  exclusive<T>(fn: (db: Db) => Promise<T> | T): Promise<T>;
}

/**
 * A barrier store on a better-sqlite3 `Database`. Default table `barrier`.
 *
 * better-sqlite3 is synchronous while business code is async, so the store queues transactions
 * per database file: one at a time in this process, `BEGIN IMMEDIATE` so a writer holds the lock
 * from the start, and the connection's busy timeout (better-sqlite3's `timeout`, 5 s by default)
 * for other processes on the same file.
 */
export function sqliteStore<Db extends SqliteDatabase>(db: Db, options: StoreOptions = {}): SqliteStore<Db> {
  const statements = new Map<string, SqliteStatement>();
  const prepared = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    return statement;
  };
  const connection: BarrierConnection<Db> = {
    tx: db,
    execute: async (sql, params) => prepared(sql).run(...params).changes,
    select: async (sql, params) => prepared(sql).all(...params) as Record<string, unknown>[],
  };
  const exclusive = <T>(fn: () => Promise<T> | T) => queued(queueKey(db), fn);

  const store = defineStore<Db>(sqliteDialect, options, (work) =>
    exclusive(async () => {
      prepared('BEGIN IMMEDIATE').run();
      let result;
      try {
        result = await work(connection);
      } catch (error) {
        // SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR).
        if (db.inTransaction) prepared('ROLLBACK').run();
        throw error;
      }
      try {
        prepared('COMMIT').run();
      } catch (error) {
        if (db.inTransaction) prepared('ROLLBACK').run();
        throw error;
      }
      return result;
    }),
  );
  return { ...store, exclusive: (fn) => exclusive(() => fn(db)) };
}

/** One queue per database file, so two connections to one file in this process never make each other wait inside BEGIN (which would block the event loop). */
function queueKey(db: SqliteDatabase): QueueKey {
  return db.memory ? db : resolve(db.name);
}

type QueueKey = object | string;

interface Queues {
  tails: Map<QueueKey, Promise<unknown>>;
  /** The files whose queue the current async context holds. */
  held: AsyncLocalStorage<ReadonlySet<QueueKey>>;
}

// One set of queues per process, even when the ESM and the CommonJS builds are both loaded:
// two sets would let two transactions interleave on one connection.
const QUEUES = Symbol.for('txbarrier.sqlite.queues');
const { tails, held } = ((globalThis as { [QUEUES]?: Queues })[QUEUES] ??= { tails: new Map(), held: new AsyncLocalStorage() });

function queued<T>(key: QueueKey, fn: () => Promise<T> | T): Promise<T> {
  const holding = held.getStore();
  if (holding?.has(key)) {
    // Queued behind the transaction it runs inside, it would wait for itself forever.
    return Promise.reject(
      new BarrierConfigError(
        'sqliteStore: a transaction on this database was started from inside another one on the same file. ' +
          'Run that work on the tx you were handed instead.',
      ),
    );
  }
  const inside = () => held.run(new Set(holding).add(key), fn);
  const previous = tails.get(key) ?? Promise.resolve();
  const run = previous.then(inside, inside);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  tails.set(key, tail);
  // Forget the queue once it drains, so closed databases are not kept alive.
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}
