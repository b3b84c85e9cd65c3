import type { Dialect } from './dialects/dialect.js';
import type { BarrierConnection, BarrierExecutor, StoreOptions } from './store.js';

/** Wraps a connection the caller already put in a transaction; the table name is checked here, as for a store. */
export function defineExecutor<Tx>(
  dialect: Dialect,
  options: StoreOptions,
  connection: BarrierConnection<Tx>,
): BarrierExecutor<Tx> {
  const { table = dialect.defaultTable, ...hooks } = options;
  dialect.quoteTable(table);
  return { dialect, table, hooks, ...connection };
}
