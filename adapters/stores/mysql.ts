import {
  BarrierConfigError,
  type BarrierExecutor,
  type BarrierStore,
  defineExecutor,
  defineStore,
  mysqlDialect,
  type StatementRunner,
  type StoreOptions,
  type TargetOptions,
  type TransactionDriver,
} from '../../src/index.js';
import { type IsolationLevel, isolationSql } from '../../src/transaction/isolation.js';

export type { IsolationLevel };

/** What mysql2/promise's `query` resolves to: `[rows or result header, fields]`. */
export type MysqlResult = [unknown, unknown];

/** The part of a mysql2/promise connection the barrier uses (the driver is never imported here). */
export interface MysqlQueryable {
  query(sql: string, values?: unknown[]): Promise<MysqlResult>;
  query(options: { sql: string; rowsAsArray?: boolean }, values?: unknown[]): Promise<MysqlResult>;
  /** The connection's options; `rowsAsArray: true` makes the barrier ask for objects explicitly. */
  readonly config?: { readonly rowsAsArray?: boolean };
}

/** A mysql2/promise `PoolConnection`. */
export interface MysqlPoolConnection extends MysqlQueryable {
  release(): void;
  destroy(): void;
  /** The driver's connection under the promise wrapper: the same one every time the pool lends it. */
  readonly connection?: object;
}

/** A mysql2/promise `Pool`. */
export interface MysqlPool {
  getConnection(): Promise<MysqlPoolConnection>;
}

export interface MysqlStoreOptions extends StoreOptions {
  /** Run each barrier transaction at this level instead of the session's. Defaults to the session's (InnoDB: repeatable read). */
  isolationLevel?: IsolationLevel;
}

type ConnectionOf<Pool extends MysqlPool> = Awaited<ReturnType<Pool['getConnection']>>;

/**
 * A barrier store on a mysql2/promise `Pool`. Default table `dtm_barrier.barrier`, DTM's own.
 * Business code receives the pool connection inside the open transaction.
 *
 * The lock timeout is MySQL's session variable `innodb_lock_wait_timeout`, set once on each pool
 * connection the store uses: other users of the same pool see it too (give the store a pool of
 * its own if they need another value).
 */
export function mysqlStore<Pool extends MysqlPool>(pool: Pool, options: MysqlStoreOptions = {}): BarrierStore<ConnectionOf<Pool>> {
  const { isolationLevel, ...storeOptions } = options;
  return defineStore(mysqlDialect, storeOptions, (settings): TransactionDriver<ConnectionOf<Pool>, ConnectionOf<Pool>> => {
    const { session, transaction } = mysqlDialect.beginStatements(settings);
    const sessionKey = session.join('; ');
    const configure = async (connection: ConnectionOf<Pool>, driverConnection: object) => {
      if (configured.get(driverConnection) !== sessionKey) {
        for (const statement of session) await connection.query(statement);
        configured.set(driverConnection, sessionKey);
      }
      for (const statement of transaction) await connection.query(statement);
    };
    return {
      acquire: () => pool.getConnection() as Promise<ConnectionOf<Pool>>,
      begin(connection) {
        const driverConnection = connection.connection ?? connection;
        // The usual case, a configured connection and one statement, as a reaction rather than an async frame.
        if (configured.get(driverConnection) === sessionKey && transaction.length === 1) return send(connection, transaction[0]!).then(nothing);
        return configure(connection, driverConnection);
      },
      commit: (connection) => send(connection, 'COMMIT').then(yes),
      rollback: async (connection) => void (await connection.query('ROLLBACK')),
      release: (connection) => connection.release(),
      destroy: (connection) => connection.destroy(),
      runner: (connection) => mysqlRunner(connection, false, send),
    };
  }, { isolationLevel: isolationSql(isolationLevel) });
}

/** The session settings last applied to each driver connection. */
const configured = new WeakMap<object, string>();

const nothing = (): void => undefined;
const yes = (): boolean => true;

type Statement = string | { sql: string; rowsAsArray?: boolean };

/** mysql2's callback connection, which its promise connection wraps (`connection.connection`). */
interface MysqlCallbackConnection {
  query(sql: Statement, values: unknown[], callback: (error: Error | null, rows: unknown, fields: unknown) => void): unknown;
  query(sql: Statement, callback: (error: Error | null, rows: unknown, fields: unknown) => void): unknown;
}

/**
 * One of the store's own statements (BEGIN, the barrier rows, COMMIT), sent on the callback
 * connection under mysql2/promise's when there is one. The promise `query` captures a stack trace
 * for every statement (its `trace` option, on by default), only to make a failed statement's error
 * stack point at the caller: 2–3 µs per statement measured, more the deeper the async stack.
 * The store's errors reach the caller as `BarrierOngoing` or with their driver error as `cause`,
 * and the business function still gets the promise connection, traces and all.
 */
function send(connection: MysqlPoolConnection, sql: Statement, params?: unknown[]): Promise<MysqlResult> {
  const core = connection.connection as Partial<MysqlCallbackConnection> | undefined;
  if (typeof core?.query !== 'function') return connection.query(sql as string, params);
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, rows: unknown, fields: unknown) => (error ? reject(error) : resolve([rows, fields]));
    if (params === undefined) core.query!(sql, done);
    else core.query!(sql, params, done);
  });
}

/**
 * A barrier executor over a mysql2 connection the caller already put in a transaction, for
 * `barrier.within`. It never commits or rolls back. Default table `dtm_barrier.barrier`.
 * Throws `BarrierConfigError` on the first barrier statement if the connection is in autocommit.
 */
export function mysqlExecutor<C extends MysqlQueryable>(connection: C, options: TargetOptions = {}): BarrierExecutor<C> {
  return defineExecutor(mysqlDialect, options, mysqlRunner(connection, true));
}

// The server's status flag on every OK packet: set while a transaction is open.
const SERVER_STATUS_IN_TRANS = 1;

/**
 * `query(sql, params)`, not `execute`: one round trip per statement with no server-side statement
 * cache to fill; and not `query({ sql })`, mysql2's slower object path, unless the connection
 * returns rows as arrays and the reason must be read by name.
 */
function mysqlRunner<C extends MysqlQueryable>(
  connection: C,
  inCallersTransaction = false,
  query: (connection: C, sql: Statement, params: unknown[]) => Promise<MysqlResult> = (on, sql, params) => on.query(sql as string, params),
): StatementRunner<C, MysqlResult> {
  const objectRows = connection.config?.rowsAsArray === true;
  return {
    tx: connection,
    query: (sql, params) => query(connection, objectRows ? { sql, rowsAsArray: false } : sql, params as unknown[]),
    affectedRows: ([header]) => {
      const { affectedRows, serverStatus } = (header ?? {}) as { affectedRows?: unknown; serverStatus?: number };
      if (inCallersTransaction && typeof serverStatus === 'number' && (serverStatus & SERVER_STATUS_IN_TRANS) === 0) {
        // Too late to undo this row, but never too late to stop the business work running outside a transaction.
        throw new BarrierConfigError(
          'mysqlExecutor: the connection is not in a transaction (START TRANSACTION first). In autocommit the ' +
            'barrier row commits on its own and survives a business failure, so the retry would be skipped as a duplicate.',
          { code: 'ERR_TXBARRIER_NOT_IN_TRANSACTION' },
        );
      }
      return affectedRows;
    },
    rows: ([rows]) => rows,
  };
}
