/**
 * Racing requests on a real MariaDB/MySQL server: one request holds its transaction open, the
 * other is seen waiting on its lock (not guessed with a sleep), then the first ends.
 */
import { randomUUID } from 'node:crypto';
import type { PoolConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IsolationLevel, mysqlStore } from '../adapters/mysql.js';
import { Barrier, BarrierOngoing, type BarrierStore } from '../src/index.js';
import { hasServer } from './servers.js';
import {
  createMysqlNotes,
  HeldRollback,
  holdOpen,
  type MysqlPool,
  mysqlLockWaits,
  mysqlNotes,
  mysqlPool,
} from './server-harness.js';

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

  const deliver = <Tx extends PoolConnection>(store: BarrierStore<Tx>, gid: string, op: 'action' | 'compensate') =>
    Barrier.from({ transType: 'saga', gid, branchId: '01', op }).call(store, async (tx) => {
      await tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES (?, ?)`, [gid, op]);
      return op;
    });
  const waiting = (gid: string, count = 1) => mysqlLockWaits(pool, gid, count);
  const notes = (gid: string) => mysqlNotes(pool, NOTES, gid);
  /** The thread id of a pool's next connection, and whether that connection is inside a transaction. */
  const nextConnection = async (p: MysqlPool) => {
    const connection = await p.getConnection();
    try {
      const [rows] = await connection.query('SELECT CONNECTION_ID() AS id, @@in_transaction AS open');
      const [row] = rows as { id: number; open: number }[];
      return { threadId: Number(row!.id), inTransaction: Number(row!.open) };
    } finally {
      connection.release();
    }
  };

  const LEVELS: [string, IsolationLevel | undefined][] = [
    ['the default level (repeatable read)', undefined],
    ['read committed', 'read committed'],
  ];

  describe.each(LEVELS)('at %s', (_, isolationLevel) => {
    const store = (p = pool) => mysqlStore(p, { table: TABLE, isolationLevel });

    it('compensate waits for the held action, then sees it and compensates it', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const action = deliver(holder.store, gid, 'action');
      await holder.entered;
      const compensate = deliver(store(), gid, 'compensate');
      await waiting(gid);
      holder.commit();
      expect(await action).toEqual({ outcome: 'applied', value: 'action' });
      expect(await compensate).toEqual({ outcome: 'applied', value: 'compensate' });
      expect(await notes(gid)).toEqual(['action', 'compensate']);
    });

    it('compensate waits for the held action; the action rolls back and the compensation is null', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const action = deliver(holder.store, gid, 'action');
      await holder.entered;
      const compensate = deliver(store(), gid, 'compensate');
      await waiting(gid);
      holder.rollback();
      await expect(action).rejects.toBeInstanceOf(HeldRollback);
      expect(await compensate).toEqual({ outcome: 'null-compensation' });
      expect(await notes(gid)).toEqual([]);
      // Its row now stops the action's retry.
      expect(await deliver(store(), gid, 'action')).toEqual({ outcome: 'dangling' });
    });

    it('the compensation commits first; the action waiting on it dangles', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const compensate = deliver(holder.store, gid, 'compensate');
      await holder.entered;
      const action = deliver(store(), gid, 'action');
      await waiting(gid);
      holder.commit();
      expect(await compensate).toEqual({ outcome: 'null-compensation' });
      expect(await action).toEqual({ outcome: 'dangling' });
      expect(await notes(gid)).toEqual([]);
    });

    it('two identical requests at once: one applied, one duplicate', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const first = deliver(holder.store, gid, 'action');
      await holder.entered;
      const second = deliver(store(), gid, 'action');
      await waiting(gid);
      holder.commit();
      expect(await first).toEqual({ outcome: 'applied', value: 'action' });
      expect(await second).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
    });

    it('three-way race: the deadlock victim is BarrierOngoing, its connection destroyed, and its retry succeeds', async () => {
      const gid = randomUUID();
      // One connection per waiter, so each pool's next connection shows what became of the waiter's.
      const pools = [mysqlPool({ connectionLimit: 1 }), mysqlPool({ connectionLimit: 1 })];
      try {
        const before = await Promise.all(pools.map(nextConnection));
        const holder = holdOpen(store());
        const held = deliver(holder.store, gid, 'action');
        await holder.entered;
        const waiters = Promise.allSettled(pools.map((p) => deliver(store(p), gid, 'action')));
        await waiting(gid, 2);
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

        const after = await Promise.all(pools.map(nextConnection));
        // The victim's connection was destroyed, so its pool lends a new one, outside any transaction.
        expect(after[victim]!.threadId).not.toBe(before[victim]!.threadId);
        expect(after[victim]!.inTransaction).toBe(0);
        expect(after[survivor]).toEqual({ threadId: before[survivor]!.threadId, inTransaction: 0 });

        expect(await deliver(store(pools[victim]), gid, 'action')).toEqual({ outcome: 'duplicate' });
        expect(await notes(gid)).toEqual(['action']);
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
      const before = await nextConnection(impatient);

      const gid = randomUUID();
      const holder = holdOpen(mysqlStore(pool, { table: TABLE }));
      const held = deliver(holder.store, gid, 'action');
      await holder.entered;
      const error = await deliver(mysqlStore(impatient, { table: TABLE }), gid, 'action').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject({ errno: 1205 });
      // 1205 undoes only the statement; the store's ROLLBACK ended the transaction before reuse.
      expect(await nextConnection(impatient)).toEqual({ threadId: before.threadId, inTransaction: 0 });

      holder.commit();
      expect((await held).outcome).toBe('applied');
      expect(await deliver(mysqlStore(impatient, { table: TABLE }), gid, 'action')).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
    } finally {
      await impatient.end();
    }
  });
});
