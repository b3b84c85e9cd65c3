/**
 * Racing requests on a real MariaDB/MySQL server: the shared race suite (test/barrier/races.ts), with
 * waiters found in information_schema.innodb_trx, and MySQL's own: a three-way deadlock, a lock-wait timeout.
 */
import { randomUUID } from 'node:crypto';
import type { PoolConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { BarrierOngoing, type BarrierStore } from '../../src/index.js';
import { deliver, describeBoundedWaits, describeRaces, type RaceHarness, type RaceLevel, type SagaOp } from '../barrier/races.js';
import { hasServer } from '../support/servers.js';
import {
  createMysqlNotes,
  HeldRollback,
  holdOpen,
  type MysqlPool,
  mysqlLockWaits,
  mysqlNextConnection,
  mysqlNotes,
  mysqlPool,
} from '../support/server-harness.js';

const SCHEMA = 'h3_race';
const TABLE = `${SCHEMA}.barrier`;
const NOTES = `${SCHEMA}.notes`;

describe.skipIf(!hasServer('mysql'))('mysql races', () => {
  let pool: MysqlPool;
  beforeAll(async () => {
    pool = mysqlPool();
    await mysqlStore(pool, { table: TABLE }).ensureSchema();
    await createMysqlNotes(pool, NOTES);
  });
  afterAll(() => pool?.end());

  const harness: RaceHarness<PoolConnection> = {
    store: (isolationLevel, options) => mysqlStore(pool, { table: TABLE, isolationLevel, ...options }),
    record: (tx, gid, note) => tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES (?, ?)`, [gid, note]),
    waitingBehind: (_holder, gid) => mysqlLockWaits(pool, gid, 1),
    notes: (gid) => mysqlNotes(pool, NOTES, gid),
  };
  const send = (store: BarrierStore<PoolConnection>, gid: string, op: SagaOp) => deliver(harness, store, gid, op);

  const LEVELS: RaceLevel[] = [
    { label: 'the default level (repeatable read)' },
    { label: 'read committed', isolationLevel: 'read committed' },
  ];
  describeRaces(LEVELS, () => harness);
  // innodb_lock_wait_timeout counts whole seconds.
  describeBoundedWaits(() => harness, { lockTimeout: 1000 });

  describe.each(LEVELS)('at $label', ({ isolationLevel }) => {
    const store = (p = pool) => mysqlStore(p, { table: TABLE, isolationLevel });

    it('three-way race: the deadlock victim is BarrierOngoing, its connection destroyed, and its retry succeeds', async () => {
      const gid = randomUUID();
      // One connection per waiter, so each pool's next connection shows what became of the waiter's.
      const pools = [mysqlPool({ connectionLimit: 1 }), mysqlPool({ connectionLimit: 1 })];
      try {
        const before = await Promise.all(pools.map(mysqlNextConnection));
        const holder = holdOpen(store());
        const held = send(holder.store, gid, 'action');
        await holder.entered;
        const waiters = Promise.allSettled(pools.map((p) => send(store(p), gid, 'action')));
        await mysqlLockWaits(pool, gid, 2);
        holder.rollback();
        await expect(held).rejects.toBeInstanceOf(HeldRollback);

        const settled = await waiters;
        const victim = settled.findIndex((s) => s.status === 'rejected');
        const survivor = 1 - victim;
        expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
        const error = (settled[victim] as PromiseRejectedResult).reason;
        expect(error).toBeInstanceOf(BarrierOngoing);
        expect(error.cause).toMatchObject({ errno: 1213 });
        expect((settled[survivor] as PromiseFulfilledResult<unknown>).value).toEqual({ outcome: 'applied', value: 'action' });

        const after = await Promise.all(pools.map(mysqlNextConnection));
        // The victim's connection was destroyed, so its pool lends a new one, outside any transaction.
        expect(after[victim]!.threadId).not.toBe(before[victim]!.threadId);
        expect(after[victim]!.inTransaction).toBe(0);
        expect(after[survivor]).toEqual({ threadId: before[survivor]!.threadId, inTransaction: 0 });

        expect(await send(store(pools[victim]), gid, 'action')).toEqual({ outcome: 'duplicate' });
        expect(await harness.notes(gid)).toEqual(['action']);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    });
  });

  it('a lock-wait timeout is BarrierOngoing; the connection is rolled back and reused', async () => {
    const impatient = mysqlPool({ connectionLimit: 1 });
    try {
      const connection = await impatient.getConnection();
      await connection.query('SET SESSION innodb_lock_wait_timeout = 1');
      connection.release();
      const before = await mysqlNextConnection(impatient);

      const gid = randomUUID();
      const holder = holdOpen(mysqlStore(pool, { table: TABLE }));
      const held = send(holder.store, gid, 'action');
      await holder.entered;
      const error = await send(mysqlStore(impatient, { table: TABLE }), gid, 'action').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject({ errno: 1205 });
      // 1205 undoes only the statement; the store's ROLLBACK ended the transaction before reuse.
      expect(await mysqlNextConnection(impatient)).toEqual({ threadId: before.threadId, inTransaction: 0 });

      holder.commit();
      expect((await held).outcome).toBe('applied');
      expect(await send(mysqlStore(impatient, { table: TABLE }), gid, 'action')).toEqual({ outcome: 'duplicate' });
      expect(await harness.notes(gid)).toEqual(['action']);
    } finally {
      await impatient.end();
    }
  });
});
