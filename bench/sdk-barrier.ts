/**
 * The same op as bench/hand-barrier.ts through the SDK, `Barrier.from(…).call(store, fn)`: the
 * store is the adapter's on the same raw driver, with its default options.
 */
import { mysqlStore } from '../adapters/stores/mysql.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import { Barrier, type BarrierStore, BarrierOngoing } from '../src/index.js';
import type { Driver, Op, OpArgs, WorkerOp } from './worker-common.js';

function storeOf(driver: Driver, table: string): BarrierStore<unknown> {
  switch (driver.engine) {
    case 'sqlite':
      return sqliteStore(driver.handle, { table }) as BarrierStore<unknown>;
    case 'mysql':
      return mysqlStore(driver.handle, { table }) as BarrierStore<unknown>;
    case 'postgres':
      return postgresStore(driver.handle, { table }) as BarrierStore<unknown>;
  }
}

/** The op of `args` through the SDK on `driver`; resolves to true when it met a database conflict and must be retried. */
export function sdkOp(driver: Driver, { table, op }: OpArgs): Op {
  const store = storeOf(driver, table);
  return async (gid, account, amount) => {
    const barrier = Barrier.from({ transType: 'saga', gid, branchId: '01', op });
    try {
      const result = await barrier.call(store, (tx) => driver.update(tx, account, amount));
      if (result.outcome !== 'applied') throw new Error(`SDK ${op} of ${gid} was ${result.outcome}, expected applied`);
      return false;
    } catch (error) {
      if (error instanceof BarrierOngoing || store.dialect.isRetryable(error)) return true;
      throw error;
    }
  };
}

