import { AsyncLocalStorage } from 'node:async_hooks';
import {
  BarrierConfigError,
  type BarrierStore,
  defineStore,
  postgresDialect,
  type Row,
  type StatementRunner,
  type StoreOptions,
  type TransactionDriver,
} from '../../src/index.js';
import { type IsolationLevel, isolationSql } from '../../src/transaction/isolation.js';

export type { IsolationLevel };

/** What PGlite's `query` resolves to, as far as the barrier reads it. */
export interface PGliteResults {
  rows: Row[];
  /** Rows inserted, updated or deleted. */
  affectedRows?: number;
}

/** The `tx` of `pg.transaction(async (tx) => …)`: what the business function receives. */
export interface PGliteTransaction {
  query(sql: string, params?: any[]): Promise<PGliteResults>;
  exec(sql: string): Promise<unknown>;
  rollback(): Promise<void>;
  readonly closed: boolean;
}

/** The part of a `PGlite` instance the store uses (`@electric-sql/pglite` is never imported here). */
export interface PGliteDatabase<Tx extends PGliteTransaction = PGliteTransaction> {
  query(sql: string, params?: any[], options?: any): Promise<unknown>;
  exec(sql: string, options?: any): Promise<unknown>;
  transaction<T>(callback: (tx: Tx) => Promise<T>): Promise<T>;
}

export interface PGliteStoreOptions extends StoreOptions {
  /** Run each barrier transaction at this level. Defaults to PostgreSQL's (read committed). */
  isolationLevel?: IsolationLevel;
  /**
   * Refused (`ERR_TXBARRIER_OPTION`): PGlite's one connection cannot be closed under a running
   * function, so nothing could end a transaction that outlived the bound. Defaults to `false`.
   */
  transactionTimeout?: false;
}

/** One barrier transaction: PGlite's `tx`, and how to end the callback that holds it open. */
interface Lease<Tx> {
  readonly tx: Tx;
  /** Ends `pg.transaction`'s callback: resolved, PGlite commits; rejected, it rolls back. */
  readonly end: (commit: boolean) => void;
  /** `pg.transaction`'s own promise: rejects when COMMIT rolled back an aborted transaction. */
  readonly ended: Promise<unknown>;
  open: boolean;
}

/** The barrier transaction whose business function is running in this async context, per instance. */
const running = new AsyncLocalStorage<{ db: object; lease: { open: boolean } }>();
const watchedInstances = new WeakSet<object>();

/**
 * A barrier store on a PGlite instance (`new PGlite()`): PostgreSQL 18 in WebAssembly, in this
 * process, with the same SQL and the same default table (`dtm_barrier.barrier`) as the PostgreSQL
 * stores, for tests and local development without a server.
 *
 * Each barrier transaction runs in `pg.transaction`, which holds PGlite's one connection: calls
 * queue and run one at a time, in order, however many are made at once. The business function
 * receives PGlite's `tx`. Calling the instance itself (`pg.query`, `pg.exec`, `pg.transaction`, or
 * another barrier call on the same instance) from inside the business function would queue behind
 * the transaction that is waiting for it, for ever: the store refuses it with `BarrierConfigError`
 * (`ERR_TXBARRIER_PGLITE_INSTANCE`) instead. To do so it wraps those three methods of the instance
 * once; outside a barrier transaction they behave as before.
 *
 * `transactionTimeout` is refused (nothing can end the one connection under a running function);
 * `lockTimeout` is applied as PostgreSQL's `lock_timeout` but never fires, since one connection
 * never waits for another's lock: a call waits for the transactions ahead of it without a bound.
 */
export function pgliteStore<Tx extends PGliteTransaction>(db: PGliteDatabase<Tx>, options: PGliteStoreOptions = {}): BarrierStore<Tx> {
  if (typeof db?.transaction !== 'function' || typeof db.query !== 'function' || typeof db.exec !== 'function') {
    throw new BarrierConfigError('pgliteStore needs a PGlite instance (new PGlite() from @electric-sql/pglite)', { code: 'ERR_TXBARRIER_OPTION' });
  }
  const { isolationLevel, ...storeOptions } = options;
  guardInstance(db);
  const store = defineStore(
    postgresDialect,
    storeOptions,
    (settings): TransactionDriver<Lease<Tx>, Tx> => {
      // PGlite sends BEGIN itself; the isolation level then goes in SET TRANSACTION, before any query.
      const [, ...locals] = postgresDialect.beginStatements({ ...settings, isolationLevel: undefined }).transaction;
      const setup = [...(settings.isolationLevel ? [`SET TRANSACTION ISOLATION LEVEL ${settings.isolationLevel}`] : []), ...locals].join('; ');
      return {
        acquire: async () => {
          const lease = await open(db);
          // runTransaction calls acquire in the context `transaction` below opened for this call.
          const mark = running.getStore();
          if (mark) mark.lease = lease;
          return lease;
        },
        begin: async (lease) => void (await lease.tx.exec(setup)),
        commit: async (lease) => {
          lease.open = false;
          // The business function ended the transaction itself (tx.rollback()): nothing is committed.
          const rolledBack = lease.tx.closed;
          lease.end(true);
          // PGlite ≥ 0.5 throws when COMMIT answered ROLLBACK (an aborted transaction); an older
          // one would resolve, which reads as committed, so the peer range starts at 0.5.
          return lease.ended.then(
            () => !rolledBack,
            (error: unknown) => (isAbortedCommit(error) ? false : Promise.reject(error)),
          );
        },
        rollback: async (lease) => {
          lease.open = false;
          lease.end(false);
          await lease.ended.catch((error: unknown) => {
            if (error !== ROLLED_BACK) throw error;
          });
        },
        release: () => undefined,
        // Only after a failed COMMIT or ROLLBACK (PGlite has already ended its transaction then),
        // or a business error that ended the transaction: PGlite rolls back what is left open.
        destroy: (lease) => {
          lease.open = false;
          lease.end(false);
        },
        runner: (lease) => pgliteRunner(lease.tx),
      };
    },
    { isolationLevel: isolationSql(isolationLevel), timeouts: false },
  );
  return {
    ...store,
    transaction: (work) => {
      const inside = running.getStore();
      // A barrier call from inside another one on this instance would queue behind it for ever.
      if (inside?.db === db && inside.lease.open) return Promise.reject(instanceInside('a barrier call'));
      return running.run({ db, lease: { open: false } }, () => store.transaction(work));
    },
  };
}

/** Ends `pg.transaction`'s callback with a rejection that means "roll back", told apart from real failures. */
const ROLLED_BACK = new Error('txbarrier: barrier transaction rolled back');

function instanceInside(what: string): BarrierConfigError {
  return new BarrierConfigError(
    `PGlite: ${what} was made inside a barrier transaction's business function on the same instance, and would wait ` +
      'for ever behind that transaction (PGlite has one connection). Use the tx the business function receives.',
    { code: 'ERR_TXBARRIER_PGLITE_INSTANCE' },
  );
}

/**
 * Opens `pg.transaction` and resolves once its callback runs, with the callback held open until
 * the lease is finished. Rejects if PGlite fails before that (a closed instance).
 */
function open<Tx extends PGliteTransaction>(db: PGliteDatabase<Tx>): Promise<Lease<Tx>> {
  return new Promise((resolve, reject) => {
    let started = false;
    const ended: Promise<unknown> = db
      .transaction(
        (tx) =>
          new Promise<void>((commit, rollBack) => {
            started = true;
            resolve({ tx, end: (ok) => (ok ? commit() : rollBack(ROLLED_BACK)), ended, open: true });
          }),
      )
      .catch((error: unknown) => {
        if (!started) reject(error);
        throw error;
      });
    // Read by commit, rollback or destroy; this only keeps a failure before the callback from going unhandled.
    ended.catch(() => undefined);
  });
}

/** PGlite's `TransactionAbortedError` (SQLSTATE 25P02 on COMMIT), matched by shape: the peer is not imported. */
function isAbortedCommit(error: unknown): boolean {
  return (error as { name?: unknown })?.name === 'TransactionAbortedError' || (error as { code?: unknown })?.code === '25P02';
}

/**
 * Wraps the instance's `query`, `exec` and `transaction` once so that, called from inside a barrier
 * transaction's business function on this instance, they throw instead of waiting for ever.
 * `sql` and PGlite's other helpers go through these. PGlite's `tx` does not, so it is unaffected.
 */
function guardInstance(db: PGliteDatabase<PGliteTransaction>): void {
  if (watchedInstances.has(db)) return;
  watchedInstances.add(db);
  const methods = db as unknown as Record<'query' | 'exec' | 'transaction', (...args: unknown[]) => unknown>;
  for (const name of ['query', 'exec', 'transaction'] as const) {
    const original = methods[name];
    methods[name] = function (this: unknown, ...args: unknown[]) {
      const inside = running.getStore();
      if (inside?.db === db && inside.lease.open) return Promise.reject(instanceInside(`pg.${name}()`));
      return original.apply(this, args);
    };
  }
}

function pgliteRunner<Tx extends PGliteTransaction>(tx: Tx): StatementRunner<Tx, PGliteResults> {
  return {
    tx,
    query: (sql, params) => tx.query(sql, [...params]),
    affectedRows: (result) => result.affectedRows,
    rows: (result) => result.rows,
  };
}
