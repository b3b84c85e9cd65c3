/**
 * The adapter's store on a benchmark worker's driver, default options but the table. The adapters are
 * imported here, on first use, so that a process serving the hand-written route never loads txbarrier.
 */
import type { BarrierStore } from '../src/index.js';
import type { Driver } from './worker-common.js';

export async function sdkStore(driver: Driver, table: string): Promise<BarrierStore<unknown>> {
  switch (driver.engine) {
    case 'sqlite':
      return (await import('../adapters/stores/sqlite.js')).sqliteStore(driver.handle, { table }) as BarrierStore<unknown>;
    case 'mysql':
      return (await import('../adapters/stores/mysql.js')).mysqlStore(driver.handle, { table }) as BarrierStore<unknown>;
    case 'postgres':
      return (await import('../adapters/stores/postgres.js')).postgresStore(driver.handle, { table }) as BarrierStore<unknown>;
  }
}
