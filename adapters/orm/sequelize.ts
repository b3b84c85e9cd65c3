import { dollarNumber } from '../../src/dialects/dialect.js';
import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor, returnsRows } from './executor-options.js';

export type { ExecutorOptions };

/** The part of a `Sequelize` instance the barrier uses (Sequelize is never imported here). */
export interface SequelizeInstance {
  getDialect(): string;
  query(sql: string, options: { bind: unknown[]; transaction: object; type: string }): Promise<unknown>;
}

/** The part of a Sequelize `Transaction` the barrier uses. */
export interface SequelizeTransaction {
  commit(): Promise<void>;
  afterCommit(fn: () => void): void;
}

/**
 * What every Sequelize 6 `Transaction` carries at run time, though its type declarations leave
 * it out: the instance it belongs to, and the state once committed or rolled back.
 */
interface TransactionState {
  readonly sequelize?: SequelizeInstance;
  readonly finished?: string;
}

/** Sequelize's dialects whose INSERT results carry the count where we read it. */
const ENGINES: Record<string, DialectName> = { postgres: 'postgres', mysql: 'mysql' };

/**
 * A barrier executor on a Sequelize `Transaction` (the `t` of `sequelize.transaction(async (t) => …)`
 * or of `await sequelize.transaction()`), for `barrier.within`. The barrier's statements are bound
 * to that transaction explicitly, CLS or not; the engine comes from `getDialect()` unless `dialect`
 * is given. The business function receives the transaction: pass it on as `{ transaction: t }`.
 */
export function sequelizeExecutor<Tx extends SequelizeTransaction>(transaction: Tx, options: ExecutorOptions = {}): BarrierExecutor<Tx> {
  const { sequelize, finished } = (transaction ?? {}) as TransactionState;
  const expected = 'an open Transaction (the t of sequelize.transaction()), not the Sequelize instance';
  if (!sequelize) throw notATransaction('Sequelize', expected);
  const engine = engineOf('Sequelize', sequelize.getDialect(), ENGINES, options);
  if (typeof transaction.commit !== 'function' || finished !== undefined) throw notATransaction('Sequelize', expected);
  return ormExecutor(
    engine,
    options,
    {
      tx: transaction,
      // Typed INSERT for statements (the count is the second element), SELECT for rows (RETURNING too).
      query: (sql, params) =>
        sequelize.query(sql, { bind: [...params], transaction, type: returnsRows(sql) ? 'SELECT' : 'INSERT' }),
      affectedRows: (result) => (Array.isArray(result) ? result[1] : undefined),
      rows: (result) => result,
    },
    {
      placeholder: dollarNumber,
      // Sequelize tells of a commit only: a rolled-back transaction reports nothing (see docs/observability.md).
      onTransactionEnd: (listener) => transaction.afterCommit(() => listener(true)),
    },
  );
}
