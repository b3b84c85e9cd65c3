import {
  BarrierConfigError,
  type BarrierExecutor,
  type BarrierStore,
  defineStore,
  postgresDialect,
  type Row,
  type StatementRunner,
  type StoreOptions,
  type TransactionDriver,
} from '../../src/index.js';
import { type IsolationLevel, isolationSql } from '../../src/transaction/isolation.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor } from '../orm/executor-options.js';

export type { ExecutorOptions, IsolationLevel };

/** What postgres.js resolves a query to, as far as the barrier reads it: the rows, with the command's tag. */
export interface PostgresJsResult extends ReadonlyArray<Row> {
  /** Rows inserted, updated or deleted (from the server's command tag). */
  readonly count: number | null;
  /** `COMMIT`, or `ROLLBACK` when PostgreSQL ended an aborted transaction instead. */
  readonly command: string | null;
}

/** The part of any postgres.js `sql` (the pool, a reserved connection, a transaction's) the barrier uses. */
export interface PostgresJsQueryable {
  unsafe(query: string, parameters?: any[], options?: { prepare?: boolean }): PromiseLike<PostgresJsResult>;
}

/** A connection of `sql.reserve()`. */
export interface PostgresJsReserved extends PostgresJsQueryable {
  release(): void;
}

/** A postgres.js `sql` pool (the driver is never imported here). */
export interface PostgresJsSql extends PostgresJsQueryable {
  reserve(): Promise<PostgresJsReserved>;
}

export interface PostgresJsStoreOptions extends StoreOptions {
  /** Run each barrier transaction at this level instead of the server's. Defaults to the server's (PostgreSQL: read committed). */
  isolationLevel?: IsolationLevel;
}

/** One barrier transaction's reserved connection, and where its BEGIN stands. */
interface Lease<Reserved extends PostgresJsReserved> {
  readonly reserved: Reserved;
  /** The business function's view of `reserved`, refused once the transaction is over or the connection lost. */
  readonly tx: Reserved;
  /** Until the first statement has read it: BEGIN's answer, which was not awaited. */
  begun?: PromiseLike<unknown>;
  /** postgres.js's connection under `reserved`, as its own `sql.begin` learns it (`onexecute`). */
  connection?: { reserved?: unknown };
  open: boolean;
}

/**
 * A barrier store on a postgres.js `sql` (`postgres(url)`). Default table `dtm_barrier.barrier`, DTM's own.
 *
 * Each barrier transaction reserves a connection (`sql.reserve()`) and sends BEGIN, COMMIT and
 * ROLLBACK itself, rather than run in `sql.begin`: the store must see COMMIT's answer (PostgreSQL
 * answers ROLLBACK for an aborted transaction), bound the business function by `transactionTimeout`
 * and roll back while it still runs, none of which `sql.begin` allows. BEGIN is not awaited:
 * postgres.js pipelines it with the barrier's insert, one round trip for both, and the business
 * function still starts only once the insert has answered. The business function receives the
 * reserved connection, which refuses every new statement once the transaction has ended (a
 * function that outlived its timeout must not write through a connection lent to someone else).
 */
export function postgresJsStore<Sql extends PostgresJsSql>(sql: Sql, options: PostgresJsStoreOptions = {}): BarrierStore<ReservedOf<Sql>> {
  const { isolationLevel, ...storeOptions } = options;
  type Reserved = ReservedOf<Sql>;
  return defineStore(postgresDialect, storeOptions, (settings): TransactionDriver<Lease<Reserved>, Reserved> => {
    // A parameterless unsafe() is a simple query: BEGIN and its SET LOCALs in one message. BEGIN
    // comes first, so if it failed, so would every statement pipelined after it (never autocommitted).
    const begin = postgresDialect.beginStatements(settings).transaction.join('; ');
    return {
      acquire: async () => {
        const reserved = (await sql.reserve()) as Reserved;
        const lease: Lease<Reserved> = { reserved, tx: guarded(reserved, () => usable(lease)), open: true };
        return lease;
      },
      begin: async (lease) => {
        // `onexecute` is how postgres.js's own sql.begin learns its connection (undocumented, not in its
        // types); it must answer true, or postgres.js would hold the next statement back (no pipelining).
        const onexecute = (connection: { reserved?: unknown }) => ((lease.connection = connection), true);
        const begun = lease.reserved.unsafe(begin, [], { onexecute } as { prepare?: boolean });
        // Read by the first statement (or COMMIT/ROLLBACK); this only keeps an early failure from going unhandled.
        Promise.resolve(begun).catch(() => undefined);
        lease.begun = begun;
      },
      commit: async (lease) => (await send(lease, 'COMMIT')).command !== 'ROLLBACK',
      rollback: async (lease) => void (await send(lease, 'ROLLBACK')),
      release: (lease) => {
        lease.open = false;
        lease.reserved.release();
      },
      // postgres.js cannot close one pooled connection, and a session the server ends under a
      // running query leaves the connection's next query a stale error. So the transaction is
      // rolled back instead: ROLLBACK queues behind whatever a timed-out function still has in
      // flight, and once it answers the connection is idle and clean (the guard refuses anything
      // new). A lost connection is left alone: postgres.js reconnects it by itself.
      destroy: (lease) => {
        if (!usable(lease)) return void (lease.open = false);
        lease.open = false;
        lease.reserved.unsafe('ROLLBACK').then(
          () => lease.reserved.release(),
          () => undefined,
        );
      },
      usable,
      runner: (lease) => runner(lease.tx, (sql, params) => send(lease, sql, [...params])),
    };
  }, { isolationLevel: isolationSql(isolationLevel) });
}

/** The connection type `sql.reserve()` lends. */
type ReservedOf<Sql extends PostgresJsSql> = Awaited<ReturnType<Sql['reserve']>>;

/** False once postgres.js has seen the connection close (it unlinks the reservation then), or the transaction ended. */
function usable(lease: Lease<PostgresJsReserved>): boolean {
  return lease.open && (lease.connection === undefined || Boolean(lease.connection.reserved));
}

/**
 * One statement on the lease's connection, resolved once BEGIN (sent before it) has answered too.
 * Never on a lost connection: postgres.js 3.4 would write it to the closed socket, throw an
 * uncaught TypeError from a timer and leave the statement pending for ever.
 */
async function send(lease: Lease<PostgresJsReserved>, sql: string, params?: unknown[]): Promise<PostgresJsResult> {
  if (!usable(lease)) throw connectionLost();
  const statement = params ? lease.reserved.unsafe(sql, params, { prepare: true }) : lease.reserved.unsafe(sql);
  const { begun } = lease;
  if (begun === undefined) return statement;
  lease.begun = undefined;
  // Both awaited together, so neither failure goes unheard; BEGIN's, being first, is the one thrown.
  const [, result] = await Promise.all([begun, statement]);
  return result;
}

/** What postgres.js itself throws for a connection that closed under a query. */
function connectionLost(): Error {
  return Object.assign(new Error('postgres.js: the connection of this barrier transaction was lost; nothing was committed'), {
    code: 'CONNECTION_CLOSED',
  });
}

/**
 * `reserved`, refusing calls once `open()` is false (the transaction ended, or the connection was
 * lost). A business function that outlived its transaction (a timeout) would otherwise run its late
 * statements on the connection postgres.js has since lent to another transaction. `release` is the
 * store's alone: released mid-transaction, the connection would carry the open transaction to its
 * next borrower.
 */
function guarded<Reserved extends PostgresJsReserved>(reserved: Reserved, open: () => boolean): Reserved {
  const check = () => {
    if (!open()) {
      throw new BarrierConfigError(
        'postgres.js: this barrier transaction has ended (committed, rolled back, timed out, or its connection was lost); its connection takes no more statements',
        { code: 'ERR_TXBARRIER_TRANSACTION_ENDED' },
      );
    }
  };
  return new Proxy(reserved, {
    apply: (target, self, args) => {
      check();
      return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, self, args);
    },
    get: (target, key) => {
      const value = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      if (key === 'release') {
        return () => {
          throw new BarrierConfigError('postgres.js: the barrier store releases this connection when its transaction ends; do not release it yourself', {
            code: 'ERR_TXBARRIER_STORE_CONNECTION',
          });
        };
      }
      return (...args: unknown[]) => {
        check();
        return Reflect.apply(value, target, args);
      };
    },
  });
}

/**
 * A barrier executor on the `sql` of `sql.begin(async (sql) => …)` (or of a savepoint inside it),
 * for `barrier.within`. The barrier's statements run in that transaction; postgres.js still
 * commits or rolls back.
 */
export function postgresJsExecutor<Tx extends PostgresJsQueryable>(tx: Tx, options: ExecutorOptions = {}): BarrierExecutor<Tx> {
  const engine = engineOf('postgres.js', 'postgres', { postgres: 'postgres' }, options);
  // Only a transaction's sql has savepoint(); the pool's and a reserved connection's do not.
  if (typeof (tx as { savepoint?: unknown })?.savepoint !== 'function') {
    throw notATransaction('postgres.js', 'the sql of sql.begin(async (sql) => ...), not the pool or a reserved connection');
  }
  return ormExecutor(engine, options, runner(tx, (sql, params) => tx.unsafe(sql, [...params], { prepare: true })));
}

function runner<Tx>(tx: Tx, query: (sql: string, params: readonly unknown[]) => PromiseLike<PostgresJsResult>): StatementRunner<Tx, PostgresJsResult> {
  return {
    tx,
    query,
    affectedRows: (result) => result.count,
    // The result is the array of rows itself.
    rows: (result) => result,
  };
}
