import { BarrierConfigError, BarrierTimeout, BarrierTransactionAborted } from '../errors.js';
import type { Dialect } from '../dialects/dialect.js';
import { Deadlines } from './deadlines.js';
import type { BarrierConnection, Row, StatementRunner } from './store.js';

/**
 * The steps a driver adapter supplies for a store; `runTransaction` alone decides their order and
 * what a failure at each one means. A driver whose library only offers a callback transaction
 * reserves a connection and sends BEGIN/COMMIT itself (postgres.js: `sql.reserve()`).
 */
export interface TransactionDriver<Conn, Tx> {
  /** Borrows a connection from the pool. */
  acquire(): Promise<Conn>;
  /**
   * Opens a transaction with the store's isolation level and lock timeout (the dialect's `beginStatements`).
   * This and `commit` may also throw: runTransaction meets a throw as it meets a rejection.
   */
  begin(connection: Conn): Promise<void>;
  /** Commits; resolves to false if the engine ended the transaction otherwise (PostgreSQL answers ROLLBACK on an aborted one). */
  commit(connection: Conn): Promise<boolean>;
  rollback(connection: Conn): Promise<void>;
  /** Gives back a connection whose transaction ended cleanly. */
  release(connection: Conn): void;
  /** Closes a connection whose state is unknown, so no one inherits half a transaction. */
  destroy(connection: Conn): void;
  /** Runs statements inside the open transaction. */
  runner(connection: Conn): StatementRunner<Tx>;
  /** False when the driver saw the connection fail while it was lent out. Defaults to true. */
  usable?(connection: Conn): boolean;
}

/**
 * begin → work → commit-and-verify → rollback → release-or-destroy, for every store. Only a
 * connection whose COMMIT or ROLLBACK answered goes back to the pool: the pools here do not reset
 * connections, and one released mid-transaction would hand that transaction to the next borrower.
 * `bound` is the store's `Deadlines` (one timer for all its transactions), or milliseconds for a
 * bound of this call's own, or false for none.
 */
export async function runTransaction<Conn, Tx, T>(
  driver: TransactionDriver<Conn, Tx>,
  dialect: Dialect,
  bound: Deadlines | number | false,
  work: (connection: BarrierConnection<Tx>) => Promise<T>,
): Promise<T> {
  const deadlines = typeof bound === 'number' ? new Deadlines(bound) : bound || undefined;
  const connection = await driver.acquire();
  let reusable = false;
  try {
    await driver.begin(connection);
    let result: T;
    try {
      const running = work(checkedConnection(driver.runner(connection), dialect.name));
      result = await (deadlines ? deadlines.bound(running) : running);
    } catch (error) {
      // After a timeout the work may still be running on this connection: only closing it stops
      // that. After a deadlock MySQL has already rolled back, so a ROLLBACK that answers proves
      // nothing. A failed ROLLBACK must not replace the error being thrown.
      if (!(error instanceof BarrierTimeout) && !dialect.endsTransaction(error)) {
        reusable = await driver.rollback(connection).then(() => true, () => false);
      }
      throw error;
    }
    const committed = await driver.commit(connection);
    reusable = true;
    if (!committed) throw new BarrierTransactionAborted();
    return result;
  } finally {
    if (reusable && (driver.usable?.(connection) ?? true)) driver.release(connection);
    else driver.destroy(connection);
  }
}

/**
 * A runner's statements with their results checked: a count that is not a non-negative integer,
 * or rows that are not objects, are refused rather than read as 0 or as no rows.
 */
export function checkedConnection<Tx>(runner: StatementRunner<Tx>, engine: string): BarrierConnection<Tx> {
  // Reactions made once per connection, not an async frame per statement (a promise and an await each).
  const counted = (result: unknown) => countOf(runner.affectedRows(result), engine);
  const read = (result: unknown) => rowsOf(runner.rows(result), engine);
  return {
    tx: runner.tx,
    execute: (sql, params) => resultOf(runner, sql, params).then(counted),
    select: (sql, params) => resultOf(runner, sql, params).then(read),
    run: (sql, params) => resultOf(runner, sql, params).then(nothing),
  };
}

/** The runner's result as a promise; a runner that throws rejects it, as an async one would. */
function resultOf(runner: StatementRunner<unknown>, sql: string, params: readonly unknown[]): Promise<unknown> {
  try {
    return Promise.resolve(runner.query(sql, params));
  } catch (error) {
    return Promise.reject(error);
  }
}

const nothing = (): void => undefined;

function countOf(count: unknown, engine: string): number {
  const value = typeof count === 'bigint' ? Number(count) : count;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw new BarrierConfigError(
    `the ${engine} driver reported no affected-row count (got ${typeof count === 'object' ? JSON.stringify(count) : typeof count}): ` +
      'this driver or ORM is not one txbarrier supports, or an option changed its result shape',
    { code: 'ERR_TXBARRIER_DRIVER_RESULT' },
  );
}

function rowsOf(rows: unknown, engine: string): Row[] {
  if (Array.isArray(rows) && rows.every((row) => row !== null && typeof row === 'object' && !Array.isArray(row))) return rows as Row[];
  throw new BarrierConfigError(
    `the ${engine} driver returned rows txbarrier cannot read (expected objects keyed by column name; a driver option such as rowsAsArray?)`,
    { code: 'ERR_TXBARRIER_DRIVER_RESULT' },
  );
}
