import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor } from './executor-options.js';

export type { ExecutorOptions };

/** Where a query runner or entity manager names its data source (`connection` before TypeORM 1.0). */
interface TypeormSourced {
  readonly dataSource?: { readonly options: { readonly type: string } };
  readonly connection?: { readonly options: { readonly type: string } };
}

/** The part of a TypeORM `QueryRunner` the barrier uses (TypeORM is never imported here). */
export interface TypeormQueryRunner extends TypeormSourced {
  readonly isTransactionActive: boolean;
  query(sql: string, parameters: unknown[], useStructuredResult: true): Promise<{ records?: unknown[]; affected?: number }>;
}

/** The part of a TypeORM `EntityManager` the barrier uses: the query runner of its transaction. */
export interface TypeormEntityManager extends TypeormSourced {
  readonly queryRunner?: TypeormQueryRunner;
}

/** TypeORM's `type` values whose drivers report affected rows in the structured result. */
const ENGINES: Record<string, DialectName> = { postgres: 'postgres', mysql: 'mysql', mariadb: 'mysql', 'better-sqlite3': 'sqlite' };

/**
 * A barrier executor on the `EntityManager` of `dataSource.transaction(async (manager) => …)`, or on
 * a `QueryRunner` after `startTransaction()`, for `barrier.within`. The barrier's statements run on
 * that transaction's query runner; the engine comes from the data source's `type` unless `dialect`
 * is given. The business function receives what was passed in.
 */
export function typeormExecutor<Tx extends TypeormEntityManager | TypeormQueryRunner>(
  managerOrQueryRunner: Tx,
  options: ExecutorOptions = {},
): BarrierExecutor<Tx> {
  const runner: TypeormQueryRunner | undefined =
    'isTransactionActive' in managerOrQueryRunner ? (managerOrQueryRunner as TypeormQueryRunner) : managerOrQueryRunner.queryRunner;
  const source = managerOrQueryRunner.dataSource ?? managerOrQueryRunner.connection;
  const engine = engineOf('TypeORM', source?.options.type, ENGINES, options);
  if (!runner?.isTransactionActive) {
    throw notATransaction('TypeORM', 'the EntityManager of dataSource.transaction(), or a QueryRunner after startTransaction()');
  }
  // The structured result (third argument) is the only one that carries the count: plain
  // manager.query() resolves to [] on Postgres and to 1 for a duplicate too on SQLite.
  const run = (sql: string, params: readonly unknown[]) => runner.query(sql, [...params], true);
  return ormExecutor(engine, options, {
    tx: managerOrQueryRunner,
    query: run,
    affectedRows: (result) => result.affected,
    rows: (result) => result.records ?? [],
  });
}
