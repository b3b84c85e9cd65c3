/**
 * Racing requests on a real PostgreSQL server: one request holds its transaction open, the other
 * is seen blocked by it in pg_stat_activity (not guessed with a sleep), then the first ends.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IsolationLevel, type PostgresQueryable, postgresExecutor, postgresStore } from '../adapters/postgres.js';
import { Barrier, type BarrierResult, BarrierOngoing, type BarrierStore } from '../src/index.js';
import { hasServer } from './servers.js';
import {
  createPostgresNotes,
  type Held,
  HeldRollback,
  holdOpen,
  type PostgresPool,
  postgresLockWaits,
  postgresNotes,
  postgresPool,
} from './server-harness.js';

const TABLE = 'h3_pg_race.barrier';
const NOTES = 'h3_pg_race.notes';

describe.skipIf(!hasServer('postgres'))('postgres races', () => {
  let pool: PostgresPool;
  beforeAll(async () => {
    pool = postgresPool();
    await postgresStore(pool, { table: TABLE }).ensureSchema();
    await createPostgresNotes(pool, NOTES);
  });
  afterAll(() => pool?.end());

  type Op = 'action' | 'compensate';
  const barrier = (gid: string, op: Op) => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
  const record = (tx: PostgresQueryable, gid: string, note: string) =>
    tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES ($1, $2)`, [gid, note]);
  const deliver = <Tx extends PostgresQueryable>(store: BarrierStore<Tx>, gid: string, op: Op) =>
    barrier(gid, op).call(store, async (tx) => {
      await record(tx, gid, op);
      return op;
    });
  const backendPid = async (tx: PostgresQueryable) => Number((await tx.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  /** The backend of the held transaction, once it holds its locks. */
  const holding = async <Tx extends PostgresQueryable>(holder: Held<Tx>) => backendPid(await holder.entered);
  const blockedBy = (holderPid: number) => postgresLockWaits(pool, holderPid, 1);
  const notes = (gid: string) => postgresNotes(pool, NOTES, gid);

  const LEVELS: [string, IsolationLevel | undefined][] = [
    ['the default level (read committed)', undefined],
    ['read committed', 'read committed'],
    ['repeatable read', 'repeatable read'],
  ];

  describe.each(LEVELS)('at %s', (_, isolationLevel) => {
    const store = (p = pool) => postgresStore(p, { table: TABLE, isolationLevel });
    /**
     * The waiter's result once the holder committed; call it as soon as the holder is told to
     * commit, so a rejection is handled when it happens. Under repeatable read the row committed after
     * the waiter's snapshot raises 40001, which must be BarrierOngoing; the coordinator's retry then decides.
     */
    const afterCommit = async <T>(waiter: Promise<BarrierResult<T>>, retry: () => Promise<BarrierResult<T>>) => {
      if (isolationLevel !== 'repeatable read') return waiter;
      const error = await waiter.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject({ code: '40001' });
      return retry();
    };

    it('compensate waits for the held action, then sees it and compensates it', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const action = deliver(holder.store, gid, 'action');
      const holderPid = await holding(holder);
      const compensate = deliver(store(), gid, 'compensate');
      await blockedBy(holderPid);
      holder.commit();
      const compensated = afterCommit(compensate, () => deliver(store(), gid, 'compensate'));
      expect(await action).toEqual({ outcome: 'applied', value: 'action' });
      expect(await compensated).toEqual({ outcome: 'applied', value: 'compensate' });
      expect(await notes(gid)).toEqual(['action', 'compensate']);
    });

    it('compensate waits for the held action; the action rolls back and the compensation is null', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const action = deliver(holder.store, gid, 'action');
      const holderPid = await holding(holder);
      const compensate = deliver(store(), gid, 'compensate');
      await blockedBy(holderPid);
      holder.rollback();
      await expect(action).rejects.toBeInstanceOf(HeldRollback);
      expect(await compensate).toEqual({ outcome: 'null-compensation' });
      expect(await notes(gid)).toEqual([]);
      expect(await deliver(store(), gid, 'action')).toEqual({ outcome: 'dangling' });
    });

    it('the compensation commits first; the action waiting on it dangles', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const compensate = deliver(holder.store, gid, 'compensate');
      const holderPid = await holding(holder);
      const action = deliver(store(), gid, 'action');
      await blockedBy(holderPid);
      holder.commit();
      const late = afterCommit(action, () => deliver(store(), gid, 'action'));
      expect(await compensate).toEqual({ outcome: 'null-compensation' });
      expect(await late).toEqual({ outcome: 'dangling' });
      expect(await notes(gid)).toEqual([]);
    });

    it('two identical requests at once: one applied, one duplicate', async () => {
      const gid = randomUUID();
      const holder = holdOpen(store());
      const first = deliver(holder.store, gid, 'action');
      const holderPid = await holding(holder);
      const second = deliver(store(), gid, 'action');
      await blockedBy(holderPid);
      holder.commit();
      const repeated = afterCommit(second, () => deliver(store(), gid, 'action'));
      expect(await first).toEqual({ outcome: 'applied', value: 'action' });
      expect(await repeated).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
    });
  });

  it('a deadlock between two barriers in callers’ transactions is BarrierOngoing, and the other applies', async () => {
    // A handler guarding two branches in one transaction of its own (barrier.within), twice at once
    // in crossed order: the only way a barrier statement can take part in a deadlock.
    const [gidA, gidB] = [randomUUID(), randomUUID()];
    const clients = [await pool.connect(), await pool.connect()];
    try {
      for (const client of clients) await client.query('BEGIN');
      const within = (i: number, gid: string) =>
        barrier(gid, 'action').within(postgresExecutor(clients[i]!, { table: TABLE }), (tx) => record(tx, gid, `client ${i}`));
      expect((await within(0, gidA)).outcome).toBe('applied');
      expect((await within(1, gidB)).outcome).toBe('applied');

      const crossed = [within(0, gidB), within(1, gidA)].map((call, i) =>
        // The callers roll back on any error, as they must; the deadlock victim's locks go with it.
        call.catch(async (error: unknown) => {
          await clients[i]!.query('ROLLBACK');
          throw error;
        }),
      );
      const settled = await Promise.allSettled(crossed);
      expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
      const victim = settled.findIndex((s) => s.status === 'rejected');
      const error = (settled[victim] as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect(error.cause).toMatchObject({ code: '40P01' });
      expect((settled[1 - victim] as PromiseFulfilledResult<{ outcome: string }>).value.outcome).toBe('applied');
      await clients[1 - victim]!.query('COMMIT');
      // The survivor holds both branches; the victim's work is gone.
      expect([...(await notes(gidA)), ...(await notes(gidB))]).toEqual([`client ${1 - victim}`, `client ${1 - victim}`]);
    } finally {
      for (const client of clients) client.release();
    }
  });

  it('a lock timeout is BarrierOngoing, and the client goes back to the pool clean', async () => {
    const impatient = postgresPool({ max: 1, options: '-c lock_timeout=200' });
    try {
      const gid = randomUUID();
      const holder = holdOpen(postgresStore(pool, { table: TABLE }));
      const held = deliver(holder.store, gid, 'action');
      await holder.entered;
      const error = await deliver(postgresStore(impatient, { table: TABLE }), gid, 'action').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject({ code: '55P03' });
      expect(impatient.totalCount).toBe(1);
      expect(impatient.idleCount).toBe(1);
      holder.commit();
      expect((await held).outcome).toBe('applied');
      expect(await deliver(postgresStore(impatient, { table: TABLE }), gid, 'action')).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
    } finally {
      await impatient.end();
    }
  });
});
