import type { Dialect, TransactionSettings } from '../dialects/dialect.js';
import { parseDuration } from '../duration.js';
import { BarrierConfigError } from '../errors.js';
import type { BarrierHooks } from '../observe/hooks.js';
import type { BarrierExecutor, BarrierStore, PruneOptions, StatementRunner, StoreOptions, TargetOptions } from './store.js';
import { Deadlines } from './deadlines.js';
import { checkedConnection, runTransaction, type TransactionDriver } from './run.js';

const ONE_DAY_MS = 86_400_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 2000;
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 10_000;
const SERVER_BOUND_MARGIN_MS = 1000;

/**
 * The retention and batch size of a barrier prune, checked (the CLI checks them before it
 * connects). Throws `BarrierConfigError`: `ERR_TXBARRIER_RETENTION` for a retention under one day
 * without `force`, `ERR_TXBARRIER_OPTION` for a batch size that is not a positive integer.
 */
export function checkPrune({ olderThan, batchSize = 1000, force = false }: PruneOptions): { retentionMs: number; batchSize: number } {
  const retentionMs = parseDuration(olderThan, 'olderThan');
  if (retentionMs < ONE_DAY_MS && !force) {
    throw new BarrierConfigError(
      `a retention of ${retentionMs} ms is under one day: rows must outlast the coordinator's longest ` +
        `retry window, or a late action would find no barrier and apply. Pass force: true if you are sure.`,
      { code: 'ERR_TXBARRIER_RETENTION' },
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new BarrierConfigError(`batchSize must be a positive integer; got ${batchSize}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  return { retentionMs, batchSize };
}

/**
 * Builds a store from a driver's steps: the transaction sequence, schema creation and pruning are
 * the core's, the same on every engine. Options are checked here, so a bad one throws when the
 * store is made, not on the first request. `settings` are what the driver's `begin` must apply.
 */
export function defineStore<Conn, Tx>(
  dialect: Dialect,
  options: StoreOptions,
  driver: (settings: TransactionSettings) => TransactionDriver<Conn, Tx>,
  { isolationLevel, timeouts = true }: { isolationLevel?: string; timeouts?: boolean } = {},
): BarrierStore<Tx> {
  const { lockTimeout = DEFAULT_LOCK_TIMEOUT_MS, transactionTimeout = timeouts ? DEFAULT_TRANSACTION_TIMEOUT_MS : false, ...rest } = options;
  const target = targetOf(dialect, rest);
  checkMilliseconds('lockTimeout', lockTimeout);
  if (transactionTimeout !== false) {
    if (!timeouts) {
      throw new BarrierConfigError(`transactionTimeout is not available on ${dialect.name}: its one connection cannot be closed under a running function`, {
        code: 'ERR_TXBARRIER_OPTION',
      });
    }
    checkMilliseconds('transactionTimeout', transactionTimeout);
  }
  // The server's bound is a backstop for a process that froze: a little longer than the client's
  // timer, so a live process always ends the transaction itself, in order.
  const idleTimeoutMs = transactionTimeout === false ? false : transactionTimeout + SERVER_BOUND_MARGIN_MS;
  const steps = driver({ isolationLevel, lockTimeoutMs: lockTimeout, idleTimeoutMs });
  // One deadline queue and timer per store, shared by all its transactions.
  const bound = transactionTimeout === false ? false : new Deadlines(transactionTimeout);
  const transaction: BarrierStore<Tx>['transaction'] = (work) => runTransaction(steps, dialect, bound, work);

  return {
    ...target,
    transaction,

    async ensureSchema() {
      const statements = dialect.createSchema(target.table);
      const lock = dialect.schemaLock;
      if (lock) {
        await transaction(async (connection) => {
          await connection.run(lock, []);
          for (const statement of statements) await connection.run(statement, []);
        });
      } else {
        for (const statement of statements) await transaction((connection) => connection.run(statement, []));
      }
    },

    async prune(pruneOptions: PruneOptions) {
      const { retentionMs, batchSize } = checkPrune(pruneOptions);
      const { onProgress } = pruneOptions;
      const statement = dialect.pruneBatch(target.table);
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

/** Wraps a transaction the caller opened and will end; options are checked here, as for a store. */
export function defineExecutor<Tx>(dialect: Dialect, options: TargetOptions, runner: StatementRunner<Tx>): BarrierExecutor<Tx> {
  return { ...targetOf(dialect, options), ...checkedConnection(runner, dialect.name) };
}

function targetOf(dialect: Dialect, options: TargetOptions): { dialect: Dialect; table: string; hooks: BarrierHooks; returning?: boolean } {
  const { table = dialect.defaultTable, returning, ...hooks } = options;
  dialect.quoteTable(table);
  if (returning !== undefined && typeof returning !== 'boolean') {
    throw new BarrierConfigError(`returning must be true or false; got ${JSON.stringify(returning)}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  return returning === undefined ? { dialect, table, hooks } : { dialect, table, hooks, returning };
}

function checkMilliseconds(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new BarrierConfigError(`${name} must be a whole number of milliseconds from 1 to 2147483647; got ${JSON.stringify(value)}`, {
      code: 'ERR_TXBARRIER_OPTION',
    });
  }
}
