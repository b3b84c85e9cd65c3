import { questionMark } from '../../src/dialects/dialect.js';
import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor } from './executor-options.js';

export type { ExecutorOptions };

/** The part of a knex transaction (`trx`) the barrier uses (knex is never imported here). */
export interface KnexTransaction {
  readonly isTransaction?: boolean;
  readonly client: { readonly driverName?: string };
  raw(sql: string, bindings: readonly unknown[]): PromiseLike<unknown>;
  readonly executionPromise: Promise<unknown>;
}

/** knex's driver names whose raw results we read; the driver decides the result's shape. */
const ENGINES: Record<string, DialectName> = { pg: 'postgres', mysql2: 'mysql', 'better-sqlite3': 'sqlite' };

/**
 * A barrier executor on the `trx` of `knex.transaction()`, for `barrier.within`: the barrier's
 * statements run in that transaction through `trx.raw`, and knex still commits or rolls back.
 * The engine comes from knex's driver (`pg`, `mysql2`, `better-sqlite3`) unless `dialect` is given.
 */
export function knexExecutor<Trx extends KnexTransaction>(trx: Trx, options: ExecutorOptions = {}): BarrierExecutor<Trx> {
  const engine = engineOf('knex', trx.client?.driverName, ENGINES, options);
  if (trx.isTransaction !== true) throw notATransaction('knex', 'the trx of knex.transaction(), not the knex instance');
  const read = RESULTS[engine];
  return ormExecutor(
    engine,
    options,
    { tx: trx, query: (sql, params) => trx.raw(sql, params), affectedRows: read.count, rows: read.rows },
    {
      // knex rewrites `?` into each driver's own placeholders.
      placeholder: questionMark,
      // Settles when knex has committed (or rolled back) the transaction this trx belongs to.
      onTransactionEnd: (listener) => trx.executionPromise.then(() => listener(true), () => listener(false)),
    },
  );
}

/**
 * What `trx.raw` resolves to is the driver's own result: pg's result object, mysql2's
 * `[rows or header, fields]`, better-sqlite3's rows or run info. (The builder's
 * `.onConflict().ignore()` is no use here: it reports ids, even for a duplicate.)
 */
const RESULTS: Record<DialectName, { count(result: any): unknown; rows(result: any): unknown }> = {
  postgres: { count: (result) => result?.rowCount, rows: (result) => result?.rows },
  mysql: { count: (result) => result?.[0]?.affectedRows, rows: (result) => result?.[0] },
  sqlite: { count: (result) => result?.changes, rows: (result) => result },
};
