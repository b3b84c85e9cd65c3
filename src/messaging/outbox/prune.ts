import { parseDuration } from '../../duration.js';
import { BarrierConfigError } from '../../errors.js';
import type { OutboxSql } from './sql.js';
import type { BarrierStore } from '../../transaction/store.js';

/** Deletes messages sent longer ago than `olderThan`, one short transaction per batch; resolves to how many. */
export async function pruneSent(
  store: BarrierStore<unknown>,
  sql: OutboxSql,
  { olderThan, batchSize = 1000 }: { olderThan: number | string; batchSize?: number },
): Promise<number> {
  const ms = parseDuration(olderThan, 'olderThan');
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new BarrierConfigError(`batchSize must be a positive integer; got ${batchSize}`);
  let deleted = 0;
  for (;;) {
    const removed = Number(await store.transaction((c) => c.execute(sql.pruneBatch(), [ms, batchSize])));
    deleted += removed;
    if (removed < batchSize) return deleted;
    // Let a synchronous driver (better-sqlite3) serve requests between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
