import { questionMark } from '../../src/dialects/dialect.js';
import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor, returnsRows } from './executor-options.js';

export type { ExecutorOptions };

/** The part of a MikroORM 6 SQL `EntityManager` the barrier uses (MikroORM is never imported here). */
export interface MikroOrmEntityManager {
  isInTransaction(): boolean;
  getDriver(): object;
  execute(sql: string, params: any[], method: 'all' | 'run'): Promise<unknown>;
}

/** MikroORM's drivers whose raw results were checked: `run` gives `affectedRows`, `all` the rows. */
const ENGINES: Record<string, DialectName> = { PostgreSqlDriver: 'postgres', MariaDbDriver: 'mysql', BetterSqliteDriver: 'sqlite' };

/**
 * A barrier executor on the `em` of `em.transactional(async (em) => …)` (MikroORM 6), for
 * `barrier.within`. The barrier's statements run in that transaction through `em.execute`;
 * MikroORM still commits or rolls back. The engine comes from the driver
 * (`@mikro-orm/postgresql`, `@mikro-orm/mariadb`, `@mikro-orm/better-sqlite`) unless `dialect` is given.
 */
export function mikroOrmExecutor<Em extends MikroOrmEntityManager>(em: Em, options: ExecutorOptions = {}): BarrierExecutor<Em> {
  const engine = engineOf('MikroORM', em?.getDriver?.().constructor.name, ENGINES, options);
  if (!em.isInTransaction()) throw notATransaction('MikroORM', 'the em of em.transactional(async (em) => ...), not the global or a forked EntityManager');
  // `run` reports affectedRows and, on MariaDB, no rows even for INSERT … RETURNING: rows come from `all`.
  const run = (sql: string, params: readonly unknown[]) => em.execute(sql, [...params], returnsRows(sql) ? 'all' : 'run');
  return ormExecutor(
    engine,
    options,
    { tx: em, query: run, affectedRows: (result: any) => result?.affectedRows, rows: (result) => result },
    // MikroORM binds `?` on every engine.
    { placeholder: questionMark },
  );
}

