/**
 * The outbox end to end on each engine and each real broker: enqueue in the business transaction,
 * a relay publishing with confirms/acks, retries and parking, and the per-key order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import type { BarrierStore } from '../../src/index.js';
import { createOutbox, OutboxInputError, OutboxNotInTransaction, uuidv7 } from '../../src/messaging/outbox/index.js';
import { describeOutboxBroker } from './broker-suite.js';
import { BROKERS, ENGINES, type EngineHarness, openEngine } from './harness.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';

for (const engine of ENGINES) {
  for (const broker of BROKERS) describeOutboxBroker(engine, broker);
}

for (const engine of ENGINES) {
  describe.skipIf(engine.skip)(`outbox enqueue on ${engine.name}`, () => {
    let db: EngineHarness;
    beforeAll(async () => {
      db = await openEngine(engine.name);
    });
    afterAll(async () => {
      await db?.close();
    });

    it('refuses a tx outside an open transaction of outbox.store, and a bad message, writing nothing', async () => {
      let leaked: unknown;
      await db.outbox.store.transaction(async ({ tx }) => void (leaked = tx));
      await expect(db.outbox.enqueue(leaked, { topic: 't', payload: 'x' })).rejects.toBeInstanceOf(OutboxNotInTransaction);
      // The store it wraps hands out the same kind of tx, but enqueue cannot see its transaction.
      await expect(db.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 't', payload: 'x' }))).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_OUTBOX_NOT_IN_TRANSACTION',
      });
      const bad = [
        { topic: '', payload: 'x' },
        { topic: 'a\nb', payload: 'x' },
        { topic: 'x'.repeat(256), payload: 'x' },
        { topic: 't', key: '', payload: 'x' },
        { topic: 't' },
        { topic: 't', payload: 1n },
        { topic: 't', payload: 'x', headers: { n: 1 } },
      ];
      for (const message of bad) {
        await expect(db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, message as never))).rejects.toMatchObject({
          code: 'ERR_TXBARRIER_OUTBOX_INPUT',
        });
      }
      await expect(db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, {} as never))).rejects.toBeInstanceOf(OutboxInputError);
      expect(await db.outbox.counts()).toEqual({ pending: 0, sent: 0, parked: 0 });
    });

    it("refuses an ended transaction's tx even when the same connection serves the next transaction", async () => {
      // A pool of one lends the same client again; better-sqlite3 has one Database object.
      const pool = engine.name === 'postgres' ? postgresPool({ max: 1 }) : engine.name === 'mysql' ? mysqlPool({ connectionLimit: 1 }) : undefined;
      const store = engine.name === 'postgres' ? postgresStore(pool as never, { table: db.store.table }) : engine.name === 'mysql' ? mysqlStore(pool as never, { table: db.store.table }) : db.store;
      const outbox = createOutbox(store as BarrierStore<unknown>, { table: db.outbox.table });
      try {
        let ended: unknown;
        // Work that rolled back: its message must not ride on whoever's transaction comes next.
        await expect(
          outbox.store.transaction(async ({ tx }) => {
            ended = tx;
            throw new Error('business failure');
          }),
        ).rejects.toThrow('business failure');
        const id = await outbox.store.transaction(async ({ tx }) => {
          await expect(outbox.enqueue(ended, { topic: 't', payload: 'of the rolled-back work' })).rejects.toBeInstanceOf(OutboxNotInTransaction);
          return outbox.enqueue(tx, { topic: 't', payload: 'its own' });
        });
        expect((await outbox.pending()).map((m) => m.id)).toEqual([id]);
        await db.query(`DELETE FROM ${db.outbox.table}`);
      } finally {
        if (pool) await (pool as { end(): Promise<void> }).end();
      }
    });

    it('makes ids that are unique and time-ordered', () => {
      const ids = Array.from({ length: 10_000 }, () => uuidv7());
      expect(new Set(ids).size).toBe(ids.length);
      expect(uuidv7(Date.UTC(2030, 0, 1)) > uuidv7(Date.UTC(2029, 0, 1))).toBe(true);
    });
  });
}
