import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor } from './executor-options.js';

export type { ExecutorOptions };

/** Kysely's `CompiledQuery`: plain data, so the barrier builds its own instead of importing Kysely. */
export interface KyselyCompiledQuery {
  readonly sql: string;
  readonly parameters: readonly unknown[];
  readonly query: { readonly kind: 'RawNode'; readonly sqlFragments: readonly string[]; readonly parameters: readonly [] };
  readonly queryId: { readonly queryId: string };
}

/** The part of a Kysely `Transaction` the barrier uses (Kysely is never imported here). */
export interface KyselyTransaction {
  readonly isTransaction: boolean;
  getExecutor(): { readonly adapter: object };
  executeQuery(query: KyselyCompiledQuery): Promise<{ readonly rows: unknown[]; readonly numAffectedRows?: bigint }>;
}

/** Kysely's built-in adapters, which the third-party dialects for these engines reuse. */
const ENGINES: Record<string, DialectName> = { PostgresAdapter: 'postgres', MysqlAdapter: 'mysql', SqliteAdapter: 'sqlite' };

/**
 * A barrier executor on the `trx` of `db.transaction().execute(trx => …)`, for `barrier.within`.
 * Statements go to the driver as written, through the transaction's connection and plugins; the
 * engine comes from the dialect's adapter unless `dialect` is given.
 */
export function kyselyExecutor<Trx extends KyselyTransaction>(trx: Trx, options: ExecutorOptions = {}): BarrierExecutor<Trx> {
  const engine = engineOf('Kysely', adapterName(trx), ENGINES, options);
  if (trx.isTransaction !== true) throw notATransaction('Kysely', 'the trx of db.transaction().execute(), not the Kysely instance');
  // What CompiledQuery.raw(sql, parameters) makes; plugins key their per-query state on queryId.
  const run = (sql: string, parameters: readonly unknown[]) =>
    trx.executeQuery({
      sql,
      parameters,
      query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] },
      queryId: { queryId: `txbarrier-${++queries}` },
    });
  return ormExecutor(engine, options, {
    tx: trx,
    query: run,
    // A bigint on every engine; the core converts it.
    affectedRows: (result) => result.numAffectedRows,
    rows: (result) => result.rows,
  });
}

let queries = 0;

/** The nearest built-in adapter class a (possibly subclassed) adapter derives from. */
function adapterName(trx: KyselyTransaction): string | undefined {
  let prototype = Object.getPrototypeOf(trx.getExecutor?.().adapter ?? {});
  let first: string | undefined;
  while (prototype && prototype !== Object.prototype) {
    const name: string = prototype.constructor?.name;
    first ??= name;
    if (Object.hasOwn(ENGINES, name)) return name;
    prototype = Object.getPrototypeOf(prototype);
  }
  return first;
}
