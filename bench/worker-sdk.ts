/**
 * The same op through the SDK, `Barrier.from(…).call(store, fn)`, in a process of its own: the
 * store is the adapter's on the same raw driver `worker-hand.ts` uses, with its default options.
 *
 *   node worker-sdk.mjs '<WorkerArgs as JSON>'   → one line of WorkerResult JSON
 */
import { mysqlStore } from '../adapters/mysql.js';
import { postgresStore } from '../adapters/postgres.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { Barrier, type BarrierStore, BarrierOngoing } from '../src/index.js';
import { type Driver, type Op, type WorkerArgs, workerMain } from './worker-common.js';

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

function sdkOp(driver: Driver, { table, op }: WorkerArgs): Op {
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

await workerMain(sdkOp);
