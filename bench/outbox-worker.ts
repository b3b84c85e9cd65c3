/**
 * One variant of the outbox's enqueue benchmark (bench/outbox.ts) in a process of its own: the
 * business transaction (one UPDATE of a random account) on `outbox.store`, with or without one
 * `enqueue`. The variant comes from TXBARRIER_OUTBOX_VARIANT:
 *
 * - `bare`: the business transaction alone;
 * - `quiet`: with `enqueue`, `notify: false` (the insert alone: the limit);
 * - `wake`: with `enqueue` and the default wake-up (after the commit, coalesced);
 * - `inside` (PostgreSQL): with `enqueue` through an executor that cannot tell its transaction's end,
 *   so its NOTIFY rides inside the transaction, as every enqueue's did before.
 *
 *   TXBARRIER_OUTBOX_VARIANT=wake node outbox.mjs '<WorkerArgs as JSON>'   (table: the outbox table)
 */
import { mysqlStore } from '../adapters/stores/mysql.js';
import { postgresExecutor, postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import type { BarrierStore } from '../src/index.js';
import { createOutbox } from '../src/messaging/outbox/index.js';
import { workerMain } from './worker-common.js';

export type OutboxVariant = 'bare' | 'quiet' | 'wake' | 'inside';

const variant = process.env.TXBARRIER_OUTBOX_VARIANT as OutboxVariant;

await workerMain((driver, args) => {
  // The barrier table is never touched by these transactions; named only so no default is.
  const options = { table: `${args.table}_barrier` };
  const store = (
    driver.engine === 'sqlite' ? sqliteStore(driver.handle, options) : driver.engine === 'mysql' ? mysqlStore(driver.handle, options) : postgresStore(driver.handle, options)
  ) as BarrierStore<unknown>;
  const outbox = createOutbox(store, { table: args.table, notify: variant !== 'quiet' });
  const message = { topic: 'bench', payload: { amount: 1 } };
  const enqueue =
    variant === 'bare'
      ? undefined
      : variant === 'inside'
        ? (tx: unknown) => outbox.enqueue(postgresExecutor(tx as import('pg').PoolClient), message)
        : (tx: unknown) => outbox.enqueue(tx, message);
  return async (_gid, account, amount) => {
    await outbox.store.transaction(async ({ tx }) => {
      await driver.update(tx, account, amount);
      if (enqueue) await enqueue(tx);
    });
    return false;
  };
});
