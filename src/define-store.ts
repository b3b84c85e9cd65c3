import type { Dialect } from './dialects/dialect.js';
import { parseDuration } from './duration.js';
import { BarrierConfigError } from './errors.js';
import type { BarrierConnection, BarrierStore, PruneOptions, StoreOptions } from './store.js';

const ONE_DAY_MS = 86_400_000;

/**
 * Builds a store from an adapter's one real job, `transaction`; schema creation and pruning are
 * the same statements-in-short-transactions on every engine. The table name is checked here, so
 * a bad one throws when the store is made, not on the first request.
 */
export function defineStore<Tx>(
  dialect: Dialect,
  options: StoreOptions,
  transaction: <T>(work: (connection: BarrierConnection<Tx>) => Promise<T>) => Promise<T>,
): BarrierStore<Tx> {
  const { table = dialect.defaultTable, ...hooks } = options;
  dialect.quoteTable(table);

  return {
    dialect,
    table,
    hooks,
    transaction,

    async ensureSchema() {
      for (const statement of dialect.createSchema(table)) {
        await transaction((connection) => connection.execute(statement, []));
      }
    },

    async prune({ olderThan, batchSize = 1000, force = false, onProgress }: PruneOptions) {
      const retentionMs = parseDuration(olderThan, 'olderThan');
      if (retentionMs < ONE_DAY_MS && !force) {
        throw new BarrierConfigError(
          `a retention of ${retentionMs} ms is under one day: rows must outlast the coordinator's longest ` +
            `retry window, or a late action would find no barrier and apply. Pass force: true if you are sure.`,
        );
      }
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new BarrierConfigError(`batchSize must be a positive integer; got ${batchSize}`);
      }
      const statement = dialect.pruneBatch(table);
      const seconds = Math.floor(retentionMs / 1000);
      let deleted = 0;
      // One short transaction per batch: locks are held for one batch, never for the whole sweep.
      for (;;) {
        const removed = await transaction((connection) => connection.execute(statement, [seconds, batchSize]));
        deleted += removed;
        onProgress?.(deleted);
        if (removed < batchSize) return deleted;
        // A synchronous driver (better-sqlite3) would otherwise hold the event loop for the whole
        // sweep, and the service would answer nothing until it ended.
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
