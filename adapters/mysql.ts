import { errorChain } from '../src/dialects/dialect.js';
import { defineExecutor } from '../src/executor.js';
import {
  BarrierConfigError,
  type BarrierConnection,
  type BarrierExecutor,
  type BarrierStore,
  defineStore,
  mysqlDialect,
  type Row,
  type StoreOptions,
} from '../src/index.js';
import { type IsolationLevel, isolationSql } from '../src/isolation.js';

export type { IsolationLevel };

/** The part of a mysql2/promise connection the barrier uses (the driver is never imported here). */
export interface MysqlQueryable {
  query(options: { sql: string; rowsAsArray?: boolean }, values?: unknown[]): Promise<[unknown, unknown]>;
}

/** A mysql2/promise `PoolConnection`. */
export interface MysqlPoolConnection extends MysqlQueryable {
  release(): void;
  destroy(): void;
}

/** A mysql2/promise `Pool`. */
export interface MysqlPool {
  getConnection(): Promise<MysqlPoolConnection>;
}

export interface MysqlStoreOptions extends StoreOptions {
  /** Run each barrier transaction at this level instead of the session's (InnoDB: repeatable read). */
  isolationLevel?: IsolationLevel;
}

type ConnectionOf<Pool extends MysqlPool> = Awaited<ReturnType<Pool['getConnection']>>;

/**
 * A barrier store on a mysql2/promise `Pool`. Default table `dtm_barrier.barrier`, DTM's own.
 * Business code receives the pool connection inside the open transaction.
 */
export function mysqlStore<Pool extends MysqlPool>(pool: Pool, options: MysqlStoreOptions = {}): BarrierStore<ConnectionOf<Pool>> {
  const { isolationLevel, ...storeOptions } = options;
  const level = isolationSql(isolationLevel);
  // Without SESSION it applies to the next transaction only, so the connection goes back to the pool unchanged.
  const setIsolation = level && `SET TRANSACTION ISOLATION LEVEL ${level}`;

  return defineStore(mysqlDialect, storeOptions, async (work) => {
    const connection = (await pool.getConnection()) as ConnectionOf<Pool>;
    // The pool does not reset connections: one released mid-transaction would hand that transaction
    // to the next borrower. Only a connection whose COMMIT or ROLLBACK answered goes back.
    let reusable = false;
    try {
      if (setIsolation) await connection.query({ sql: setIsolation });
      await connection.query({ sql: 'START TRANSACTION' });
      let result;
      try {
        result = await work(mysqlConnection(connection));
      } catch (error) {
        // After a deadlock InnoDB has already rolled the whole transaction back, so a ROLLBACK that
        // answers proves nothing; a fresh connection is cheap certainty for a rare event. A failed
        // ROLLBACK must not replace the error being thrown.
        reusable = !isDeadlock(error) && (await connection.query({ sql: 'ROLLBACK' }).then(() => true, () => false));
        throw error;
      }
      await connection.query({ sql: 'COMMIT' });
      reusable = true;
      return result;
    } finally {
      if (reusable) connection.release();
      else connection.destroy();
    }
  });
}

/**
 * A barrier executor over a mysql2 connection the caller already put in a transaction, for
 * `barrier.within`. It never commits or rolls back. Default table `dtm_barrier.barrier`.
 * Throws `BarrierConfigError` on the first barrier statement if the connection is in autocommit.
 */
export function mysqlExecutor<C extends MysqlQueryable>(connection: C, options: StoreOptions = {}): BarrierExecutor<C> {
  return defineExecutor(mysqlDialect, options, mysqlConnection(connection, true));
}

// The server's status flag on every OK packet: set while a transaction is open.
const SERVER_STATUS_IN_TRANS = 1;

/**
 * `query`, not `execute`: one round trip per statement with no server-side statement cache to
 * fill; `rowsAsArray: false` because a pool may default to arrays, and the reason is read by name.
 */
function mysqlConnection<C extends MysqlQueryable>(connection: C, inCallersTransaction = false): BarrierConnection<C> {
  return {
    tx: connection,
    async execute(sql, params) {
      const [header] = (await connection.query({ sql }, params as unknown[])) as [{ affectedRows: number; serverStatus: number }, unknown];
      if (inCallersTransaction && (header.serverStatus & SERVER_STATUS_IN_TRANS) === 0) {
        // Too late to undo this row, but never too late to stop the business work running outside a transaction.
        throw new BarrierConfigError(
          'mysqlExecutor: the connection is not in a transaction (START TRANSACTION first). In autocommit the ' +
            'barrier row commits on its own and survives a business failure, so the retry would be skipped as a duplicate.',
        );
      }
      return header.affectedRows;
    },
    select: async (sql, params) => (await connection.query({ sql, rowsAsArray: false }, params as unknown[]))[0] as Row[],
  };
}

function isDeadlock(error: unknown): boolean {
  for (const e of errorChain(error)) if (e.errno === 1213) return true;
  return false;
}
